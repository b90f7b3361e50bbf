//! A directory tree as a tar stream: a container's root file system
//! (`export`), its overlay upper directory as a layer (`commit`, `diff`, a
//! `build` step), an unpacked layer of the store (`save`), a path inside a
//! container (`cp`), or the entries a tree comparison listed (a `build` step
//! on the copy fallback, [`write_listed`]). The one layer writer of vigil.
//!
//! The tree is walked with directory fds (`crate::fsroot`), never following
//! a symlink, so a container that swaps a directory for a symlink while it
//! is read cannot make vigil read outside the tree. Entries come sorted per
//! directory (reproducible output), relative and without `./`, directories
//! ending in `/`, numeric owners, hard links as tar links, xattrs as PAX
//! `SCHILY.xattr.*` records. In layer form, overlay whiteouts (0/0 character
//! devices) become `.wh.NAME` files and opaque directories get a
//! `.wh..wh..opq` entry.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use crate::fsroot::{sys, Root};

/// What to write and how.
pub struct TreeOptions<'a> {
    /// Overlay form: whiteouts and opaque directories become OCI markers.
    pub layer: bool,
    /// Leave out these paths (relative, no trailing `/`) and what is below.
    pub exclude: &'a dyn Fn(&str) -> bool,
    /// Name prefix for every entry (`cp` of a directory: `etc/`); empty: none.
    pub prefix: String,
    /// Only this entry of the root directory, under another name in the
    /// tar (`cp` of one file or directory).
    pub only: Option<(Vec<u8>, String)>,
    /// Write these owners instead of the files' (`cp` into a container).
    pub owner: Option<(u32, u32)>,
    /// Write this modification time on every entry (`build --timestamp`).
    pub mtime: Option<u64>,
}

impl Default for TreeOptions<'_> {
    fn default() -> Self {
        TreeOptions {
            layer: false,
            exclude: &|_| false,
            prefix: String::new(),
            only: None,
            owner: None,
            mtime: None,
        }
    }
}

/// Overlay's opaque-directory markers (kernel overlay as root, in a user
/// namespace, and fuse-overlayfs).
const OPAQUE_XATTRS: [&[u8]; 2] = [b"trusted.overlay.opaque", b"user.overlay.opaque"];

/// xattrs that describe this host's mount, not the content: overlay's own
/// and SELinux labels.
fn is_host_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.")
        || name.starts_with(b"user.overlay.")
        || name == b"security.selinux"
}

struct Writer<'o, W: Write> {
    out: tar::Builder<W>,
    opts: &'o TreeOptions<'o>,
    /// (dev, inode) of files with several links -> the first name written.
    links: HashMap<(u64, u64), String>,
}

/// Writes the tree at `root` to `out` as a tar stream (with the end-of-
/// archive marker) and returns `out`.
pub fn write_tree<W: Write>(root: &Path, out: W, opts: &TreeOptions<'_>) -> io::Result<W> {
    let root = Root::open(root)?;
    write_tree_at(root.fd(), out, opts)
}

/// [`write_tree`] of the directory `root` (an fd, e.g. a directory resolved
/// inside a container's root file system).
pub fn write_tree_at<W: Write>(
    root: BorrowedFd<'_>,
    out: W,
    opts: &TreeOptions<'_>,
) -> io::Result<W> {
    let mut w = Writer {
        out: tar::Builder::new(out),
        opts,
        links: HashMap::new(),
    };
    let names: Vec<(Vec<u8>, String)> = match &opts.only {
        Some(one) => vec![one.clone()],
        None => sorted(root)?
            .into_iter()
            .map(|n| {
                let shown = String::from_utf8_lossy(&n).into_owned();
                (n, shown)
            })
            .collect(),
    };
    for (name, shown) in names {
        let rel = format!("{}{shown}", opts.prefix);
        w.entry(root, &name, &rel, true)?;
    }
    w.out.into_inner()
}

