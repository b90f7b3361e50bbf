//! Safe access to a container root file system built from an image, for the
//! code that prepares containers (runner-notes §2.9, §2.10 cases 29–31).
//!
//! An image controls its own tree: `/etc/passwd` may be a symlink to a host
//! file or a FIFO, `/dev` or `/proc` may be symlinks to host directories,
//! `WorkingDir` may point anywhere. Everything here resolves paths inside the
//! root (absolute symlinks restart at the root, `..` stops there), reads only
//! regular files with a size cap, and never follows the last component when
//! changing something.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::Path;

use crate::fsroot::sys;
use crate::fsroot::{clean, display, DirMaker, Root};

/// Why a root file system operation failed.
#[derive(Debug)]
pub enum RootfsError {
    Io {
        path: String,
        action: &'static str,
        source: io::Error,
    },
    /// The file exists but is not a regular file (FIFO, device, directory).
    NotRegular(String),
    /// The file is larger than the caller's limit.
    TooLarge { path: String, limit: u64 },
    /// A `WorkingDir` that must not be used.
    BadWorkingDir { dir: String, reason: &'static str },
}

impl fmt::Display for RootfsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootfsError::Io {
                path,
                action,
                source,
            } => write!(f, "{action} {path} in the container root: {source}"),
            RootfsError::NotRegular(p) => {
                write!(f, "{p} in the container root is not a regular file")
            }
            RootfsError::TooLarge { path, limit } => {
                write!(
                    f,
                    "{path} in the container root is larger than {limit} bytes"
                )
            }
            RootfsError::BadWorkingDir { dir, reason } => {
                write!(f, "working directory {dir:?}: {reason}")
            }
        }
    }
}

impl std::error::Error for RootfsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RootfsError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn open_root(root: &Path) -> Result<Root, RootfsError> {
    Root::open(root).map_err(|source| RootfsError::Io {
        path: "/".into(),
        action: "opening",
        source,
    })
}

/// Reads the regular file `path` (e.g. `/etc/passwd`) of the root file
/// system `root`, following symlinks inside the root only. `Ok(None)` if it
/// does not exist. FIFOs, devices and directories are refused without being
/// opened for reading (no hang), and so is anything larger than `limit`
/// (CVE-2024-9676).
pub fn read_file(root: &Path, path: &str, limit: u64) -> Result<Option<Vec<u8>>, RootfsError> {
    let root = open_root(root)?;
    let comps = clean(path.as_bytes());
    let shown = display(&comps);
    let err = |action| {
        let shown = shown.clone();
        move |source| RootfsError::Io {
            path: shown,
            action,
            source,
        }
    };
    let missing =
        |e: &io::Error| matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR));
    // Follow a symlink in the last component too, but in root: resolve the
    // file as a "directory path" up to its parent, then look at the name and
    // re-resolve while it is a symlink.
    let mut target = comps.clone();
    for _ in 0..40 {
        let (dir, name) = match root.resolve_parent(&target, None) {
            Ok(found) => found,
            Err(e) if missing(&e) => return Ok(None),
            Err(e) => return Err(err("resolving")(e)),
        };
        let st = match sys::lstat_opt(dir.as_fd(), name).map_err(err("inspecting"))? {
            Some(st) => st,
            None => return Ok(None),
        };
        match sys::file_type(&st) {
            libc::S_IFLNK => {
                let handle = sys::open_path(dir.as_fd(), name).map_err(err("reading link"))?;
                let link = sys::readlink_fd(handle.as_fd()).map_err(err("reading link"))?;
                // Relative links are relative to the link's directory: resolve
                // them via the directory's in-root path (the parent of target).
                let mut next = if link.first() == Some(&b'/') {
                    Vec::new()
                } else {
                    target[..target.len() - 1].to_vec()
                };
                let mut joined: Vec<u8> = Vec::new();
                for c in &next {
                    joined.extend_from_slice(c);
                    joined.push(b'/');
                }
                joined.extend_from_slice(&link);
                next = clean_keep_dotdot(&joined);
                target = next;
                if target.is_empty() {
                    return Err(RootfsError::NotRegular(shown));
                }
            }
            libc::S_IFREG => {
                if st.st_size as u64 > limit {
                    return Err(RootfsError::TooLarge { path: shown, limit });
                }
                let fd = sys::openat(dir.as_fd(), name, libc::O_RDONLY | libc::O_NONBLOCK, 0)
                    .map_err(err("opening"))?;
                let st = sys::lstat(fd.as_fd(), b"").map_err(err("inspecting"))?;
                if sys::file_type(&st) != libc::S_IFREG {
                    return Err(RootfsError::NotRegular(shown));
                }
                let mut out = Vec::new();
                File::from(fd)
                    .take(limit + 1)
                    .read_to_end(&mut out)
                    .map_err(err("reading"))?;
                if out.len() as u64 > limit {
                    return Err(RootfsError::TooLarge { path: shown, limit });
                }
                return Ok(Some(out));
            }
            _ => return Err(RootfsError::NotRegular(shown)),
        }
    }
    Err(err("resolving")(io::Error::from_raw_os_error(libc::ELOOP)))
}

