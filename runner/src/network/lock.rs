//! An exclusive `flock` on a file, held until dropped: serializes IPAM and
//! netavark calls across concurrent vigil processes (Podman's network lock).

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::error::NetworkError;

pub struct FileLock {
    _file: File,
}

impl FileLock {
    pub fn exclusive(path: &Path) -> Result<FileLock, NetworkError> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)
                .map_err(|e| NetworkError::io(format!("creating {}", dir.display()), e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| NetworkError::io(format!("opening lock {}", path.display()), e))?;
        loop {
            // flock(LOCK_EX).
            match file.lock() {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(NetworkError::io(format!("locking {}", path.display()), e)),
            }
        }
        // The lock is released when the file is closed.
        Ok(FileLock { _file: file })
    }
}
