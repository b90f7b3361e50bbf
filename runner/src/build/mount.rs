//! A working root file system for COPY/ADD (and `--from` sources): the
//! image's layers under overlay with a fresh upper directory, through the
//! same mount code containers use (`crate::container::rootfs`). Unmounted
//! and removed on drop.

use std::path::{Path, PathBuf};

use crate::container::record::{MountKind, RootfsSource};
use crate::container::rootfs;
use crate::image::compose::{write_layer_file, LayerFile};
use crate::image::layer_tar::{write_listed, write_tree, TreeOptions};
use crate::image::tmpdir::OwnedTempDir;
use crate::image::tree_diff::tree_diff;
use crate::image::{ImageRecord, StoreError};

/// What a step changed.
pub enum Changes {
    /// An overlay upper directory (or, on an image without layers, the
    /// whole root).
    Upper(PathBuf),
    /// The copy fallback: the new root file system and a flat copy of the
    /// image it started from, to compare.
    Tree { lower: OwnedTempDir, full: PathBuf },
}

impl Changes {
    /// Writes the layer tar of the changes to `path`; `mtime`, when given,
    /// is every entry's modification time (`--timestamp`).
    pub fn write(&self, path: &Path, mtime: Option<u64>) -> Result<LayerFile, StoreError> {
        let opts = TreeOptions {
            layer: true,
            mtime,
            ..Default::default()
        };
        write_layer_file(path, |w| match self {
            Changes::Upper(dir) => write_tree(dir, w, &opts).map(drop),
            Changes::Tree { lower, full } => {
                let list = tree_diff(lower.path(), full)?;
                write_listed(full, &list, w, &opts).map(drop)
            }
        })
    }
}

/// A flat copy of `image` in a new directory under `tmp` (the lower side
/// of a tree diff).
pub fn flattened(image: Option<&ImageRecord>, tmp: &Path) -> Result<OwnedTempDir, String> {
    let dir = OwnedTempDir::new_in(tmp, "lower-")
        .map_err(|e| format!("creating a directory in {}: {e}", tmp.display()))?;
    if let Some(image) = image {
        image.flatten_into(dir.path()).map_err(|e| e.to_string())?;
    }
    Ok(dir)
}

pub struct WorkMount {
    dir: OwnedTempDir,
    image: Option<ImageRecord>,
    tmp: PathBuf,
    pub kind: MountKind,
    /// The image had layers (else `merged` is a plain empty directory).
    pub layered: bool,
}

impl WorkMount {
    /// Mounts `image` (none: `FROM scratch`) in a directory under `tmp`.
    pub fn new(image: Option<&ImageRecord>, tmp: &Path) -> Result<WorkMount, String> {
        let dir = OwnedTempDir::new_in(tmp, "build-")
            .map_err(|e| format!("creating a working directory in {}: {e}", tmp.display()))?;
        let layers = image.map(|i| i.layer_dirs()).unwrap_or_default();
        let layered = !layers.is_empty();
        // Without overlay: a flat copy with whiteouts and opaque
        // directories applied (the unpacker's flat mode).
        let flatten = |target: &Path| match image {
            Some(i) => i.flatten_into(target).map(drop).map_err(|e| e.to_string()),
            None => Ok(()),
        };
        let kind = rootfs::mount(&RootfsSource::Layers(layers), dir.path(), Some(&flatten))
            .map_err(|e| e.to_string())?;
        Ok(WorkMount {
            dir,
            image: image.cloned(),
            tmp: tmp.to_path_buf(),
            kind,
            layered,
        })
    }

    /// The merged view.
    pub fn merged(&self) -> PathBuf {
        rootfs::rootfs_path(self.dir.path())
    }

    /// What changed: the upper directory, or for an image without layers
    /// the whole (plain) root.
    pub fn changes(&self) -> Result<Changes, String> {
        match (self.layered, self.kind) {
            (false, _) => Ok(Changes::Upper(self.merged())),
            (true, MountKind::Overlay) => Ok(Changes::Upper(self.dir.path().join("upper"))),
            (true, MountKind::Copy) => Ok(Changes::Tree {
                lower: flattened(self.image.as_ref(), &self.tmp)?,
                full: self.merged(),
            }),
        }
    }

    /// Unmounts (the upper directory stays readable).
    pub fn unmount(&self) {
        let _ = rootfs::unmount(self.dir.path());
    }
}

impl Drop for WorkMount {
    fn drop(&mut self) {
        self.unmount();
    }
}
