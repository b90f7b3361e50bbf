//! `vigil rm`: remove containers.

use clap::Args;

use crate::container::{Engine, Status};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    /// Remove running containers too, killing them first
    #[arg(short, long)]
    pub force: bool,

    /// With --force, seconds to wait for the stop signal before killing
    /// [default: kill at once]
    #[arg(short, long, value_name = "SECONDS")]
    pub time: Option<u32>,

    /// Remove all containers
    #[arg(short, long, conflicts_with = "containers")]
    pub all: bool,

    /// Ignore errors when a named container does not exist
    #[arg(short, long)]
    pub ignore: bool,

    /// Act on the most recently created container
    #[arg(short, long, conflicts_with_all = ["containers", "all"])]
    pub latest: bool,

    /// Containers to remove
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Remove each container (killing it first with `--force`), printing its id.
/// Exit codes as Podman: 1 if a container does not exist, 2 if one is running.
pub fn handle(ctx: &Context, args: &RmArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    let mut code = 0;
    let names = if args.all {
        engine.store.ids()?
    } else if args.latest {
        match super::latest::latest(&engine) {
            Ok(rec) => vec![rec.id],
            Err(e) => {
                eprintln!("vigil rm: {e}");
                return Ok(1);
            }
        }
    } else if args.containers.is_empty() {
        return Err(super::latest::no_names());
    } else {
        args.containers.clone()
    };
    for name in &names {
        let Some(id) = engine.store.lookup(name)? else {
            // Like Podman, --force (or --ignore) takes a missing one as removed.
            if args.force || args.ignore {
                continue;
            }
            eprintln!(
                "vigil rm: {}",
                crate::container::store::no_such_container(name)
            );
            code = code.max(1);
            continue;
        };
        let mut rec = {
            let _lock = engine.store.lock(&id)?;
            engine.refresh(&id)?
        };
        if matches!(rec.status, Status::Running | Status::Paused) {
            if !args.force {
                eprintln!(
                    "vigil rm: cannot remove container {id} as it is {} - running or paused containers \
                     cannot be removed without force: container state improper",
                    rec.status.as_str()
                );
                code = 2;
                continue;
            }
            // Stopped through vigil: no restart policy fires.
            rec = engine.stop(&rec, args.time.unwrap_or(0))?;
        }
        let _all = engine.store.lock_all()?;
        let _lock = engine.store.lock(&id)?;
        engine.remove(&mut rec)?;
        println!("{id}");
    }
    Ok(code)
}