/// An entry of a layer that a tree comparison found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    /// This path (relative, no trailing `/`), added or changed; for a
    /// directory only the directory itself.
    Entry(String),
    /// A deletion: the `.wh.NAME` marker's path.
    Whiteout(String),
}

/// Writes the listed entries of the tree at `root`, in the list's order, as
/// a tar stream (with the end-of-archive marker). Each path is opened from
/// `root` one directory at a time, never through a symlink.
pub fn write_listed<W: Write>(
    root: &Path,
    list: &[Listed],
    out: W,
    opts: &TreeOptions<'_>,
) -> io::Result<W> {
    let root = Root::open(root)?;
    let mut w = Writer {
        out: tar::Builder::new(out),
        opts,
        links: HashMap::new(),
    };
    for item in list {
        match item {
            Listed::Whiteout(marker) => w.marker(marker, None)?,
            Listed::Entry(rel) => {
                let mut parts: Vec<&[u8]> = rel.as_bytes().split(|&b| b == b'/').collect();
                let name = parts.pop().unwrap_or_default();
                let mut dir = sys::open_dir(root.fd(), b".")?;
                for part in parts {
                    dir = sys::open_dir(dir.as_fd(), part)?;
                }
                w.entry(dir.as_fd(), name, rel, false)?;
            }
        }
    }
    w.out.into_inner()
}

fn sorted(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let mut names = sys::list_dir(dir)?;
    names.sort();
    Ok(names)
}

/// One PAX extended-header record: `"<len> <key>=<value>\n"`, where the
/// length counts itself.
fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut rec = format!("{len} ").into_bytes();
    rec.extend_from_slice(key);
    rec.push(b'=');
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

