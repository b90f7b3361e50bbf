//! Disk usage of a container's writable layer (`ps --size`, `system df`).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::record::{MountKind, Record};

/// Bytes under `dir` (regular files' sizes and symlinks' lengths), not
/// following symlinks and staying on `dir`'s file system.
pub fn tree_size(dir: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return 0;
    };
    fn walk(dir: &Path, dev: u64) -> u64 {
        let Ok(entries) = fs::read_dir(dir) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| match e.path().symlink_metadata() {
                Ok(m) if m.is_dir() && m.dev() == dev => walk(&e.path(), dev),
                Ok(m) if m.is_dir() => 0,
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    }
    if meta.is_dir() {
        walk(dir, meta.dev())
    } else {
        meta.len()
    }
}

/// The size of what the container changed: its overlay upper directory, or
/// for a copied root file system the whole copy.
pub fn rw_size(rec: &Record, data_dir: &Path) -> u64 {
    if rec.mounted == Some(MountKind::Copy) || data_dir.join("copied").exists() {
        tree_size(&data_dir.join("merged"))
    } else {
        tree_size(&data_dir.join("upper"))
    }
}
