//! What changed between two plain root file systems (runner-build.md §3.2):
//! the layer of a `build` step on the copy fallback, where there is no
//! overlay upper directory. Entries are compared as buildah's change walker
//! does; the result is written by [`super::layer_tar::write_listed`].

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::layer_tar::Listed;

/// Did the entry change between `lower` and `full`? (Type, mode, owner,
/// link target, device, and for files size and mtime, as buildah's
/// change walker compares them.)
fn changed(lower: &fs::Metadata, full: &fs::Metadata, lpath: &Path, fpath: &Path) -> bool {
    let kind = |m: &fs::Metadata| m.mode() & libc::S_IFMT;
    if kind(lower) != kind(full)
        || lower.mode() != full.mode()
        || lower.uid() != full.uid()
        || lower.gid() != full.gid()
    {
        return true;
    }
    let ft = full.file_type();
    if ft.is_symlink() {
        return fs::read_link(lpath).ok() != fs::read_link(fpath).ok();
    }
    if ft.is_char_device() || ft.is_block_device() {
        return lower.rdev() != full.rdev();
    }
    if ft.is_file() {
        return lower.len() != full.len()
            || lower.mtime() != full.mtime()
            || lower.mtime_nsec() != full.mtime_nsec();
    }
    false
}

/// The changes below directory `rel` (`""`: the root), parents first.
fn scan(lower: &Path, full: &Path, rel: &str, out: &mut Vec<Listed>) -> io::Result<()> {
    let join = |base: &Path| {
        if rel.is_empty() {
            base.to_path_buf()
        } else {
            base.join(rel)
        }
    };
    let (ldir, fdir) = (join(lower), join(full));
    let mut names: Vec<_> = fs::read_dir(&fdir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    let prefix = if rel.is_empty() {
        String::new()
    } else {
        format!("{rel}/")
    };
    // Deleted: in the lower directory, not in the new one.
    let lower_names: Vec<std::ffi::OsString> = match fs::symlink_metadata(&ldir) {
        Ok(m) if m.is_dir() => {
            let mut n: Vec<_> = fs::read_dir(&ldir)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<_>>()?;
            n.sort();
            n
        }
        _ => Vec::new(),
    };
    for name in &lower_names {
        if names.binary_search(name).is_err() {
            out.push(Listed::Whiteout(format!(
                "{prefix}.wh.{}",
                name.to_string_lossy()
            )));
        }
    }
    for name in names {
        let crel = format!("{prefix}{}", name.to_string_lossy());
        let (lpath, fpath) = (ldir.join(&name), fdir.join(&name));
        let fmeta = fs::symlink_metadata(&fpath)?;
        let lmeta = fs::symlink_metadata(&lpath).ok();
        let differs = lmeta
            .as_ref()
            .is_none_or(|l| changed(l, &fmeta, &lpath, &fpath));
        if fmeta.is_dir() {
            let at = out.len();
            if lmeta.as_ref().is_some_and(|l| l.is_dir()) {
                scan(lower, full, &crel, out)?;
            } else {
                // New (or replacing a non-directory): everything below is new.
                scan(Path::new("/nonexistent-lower"), full, &crel, out)?;
            }
            if differs || out.len() > at {
                out.insert(at, Listed::Entry(crel));
            }
        } else if differs {
            out.push(Listed::Entry(crel));
        }
    }
    Ok(())
}

/// What changed from `lower` to `full`, in layer order: deleted entries as
/// whiteouts, changed entries with their parent directories.
pub fn tree_diff(lower: &Path, full: &Path) -> io::Result<Vec<Listed>> {
    let mut changes = Vec::new();
    scan(lower, full, "", &mut changes)?;
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::layer_tar::{write_listed, TreeOptions};
    use std::os::unix::fs::symlink;

    fn names(tar: &[u8]) -> Vec<String> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn tree_diff_finds_adds_changes_and_deletions() {
        let d = tempfile::tempdir().unwrap();
        let (lower, full) = (d.path().join("lower"), d.path().join("full"));
        for root in [&lower, &full] {
            fs::create_dir_all(root.join("etc/sub")).unwrap();
            fs::write(root.join("etc/keep"), "k").unwrap();
            // The same mtime in both trees (the two writes may fall in
            // different clock ticks): unchanged.
            fs::File::options()
                .write(true)
                .open(root.join("etc/keep"))
                .unwrap()
                .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1000))
                .unwrap();
            fs::write(root.join("etc/gone"), "g").unwrap();
            fs::create_dir_all(root.join("old/deep")).unwrap();
            symlink("keep", root.join("etc/link")).unwrap();
        }
        fs::remove_file(full.join("etc/gone")).unwrap();
        fs::remove_dir_all(full.join("old")).unwrap();
        fs::write(full.join("etc/sub/new"), "n").unwrap();
        fs::remove_file(full.join("etc/link")).unwrap();
        symlink("other", full.join("etc/link")).unwrap();
        let list = tree_diff(&lower, &full).unwrap();
        let tar = write_listed(&full, &list, Vec::new(), &TreeOptions::default()).unwrap();
        assert_eq!(
            names(&tar),
            [
                ".wh.old",
                "etc/",
                "etc/.wh.gone",
                "etc/link",
                "etc/sub/",
                "etc/sub/new"
            ]
        );
    }
}
