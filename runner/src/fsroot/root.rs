//! In-root path resolution: every lookup is a walk of single components with
//! `O_NOFOLLOW`, starting from a directory fd of the root. Symlinks met on the
//! way are read and resolved as if the root were `/` (absolute targets restart
//! at the root, `..` never climbs above it), which are the `RESOLVE_IN_ROOT`
//! semantics image layers need. No path string is ever handed to the kernel
//! for resolution, so a symlink can never lead outside the root.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::sys;

/// Symlinks followed in one resolution before giving up (as the kernel: 40).
const MAX_SYMLINKS: usize = 40;

/// Directories a resolution may descend (a bound on fds held and on the
/// recursion depth of every tree walk over what the unpacker creates).
const MAX_DEPTH: usize = 1024;

/// A cleaned path inside the root: components, none empty, `.` or `..`.
pub type InPath = Vec<Vec<u8>>;

/// Cleans a raw tar path lexically: splits on `/`, drops empty and `.`
/// components, and lets `..` remove the previous component but never climb
/// above the root (`../../x` and `/x` both become `x`).
pub fn clean(raw: &[u8]) -> InPath {
    let mut out: InPath = Vec::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            other => out.push(other.to_vec()),
        }
    }
    out
}

/// A printable form of an in-root path, for messages.
pub fn display(path: &[Vec<u8>]) -> String {
    let joined: Vec<String> = path
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    format!("/{}", joined.join("/"))
}

/// How missing directories met during a walk are handled.
pub trait DirMaker {
    /// Creates directory `name` in `parent`; `path` is its in-root path.
    fn make_dir(&mut self, parent: BorrowedFd<'_>, name: &[u8], path: &[Vec<u8>])
        -> io::Result<()>;
}

/// The root directory of an unpack target.
pub struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Opens `path`, which must be a directory (a symlink is refused).
    pub fn open(path: &Path) -> io::Result<Root> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        Ok(Root {
            fd: OwnedFd::from(file),
        })
    }

    /// The root directory fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Resolves `dir` as a directory inside the root, following symlinks in
    /// root. Missing components are created with `maker` if one is given,
    /// otherwise they are an `ENOENT` error. A component that is neither a
    /// directory nor a symlink is `ENOTDIR`.
    pub fn resolve_dir(
        &self,
        dir: &[Vec<u8>],
        mut maker: Option<&mut dyn DirMaker>,
    ) -> io::Result<OwnedFd> {
        // `stack` holds the directories above `current` (for `..`); `lexical`
        // is the in-root path of `current` as reached (symlinks substituted).
        let mut stack: Vec<OwnedFd> = Vec::new();
        let mut lexical: InPath = Vec::new();
        let mut current = sys::open_dir(self.fd(), b".")?;
        let mut pending: VecDeque<Vec<u8>> = dir.iter().cloned().collect();
        let mut links = 0usize;
        while let Some(comp) = pending.pop_front() {
            match comp.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    if let Some(parent) = stack.pop() {
                        current = parent;
                        lexical.pop();
                    }
                    continue;
                }
                _ => {}
            }
            let handle = match sys::open_path(current.as_fd(), &comp) {
                Ok(handle) => handle,
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {
                    match maker.as_deref_mut() {
                        Some(maker) => {
                            let mut path = lexical.clone();
                            path.push(comp.clone());
                            match maker.make_dir(current.as_fd(), &comp, &path) {
                                Ok(()) => {}
                                Err(err) if err.raw_os_error() == Some(libc::EEXIST) => {}
                                Err(err) => return Err(err),
                            }
                            sys::open_path(current.as_fd(), &comp)?
                        }
                        None => return Err(err),
                    }
                }
                Err(err) => return Err(err),
            };
            let st = sys::lstat(handle.as_fd(), b"")?;
            match sys::file_type(&st) {
                libc::S_IFDIR => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
                    }
                    let next = sys::open_dir(current.as_fd(), &comp)?;
                    stack.push(std::mem::replace(&mut current, next));
                    lexical.push(comp);
                }
                libc::S_IFLNK => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    let target = sys::readlink_fd(handle.as_fd())?;
                    if target.first() == Some(&b'/') {
                        stack.clear();
                        lexical.clear();
                        current = sys::open_dir(self.fd(), b".")?;
                    }
                    for part in target.split(|&b| b == b'/').rev() {
                        pending.push_front(part.to_vec());
                    }
                }
                _ => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
            }
        }
        Ok(current)
    }

    /// Resolves the parent of `path` (see [`Root::resolve_dir`]) and returns
    /// it with the last component, which is not resolved. `path` must not be
    /// empty.
    pub fn resolve_parent<'p>(
        &self,
        path: &'p [Vec<u8>],
        maker: Option<&mut dyn DirMaker>,
    ) -> io::Result<(OwnedFd, &'p [u8])> {
        let Some((last, parent)) = path.split_last() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty path"));
        };
        Ok((self.resolve_dir(parent, maker)?, last))
    }
}

