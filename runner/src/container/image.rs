//! What a container needs from an image: its run defaults and its layers.
//!
//! This is the seam to the image store (`crate::image::store`): [`resolve`]
//! is the only place that knows how images are looked up. `--rootfs DIR` bypasses
//! the store and uses a directory as the only (read-only) layer.

use std::path::{Path, PathBuf};

use super::record::RootfsSource;
use crate::context::Context;
use crate::error::RunnerError;
use crate::image::store::{Store, StoreError};
use crate::image::unpack::OwnerMap;
use crate::rootless::idmap::IdMapping;
use crate::rootless::ContainerUserNs;

/// Run defaults from the image config (OCI image-spec `config`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageDefaults {
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub stop_signal: Option<String>,
    /// The image's `Healthcheck`, used when `run`/`create` set none.
    pub healthcheck: Option<crate::image::oci::Healthcheck>,
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
    /// The image config's labels (a container starts with them).
    pub labels: std::collections::BTreeMap<String, String>,
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
        return Err(RunnerError::Engine(format!(
            "rootfs {} is not a directory",
            dir.display()
        )));
    }
    Ok(ImageInfo {
        name: abs.to_string_lossy().into_owned(),
        id: String::new(),
        defaults: ImageDefaults::default(),
        rootfs: RootfsSource::Directory(abs),
        labels: Default::default(),
    })
}

fn store_error(e: StoreError) -> RunnerError {
    match e {
        StoreError::NotFound(name) => RunnerError::Engine(format!("{name}: image not known")),
        other => RunnerError::Engine(other.to_string()),
    }
}

/// An image of the store: its config's defaults and its unpacked layers.
fn from_store(ctx: &Context, name: &str) -> Result<ImageInfo, RunnerError> {
    let store = Store::open(&ctx.paths).map_err(store_error)?;
    let record = store.resolve(name).map_err(store_error)?;
    let c = record.container_config();
    Ok(ImageInfo {
        name: record
            .names
            .first()
            .cloned()
            .unwrap_or_else(|| name.to_string()),
        id: record.id.hex().to_string(),
        defaults: ImageDefaults {
            env: c.env.clone().unwrap_or_default(),
            entrypoint: c.entrypoint.clone().unwrap_or_default(),
            cmd: c.cmd.clone().unwrap_or_default(),
            working_dir: c.working_dir.clone().unwrap_or_default(),
            user: c.user.clone().unwrap_or_default(),
            stop_signal: c.stop_signal.clone().filter(|s| !s.is_empty()),
            healthcheck: c.healthcheck.clone(),
        },
        rootfs: RootfsSource::Layers(record.layer_dirs()),
        labels: c.labels.clone().unwrap_or_default(),
    })
}

/// The owner translation for copying an image (owners as container IDs of
/// the namespace vigil runs in) into the root file system of a container
/// with the user namespace `ns`.
fn owner_map(ns: &ContainerUserNs) -> OwnerMap {
    let triples = |m: &[IdMapping]| m.iter().map(|m| (m.container, m.host, m.size)).collect();
    OwnerMap {
        uids: triples(&ns.uid_map),
        gids: triples(&ns.gid_map),
    }
}

/// Copy image `id` (or the `--rootfs` directory `source`) flattened into
/// `target` with owners translated for `userns`: the root file system of a
/// container with a user namespace of its own.
pub fn copy_translated(
    ctx: &Context,
    id: &str,
    source: &RootfsSource,
    userns: &ContainerUserNs,
    target: &Path,
) -> Result<(), String> {
    use crate::image::unpack::{apply_layer_dir, Mode, Options};
    let mut opts = Options::new(Mode::Flat);
    opts.owner_map = Some(owner_map(userns));
    let apply = |dir: &Path| {
        apply_layer_dir(dir, target, &opts)
            .map(drop)
            .map_err(|e| format!("copying {}: {e}", dir.display()))
    };
    match source {
        RootfsSource::Directory(dir) => apply(dir),
        RootfsSource::Layers(_) => {
            let store = Store::open(&ctx.paths).map_err(|e| e.to_string())?;
            let _lock = store.lock_shared().map_err(|e| e.to_string())?;
            let record = store.resolve(id).map_err(|e| e.to_string())?;
            record.layer_dirs().iter().try_for_each(|dir| apply(dir))
        }
    }
}

/// Copy image `id` flattened into `target`: the fallback when overlay fails.
pub fn flatten_image(ctx: &Context, id: &str, target: &Path) -> Result<(), String> {
    let store = Store::open(&ctx.paths).map_err(|e| e.to_string())?;
    let _lock = store.lock_shared().map_err(|e| e.to_string())?;
    let record = store.resolve(id).map_err(|e| e.to_string())?;
    record
        .flatten_into(target)
        .map(drop)
        .map_err(|e| e.to_string())
}
