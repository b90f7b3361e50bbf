//! `vigil pause`: pause all the processes in containers (`runtime pause`).

use clap::Args;

use crate::container::{control, Engine, Status};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct PauseArgs {
    /// Pause every running container
    #[arg(short, long)]
    pub all: bool,

    /// Act on the most recently created container
    #[arg(short, long)]
    pub latest: bool,

    /// Containers to pause
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Pause each container, printing it as typed (full id for --all/--latest).
pub fn handle(ctx: &Context, args: &PauseArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    let all = args.all.then_some(Status::Running);
    let targets = super::latest::targets_or_all_in(&engine, &args.containers, args.latest, all)?;
    for (name, id) in targets {
        control::pause(&engine, &id)?;
        println!("{name}");
    }
    Ok(0)
}
