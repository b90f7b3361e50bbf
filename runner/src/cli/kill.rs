//! `vigil kill`: send a signal to containers' main processes.

use clap::Args;

use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct KillArgs {
    /// Signal to send, by name (KILL, SIGTERM) or number
    #[arg(short, long, value_name = "SIGNAL", default_value = "KILL")]
    pub signal: String,

    /// Containers to signal
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub fn handle(_ctx: &Context, _args: &KillArgs) -> Result<i32, RunnerError> {
    Err(RunnerError::NotImplemented)
}
