//! Temporary directories in the store's `tmp/` that a later vigil can tell
//! apart as abandoned.
//!
//! A pull, build, import... works in a directory under `tmp/` and removes
//! it when done, on failure and on SIGINT/SIGTERM. A process killed outright
//! (SIGKILL, a crash, a power cut) cannot, so each such directory holds an
//! `.owner` file that its process keeps locked with `flock` for as long as
//! it uses the directory. The kernel drops the lock when the process dies,
//! so [`sweep_stale`] (run when the store opens) removes exactly the
//! directories whose owner is gone, and never one a running vigil is still
//! writing. A directory without an `.owner` (made by an older vigil, or one
//! still being set up) is left alone, as is one with anything mounted below
//! it (a build killed while its working root was mounted): removing through
//! a mount could reach files that are not the directory's own.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// The lock file's name inside an owned directory.
const OWNER: &str = ".owner";
/// The name it is created under, locked, before it is renamed to `OWNER`
/// (so a sweeper never sees an `.owner` that is not yet locked).
const OWNER_NEW: &str = ".owner.new";

/// A directory under `tmp/`, removed on drop, locked while it lives.
#[derive(Debug)]
pub struct OwnedTempDir {
    // Declared first: dropped (removed) before the lock is released.
    dir: tempfile::TempDir,
    _owner: File,
}

impl OwnedTempDir {
    /// A new directory `<tmp>/<prefix>XXXXXX`, owned by this process.
    pub fn new_in(tmp: &Path, prefix: &str) -> io::Result<OwnedTempDir> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir_in(tmp)?;
        let new = dir.path().join(OWNER_NEW);
        let owner = fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&new)?;
        lock(&owner, true)?;
        fs::rename(&new, dir.path().join(OWNER))?;
        Ok(OwnedTempDir { dir, _owner: owner })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes the directories under `tmp` whose owning process is gone.
/// Best effort: what cannot be examined or removed stays for a later try.
pub fn sweep_stale(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    let mut mounts: Option<Vec<PathBuf>> = None;
    for entry in entries.flatten() {
        // Only real directories (file_type does not follow symlinks).
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = entry.path();
        let Some(owner) = open_owner(&dir) else {
            continue;
        };
        // Locked by a live process: in use.
        if lock(&owner, false).is_err() {
            continue;
        }
        let mounts = mounts.get_or_insert_with(mount_points);
        let real = fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        if mounts.iter().any(|m| m.starts_with(&real)) {
            continue;
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

/// `<dir>/.owner`, opened without following a symlink, if it is a file.
fn open_owner(dir: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(dir.join(OWNER))
        .ok()?;
    file.metadata().ok()?.is_file().then_some(file)
}

/// An exclusive `flock` on `file` (std's `File::lock`, as the store's and
/// the network's locks): waiting for it (`wait`), or failing at once when
/// another process holds it.
fn lock(file: &File, wait: bool) -> io::Result<()> {
    if !wait {
        return file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => io::ErrorKind::WouldBlock.into(),
            std::fs::TryLockError::Error(e) => e,
        });
    }
    loop {
        match file.lock() {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Every mount point of this mount namespace (`/proc/self/mountinfo`,
/// field 5, with its octal escapes undone). Unreadable: none known.
fn mount_points() -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(std::ffi::OsString::from_vec(unescape(field))))
        .collect()
}

/// Undoes mountinfo's `\ooo` escapes (space, tab, newline, backslash).
fn unescape(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let (b'\\', Some(d)) = (b[i], octal) {
            let n = d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0'));
            // Escapes of bytes: at most \377.
            out.push(n as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_directory_stays_and_an_abandoned_one_goes() {
        let tmp = tempfile::tempdir().unwrap();
        let live = OwnedTempDir::new_in(tmp.path(), "pull-").unwrap();
        fs::write(live.path().join("layer-0"), b"x").unwrap();
        assert!(live.path().join(OWNER).is_file());
        assert!(!live.path().join(OWNER_NEW).exists());

        // Abandoned: an `.owner` nobody holds (its process died).
        let dead = tmp.path().join("pull-dead");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join(OWNER), b"").unwrap();
        fs::write(dead.join("layer-0"), b"x").unwrap();
        // Unknown: no `.owner` at all.
        let unknown = tmp.path().join("import-old");
        fs::create_dir(&unknown).unwrap();

        sweep_stale(tmp.path());
        assert!(
            live.path().join("layer-0").is_file(),
            "a live directory was removed"
        );
        assert!(!dead.exists(), "an abandoned directory stayed");
        assert!(unknown.is_dir(), "a directory without an owner was removed");

        let path = live.path().to_path_buf();
        drop(live);
        assert!(!path.exists(), "dropping removes the directory");
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/a\040b\134c"), b"/a b\\c".to_vec());
        assert_eq!(unescape(r"/x\04"), b"/x\\04".to_vec());
    }
}
