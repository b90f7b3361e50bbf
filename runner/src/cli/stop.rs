//! `vigil stop`: stop containers, with SIGKILL after a timeout.

use clap::Args;

use crate::container::store::no_such_container;
use crate::container::{Engine, Status};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    /// Seconds to wait after the stop signal before killing
    /// [default: the container's stop timeout, 10]
    #[arg(short, long, value_name = "SECONDS")]
    pub time: Option<u32>,

    /// Stop all running containers
    #[arg(short, long, conflicts_with = "containers")]
    pub all: bool,

    /// Ignore errors when a named container does not exist
    #[arg(short, long)]
    pub ignore: bool,

    /// Act on the most recently created container
    #[arg(short, long, conflicts_with_all = ["containers", "all"])]
    pub latest: bool,

    /// Containers to stop
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// The stop signal, then SIGKILL (to every process) after the timeout.
/// Stopped through vigil, a container's restart policy does not fire.
pub fn handle(ctx: &Context, args: &StopArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    let names = if args.all {
        engine.store.ids()?
    } else if args.latest {
        vec![super::latest::latest(&engine)?.id]
    } else if args.containers.is_empty() {
        return Err(super::latest::no_names());
    } else {
        args.containers.clone()
    };
    for name in &names {
        let id = match engine.store.lookup(name)? {
            Some(id) => id,
            None if args.ignore => continue,
            None => return Err(no_such_container(name)),
        };
        let rec = engine.refresh_locked(&id)?;
        if matches!(rec.status, Status::Running | Status::Paused) {
            engine.stop(&rec, args.time.unwrap_or(rec.config.stop_timeout))?;
        } else if args.all {
            continue;
        }
        println!("{name}");
    }
    Ok(0)
}
