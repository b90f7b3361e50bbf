//! `vigil network rm`: remove networks no container uses (`-f`: remove this
//! store's containers on it first).

use std::time::Duration;

use clap::Args;

use crate::container::{Engine, Status};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct NetworkRmArgs {
    /// Remove the containers on the network too
    #[arg(short, long)]
    pub force: bool,

    #[arg(value_name = "NETWORK", required = true)]
    pub networks: Vec<String>,
}

pub fn handle(ctx: &Context, args: &NetworkRmArgs) -> Result<i32, RunnerError> {
    let env = crate::container::net::env(ctx);
    for name in &args.networks {
        let def = env.store.get(name)?;
        remove(ctx, &def.name, args.force)?;
        println!("{}", def.name);
    }
    Ok(0)
}

/// Remove one network (its containers too with `force`).
pub fn remove(ctx: &Context, name: &str, force: bool) -> Result<(), RunnerError> {
    let (ours, elsewhere) = super::network::users(ctx, name)?;
    if elsewhere || (!ours.is_empty() && !force) {
        return Err(RunnerError::Exit(
            2,
            format!(
                "{name:?} has associated containers with it. Use -f to forcibly delete \
                 containers and pods: network is being used"
            ),
        ));
    }
    let engine = Engine::new(ctx);
    for rec in ours {
        let id = rec.id;
        let mut rec = {
            let _lock = engine.store.lock(&id)?;
            engine.refresh(&id)?
        };
        if rec.status == Status::Running {
            let _ = engine.runtime()?.kill(&id, libc::SIGKILL, true);
            rec = engine.wait_exit(&id, Some(Duration::from_secs(30)))?;
        }
        let _all = engine.store.lock_all()?;
        let _lock = engine.store.lock(&id)?;
        engine.remove(&mut rec)?;
    }
    let env = crate::container::net::env(ctx);
    env.store.remove(name)?;
    Ok(())
}
