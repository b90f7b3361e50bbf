//! `vigil info`: the host, the store and the configuration vigil uses, as
//! YAML (default), JSON or through a Go template (Podman's field names:
//! `{{.Host.OCIRuntime.Name}}`, `{{.Store.GraphDriverName}}`).

use clap::Args;
use serde_json::{json, Value};

use super::output::print_out;
use super::template::Output;
use crate::container::{Engine, Status};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    /// Output: `json` or a Go template (`{{.Host.OCIRuntime.Name}}`)
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
}

fn first_line(path: &str, key: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_default()
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn mem_total() -> u64 {
    first_line("/proc/meminfo", "MemTotal:")
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .unwrap_or(0)
        * 1024
}

/// The info document, with Podman's (Go) field names.
pub fn info_json(ctx: &Context) -> Value {
    let engine = Engine::new(ctx);
    let records = engine.store.records().unwrap_or_default();
    let count = |s: Status| records.iter().filter(|r| r.status == s).count();
    let images = crate::image::Store::open(&ctx.paths)
        .and_then(|s| s.list())
        .map(|l| l.len())
        .unwrap_or(0);
    let runtime_path = ctx.runtime_path().ok();
    let runtime_name = ctx
        .runtime
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let conmon = ctx.monitor_path().ok();
    let cgroup2 = crate::container::lifecycle::is_cgroup2();
    let storage = &ctx.storage_conf;
    let driver = match (storage.driver, &storage.mount_program) {
        (crate::config::storage::Driver::Vfs, _) => "vfs",
        _ => "overlay",
    };
    json!({
        "Host": {
            "Arch": super::version::version_json()["Client"]["OsArch"]
                .as_str().unwrap_or("").trim_start_matches("linux/"),
            "Os": "linux",
            "Kernel": kernel(),
            "Hostname": first_line("/proc/sys/kernel/hostname", ""),
            "MemTotal": mem_total(),
            "CPUs": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "CgroupsVersion": if cgroup2 { "v2" } else { "v1" },
            "CgroupManager": "cgroupfs",
            "OCIRuntime": {
                "Name": runtime_name,
                "Path": runtime_path.map(|p| p.display().to_string()).unwrap_or_default(),
            },
            "Conmon": {
                "Path": conmon.map(|p| p.display().to_string()).unwrap_or_default(),
            },
            "Distribution": {
                "Distribution": first_line("/etc/os-release", "ID="),
                "Version": first_line("/etc/os-release", "VERSION_ID="),
            },
            "LogDriver": "k8s-file",
            "EventLogger": "none",
            "NetworkBackend": ctx.containers_conf.network.network_backend.clone()
                .unwrap_or_else(|| "netavark".into()),
            "Security": {
                "Rootless": crate::rootless::active().is_some(),
            },
        },
        "Store": {
            "ConfigFile": storage.file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            "ContainersConfFiles": ctx.containers_conf.files.iter()
                .map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "GraphDriverName": driver,
            "GraphRoot": ctx.paths.store.display().to_string(),
            "RunRoot": ctx.paths.state.display().to_string(),
            "MountProgram": storage.mount_program.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            "VolumePath": ctx.paths.store.join("volumes").display().to_string(),
            "ContainerStore": {
                "Number": records.len(),
                "Running": count(Status::Running),
                "Paused": count(Status::Paused),
                "Stopped": count(Status::Exited) + count(Status::Created),
            },
            "ImageStore": { "Number": images },
        },
        "Registries": {},
        "Plugins": {},
        "Version": super::version::version_json()["Client"].clone(),
    })
}

/// Podman's YAML and JSON keys: lowerCamel (`ociRuntime`, `graphRoot`),
/// except under `version`, which keeps Go's names.
fn lower_camel(v: &Value, keep: bool) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let key = if keep { k.clone() } else { camel(k) };
                    let keep_below = keep || key == "version";
                    (key, lower_camel(v, keep_below))
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn camel(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let upper = chars.iter().take_while(|c| c.is_uppercase()).count();
    let lower_n = match upper {
        0 => 0,
        n if n == chars.len() => n,
        1 => 1,
        n if chars[n].is_lowercase() && chars[n - 1] != 'U' => n - 1,
        n => n,
    };
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < lower_n {
                c.to_ascii_lowercase()
            } else {
                *c
            }
        })
        .collect()
}

/// A small YAML writer for JSON documents (maps, lists, scalars).
pub fn to_yaml(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                match v {
                    Value::Object(m) if !m.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        to_yaml(v, indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        for item in a {
                            out.push_str(&format!("{pad}- {}\n", scalar(item)));
                        }
                    }
                    _ => out.push_str(&format!("{pad}{k}: {}\n", scalar(v))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::String(s) if s.is_empty() => "\"\"".into(),
        Value::String(s)
            if s.contains([':', '#', '"', '\'', '\n'])
                || s.starts_with([' ', '-', '[', '{', '*', '&', '!', '%', '@']) =>
        {
            serde_json::to_string(s).unwrap_or_default()
        }
        Value::String(s) => s.clone(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        other => other.to_string(),
    }
}

pub fn handle(ctx: &Context, args: &InfoArgs) -> Result<i32, RunnerError> {
    let output = Output::parse("info", args.format.as_deref())?;
    let info = info_json(ctx);
    match output {
        Output::Template(f) => print_out(&format!("{}\n", f.render(&info)?)),
        Output::Json => print_out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&lower_camel(&info, false)).unwrap_or_default()
        )),
        Output::Default => {
            let mut yaml = String::new();
            to_yaml(&lower_camel(&info, false), 0, &mut yaml);
            print_out(&yaml);
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_lower_camel() {
        assert_eq!(camel("OCIRuntime"), "ociRuntime");
        assert_eq!(camel("GraphRoot"), "graphRoot");
        assert_eq!(camel("CPUs"), "cpus");
        assert_eq!(camel("ID"), "id");
        let mut y = String::new();
        to_yaml(
            &json!({"host": {"arch": "amd64", "list": ["a"], "e": {}}, "n": 1}),
            0,
            &mut y,
        );
        assert_eq!(y, "host:\n  arch: amd64\n  e: {}\n  list:\n  - a\nn: 1\n");
    }
}
