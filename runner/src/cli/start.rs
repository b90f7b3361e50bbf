//! `vigil start`: start created or stopped containers.

use clap::Args;

use super::attach::AttachOptions;
use crate::container::session::parse_detach_keys;
use crate::container::{Engine, Status};
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

    /// Containers to start
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// Start each container (printing its name as given), or with `--attach`
/// one container attached, exiting with its status.
pub fn handle(ctx: &Context, args: &StartArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    if args.attach || args.interactive {
        let [name] = args.containers.as_slice() else {
            return Err(RunnerError::Engine(
                "you cannot start and attach multiple containers at once".into(),
            ));
        };
        let id = engine.store.resolve(name)?;
        let mut rec = {
            let _lock = engine.store.lock(&id)?;
            engine.refresh(&id)?
        };
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
    for name in &args.containers {
        let id = engine.store.resolve(name)?;
        let _lock = engine.store.lock(&id)?;
        let mut rec = engine.refresh(&id)?;
        if rec.status != Status::Running {
            let auto_remove = rec.auto_remove;
            engine.init(&mut rec, auto_remove)?;
            engine.start(&mut rec)?;
        }
        println!("{name}");
    }
    Ok(0)
}
