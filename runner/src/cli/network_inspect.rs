//! `vigil network inspect`: the definitions as a JSON array (5-space
//! indentation, the keys of the network files, as Podman prints them).

use clap::Args;

use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct NetworkInspectArgs {
    #[arg(value_name = "NETWORK", required = true)]
    pub networks: Vec<String>,
}

pub fn handle(ctx: &Context, args: &NetworkInspectArgs) -> Result<i32, RunnerError> {
    let env = crate::container::net::env(ctx);
    let defs = args
        .networks
        .iter()
        .map(|n| env.store.get(n))
        .collect::<Result<Vec<_>, _>>()?;
    println!("{}", crate::network::config::to_json_5(&defs));
    Ok(0)
}
