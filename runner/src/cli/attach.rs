//! `vigil attach`: attach to a running container's stdio through its monitor.

use clap::{ArgAction, Args};

use crate::context::Context;
use crate::error::RunnerError;

/// Options for an attached session, shared by `run`, `start` and `attach`.
#[derive(Debug, Clone, Args)]
pub struct AttachOptions {
    /// Key sequence that detaches from the container [default: ctrl-p,ctrl-q]
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,

    /// Forward signals received by vigil to the container process
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value_t = true,
        default_missing_value = "true"
    )]
    pub sig_proxy: bool,
}

#[derive(Debug, Clone, Args)]
pub struct AttachArgs {
    /// Do not attach stdin
    #[arg(long)]
    pub no_stdin: bool,

    #[command(flatten)]
    pub options: AttachOptions,

    /// Container to attach to
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub fn handle(_ctx: &Context, _args: &AttachArgs) -> Result<i32, RunnerError> {
    Err(RunnerError::NotImplemented)
}