impl<W: Write> Writer<'_, W> {
    fn header(&self, st: &libc::stat, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(st.st_mode & 0o7777);
        let (uid, gid) = self.opts.owner.unwrap_or((st.st_uid, st.st_gid));
        h.set_uid(uid.into());
        h.set_gid(gid.into());
        h.set_mtime(self.opts.mtime.unwrap_or(st.st_mtime.max(0) as u64));
        h.set_size(0);
        h
    }

    /// A whiteout or opaque marker: an empty file, with the overlay
    /// marker's owner (`st`), else root's.
    fn marker(&mut self, name: &str, st: Option<&libc::stat>) -> io::Result<()> {
        let mut h = match st {
            Some(st) => self.header(st, tar::EntryType::Regular),
            None => {
                let mut h = tar::Header::new_ustar();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_uid(0);
                h.set_gid(0);
                h.set_mtime(self.opts.mtime.unwrap_or(0));
                h.set_size(0);
                h
            }
        };
        h.set_mode(0o644);
        self.out.append_data(&mut h, name, io::empty())
    }

    fn xattrs(&mut self, xattrs: &[(Vec<u8>, Vec<u8>)]) -> io::Result<()> {
        let records: Vec<u8> = xattrs
            .iter()
            .filter(|(k, _)| !is_host_xattr(k))
            .flat_map(|(k, v)| {
                let mut key = b"SCHILY.xattr.".to_vec();
                key.extend_from_slice(k);
                pax_record(&key, v)
            })
            .collect();
        if records.is_empty() {
            return Ok(());
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_size(records.len() as u64);
        h.set_mode(0o644);
        self.out
            .append_data(&mut h, "PaxHeaders.0/xattrs", records.as_slice())
    }

    /// Writes `name` in `dir` as `rel`, and with `recurse` what is below it.
    fn entry(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        rel: &str,
        recurse: bool,
    ) -> io::Result<()> {
        if (self.opts.exclude)(rel) {
            return Ok(());
        }
        let st = sys::lstat(dir, name)?;
        let kind = sys::file_type(&st);
        let (major, minor) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
        if self.opts.layer && kind == libc::S_IFCHR && major == 0 && minor == 0 {
            let (parent, base) = rel.rsplit_once('/').map_or(("", rel), |(p, b)| (p, b));
            let marker = if parent.is_empty() {
                format!(".wh.{base}")
            } else {
                format!("{parent}/.wh.{base}")
            };
            return self.marker(&marker, Some(&st));
        }
        match kind {
            libc::S_IFDIR => {
                let fd = sys::open_dir(dir, name)?;
                let xattrs = sys::fxattrs(fd.as_fd()).unwrap_or_default();
                self.xattrs(&xattrs)?;
                let mut h = self.header(&st, tar::EntryType::Directory);
                self.out
                    .append_data(&mut h, format!("{rel}/"), io::empty())?;
                let opaque = xattrs
                    .iter()
                    .any(|(k, v)| OPAQUE_XATTRS.contains(&k.as_slice()) && v == b"y");
                if self.opts.layer && opaque {
                    self.marker(&format!("{rel}/.wh..wh..opq"), Some(&st))?;
                }
                if !recurse {
                    return Ok(());
                }
                for child in sorted(fd.as_fd())? {
                    let child_rel = format!("{rel}/{}", String::from_utf8_lossy(&child));
                    self.entry(fd.as_fd(), &child, &child_rel, true)?;
                }
                Ok(())
            }
            libc::S_IFREG => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key) {
                        let mut h = self.header(&st, tar::EntryType::Link);
                        let first = first.clone();
                        return self.out.append_link(&mut h, rel, first);
                    }
                    self.links.insert(key, rel.to_string());
                }
                let fd = sys::openat(dir, name, libc::O_RDONLY, 0)?;
                let xattrs = sys::fxattrs(fd.as_fd()).unwrap_or_default();
                self.xattrs(&xattrs)?;
                let mut h = self.header(&st, tar::EntryType::Regular);
                h.set_size(st.st_size.max(0) as u64);
                let file = std::fs::File::from(fd);
                let mut data = file.take(st.st_size.max(0) as u64);
                self.out.append_data(&mut h, rel, &mut data)
            }
            libc::S_IFLNK => {
                let handle = sys::open_path(dir, name)?;
                let target = sys::readlink_fd(handle.as_fd())?;
                let mut h = self.header(&st, tar::EntryType::Symlink);
                let target = String::from_utf8_lossy(&target).into_owned();
                self.out.append_link(&mut h, rel, target)
            }
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
                let kind = match kind {
                    libc::S_IFCHR => tar::EntryType::Char,
                    libc::S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = self.header(&st, kind);
                if kind != tar::EntryType::Fifo {
                    h.set_device_major(major)?;
                    h.set_device_minor(minor)?;
                }
                self.out.append_data(&mut h, rel, io::empty())
            }
            _ => Ok(()), // sockets are not file system content
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn entries(tar: &[u8]) -> Vec<(String, tar::EntryType)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                    e.header().entry_type(),
                )
            })
            .collect()
    }

    #[test]
    fn trees_are_sorted_relative_and_never_followed() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        fs::create_dir_all(root.join("etc/sub")).unwrap();
        fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        fs::write(root.join("b"), "b").unwrap();
        fs::hard_link(root.join("b"), root.join("c")).unwrap();
        symlink("/etc", root.join("escape")).unwrap();
        fs::write(root.join("etc/hosts"), "x").unwrap();
        let exclude = |p: &str| p == "etc/hosts";
        let opts = TreeOptions {
            exclude: &exclude,
            ..Default::default()
        };
        let tar = write_tree(&root, Vec::new(), &opts).unwrap();
        let got = entries(&tar);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["b", "c", "escape", "etc/", "etc/passwd", "etc/sub/"]
        );
        assert_eq!(got[1].1, tar::EntryType::Link);
        assert_eq!(got[2].1, tar::EntryType::Symlink);
    }

    #[test]
    fn pax_records_count_their_own_length() {
        assert_eq!(pax_record(b"a", b"b"), b"6 a=b\n");
        let long = pax_record(b"SCHILY.xattr.user.x", &[b'v'; 80]);
        let len: usize = String::from_utf8_lossy(&long)
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, long.len());
    }
}