/// Removes `name` from `dir`: a directory with everything below it (never
/// following symlinks), anything else with unlink. Missing is not an error.
/// The tree is walked with an explicit stack, so its depth costs heap, not
/// stack frames.
pub fn remove_all(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let Some(top) = open_for_removal(dir, name)? else {
        return Ok(());
    };
    // Open directories being emptied, each with its remaining names and its
    // own name in the one below it on the stack.
    let mut stack: Vec<(OwnedFd, std::vec::IntoIter<Vec<u8>>, Vec<u8>)> =
        vec![(top.0, top.1.into_iter(), name.to_vec())];
    while let Some((fd, names, _)) = stack.last_mut() {
        match names.next() {
            Some(child) => {
                if let Some((sub, list)) = open_for_removal(fd.as_fd(), &child)? {
                    stack.push((sub, list.into_iter(), child));
                }
            }
            None => {
                let Some((_, _, own)) = stack.pop() else {
                    break;
                };
                let parent = stack.last().map_or(dir, |(fd, _, _)| fd.as_fd());
                ignore_enoent(sys::unlinkat(parent, &own, true))?;
            }
        }
    }
    Ok(())
}

/// Unlinks a non-directory (`None`); opens a directory and lists it, making
/// it writable first if needed (a non-root caller could not empty it).
fn open_for_removal(
    dir: BorrowedFd<'_>,
    name: &[u8],
) -> io::Result<Option<(OwnedFd, Vec<Vec<u8>>)>> {
    let Some(st) = sys::lstat_opt(dir, name)? else {
        return Ok(None);
    };
    if sys::file_type(&st) != libc::S_IFDIR {
        ignore_enoent(sys::unlinkat(dir, name, false))?;
        return Ok(None);
    }
    let child = sys::open_dir(dir, name)?;
    if st.st_mode & 0o700 != 0o700 {
        let _ = sys::fchmod(child.as_fd(), 0o700);
    }
    let names = sys::list_dir(child.as_fd())?;
    Ok(Some((child, names)))
}

/// Removes the children of `dir` for which `remove` returns true.
pub fn clear_dir(dir: BorrowedFd<'_>, remove: &mut dyn FnMut(&[u8]) -> bool) -> io::Result<()> {
    for name in sys::list_dir(dir)? {
        if remove(&name) {
            remove_all(dir, &name)?;
        }
    }
    Ok(())
}

fn ignore_enoent(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_never_climbs() {
        assert_eq!(clean(b"../../x"), vec![b"x".to_vec()]);
        assert_eq!(clean(b"/abs/x"), vec![b"abs".to_vec(), b"x".to_vec()]);
        assert_eq!(clean(b"./../x/./y//"), vec![b"x".to_vec(), b"y".to_vec()]);
        assert_eq!(clean(b"a/../../b"), vec![b"b".to_vec()]);
        assert!(clean(b"./").is_empty());
        assert!(clean(b"..").is_empty());
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let sandbox = tempfile::tempdir().unwrap();
        let root_dir = sandbox.path().join("root");
        std::fs::create_dir_all(root_dir.join("real")).unwrap();
        std::os::unix::fs::symlink("/real", root_dir.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../real", root_dir.join("rel")).unwrap();
        std::os::unix::fs::symlink("loop", root_dir.join("loop")).unwrap();
        let root = Root::open(&root_dir).unwrap();
        for link in ["abs", "rel"] {
            let fd = root.resolve_dir(&clean(link.as_bytes()), None).unwrap();
            let st = sys::lstat(fd.as_fd(), b"").unwrap();
            let real = std::fs::metadata(root_dir.join("real")).unwrap();
            assert_eq!(
                st.st_ino,
                std::os::unix::fs::MetadataExt::ino(&real),
                "{link}"
            );
        }
        let err = root.resolve_dir(&clean(b"loop"), None).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
        let err = root.resolve_dir(&clean(b"missing"), None).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }
}
