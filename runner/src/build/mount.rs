//! A working root file system for COPY/ADD (and `--from` sources): the
//! image's layers under overlay with a fresh upper directory, through the
//! same mount code containers use (`crate::container::rootfs`). Unmounted
//! and removed on drop.

use std::path::{Path, PathBuf};

use crate::container::record::{MountKind, RootfsSource};
use crate::container::rootfs;
use crate::image::ImageRecord;

pub struct WorkMount {
    dir: tempfile::TempDir,
    pub kind: MountKind,
    /// The image had layers (else `merged` is a plain empty directory).
    pub layered: bool,
}

impl WorkMount {
    /// Mounts `image` (none: `FROM scratch`) in a directory under `tmp`.
    pub fn new(image: Option<&ImageRecord>, tmp: &Path) -> Result<WorkMount, String> {
        let dir = tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(tmp)
            .map_err(|e| format!("creating a working directory in {}: {e}", tmp.display()))?;
        let layers = image.map(|i| i.layer_dirs()).unwrap_or_default();
        let layered = !layers.is_empty();
        let kind = rootfs::mount(&RootfsSource::Layers(layers), dir.path(), None)
            .map_err(|e| e.to_string())?;
        Ok(WorkMount { dir, kind, layered })
    }

    /// The merged view.
    pub fn merged(&self) -> PathBuf {
        rootfs::rootfs_path(self.dir.path())
    }

    /// What changed: the upper directory, or for an image without layers
    /// the whole (plain) root.
    pub fn changes(&self) -> Result<PathBuf, String> {
        match (self.layered, self.kind) {
            (false, _) => Ok(self.merged()),
            (true, MountKind::Overlay) => Ok(self.dir.path().join("upper")),
            (true, MountKind::Copy) => Err(
                "overlayfs is not available here; vigil build needs it to find a step's changes"
                    .into(),
            ),
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
