//! `vigil stop`: stop containers, with SIGKILL after a timeout.

use clap::Args;

use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    /// Seconds to wait after the stop signal before killing
    /// [default: the container's stop timeout, 10]
    #[arg(short, long, value_name = "SECONDS")]
    pub time: Option<u32>,

    /// Containers to stop
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub fn handle(_ctx: &Context, _args: &StopArgs) -> Result<i32, RunnerError> {
    Err(RunnerError::NotImplemented)
}
