//! `vigil tag`: add names to a local image.

use clap::Args;

use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct TagArgs {
    /// Image to name
    #[arg(value_name = "IMAGE")]
    pub image: String,

    /// New names for the image
    #[arg(value_name = "TARGET_NAME", required = true)]
    pub names: Vec<String>,
}

pub fn handle(_ctx: &Context, _args: &TagArgs) -> Result<i32, RunnerError> {
    Err(RunnerError::NotImplemented)
}
