//! `vigil ps`: list containers.

use clap::Args;

use super::filter::{ContainerFilter, FilterSubject};
use super::output::{print_out, table};
use super::template::{default_header, Output};
use crate::container::health;
use crate::container::record::{human_duration, now_nanos};
use crate::container::{Engine, Record, Status};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct PsArgs {
    /// Show all containers, not only running ones
    #[arg(short, long)]
    pub all: bool,

    /// Print only container IDs
    #[arg(short, long)]
    pub quiet: bool,

    /// Do not truncate IDs and commands
    #[arg(long)]
    pub no_trunc: bool,

    /// Filter: status=, name=, id=, ancestor=, label=, exited=, restart-policy=, health=
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,

    /// Show the N most recently created containers (any state)
    #[arg(short = 'n', long, value_name = "N")]
    pub last: Option<usize>,

    /// Show the most recently created container (-n 1)
    #[arg(short, long)]
    pub latest: bool,

    /// Show the size of each container's writable layer
    #[arg(short, long)]
    pub size: bool,

    /// Output: `json`, `table`, or a Go template (`{{.Names}}`, `table {{.ID}}\t{{.Status}}`)
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

/// Podman's STATUS column: `Created`, `Up 5 seconds`, `Exited (0) 3 seconds ago`,
/// with ` (monitor died)` after it when the monitor is gone without having
/// written an exit file (inspect's `State.Error` says more).
pub fn status_text(rec: &Record, now: i128) -> String {
    let status = plain_status(rec, now);
    match rec.error {
        Some(_) => format!("{status} (monitor died)"),
        None => status,
    }
}

fn plain_status(rec: &Record, now: i128) -> String {
    match rec.status {
        Status::Created => "Created".into(),
        Status::Paused => "Paused".into(),
        Status::Running => format!("Up {}", human_duration(now - rec.started_at.unwrap_or(now))),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            rec.exit_code.unwrap_or(-1),
            human_duration(now - rec.finished_at.unwrap_or(now))
        ),
    }
}

/// STATUS with the health status after it, as Podman: `Up 5 seconds (healthy)`.
fn with_health(status: String, health: &str) -> String {
    if health.is_empty() {
        status
    } else {
        format!("{status} ({health})")
    }
}

/// Health status per container id (empty: no healthcheck).
pub type HealthByContainer = std::collections::HashMap<String, String>;

fn health_of<'a>(h: &'a HealthByContainer, r: &Record) -> &'a str {
    h.get(&r.id).map_or("", String::as_str)
}

