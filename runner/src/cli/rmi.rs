//! `vigil rmi`: remove images from the store.

use clap::Args;

use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct RmiArgs {
    /// Remove the images even if containers use them, removing those containers
    #[arg(short, long)]
    pub force: bool,

    /// Images to remove
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

pub fn handle(_ctx: &Context, _args: &RmiArgs) -> Result<i32, RunnerError> {
    Err(RunnerError::NotImplemented)
}
