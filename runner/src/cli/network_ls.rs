//! `vigil network ls`: the networks, as Podman 4.3.1 lists them: a table,
//! `-q`, `--format json` (the network objects), or a Go template over
//! Podman's field names (`{{.Name}}`, `{{.ID}}`, `{{.Driver}}`,
//! `{{.NetworkInterface}}`, `{{.Created}}`, `{{.Subnets}}`,
//! `{{.IPv6Enabled}}`, `{{.Internal}}`, `{{.DNSEnabled}}`, `{{.Labels}}`,
//! `{{.Options}}`, `{{.IPAMOptions}}`), with `--filter`, `--no-trunc` and
//! `--noheading`.

use clap::Args;
use serde_json::{json, Value};

use super::network_filter::NetworkFilter;
use super::template::{default_header, Output};
use crate::context::Context;
use crate::error::RunnerError;
use crate::network::NetworkDef;

#[derive(Debug, Clone, Args)]
pub struct NetworkLsArgs {
    /// Print only the names
    #[arg(short, long)]
    pub quiet: bool,

    /// Output: json or a Go template (`{{.Name}} {{.Driver}}`, `table {{.ID}}`)
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Filter: name=REGEX, id=PREFIX, driver=, label=KEY[=VALUE], label!=,
    /// until=TIME, dangling=true|false
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,

    /// Do not truncate the network ID
    #[arg(long)]
    pub no_trunc: bool,

    /// Do not print headers
    #[arg(short, long)]
    pub noheading: bool,
}

/// Go's `time.Time.String()` of an RFC 3339 UTC time, as Podman's
/// `{{.Created}}` prints it (`2026-12-03 16:08:28.996492156 +0000 UTC`).
fn go_time(rfc3339: &str) -> String {
    match rfc3339.strip_suffix('Z') {
        Some(t) => format!("{} +0000 UTC", t.replacen('T', " ", 1)),
        None => rfc3339.to_string(),
    }
}

/// One network as the template sees it (Podman's `ListPrintReports`).
fn template_row(def: &NetworkDef, no_trunc: bool) -> Value {
    let id: String = if no_trunc {
        def.id.clone()
    } else {
        def.id.chars().take(12).collect()
    };
    // A method in Podman: KEY=VALUE pairs, sorted, comma-separated.
    let labels: Vec<String> = def
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let subnets: Vec<Value> = def
        .subnets
        .iter()
        .map(|s| json!({"Subnet": s.subnet, "Gateway": s.gateway.clone().unwrap_or_default()}))
        .collect();
    json!({
        "Name": def.name,
        "ID": id,
        "Driver": def.driver,
        "NetworkInterface": def.network_interface,
        "Created": go_time(&def.created),
        "Subnets": subnets,
        "IPv6Enabled": def.ipv6_enabled,
        "Internal": def.internal,
        "DNSEnabled": def.dns_enabled,
        "Labels": labels.join(","),
        "Options": def.options.clone().unwrap_or_default(),
        "IPAMOptions": {"driver": def.ipam_options.driver},
    })
}

fn header(field: &str) -> String {
    match field {
        "ID" => "NETWORK ID".into(),
        f => default_header(f),
    }
}

pub fn handle(ctx: &Context, args: &NetworkLsArgs) -> Result<i32, RunnerError> {
    let filter = NetworkFilter::parse(&args.filter)?;
    // `{{json .}}` is Podman's spelling of `json` here.
    let compact: String = args
        .format
        .as_deref()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let format = if compact == "{{json.}}" {
        Some("json")
    } else {
        args.format.as_deref()
    };
    let output = Output::parse("ls", format)?;
    let env = crate::container::net::env(ctx);
    let users: Vec<String> = if filter.needs_users() {
        crate::container::Engine::new(ctx)
            .store
            .records()?
            .into_iter()
            .flat_map(|r| r.config.net.networks)
            .collect()
    } else {
        Vec::new()
    };
    let all: Vec<NetworkDef> = env
        .store
        .list()?
        .into_iter()
        .filter(|n| filter.matches(n, users.contains(&n.name)))
        .collect();
    if args.quiet {
        for n in &all {
            println!("{}", n.name);
        }
        return Ok(0);
    }
    match output {
        Output::Json => {
            let text = serde_json::to_string_pretty(&all)
                .map_err(|e| RunnerError::Engine(format!("network ls: {e}")))?;
            println!("{text}");
        }
        Output::Template(f) => {
            let rows: Vec<Value> = all.iter().map(|n| template_row(n, args.no_trunc)).collect();
            let f = if args.noheading {
                f.without_header()
            } else {
                f
            };
            print!("{}", f.render_all(&rows, &header)?);
        }
        Output::Default => {
            let mut rows = Vec::new();
            if !args.noheading {
                rows.push(vec![
                    "NETWORK ID".to_string(),
                    "NAME".into(),
                    "DRIVER".into(),
                ]);
            }
            for n in &all {
                let id = if args.no_trunc {
                    n.id.clone()
                } else {
                    n.id.chars().take(12).collect()
                };
                rows.push(vec![id, n.name.clone(), n.driver.clone()]);
            }
            print!("{}", super::output::table(&rows));
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_rows_have_podman_fields() {
        let mut def = crate::network::config::default_network();
        def.created = "2026-12-03T16:08:28.996492156Z".into();
        def.labels = Some([("a".into(), "b".into()), ("c".into(), String::new())].into());
        let f = super::super::template::Format::parse(
            "ls",
            "{{.Name}} {{.ID}} {{.Driver}} [{{.Labels}}] {{.IPv6Enabled}} {{.Created}} {{.Options}} {{.IPAMOptions}}",
        )
        .unwrap();
        assert_eq!(
            f.render(&template_row(&def, false)).unwrap(),
            format!(
                "vigil {} bridge [a=b,c=] false 2026-12-03 16:08:28.996492156 +0000 UTC map[] \
                 map[driver:host-local]",
                &def.id[..12]
            )
        );
        let e = super::super::template::Format::parse("ls", "{{.Nope}}")
            .unwrap()
            .render(&template_row(&def, false))
            .unwrap_err()
            .to_string();
        assert!(e.contains("can't evaluate field Nope"), "{e}");
    }
}
