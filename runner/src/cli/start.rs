//! `vigil start`: start created or stopped containers.

use clap::Args;

use super::attach::AttachOptions;
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

pub fn handle(_ctx: &Context, _args: &StartArgs) -> Result<i32, RunnerError> {
    Err(RunnerError::NotImplemented)
}
