//! A layer tar from a container's writable layer: the overlay upper
//! directory (runner-build.md §3.2). Whiteouts (0/0 character devices)
//! become `.wh.<name>` entries, opaque directories (`*.overlay.opaque=y`) a
//! `.wh..wh..opq` entry after the directory; hard links within the layer
//! are tar link entries to the first name; xattrs other than overlay's and
//! SELinux's go into PAX `SCHILY.xattr.*` records. Entries are sorted by
//! name, paths have no leading `./`, directories end in `/`.
//!
//! Used by `vigil build` for each RUN/COPY/ADD step; `vigil commit` can use
//! it the same way on a container's upper directory.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

use super::digest::Digest;

/// A layer tar written to a file.
#[derive(Debug, Clone)]
pub struct LayerTar {
    /// sha256 of the tar (the diff ID).
    pub diff_id: Digest,
    /// Bytes of the tar.
    pub size: u64,
    /// Entries written (0: the step changed nothing).
    pub entries: u64,
}

/// Hashes and counts what goes through.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Optional clamp of every mtime (`--timestamp`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DiffOptions {
    pub mtime: Option<u64>,
}

/// Writes the layer tar of `upper` into `out`.
pub fn write_upper_dir(upper: &Path, out: File, opts: DiffOptions) -> io::Result<LayerTar> {
    let writer = HashingWriter {
        inner: io::BufWriter::with_capacity(256 << 10, out),
        hasher: Sha256::new(),
        count: 0,
    };
    let mut walker = Walker {
        builder: tar::Builder::new(writer),
        links: HashMap::new(),
        entries: 0,
        opts,
    };
    walker.dir(upper, "")?;
    finish(walker)
}

struct Walker<W: Write> {
    builder: tar::Builder<W>,
    /// (dev, ino) of multiply-linked files already written, and their name.
    links: HashMap<(u64, u64), String>,
    entries: u64,
    opts: DiffOptions,
}

fn lgetxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = CString::new(name).ok()?;
    let mut buf = vec![0u8; 256];
    let len = crate::fsroot::sys::lgetxattr(&p, &n, &mut buf).ok()?;
    buf.truncate(len);
    Some(buf)
}

/// xattrs worth keeping in a layer: not overlay's own, not SELinux labels.
fn layer_xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(p) = CString::new(path.as_os_str().as_bytes()) else {
        return Vec::new();
    };
    let mut names = vec![0u8; 4096];
    let len = match crate::fsroot::sys::llistxattr(&p, &mut names) {
        Ok(len) if len > 0 => len,
        _ => return Vec::new(),
    };
    names.truncate(len);
    names
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .filter_map(|n| std::str::from_utf8(n).ok())
        .filter(|n| {
            !n.starts_with("trusted.overlay.")
                && !n.starts_with("user.overlay.")
                && *n != "security.selinux"
                && (n.starts_with("user.")
                    || n.starts_with("security.")
                    || n.starts_with("trusted."))
        })
        .filter_map(|n| Some((n.to_string(), lgetxattr(path, n)?)))
        .collect()
}

fn is_opaque(path: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|x| lgetxattr(path, x).as_deref() == Some(b"y"))
}

