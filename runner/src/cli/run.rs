//! `vigil run`: create and start a container, attached unless `--detach`.

use clap::Args;

use super::attach::AttachOptions;
use super::create::CreateArgs;
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Run the container in the background and print its ID
    #[arg(short, long)]
    pub detach: bool,

    #[command(flatten)]
    pub attach: AttachOptions,

    #[command(flatten)]
    pub create: CreateArgs,
}

pub fn handle(_ctx: &Context, _args: &RunArgs) -> Result<i32, RunnerError> {
    Err(RunnerError::NotImplemented)
}
