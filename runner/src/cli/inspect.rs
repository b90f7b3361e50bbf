//! `vigil inspect`: print the configuration of containers or images as JSON.

use clap::{Args, ValueEnum};

use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// What the names refer to
    #[arg(long = "type", value_name = "TYPE", value_enum, default_value_t = InspectType::All)]
    pub kind: InspectType,

    /// Containers or images to inspect
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

/// Which objects `inspect` looks names up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InspectType {
    Container,
    Image,
    /// Containers first, then images
    All,
}

pub fn handle(_ctx: &Context, _args: &InspectArgs) -> Result<i32, RunnerError> {
    Err(RunnerError::NotImplemented)
}
