//! `vigil image`: the image command group (`vigil image inspect`).

use clap::{Args, Subcommand};

use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Subcommand)]
pub enum ImageCommand {
    /// Display the configuration of images
    Inspect(ImageInspectArgs),
}

impl ImageCommand {
    /// The command as typed, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            ImageCommand::Inspect(_) => "image inspect",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ImageInspectArgs {
    /// Images to inspect
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

pub fn handle(ctx: &Context, command: &ImageCommand) -> Result<i32, RunnerError> {
    match command {
        ImageCommand::Inspect(args) => inspect(ctx, args),
    }
}

fn inspect(_ctx: &Context, _args: &ImageInspectArgs) -> Result<i32, RunnerError> {
    Err(RunnerError::NotImplemented)
}