/// Lexical cleaning where `..` is kept for the in-root walk to apply against
/// real directories (it still never climbs above the root).
fn clean_keep_dotdot(raw: &[u8]) -> Vec<Vec<u8>> {
    raw.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
        .collect()
}

struct PlainMaker;

impl DirMaker for PlainMaker {
    fn make_dir(
        &mut self,
        parent: std::os::fd::BorrowedFd<'_>,
        name: &[u8],
        _path: &[Vec<u8>],
    ) -> io::Result<()> {
        sys::mkdirat(parent, name, 0o700)?;
        let fd = sys::open_dir(parent, name)?;
        sys::fchmod(fd.as_fd(), 0o755)
    }
}

/// Checks an image `WorkingDir` and returns it as an absolute, cleaned
/// container path: a relative one is taken relative to `/` (as podman does),
/// an empty one is `/`, and one under `/proc` is refused (a leaked fd reached
/// through `/proc/self/fd/N` is CVE-2024-21626).
pub fn working_dir(dir: &str) -> Result<String, RootfsError> {
    let comps = clean(dir.as_bytes());
    if comps.first().map(Vec::as_slice) == Some(b"proc".as_slice()) {
        return Err(RootfsError::BadWorkingDir {
            dir: dir.into(),
            reason: "directories under /proc are not allowed",
        });
    }
    Ok(display(&comps))
}

/// Creates directory `path` (and missing parents, mode 0755) inside the root
/// file system, resolving existing symlinks in root; used for `WorkingDir`.
pub fn make_dir_all(root: &Path, path: &str) -> Result<(), RootfsError> {
    let root = open_root(root)?;
    let comps = clean(path.as_bytes());
    root.resolve_dir(&comps, Some(&mut PlainMaker))
        .map(drop)
        .map_err(|source| RootfsError::Io {
            path: display(&comps),
            action: "creating directory",
            source,
        })
}

/// Makes sure `path` (e.g. `/dev`, `/proc`, `/sys`, `/dev/shm`) is a real
/// directory in the root file system: parents are resolved in root, and a
/// symlink or other non-directory in the last component is replaced by an
/// empty directory (mode 0755), so nothing later mounted or written there can
/// be redirected (runc CVE-2026-41579, CVE-2023-28642). Returns whether
/// something was replaced.
pub fn ensure_real_dir(root: &Path, path: &str) -> Result<bool, RootfsError> {
    let root = open_root(root)?;
    let comps = clean(path.as_bytes());
    let shown = display(&comps);
    let err = |action| {
        let shown = shown.clone();
        move |source| RootfsError::Io {
            path: shown,
            action,
            source,
        }
    };
    if comps.is_empty() {
        return Ok(false);
    }
    let (dir, name) = root
        .resolve_parent(&comps, Some(&mut PlainMaker))
        .map_err(err("resolving"))?;
    let existing = sys::lstat_opt(dir.as_fd(), name).map_err(err("inspecting"))?;
    let replaced = match existing {
        Some(st) if sys::file_type(&st) == libc::S_IFDIR => return Ok(false),
        Some(_) => {
            crate::fsroot::remove_all(dir.as_fd(), name).map_err(err("removing"))?;
            true
        }
        None => false,
    };
    PlainMaker
        .make_dir(dir.as_fd(), name, &comps)
        .map_err(err("creating directory"))?;
    Ok(replaced)
}
