//! `vigil rm`: remove containers.

use clap::Args;

use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    /// Remove running containers too, killing them first
    #[arg(short, long)]
    pub force: bool,

    /// Containers to remove
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub fn handle(_ctx: &Context, _args: &RmArgs) -> Result<i32, RunnerError> {
    Err(RunnerError::NotImplemented)
}
