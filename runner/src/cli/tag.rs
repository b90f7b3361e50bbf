//! `vigil tag`: add names to a local image.

use clap::Args;

use crate::cli::output::engine_err;
use crate::context::Context;
use crate::error::RunnerError;
use crate::image::Store;

#[derive(Debug, Clone, Args)]
pub struct TagArgs {
    /// Image to name
    #[arg(value_name = "IMAGE")]
    pub image: String,

    /// New names for the image
    #[arg(value_name = "TARGET_NAME", required = true)]
    pub names: Vec<String>,
}

pub fn handle(ctx: &Context, args: &TagArgs) -> Result<i32, RunnerError> {
    let store = Store::open(&ctx.paths).map_err(engine_err)?;
    store.tag(&args.image, &args.names).map_err(engine_err)?;
    Ok(0)
}
