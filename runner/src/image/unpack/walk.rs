//! Replays an unpacked overlay-form layer directory as a stream of entries,
//! so it can be applied in flat mode (the copy fallback when overlayfs is not
//! available): 0/0 character devices become whiteouts, opaque directories
//! become opaque markers, and inodes seen twice become hard links.
//!
//! The walk is fd-based and never follows symlinks inside the layer.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::apply::Applier;
use super::entry::{Entry, Kind, Meta};
use super::UnpackError;
use crate::fsroot::sys;
use crate::fsroot::{display, InPath, Root};

const OPAQUE_KEYS: [&[u8]; 2] = [b"trusted.overlay.opaque", b"user.overlay.opaque"];

struct Walker<'a, 'o> {
    applier: &'a mut Applier<'o>,
    /// (dev, ino) of files with several links → first path seen.
    links: HashMap<(u64, u64), InPath>,
}

fn walk_err(path: &[Vec<u8>]) -> impl FnOnce(io::Error) -> UnpackError + '_ {
    move |source| UnpackError::Io {
        name: display(path),
        action: "reading layer directory at",
        source,
    }
}

fn meta_of(st: &libc::stat, xattrs: Vec<(Vec<u8>, Vec<u8>)>) -> Meta {
    Meta {
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        mtime: st.st_mtime,
        mtime_nsec: st.st_mtime_nsec as u32,
        xattrs: xattrs
            .into_iter()
            .filter(|(k, _)| {
                !k.starts_with(b"trusted.overlay.") && !k.starts_with(b"user.overlay.")
            })
            .collect(),
    }
}

impl Walker<'_, '_> {
    fn emit(
        &mut self,
        path: InPath,
        kind: Kind,
        meta: Meta,
        data: &mut dyn io::Read,
    ) -> Result<(), UnpackError> {
        let raw_name = display(&path);
        self.applier.apply(
            Entry {
                path,
                raw_name,
                kind,
                meta,
            },
            data,
        )
    }

    /// Walks the tree below `root` depth first, in name order, with an
    /// explicit stack: a layer may be up to `MAX_DEPTH` directories deep, too
    /// deep for one stack frame per level on a small thread stack.
    fn tree(&mut self, root: BorrowedFd<'_>) -> Result<(), UnpackError> {
        let mut path = InPath::new();
        let mut stack: Vec<(Option<OwnedFd>, std::vec::IntoIter<Vec<u8>>)> =
            vec![(None, sorted_names(root, &path)?)];
        while let Some((fd, names)) = stack.last_mut() {
            let Some(name) = names.next() else {
                stack.pop();
                path.pop();
                continue;
            };
            let dir = fd.as_ref().map_or(root, |f| f.as_fd());
            path.push(name.clone());
            match self.child(dir, &name, &path)? {
                Some(sub) => {
                    let names = sorted_names(sub.as_fd(), &path)?;
                    stack.push((Some(sub), names));
                }
                None => {
                    path.pop();
                }
            }
        }
        Ok(())
    }

    /// Emits one entry; a directory is returned open, for the caller to walk.
    fn child(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        path: &InPath,
    ) -> Result<Option<OwnedFd>, UnpackError> {
        let st = sys::lstat(dir, name).map_err(walk_err(path))?;
        let xattrs = sys::lxattrs_at(dir, name).map_err(walk_err(path))?;
        let opaque = xattrs
            .iter()
            .any(|(k, v)| OPAQUE_KEYS.contains(&k.as_slice()) && v == b"y");
        let meta = meta_of(&st, xattrs);
        let kind = sys::file_type(&st);
        if kind == libc::S_IFDIR {
            self.emit(path.clone(), Kind::Dir, meta, &mut io::empty())?;
            if opaque {
                let mut marker = path.clone();
                marker.push(b".wh..wh..opq".to_vec());
                self.emit(marker, Kind::File, Meta::default(), &mut io::empty())?;
            }
            return sys::open_dir(dir, name).map(Some).map_err(walk_err(path));
        }
        if kind == libc::S_IFCHR && st.st_rdev == 0 {
            let mut whiteout = path.clone();
            if let Some(last) = whiteout.last_mut() {
                let mut wh = b".wh.".to_vec();
                wh.extend_from_slice(last);
                *last = wh;
            }
            return self
                .emit(whiteout, Kind::File, Meta::default(), &mut io::empty())
                .map(|()| None);
        }
        if st.st_nlink > 1 && kind != libc::S_IFDIR {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                let target = first.clone();
                return self
                    .emit(path.clone(), Kind::Hardlink(target), meta, &mut io::empty())
                    .map(|()| None);
            }
            self.links.insert(key, path.clone());
        }
        let emitted = match kind {
            libc::S_IFREG => {
                let fd = sys::openat(dir, name, libc::O_RDONLY, 0).map_err(walk_err(path))?;
                let mut file = File::from(fd);
                self.emit(path.clone(), Kind::File, meta, &mut file)
            }
            libc::S_IFLNK => {
                let handle = sys::open_path(dir, name).map_err(walk_err(path))?;
                let target = sys::readlink_fd(handle.as_fd()).map_err(walk_err(path))?;
                self.emit(path.clone(), Kind::Symlink(target), meta, &mut io::empty())
            }
            libc::S_IFIFO => self.emit(path.clone(), Kind::Fifo, meta, &mut io::empty()),
            libc::S_IFCHR | libc::S_IFBLK => {
                let (major, minor) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
                let kind = if kind == libc::S_IFCHR {
                    Kind::Char(major, minor)
                } else {
                    Kind::Block(major, minor)
                };
                self.emit(path.clone(), kind, meta, &mut io::empty())
            }
            _ => Ok(()), // sockets are not layer content
        };
        emitted.map(|()| None)
    }
}

fn sorted_names(
    dir: BorrowedFd<'_>,
    path: &[Vec<u8>],
) -> Result<std::vec::IntoIter<Vec<u8>>, UnpackError> {
    let mut names = sys::list_dir(dir).map_err(walk_err(path))?;
    names.sort();
    Ok(names.into_iter())
}

/// Applies the layer directory `src` (overlay form) through `applier`.
pub fn replay(src: &Root, applier: &mut Applier<'_>) -> Result<(), UnpackError> {
    let root_st = sys::lstat(src.fd(), b"").map_err(walk_err(&[]))?;
    let root_xattrs = sys::fxattrs(src.fd()).map_err(walk_err(&[]))?;
    applier.apply(
        Entry {
            path: Vec::new(),
            raw_name: "/".into(),
            kind: Kind::Dir,
            meta: meta_of(&root_st, root_xattrs),
        },
        &mut io::empty(),
    )?;
    let mut walker = Walker {
        applier,
        links: HashMap::new(),
    };
    walker.tree(src.fd())
}
