//! `vigil ps`: list containers.

use clap::Args;

use super::filter::{ContainerFilter, FilterSubject};
use super::output::{print_out, table};
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

    /// Do not truncate IDs
    #[arg(long)]
    pub no_trunc: bool,

    /// Output format: `json` (Podman's `ps --format json` array) or `table`
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Filter output based on conditions given (health=starting|healthy|unhealthy)
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
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
    let filter = ContainerFilter::parse(&args.filter)?;
    let mut records = Vec::new();
    let mut healths = HealthByContainer::new();
    for id in engine.store.ids()? {
        let Ok(_lock) = engine.store.lock(&id) else {
            continue;
        };
        if let Ok(rec) = engine.refresh(&id) {
            let health = health::status(&engine, &rec);
            if (args.all || rec.status == Status::Running)
                && filter.matches(&FilterSubject { health: &health })
            {
                healths.insert(rec.id.clone(), health);
                records.push(rec);
            }
        }
    }

    records.sort_by_key(|r| std::cmp::Reverse(r.created));
    let id = |r: &Record| {
        if args.no_trunc {
            r.id.clone()
        } else {
            r.short_id().to_string()
        }
    };
    match args.format.as_deref() {
        None | Some("table") => {}
        Some("json") if !args.quiet => {
            println!("{}", ps_json(&records, now_nanos(), &healths));
            return Ok(0);
        }
        Some("json") => {}
        Some(f) => {
            return Err(RunnerError::Engine(format!(
                "unsupported --format {f:?}: json or table (Go templates are not supported)"
            )))
        }
    }
    if args.quiet {
        for r in &records {
            println!("{}", id(r));
        }
        return Ok(0);
    }
    let now = now_nanos();
    let mut rows = vec![[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec()];
    for r in &records {
        let mut command = r.config.args.join(" ");
        if !args.no_trunc && command.chars().count() > 20 {
            command = command.chars().take(17).collect::<String>() + "...";
        }
        rows.push(vec![
            id(r),
            r.image.clone(),
            command,
            format!("{} ago", human_duration(now - r.created)),
            with_health(status_text(r, now), health_of(&healths, r)),
            String::new(),
            r.name.clone(),
        ]);
    }
    print_out(&table(&rows));
    Ok(0)
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
            let running = r.status == Status::Running;
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
                "Labels": null,
                "Mounts": mounts,
                "Names": [r.name],
                "Namespaces": {},
                "Networks": [],
                "Pid": if running { r.pid.unwrap_or(0) } else { 0 },
                "Pod": "",
                "PodName": "",
                "Ports": null,
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
