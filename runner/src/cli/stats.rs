//! `vigil stats`: CPU, memory, network, block I/O and pids of containers,
//! once (`--no-stream`) or every `--interval` seconds.

use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::output::print_out;
use super::template::{default_header, tabwrite, Output};
use super::units::{go_duration, human_size4};
use crate::container::record::now_nanos;
use crate::container::stats::{sample, Sample};
use crate::container::{Engine, Record, Status};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct StatsArgs {
    /// Show every container, not only running ones
    #[arg(short, long)]
    pub all: bool,

    /// Print one sample and exit
    #[arg(long)]
    pub no_stream: bool,

    /// Do not truncate IDs
    #[arg(long)]
    pub no_trunc: bool,

    /// Output: `json` or a Go template (`{{.Name}} {{.MemUsage}}`)
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Seconds between samples when streaming
    #[arg(short, long, value_name = "SECONDS", default_value_t = 5)]
    pub interval: u64,

    /// Act on the most recently created container
    #[arg(short, long)]
    pub latest: bool,

    /// Containers [default: the running ones]
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

fn binary(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    let t = format!("{v:.3}");
    let t = t.trim_end_matches('0').trim_end_matches('.');
    format!("{t}{}", UNITS[u])
}

/// One row's fields, as Podman's templates and JSON name them.
fn fields(rec: &Record, s: &Sample, now: i128, no_trunc: bool) -> serde_json::Value {
    let up = rec
        .started_at
        .filter(|_| matches!(rec.status, Status::Running | Status::Paused))
        .map_or(0, |t| (now - t).max(0) as u128);
    // No earlier sample: the average since start (Podman's first sample).
    let cpu = if up > 0 {
        s.cpu_nanos as f64 / up as f64 * 100.0
    } else {
        0.0
    };
    let mem_pct = if s.mem_limit > 0 {
        s.mem_usage as f64 / s.mem_limit as f64 * 100.0
    } else {
        0.0
    };
    let id = if no_trunc {
        rec.id.clone()
    } else {
        rec.short_id().to_string()
    };
    json!({
        "ID": id,
        "id": id,
        "Name": rec.name,
        "name": rec.name,
        "CPUPerc": format!("{cpu:.2}%"),
        "cpu_percent": format!("{cpu:.2}%"),
        "CPU": cpu,
        "AVGCPU": format!("{cpu:.2}%"),
        "avg_cpu": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", human_size4(s.mem_usage), human_size4(s.mem_limit)),
        "mem_usage": format!("{} / {}", human_size4(s.mem_usage), human_size4(s.mem_limit)),
        "MemUsageBytes": format!("{} / {}", binary(s.mem_usage), binary(s.mem_limit)),
        "MemPerc": format!("{mem_pct:.2}%"),
        "mem_percent": format!("{mem_pct:.2}%"),
        "NetIO": format!("{} / {}", human_size4(s.net_in), human_size4(s.net_out)),
        "net_io": format!("{} / {}", human_size4(s.net_in), human_size4(s.net_out)),
        "BlockIO": format!("{} / {}", human_size4(s.block_read), human_size4(s.block_write)),
        "block_io": format!("{} / {}", human_size4(s.block_read), human_size4(s.block_write)),
        "PIDs": s.pids.to_string(),
        "pids": s.pids.to_string(),
        "CPUTime": go_duration(u128::from(s.cpu_nanos)),
        "cpu_time": go_duration(u128::from(s.cpu_nanos)),
        "UpTime": go_duration(up),
    })
}

const COLUMNS: [(&str, &str); 10] = [
    ("ID", "ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET IO"),
    ("BlockIO", "BLOCK IO"),
    ("PIDs", "PIDS"),
    ("CPUTime", "CPU TIME"),
    ("AVGCPU", "AVG CPU %"),
];

fn render(rows: &[serde_json::Value], output: &Output) -> Result<String, RunnerError> {
    match output {
        Output::Json => {
            let keys = [
                "id",
                "name",
                "cpu_time",
                "cpu_percent",
                "avg_cpu",
                "mem_usage",
                "mem_percent",
                "net_io",
                "block_io",
                "pids",
            ];
            let list: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    keys.iter()
                        .map(|k| (k.to_string(), r[*k].clone()))
                        .collect::<serde_json::Map<_, _>>()
                        .into()
                })
                .collect();
            Ok(format!(
                "{}\n",
                serde_json::to_string_pretty(&list).unwrap_or_default()
            ))
        }
        Output::Template(f) => {
            let header = |field: &str| {
                COLUMNS
                    .iter()
                    .find(|(k, _)| *k == field)
                    .map_or_else(|| default_header(field), |(_, h)| h.to_string())
            };
            f.render_all(rows, &header)
        }
        Output::Default => {
            let mut lines = vec![COLUMNS
                .iter()
                .map(|(_, h)| *h)
                .collect::<Vec<_>>()
                .join("\t")];
            for r in rows {
                lines.push(
                    COLUMNS
                        .iter()
                        .map(|(k, _)| r[*k].as_str().unwrap_or("").to_string())
                        .collect::<Vec<_>>()
                        .join("\t"),
                );
            }
            Ok(tabwrite(&lines, 12))
        }
    }
}

pub fn handle(ctx: &Context, args: &StatsArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    let output = Output::parse("stats", args.format.as_deref())?;
    let ids: Vec<String> = if args.latest {
        vec![super::latest::latest(&engine)?.id]
    } else if !args.containers.is_empty() {
        args.containers
            .iter()
            .map(|n| {
                engine.store.resolve(n).map_err(|e| {
                    RunnerError::Engine(format!(
                        "unable to get list of containers: unable to look up container {n}: {e}"
                    ))
                })
            })
            .collect::<Result<_, _>>()?
    } else {
        let mut all = Vec::new();
        for id in engine.store.ids()? {
            let rec = engine.refresh_locked(&id)?;
            if args.all || rec.status == Status::Running {
                all.push((rec.created, id));
            }
        }
        all.sort();
        all.into_iter().map(|(_, id)| id).collect()
    };
    loop {
        let now = now_nanos();
        let mut rows = Vec::new();
        for id in &ids {
            let rec = engine.refresh_locked(id)?;
            rows.push(fields(&rec, &sample(&rec), now, args.no_trunc));
        }
        let text = render(&rows, &output)?;
        if args.no_stream {
            print_out(&text);
            return Ok(0);
        }
        // Clear the screen and redraw, like Podman.
        print_out(&format!("\x1b[2J\x1b[H{text}"));
        std::thread::sleep(Duration::from_secs(args.interval.max(1)));
    }
}