/// List containers, refreshing their state first.
pub fn handle(ctx: &Context, args: &PsArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    let created_of = |name: &str| -> Result<i128, RunnerError> {
        let id = engine.store.resolve(name)?;
        Ok(Record::load(&engine.store.dir(&id))?.created)
    };
    let filter = ContainerFilter::parse(&args.filter, &created_of)?;
    let output = Output::parse("ps", args.format.as_deref())?;
    let last = if args.latest { Some(1) } else { args.last };
    let everything = args.all || last.is_some() || filter.selects_states();
    let mut records = Vec::new();
    let mut healths = HealthByContainer::new();
    for id in engine.store.ids()? {
        let Ok(_lock) = engine.store.lock(&id) else {
            continue;
        };
        if let Ok(rec) = engine.refresh(&id) {
            let health = health::status(&engine, &rec);
            if (everything || rec.status == Status::Running)
                && filter.matches(&rec, &FilterSubject { health: &health })
            {
                healths.insert(rec.id.clone(), health);
                records.push(rec);
            }
        }
    }
    // Oldest first, like Podman; -n keeps the newest N.
    records.sort_by_key(|r| r.created);
    if let Some(n) = last {
        let skip = records.len().saturating_sub(n);
        records.drain(..skip);
    }
    let id = |r: &Record| {
        if args.no_trunc {
            r.id.clone()
        } else {
            r.short_id().to_string()
        }
    };
    if args.quiet {
        print_out(
            &records
                .iter()
                .map(|r| format!("{}\n", id(r)))
                .collect::<String>(),
        );
        return Ok(0);
    }
    let now = now_nanos();
    let sizes: Vec<Option<(u64, u64)>> = records
        .iter()
        .map(|r| args.size.then(|| container_size(ctx, &engine, r)))
        .collect();
    match output {
        Output::Json => {
            print_out(&format!("{}\n", ps_json(&records, now, &healths)));
            return Ok(0);
        }
        Output::Template(format) => {
            if !args.size && args.format.as_deref().is_some_and(|f| f.contains(".Size")) {
                eprintln!(
                    "time=\"{}\" level=error msg=\"Size format requires --size option\"",
                    crate::container::record::format_rfc3339(now)
                );
            }
            let rows: Vec<serde_json::Value> = records
                .iter()
                .zip(&sizes)
                .map(|(r, size)| {
                    let mut f = template_fields(r, now, args.no_trunc, *size);
                    let status = with_health(status_text(r, now), health_of(&healths, r));
                    f["Status"] = status.clone().into();
                    f["State"] = status.into();
                    f
                })
                .collect();
            print_out(&format.render_all(&rows, &header)?);
            return Ok(0);
        }
        Output::Default => {}
    }
    let mut head = vec![
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    if args.size {
        head.push("SIZE");
    }
    let mut rows = vec![head.into_iter().map(String::from).collect::<Vec<_>>()];
    for (r, size) in records.iter().zip(&sizes) {
        let mut row = vec![
            id(r),
            r.image.clone(),
            command_column(r, args.no_trunc),
            format!("{} ago", human_duration(now - r.created)),
            with_health(status_text(r, now), health_of(&healths, r)),
            crate::network::ports::ps_column(&r.config.net.ports),
            r.name.clone(),
        ];
        if let Some(size) = size {
            row.push(size_text(*size));
        }
        rows.push(row);
    }
    print_out(&table(&rows));
    Ok(0)
}

/// COMMAND: the command, cut to 17 characters and `...` unless `--no-trunc`.
fn command_column(r: &Record, no_trunc: bool) -> String {
    let command = r.config.args.join(" ");
    if !no_trunc && command.chars().count() > 20 {
        command.chars().take(17).collect::<String>() + "..."
    } else {
        command
    }
}

/// (writable layer, image) sizes in bytes.
fn container_size(ctx: &Context, engine: &Engine<'_>, r: &Record) -> (u64, u64) {
    let rw = crate::container::usage::rw_size(r, &engine.store.data_dir(&r.id));
    let image = crate::image::Store::open(&ctx.paths)
        .ok()
        .and_then(|s| s.resolve(&r.image_id).ok())
        .map_or(0, |i| i.size);
    (rw, image)
}

/// `12B (virtual 1.99MB)`.
fn size_text((rw, image): (u64, u64)) -> String {
    format!(
        "{} (virtual {})",
        human_size_compact(rw),
        human_size_compact(rw + image)
    )
}

/// go-units' `HumanSize` without the space (`2.13MB`, `12B`).
pub fn human_size_compact(bytes: u64) -> String {
    crate::image::progress::human_size(bytes).replace(' ', "")
}

/// The header of a template column (Podman's names for ps).
fn header(field: &str) -> String {
    match field {
        "ID" => "CONTAINER ID".into(),
        "Names" => "NAMES".into(),
        "RunningFor" | "CreatedAt" | "Created" => "CREATED".into(),
        other => default_header(other),
    }
}

/// The fields `ps --format` templates see, as Podman names them.
pub fn template_fields(
    r: &Record,
    now: i128,
    no_trunc: bool,
    size: Option<(u64, u64)>,
) -> serde_json::Value {
    let running = matches!(r.status, Status::Running | Status::Paused);
    let labels = if r.labels.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::to_value(&r.labels).unwrap_or_default()
    };
    serde_json::json!({
        "ID": if no_trunc { r.id.clone() } else { r.short_id().to_string() },
        "Id": r.id,
        "Names": r.name,
        "Image": r.image,
        "ImageID": r.image_id,
        "Command": r.config.args.join(" "),
        "CreatedAt": go_time(r.created),
        "Created": go_time(r.created),
        "RunningFor": format!("{} ago", human_duration(now - r.created)),
        "Status": status_text(r, now),
        "State": status_text(r, now),
        "Ports": crate::network::ports::ps_column(&r.config.net.ports),
        "Labels": labels,
        "ExitCode": r.exit_code.unwrap_or(0),
        "Exited": r.status == Status::Exited,
        "Pid": if running { r.pid.unwrap_or(0) } else { 0 },
        "Mounts": r.config.volumes,
        "Networks": r.config.net.networks,
        "Size": size.map(size_text).unwrap_or_default(),
        "Pod": "",
        "PodName": "",
        "AutoRemove": r.auto_remove,
        "RestartCount": r.restart_count,
    })
}

