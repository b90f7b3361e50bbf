//! What a container needs from an image: its run defaults and its layers.
//!
//! This is the seam to the image store (`crate::image`): [`resolve`] is the
//! only place that knows how images are looked up. `--rootfs DIR` bypasses
//! the store and uses a directory as the only (read-only) layer.

use std::path::{Path, PathBuf};

use super::record::RootfsSource;
use crate::context::Context;
use crate::error::RunnerError;

/// Run defaults from the image config (OCI image-spec `config`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageDefaults {
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub stop_signal: Option<String>,
}

/// A resolved image.
#[derive(Clone, Debug)]
pub struct ImageInfo {
    /// As named by the user (or the rootfs path).
    pub name: String,
    /// The image id (config digest hex), empty for a rootfs directory.
    pub id: String,
    pub defaults: ImageDefaults,
    pub rootfs: RootfsSource,
}

/// Resolve `name`: an image in the store, or with `rootfs_dir` a directory.
pub fn resolve(ctx: &Context, name: &str, rootfs_dir: bool) -> Result<ImageInfo, RunnerError> {
    if rootfs_dir {
        return from_directory(Path::new(name));
    }
    from_store(ctx, name)
}

/// `--rootfs DIR`: the directory is the only layer; defaults are empty.
pub fn from_directory(dir: &Path) -> Result<ImageInfo, RunnerError> {
    let abs: PathBuf = std::fs::canonicalize(dir)
        .map_err(|e| RunnerError::io(format!("rootfs {}", dir.display()), e))?;
    if !abs.is_dir() {
        return Err(RunnerError::Engine(format!("rootfs {} is not a directory", dir.display())));
    }
    Ok(ImageInfo {
        name: abs.to_string_lossy().into_owned(),
        id: String::new(),
        defaults: ImageDefaults::default(),
        rootfs: RootfsSource::Directory(abs),
    })
}

/// Images from the store. The store API (`Store::open(paths)`,
/// `Store::resolve(name) -> ImageRecord` with `config` and `layer_dirs()`)
/// plugs in here once it lands.
fn from_store(_ctx: &Context, name: &str) -> Result<ImageInfo, RunnerError> {
    Err(RunnerError::Engine(format!(
        "{name}: image not known (the image store is not available in this build; use --rootfs DIR)"
    )))
}
