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
    // SAFETY: valid C strings and a buffer of the given length.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| {
        buf.truncate(len as usize);
        buf
    })
}

/// xattrs worth keeping in a layer: not overlay's own, not SELinux labels.
fn layer_xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(p) = CString::new(path.as_os_str().as_bytes()) else {
        return Vec::new();
    };
    let mut names = vec![0u8; 4096];
    // SAFETY: valid C string and buffer.
    let len = unsafe { libc::llistxattr(p.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if len <= 0 {
        return Vec::new();
    }
    names.truncate(len as usize);
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
            let ft = meta.file_type();
            if ft.is_char_device() && meta.rdev() == 0 {
                self.whiteout(&format!("{prefix}.wh.{name}"))?;
                continue;
            }
            self.entries += 1;
            if ft.is_dir() {
                self.pax_xattrs(&path)?;
                let mut h = self.header(&meta, EntryType::Directory);
                self.builder
                    .append_data(&mut h, format!("{rel}/"), io::empty())?;
                if is_opaque(&path) {
                    self.whiteout(&format!("{rel}/.wh..wh..opq"))?;
                }
                self.dir(&path, &format!("{rel}/"))?;
            } else if ft.is_symlink() {
                let target = fs::read_link(&path)?;
                let mut h = self.header(&meta, EntryType::Symlink);
                self.builder.append_link(&mut h, &rel, target)?;
            } else if ft.is_file() {
                let key = (meta.dev(), meta.ino());
                if meta.nlink() > 1 {
                    if let Some(first) = self.links.get(&key).cloned() {
                        let mut h = self.header(&meta, EntryType::Link);
                        self.builder.append_link(&mut h, &rel, first)?;
                        continue;
                    }
                    self.links.insert(key, rel.clone());
                }
                self.pax_xattrs(&path)?;
                let file = fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(&path)?;
                let mut h = self.header(&meta, EntryType::Regular);
                h.set_size(meta.len());
                // A file that changes size while read would corrupt the tar.
                self.builder
                    .append_data(&mut h, &rel, io::Read::take(file, meta.len()))?;
            } else {
                let kind = if ft.is_fifo() {
                    EntryType::Fifo
                } else if ft.is_char_device() {
                    EntryType::Char
                } else if ft.is_block_device() {
                    EntryType::Block
                } else {
                    // Sockets do not belong in layers.
                    self.entries -= 1;
                    continue;
                };
                let mut h = self.header(&meta, kind);
                if kind != EntryType::Fifo {
                    let rdev = meta.rdev();
                    h.set_device_major(libc::major(rdev))?;
                    h.set_device_minor(libc::minor(rdev))?;
                }
                self.builder.append_data(&mut h, &rel, io::empty())?;
            }
        }
        Ok(())
    }
}