impl<W: Write> Walker<W> {
    fn header(&self, meta: &fs::Metadata, kind: EntryType) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(meta.mode() & 0o7777);
        h.set_uid(meta.uid() as u64);
        h.set_gid(meta.gid() as u64);
        h.set_mtime(self.opts.mtime.unwrap_or(meta.mtime().max(0) as u64));
        h.set_size(0);
        h
    }

    fn pax_xattrs(&mut self, path: &Path) -> io::Result<()> {
        let xattrs = layer_xattrs(path);
        if xattrs.is_empty() {
            return Ok(());
        }
        let mut data = Vec::new();
        for (name, value) in xattrs {
            let key = format!("SCHILY.xattr.{name}");
            // "<len> <key>=<value>\n", the length counting itself.
            let body = key.len() + value.len() + 3;
            let mut len = body + body.to_string().len();
            if len.to_string().len() != body.to_string().len() {
                len += 1;
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(&value);
            data.push(b'\n');
        }
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::XHeader);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        self.builder
            .append_data(&mut h, "PaxHeaders/x", data.as_slice())
    }

    fn whiteout(&mut self, name: &str) -> io::Result<()> {
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        h.set_mtime(self.opts.mtime.unwrap_or(0));
        self.entries += 1;
        self.builder.append_data(&mut h, name, io::empty())
    }

    fn dir(&mut self, dir: &Path, prefix: &str) -> io::Result<()> {
        let mut names: Vec<_> = fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let name = name.to_string_lossy();
            let rel = format!("{prefix}{name}");
            let meta = fs::symlink_metadata(&path)?;
            if meta.file_type().is_char_device() && meta.rdev() == 0 {
                self.whiteout(&format!("{prefix}.wh.{name}"))?;
                continue;
            }
            self.emit(&path, &rel, &meta)?;
            if meta.is_dir() {
                if is_opaque(&path) {
                    self.whiteout(&format!("{rel}/.wh..wh..opq"))?;
                }
                self.dir(&path, &format!("{rel}/"))?;
            }
        }
        Ok(())
    }

    /// Writes the entry for `path` (not its children) as `rel`.
    fn emit(&mut self, path: &Path, rel: &str, meta: &fs::Metadata) -> io::Result<()> {
        let ft = meta.file_type();
        if ft.is_dir() {
            self.entries += 1;
            self.pax_xattrs(path)?;
            let mut h = self.header(meta, EntryType::Directory);
            self.builder
                .append_data(&mut h, format!("{rel}/"), io::empty())
        } else if ft.is_symlink() {
            self.entries += 1;
            let target = fs::read_link(path)?;
            let mut h = self.header(meta, EntryType::Symlink);
            self.builder.append_link(&mut h, rel, target)
        } else if ft.is_file() {
            self.entries += 1;
            let key = (meta.dev(), meta.ino());
            if meta.nlink() > 1 {
                if let Some(first) = self.links.get(&key).cloned() {
                    let mut h = self.header(meta, EntryType::Link);
                    return self.builder.append_link(&mut h, rel, first);
                }
                self.links.insert(key, rel.to_string());
            }
            self.pax_xattrs(path)?;
            let file = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(path)?;
            let mut h = self.header(meta, EntryType::Regular);
            h.set_size(meta.len());
            // A file that changes size while read would corrupt the tar.
            self.builder
                .append_data(&mut h, rel, io::Read::take(file, meta.len()))
        } else {
            let kind = if ft.is_fifo() {
                EntryType::Fifo
            } else if ft.is_char_device() {
                EntryType::Char
            } else if ft.is_block_device() {
                EntryType::Block
            } else {
                // Sockets do not belong in layers.
                return Ok(());
            };
            self.entries += 1;
            let mut h = self.header(meta, kind);
            if kind != EntryType::Fifo {
                let rdev = meta.rdev();
                h.set_device_major(libc::major(rdev))?;
                h.set_device_minor(libc::minor(rdev))?;
            }
            self.builder.append_data(&mut h, rel, io::empty())
        }
    }
}

/// One entry of a tree diff, in write order.
enum Change {
    /// An added or changed entry (a directory: only itself).
    Entry(String),
    /// `.wh.<name>` for a deleted entry.
    Whiteout(String),
}

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
fn scan(lower: &Path, full: &Path, rel: &str, out: &mut Vec<Change>) -> io::Result<()> {
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
            out.push(Change::Whiteout(format!(
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
                out.insert(at, Change::Entry(crel));
            }
        } else if differs {
            out.push(Change::Entry(crel));
        }
    }
    Ok(())
}

/// Writes the layer tar of what changed from `lower` to `full`: two plain
/// root file systems (the copy fallback, where there is no upper directory).
/// Deleted entries become whiteouts; changed entries come with their parent
/// directories.
pub fn write_tree_diff(
    lower: &Path,
    full: &Path,
    out: File,
    opts: DiffOptions,
) -> io::Result<LayerTar> {
    let mut changes = Vec::new();
    scan(lower, full, "", &mut changes)?;
    let writer = HashingWriter {
        inner: io::BufWriter::with_capacity(256 << 10, out),
        hasher: Sha256::new(),
        count: 0,
    };
    let mut walker = Walker {
        builder: tar::Builder::new(writer),
        links: HashMap::new(),
        entries: 0,
        opts,
    };
    for change in changes {
        match change {
            Change::Whiteout(name) => walker.whiteout(&name)?,
            Change::Entry(rel) => {
                let path = full.join(&rel);
                let meta = fs::symlink_metadata(&path)?;
                walker.emit(&path, &rel, &meta)?;
            }
        }
    }
    finish(walker)
}

fn finish<W: Write>(walker: Walker<HashingWriter<W>>) -> io::Result<LayerTar> {
    let Walker {
        builder, entries, ..
    } = walker;
    let mut writer = builder.into_inner()?;
    writer.flush()?;
    let diff_id = Digest::from_hex(&hex::encode(writer.hasher.finalize()))
        .ok_or_else(|| io::Error::other("bad digest"))?;
    Ok(LayerTar {
        diff_id,
        size: writer.count,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn names(tar: &Path) -> Vec<String> {
        let mut a = tar::Archive::new(File::open(tar).unwrap());
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
            fs::write(root.join("etc/gone"), "g").unwrap();
            fs::create_dir_all(root.join("old/deep")).unwrap();
            symlink("keep", root.join("etc/link")).unwrap();
        }
        fs::remove_file(full.join("etc/gone")).unwrap();
        fs::remove_dir_all(full.join("old")).unwrap();
        fs::write(full.join("etc/sub/new"), "n").unwrap();
        fs::remove_file(full.join("etc/link")).unwrap();
        symlink("other", full.join("etc/link")).unwrap();
        let tar = d.path().join("layer.tar");
        let out = write_tree_diff(
            &lower,
            &full,
            File::create(&tar).unwrap(),
            DiffOptions::default(),
        )
        .unwrap();
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
        assert_eq!(out.entries, 6);
    }
}
