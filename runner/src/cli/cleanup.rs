//! `vigil cleanup` (hidden): the monitor's exit command for a container with
//! a network, like `podman container cleanup`: bring the record up to date,
//! which tears the network down and unmounts once the container exited.

use clap::Args;

use crate::container::Engine;
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct CleanupArgs {
    /// The container (full id)
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub fn handle(ctx: &Context, args: &CleanupArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    // Already removed (`run --rm` in the foreground): nothing to do.
    let Some(id) = engine.store.lookup(&args.container)? else {
        return Ok(0);
    };
    let _lock = engine.store.lock(&id)?;
    engine.refresh(&id)?;
    Ok(0)
}
