//! `vigil network disconnect [-f] NETWORK CONTAINER`: a container leaves a
//! network (torn down at once if it runs). No output, like Podman.

use clap::Args;

use crate::container::{Engine, Status};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct NetworkDisconnectArgs {
    /// Accepted for Podman's sake: disconnecting never waits on anything
    #[arg(short, long)]
    pub force: bool,

    /// The network, then the container
    #[arg(value_name = "NETWORK CONTAINER")]
    pub names: Vec<String>,
}

pub fn handle(ctx: &Context, args: &NetworkDisconnectArgs) -> Result<i32, RunnerError> {
    let [network, container] = args.names.as_slice() else {
        return Err(RunnerError::Engine(format!(
            "accepts 2 arg(s), received {}",
            args.names.len()
        )));
    };
    let engine = Engine::new(ctx);
    let id = engine.store.resolve(container)?;
    let _lock = engine.store.lock(&id)?;
    let mut rec = engine.refresh(&id)?;
    let running = matches!(rec.status, Status::Running | Status::Paused);
    crate::container::net::disconnect(ctx, &mut rec, &engine.store.dir(&id), running, network)?;
    Ok(0)
}
