//! `vigil unpause`: unpause the processes in paused containers (`runtime resume`).

use clap::Args;

use crate::container::{control, Engine, Status};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct UnpauseArgs {
    /// Unpause every paused container
    #[arg(short, long)]
    pub all: bool,

    /// Act on the most recently created container
    #[arg(short, long)]
    pub latest: bool,

    /// Containers to unpause
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Unpause each container, printing it as typed (full id for --all/--latest).
pub fn handle(ctx: &Context, args: &UnpauseArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    let all = args.all.then_some(Status::Paused);
    let targets = super::latest::targets_or_all_in(&engine, &args.containers, args.latest, all)?;
    for (name, id) in targets {
        control::unpause(&engine, &id)?;
        println!("{name}");
    }
    Ok(0)
}
