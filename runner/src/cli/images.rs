//! `vigil images`: list images in the store.

use clap::Args;

use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct ImagesArgs {
    /// Show all images, including untagged ones
    #[arg(short, long)]
    pub all: bool,

    /// Print only image IDs
    #[arg(short, long)]
    pub quiet: bool,

    /// Do not truncate IDs
    #[arg(long)]
    pub no_trunc: bool,
}

pub fn handle(_ctx: &Context, _args: &ImagesArgs) -> Result<i32, RunnerError> {
    Err(RunnerError::NotImplemented)
}
