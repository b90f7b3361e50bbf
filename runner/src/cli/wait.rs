//! `vigil wait`: wait for containers to exit and print their exit codes.

use clap::Args;

use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// Containers to wait for
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub fn handle(_ctx: &Context, _args: &WaitArgs) -> Result<i32, RunnerError> {
    Err(RunnerError::NotImplemented)
}
