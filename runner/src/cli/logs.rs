//! `vigil logs`: print a container's log (k8s-file driver).

use clap::Args;

use std::io::Write;

use vigil::client::{LogReadOptions, LogReader};
use vigil::proto::attach::Stream;

use crate::container::record::now_nanos;
use crate::container::{Engine, Record};
use crate::context::Context;
use crate::error::RunnerError;

use super::timespec::parse_time;

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Keep printing new output as it is logged
    #[arg(short, long)]
    pub follow: bool,

    /// Print only the last N lines; -1 prints all
    #[arg(long, value_name = "N", default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,

    /// Print only lines logged since this time (RFC 3339, Unix time or a duration such as 10m)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Prefix each line with its timestamp
    #[arg(short, long)]
    pub timestamps: bool,

    /// Act on the most recently created container
    #[arg(short, long)]
    pub latest: bool,

    /// Containers whose logs to print
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

impl LogsArgs {
    /// How many trailing lines to print; `None` means all (any negative `--tail`).
    pub fn tail_lines(&self) -> Option<u64> {
        u64::try_from(self.tail).ok()
    }
}

fn print_line(line: &vigil::logfmt::k8s::LogLine, timestamps: bool) {
    let mut buf = Vec::with_capacity(line.bytes.len() + 40);
    if timestamps {
        buf.extend_from_slice(line.timestamp.as_bytes());
        buf.push(b' ');
    }
    buf.extend_from_slice(&line.bytes);
    let _ = match line.stream {
        Stream::Stdout => std::io::stdout()
            .lock()
            .write_all(&buf)
            .and_then(|_| std::io::stdout().flush()),
        Stream::Stderr => std::io::stderr().lock().write_all(&buf),
    };
}

fn log_path(rec: &Record) -> Result<std::path::PathBuf, RunnerError> {
    match (&rec.log.path, rec.log.driver.as_str()) {
        (Some(p), "k8s-file") => Ok(p.clone()),
        (_, driver) => Err(RunnerError::Engine(format!(
            "this container is using the {driver:?} log driver, cannot read logs: only k8s-file logs can be read"
        ))),
    }
}

/// Print each container's log; `--follow` keeps going until the container exits.
pub fn handle(ctx: &Context, args: &LogsArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    let since = args
        .since
        .as_deref()
        .map(|s| {
            parse_time(s, now_nanos()).ok_or_else(|| {
                RunnerError::Engine(format!(
                    "invalid --since {s:?}: use RFC 3339, Unix time or a duration such as 10m"
                ))
            })
        })
        .transpose()?;
    if args.containers.is_empty() && !args.latest {
        return Err(RunnerError::Engine(
            "specify at least one container name or ID to log".into(),
        ));
    }
    for (_, id) in super::latest::targets(&engine, &args.containers, args.latest)? {
        let rec = {
            let _lock = engine.store.lock(&id)?;
            engine.refresh(&id)?
        };
        let path = log_path(&rec)?;
        let tail = args
            .tail_lines()
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        let opts = LogReadOptions {
            tail,
            since,
            follow: args.follow,
            ..Default::default()
        };
        let mut reader =
            LogReader::open(&path, opts).map_err(|e| RunnerError::Engine(e.to_string()))?;
        if args.follow {
            let exit_file = engine.files(&id).exit_dir().join(&id);
            let (monitor, monitor_start) = (rec.monitor_pid, rec.monitor_start);
            reader.set_stop(move || {
                // A recycled pid is not our monitor (start time recorded at spawn).
                let monitor_alive = monitor
                    .is_some_and(|p| crate::container::runtime::same_process(p, monitor_start));
                exit_file.exists() || !monitor_alive
            });
        }
        while let Some(line) = reader
            .next_line()
            .map_err(|e| RunnerError::Engine(e.to_string()))?
        {
            print_line(&line, args.timestamps);
        }
    }
    Ok(0)
}
