//! `vigil ps`: list containers.

use clap::Args;

use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct PsArgs {
    /// Show all containers, not only running ones
    #[arg(short, long)]
    pub all: bool,

    /// Print only container IDs
    #[arg(short, long)]
    pub quiet: bool,

    /// Do not truncate IDs
    #[arg(long)]
    pub no_trunc: bool,
}

pub fn handle(_ctx: &Context, _args: &PsArgs) -> Result<i32, RunnerError> {
    Err(RunnerError::NotImplemented)
}
