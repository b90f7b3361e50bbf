//! `vigil start`: start created or stopped containers.

use clap::Args;

use super::attach::AttachOptions;
use crate::container::session::parse_detach_keys;
use crate::container::{control, Engine, Status};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    /// Attach the container's stdout and stderr
    #[arg(short, long)]
    pub attach: bool,

    /// Attach the container's stdin
    #[arg(short, long)]
    pub interactive: bool,

    #[command(flatten)]
    pub options: AttachOptions,

    /// Act on the most recently created container
    #[arg(short, long)]
    pub latest: bool,

    /// Containers to start
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Start each container (printing its name as given), or with `--attach`
/// one container attached, exiting with its status.
pub fn handle(ctx: &Context, args: &StartArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    if args.containers.is_empty() && !args.latest {
        return Err(RunnerError::Engine(
            "start requires at least one argument".into(),
        ));
    }
    let targets = super::latest::targets(&engine, &args.containers, args.latest)?;
    if args.attach || args.interactive {
        let [(name, id)] = targets.as_slice() else {
            return Err(RunnerError::Engine(
                "you cannot start and attach multiple containers at once".into(),
            ));
        };
        let mut rec = {
            let _lock = engine.store.lock(id)?;
            engine.refresh(id)?
        };
        rec.stopped_by_user = false;
        if rec.status == Status::Running {
            return Err(RunnerError::Engine(format!(
                "container {name} is already running"
            )));
        }
        let keys = parse_detach_keys(args.options.detach_keys.as_deref())?;
        return crate::container::session::start_attached(
            &engine,
            &mut rec,
            args.interactive,
            args.options.sig_proxy,
            keys,
        );
    }
    for (name, id) in targets {
        let _lock = engine.store.lock(&id)?;
        let mut rec = engine.refresh(&id)?;
        control::start_locked(&engine, &mut rec)?;
        println!("{name}");
    }
    Ok(0)
}
