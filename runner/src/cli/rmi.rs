//! `vigil rmi`: remove images from the store.
//!
//! Exit codes as podman: 0, 1 if an image did not exist (and nothing else
//! failed), 2 if containers use an image (without `--force`), 125 for other
//! failures.

use std::time::Duration;

use clap::Args;

use crate::cli::output::{engine_err, print_out};
use crate::container::{Engine, Record, Status};
use crate::context::Context;
use crate::error::{exit_code, RunnerError};
use crate::image::store::ImageRecord;
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

/// Exit code when containers use an image.
pub const IMAGE_IN_USE: i32 = 2;

/// Does removing `query` delete `record` (rather than untag one of its names)?
fn deletes(record: &ImageRecord, query: &str) -> bool {
    let hex = query.strip_prefix("sha256:").unwrap_or(query);
    let by_id = hex.len() >= 3 && record.id.hex().starts_with(hex);
    by_id || record.names.len() <= 1
}

/// Containers created from the image with ID `hex`.
fn users(engine: &Engine<'_>, hex: &str) -> Result<Vec<Record>, RunnerError> {
    Ok(engine
        .store
        .records()?
        .into_iter()
        .filter(|r| r.image_id == hex)
        .collect())
}

/// Removes a container, killing it first if it runs (as `rm -f`).
fn remove_container(engine: &Engine<'_>, mut rec: Record) -> Result<(), RunnerError> {
    if rec.status == Status::Running {
        let _ = engine.runtime()?.kill(&rec.id, libc::SIGKILL, true);
        rec = engine.wait_exit(&rec.id, Some(Duration::from_secs(30)))?;
    }
    let _all = engine.store.lock_all()?;
    let _lock = engine.store.lock(&rec.id)?;
    engine.remove(&mut rec)
}

pub fn handle(ctx: &Context, args: &RmiArgs) -> Result<i32, RunnerError> {
    let store = Store::open(&ctx.paths).map_err(engine_err)?;
    let engine = Engine::new(ctx);
    let mut code = 0;
    for image in &args.images {
        // An image whose layers containers use is only deleted with --force,
        // which removes those containers first (as Podman).
        if let Ok(record) = store.resolve(image) {
            let using = if deletes(&record, image) {
                users(&engine, record.id.hex())?
            } else {
                Vec::new()
            };
            if !using.is_empty() && !args.force {
                let ids: Vec<&str> = using.iter().map(|r| r.short_id()).collect();
                eprintln!(
                    "Error: image used by {}: image is in use by a container: consider listing external containers and force-removing image",
                    ids.join(", ")
                );
                if code != exit_code::ENGINE {
                    code = IMAGE_IN_USE;
                }
                continue;
            }
            for rec in using {
                remove_container(&engine, rec)?;
            }
        }
        match store.remove(image) {
            Ok(removal) => {
                let mut text: String = removal
                    .untagged
                    .iter()
                    .map(|n| format!("Untagged: {n}\n"))
                    .collect();
                if let Some(id) = &removal.deleted {
                    text.push_str(&format!("Deleted: {}\n", id.hex()));
                }
                print_out(&text);
            }
            Err(err) => {
                eprintln!("Error: {err}");
                let this = if matches!(err, StoreError::NotFound(_)) {
                    NO_SUCH_IMAGE
                } else {
                    exit_code::ENGINE
                };
                if code == 0 || this == exit_code::ENGINE {
                    code = this;
                }
            }
        }
    }
    Ok(code)
}
