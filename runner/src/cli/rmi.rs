//! `vigil rmi`: remove images from the store.
//!
//! Exit codes as podman: 0, 1 if an image did not exist (and nothing else
//! failed), 125 for other failures.

use clap::Args;

use crate::cli::load::{engine_err, print_out};
use crate::context::Context;
use crate::error::{exit_code, RunnerError};
use crate::image::{Store, StoreError};

#[derive(Debug, Clone, Args)]
pub struct RmiArgs {
    /// Remove the images even if containers use them, removing those containers
    #[arg(short, long)]
    pub force: bool,

    /// Images to remove
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

/// Exit code when an image does not exist.
pub const NO_SUCH_IMAGE: i32 = 1;

pub fn handle(ctx: &Context, args: &RmiArgs) -> Result<i32, RunnerError> {
    let store = Store::open(&ctx.paths).map_err(engine_err)?;
    let mut code = 0;
    for image in &args.images {
        match store.remove(image) {
            Ok(removal) => {
                let mut text: String = removal.untagged.iter().map(|n| format!("Untagged: {n}\n")).collect();
                if let Some(id) = &removal.deleted {
                    text.push_str(&format!("Deleted: {}\n", id.hex()));
                }
                print_out(&text);
            }
            Err(err) => {
                eprintln!("Error: {err}");
                let this = if matches!(err, StoreError::NotFound(_)) { NO_SUCH_IMAGE } else { exit_code::ENGINE };
                if code == 0 || this == exit_code::ENGINE {
                    code = this;
                }
            }
        }
    }
    Ok(code)
}
