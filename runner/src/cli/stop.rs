//! `vigil stop`: stop containers, with SIGKILL after a timeout.

use clap::Args;

use crate::container::{control, Engine, Status};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    /// Seconds to wait after the stop signal before killing
    /// [default: the container's stop timeout, 10]
    #[arg(short, long, value_name = "SECONDS")]
    pub time: Option<u32>,

    /// Act on the most recently created container
    #[arg(short, long)]
    pub latest: bool,

    /// Stop every running container
    #[arg(short, long)]
    pub all: bool,

    /// Containers to stop
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// The stop signal, then SIGKILL (to every process) after the timeout.
pub fn handle(ctx: &Context, args: &StopArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    let targets = if args.all {
        running(&engine)?
    } else {
        super::latest::targets(&engine, &args.containers, args.latest)?
    };
    for (name, id) in targets {
        control::stop(&engine, &id, args.time)?;
        println!("{name}");
    }
    Ok(0)
}

/// Running and paused containers, by full id (for `--all`).
pub fn running(engine: &Engine<'_>) -> Result<Vec<(String, String)>, RunnerError> {
    let mut out = Vec::new();
    for id in engine.store.ids()? {
        let rec = engine.refresh_locked(&id)?;
        if matches!(rec.status, Status::Running | Status::Paused) {
            out.push((rec.id.clone(), rec.id));
        }
    }
    Ok(out)
}