/// A time as Go prints `time.Time`: `2026-12-03 08:06:58.762245969 +0000 UTC`.
pub fn go_time(nanos: i128) -> String {
    let t = crate::container::record::format_rfc3339(nanos);
    // 2026-12-03T08:06:58.762245969Z -> date, time, fraction without trailing zeros.
    let (date, rest) = t.split_once('T').unwrap_or((&t, ""));
    let rest = rest.trim_end_matches('Z');
    let (clock, frac) = rest.split_once('.').unwrap_or((rest, ""));
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{date} {clock} +0000 UTC")
    } else {
        format!("{date} {clock}.{frac} +0000 UTC")
    }
}

/// `ps --format json`: the fields `podman ps --format json` (4.3.1) prints,
/// pretty-printed like Podman. Times are Unix seconds; never-set ones are
/// Go's zero time (-62135596800), as in Podman.
pub fn ps_json(records: &[Record], now: i128, health: &HealthByContainer) -> String {
    const ZERO_TIME: i64 = -62_135_596_800;
    let secs = |t: Option<i128>| t.map_or(ZERO_TIME, |n| n.div_euclid(1_000_000_000) as i64);
    let list: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            // A record too damaged to parse still gets listed.
            let mounts: Vec<String> = match r.config.parsed() {
                Ok(parsed) => parsed
                    .volumes
                    .iter()
                    .map(|b| b.destination.clone())
                    .chain(parsed.tmpfs.iter().map(|t| t.destination.clone()))
                    .collect(),
                Err(_) => Vec::new(),
            };
            let running = matches!(r.status, Status::Running | Status::Paused);
            serde_json::json!({
                "AutoRemove": r.auto_remove,
                "Command": r.config.args,
                "CreatedAt": format!("{} ago", human_duration(now - r.created)),
                "Exited": r.status == Status::Exited,
                "ExitedAt": secs(r.finished_at),
                "ExitCode": r.exit_code.unwrap_or(0),
                "Id": r.id,
                "Image": r.image,
                "ImageID": r.image_id.strip_prefix("sha256:").unwrap_or(&r.image_id),
                "IsInfra": false,
                "Labels": if r.labels.is_empty() { serde_json::Value::Null } else { serde_json::to_value(&r.labels).unwrap_or_default() },
                "Mounts": mounts,
                "Names": [r.name],
                "Namespaces": {},
                "Networks": r.config.net.networks,
                "Pid": if running { r.pid.unwrap_or(0) } else { 0 },
                "Pod": "",
                "PodName": "",
                "Ports": ps_json_ports(&r.config.net.ports),
                "Size": null,
                "StartedAt": secs(r.started_at),
                "State": r.status.as_str(),
                "Status": with_health(status_text(r, now), health_of(health, r)),
                "Created": secs(Some(r.created)),
            })
        })
        .collect();
    serde_json::to_string_pretty(&list).unwrap_or_else(|_| "[]".into())
}

/// `ps --format json` `Ports`: null without any, else Podman's list of
/// `{host_ip, container_port, host_port, range, protocol}`.
fn ps_json_ports(ports: &[crate::network::PortMapping]) -> serde_json::Value {
    if ports.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::to_value(ports).unwrap_or_default()
    }
}
