//! `vigil network prune`: remove the created networks no container uses.

use clap::Args;

use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct NetworkPruneArgs {
    /// Do not ask for confirmation (vigil never asks)
    #[arg(short, long)]
    pub force: bool,
}

pub fn handle(ctx: &Context, _args: &NetworkPruneArgs) -> Result<i32, RunnerError> {
    let env = crate::container::net::env(ctx);
    for def in env.store.created()? {
        let (ours, elsewhere) = super::network::users(ctx, &def.name)?;
        if ours.is_empty() && !elsewhere {
            env.store.remove(&def.name)?;
            println!("{}", def.name);
        }
    }
    Ok(0)
}
