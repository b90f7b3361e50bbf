//! `vigil restart`: stop (if running) and start containers again.

use clap::Args;

use crate::container::{control, Engine, Status};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct RestartArgs {
    /// Seconds to wait after the stop signal before killing
    /// [default: the container's stop timeout, 10]
    #[arg(short, long, value_name = "SECONDS")]
    pub time: Option<u32>,

    /// Restart every container
    #[arg(short, long)]
    pub all: bool,

    /// With --all: only the running ones
    #[arg(long)]
    pub running: bool,

    /// Act on the most recently created container
    #[arg(short, long)]
    pub latest: bool,

    /// Containers to restart
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Restart each container, printing it as typed (full id for --all/--latest).
pub fn handle(ctx: &Context, args: &RestartArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    let targets = if args.all {
        let mut all = Vec::new();
        for id in engine.store.ids()? {
            let rec = engine.refresh_locked(&id)?;
            if !args.running || rec.status == Status::Running {
                all.push((rec.id.clone(), rec.id));
            }
        }
        all
    } else {
        super::latest::targets(&engine, &args.containers, args.latest)?
    };
    for (name, id) in targets {
        control::restart(&engine, &id, args.time)?;
        println!("{name}");
    }
    Ok(0)
}
