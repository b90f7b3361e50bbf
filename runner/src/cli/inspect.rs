//! `vigil inspect`: print the configuration of containers or images as JSON.

use clap::{Args, ValueEnum};

use serde_json::{json, Value};

use super::output::print_out;
use super::template::Output;
use crate::container::health;
use crate::container::record::format_rfc3339;
use crate::container::{Engine, Record, Status};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// What the names refer to
    #[arg(long = "type", value_name = "TYPE", value_enum, default_value_t = InspectType::All)]
    pub kind: InspectType,

    /// Format the output with a Go template (`{{.State.Status}}`) or `json`
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Inspect the most recently created container
    #[arg(short, long)]
    pub latest: bool,

    /// Containers or images to inspect
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

/// Which objects `inspect` looks names up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InspectType {
    Container,
    Image,
    /// Containers first, then images
    All,
}

/// Podman-style `inspect` JSON of a container.
pub fn container_json(engine: &Engine<'_>, rec: &Record) -> Value {
    let dir = engine.store.dir(&rec.id);
    let time = |t: Option<i128>| {
        t.map(format_rfc3339)
            .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
    };
    let flags = &rec.config.flags;
    // `--tmpfs DEST[:OPTIONS]` as Podman shows it: destination -> options.
    let tmpfs: serde_json::Map<String, serde_json::Value> = flags
        .tmpfs
        .iter()
        .map(|t| {
            let (dest, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
            (dest.to_string(), serde_json::Value::from(opts))
        })
        .collect();
    let mut value = json!({
        "Id": rec.id,
        "Created": format_rfc3339(rec.created),
        "Path": rec.config.args.first().cloned().unwrap_or_default(),
        "Args": rec.config.args.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "OciVersion": "1.0.2-dev",
            "Status": rec.status.as_str(),
            "Running": matches!(rec.status, Status::Running | Status::Paused),
            "Paused": rec.status == Status::Paused,
            "Restarting": false,
            "OOMKilled": rec.oom_killed,
            "Dead": false,
            "Error": rec.error.clone().unwrap_or_default(),
            "Pid": rec.pid.unwrap_or(0),
            "ConmonPid": rec.monitor_pid.unwrap_or(0),
            "ExitCode": rec.exit_code.unwrap_or(0),
            "StartedAt": time(rec.started_at),
            "FinishedAt": time(rec.finished_at),
            "Health": health_json(engine, rec),
        },
        "Image": rec.image_id,
        "ImageName": rec.image,
        "Rootfs": "",
        "Name": rec.name,
        "RestartCount": rec.restart_count,
        "Driver": "overlay",
        "LogPath": rec.log.path,
        "ConmonPidFile": dir.join("conmon.pid"),
        "BundlePath": dir,
        "Config": {
            "Hostname": rec.config.hostname,
            "User": rec.config.user,
            "Env": rec.config.env,
            "Cmd": rec.config.cmd,
            "Entrypoint": rec.config.entrypoint,
            "WorkingDir": rec.config.cwd,
            "Image": rec.image,
            "Labels": rec.labels,
            "Tty": rec.config.tty,
            "OpenStdin": rec.config.stdin,
            "StopSignal": rec.config.stop_signal,
            "StopTimeout": rec.config.stop_timeout,
        },
        "HostConfig": {
            "AutoRemove": rec.auto_remove,
            "RestartPolicy": {
                "Name": rec.restart_policy.name,
                "MaximumRetryCount": rec.restart_policy.max_retries,
            },
            "NetworkMode": rec.config.network,
            "Binds": rec.config.volumes,
            "Memory": rec.memory_limit.unwrap_or(0),
            "CapAdd": flags.cap_add,
            "CapDrop": flags.cap_drop,
            "ReadonlyRootfs": flags.read_only,
            // Podman reports an unlimited pids limit as 0.
            "PidsLimit": rec.config.parsed().map_or(0, |p| p.pids_limit.max(0)),
            "Tmpfs": tmpfs,
            "LogConfig": {"Type": rec.log.driver, "Path": rec.log.path, "Tag": rec.log.tag},
        },
    });
    if let Some(h) = &rec.healthcheck {
        value["Config"]["Healthcheck"] = json!(h);
    }
    if let Some(action) = &rec.health_on_failure {
        value["Config"]["HealthcheckOnFailureAction"] = json!(action);
    }
    value
}

/// `State.Health` as Podman 4.x shows it (also without a healthcheck:
/// empty status, no log).
fn health_json(engine: &Engine<'_>, rec: &Record) -> Value {
    let log = health::read_log(engine, rec).unwrap_or_default();
    let entries: Vec<Value> = log
        .log
        .iter()
        .map(|e| json!({"Start": e.start, "End": e.end, "ExitCode": e.exit_code, "Output": e.output}))
        .collect();
    json!({
        "Status": log.status,
        "FailingStreak": log.failing_streak,
        "Log": if entries.is_empty() { Value::Null } else { Value::Array(entries) },
    })
}

/// Print a JSON array with one object per name (4-space indent like
/// Podman), or each object through `--format`.
pub fn handle(ctx: &Context, args: &InspectArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    let output = Output::parse("inspect", args.format.as_deref())?;
    let mut out = Vec::new();
    let mut missing = None;
    let names: Vec<String> = if args.latest {
        match super::latest::latest(&engine) {
            Ok(rec) => vec![rec.id],
            Err(_) => {
                print_out("[]\n");
                return Err(RunnerError::Engine(
                    "inspecting object: no containers to inspect: no such container".into(),
                ));
            }
        }
    } else if args.names.is_empty() {
        return Err(super::latest::no_names());
    } else {
        args.names.clone()
    };
    let images = crate::image::Store::open(&ctx.paths).ok();
    for name in &names {
        let container = match args.kind {
            InspectType::Image => None,
            _ => engine.store.lookup(name)?,
        };
        if let Some(id) = container {
            let rec = engine.refresh_locked(&id)?;
            let mut v = container_json(&engine, &rec);
            // Podman's templates accept {{.ID}} as well as {{.Id}}.
            v["ID"] = v["Id"].clone();
            out.push(v);
            continue;
        }
        let image = match args.kind {
            InspectType::Container => None,
            _ => images.as_ref().and_then(|s| s.resolve(name).ok()),
        };
        match image.map(|i| super::image::inspect_json(&i)) {
            Some(Ok(mut v)) => {
                v["ID"] = v["Id"].clone();
                out.push(v);
            }
            Some(Err(e)) => return Err(RunnerError::Engine(e.to_string())),
            None => {
                missing.get_or_insert_with(|| name.clone());
            }
        }
    }
    match output {
        Output::Template(format) => {
            let mut text = String::new();
            for v in &out {
                let line = format.render(v).map_err(|e| {
                    RunnerError::Engine(format!("inspecting object: printing inspect output: {e}"))
                })?;
                text.push_str(&line);
                text.push('\n');
            }
            print_out(&text);
        }
        Output::Json | Output::Default => {
            for v in &mut out {
                if let Some(o) = v.as_object_mut() {
                    o.remove("ID");
                }
            }
            print_out(&format!(
                "{}\n",
                super::image::to_pretty(&Value::Array(out))
            ));
        }
    }
    match missing {
        None => Ok(0),
        Some(name) => Err(RunnerError::Engine(format!("no such object: {name:?}"))),
    }
}
