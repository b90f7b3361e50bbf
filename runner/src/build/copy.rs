//! COPY and ADD (runner-build.md §2.3): sources from the context (globs,
//! ignore rules, `..` clamped at the context root) or from an earlier
//! stage's or an image's root file system (`--from`), written as a tar
//! stream with the right names, modes, owners and mtimes, and applied to
//! the working root file system by the safe unpacker. ADD extracts local
//! tar archives (plain, gzip, bzip2, xz; detected by content) with the
//! unpacker too, each entry placed under the destination (`..` stops there).

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

use super::glob;
use super::ignore::Ignore;
use crate::fsroot as root;
use crate::image::unpack::{self, Mode, Options};

/// Where sources are read from.
pub enum SourceRoot<'a> {
    /// The build context, with its ignore rules.
    Context { dir: &'a Path, ignore: &'a Ignore },
    /// A mounted root file system (`--from`); symlinks resolve inside it.
    Rootfs(&'a Path),
}

/// A COPY/ADD request, variables already expanded.
pub struct CopyRequest<'a> {
    pub sources: Vec<String>,
    pub dest: String,
    pub workdir: &'a str,
    /// Owner for copied items and created parents.
    pub owner: (u32, u32),
    pub chmod: Option<u32>,
    /// ADD: extract local archives.
    pub extract: bool,
    pub now: i64,
}

/// What was copied: the history digest (`file:`, `dir:` or `multi:`).
pub struct Copied {
    pub kind: &'static str,
    pub digest: String,
}

const MAX_SYMLINKS: usize = 40;

fn clean(path: &str) -> Vec<String> {
    root::clean(path.as_bytes())
        .into_iter()
        .map(|c| String::from_utf8_lossy(&c).into_owned())
        .collect()
}

/// Resolves `path` inside `root`, following symlinks as if `root` were `/`;
/// returns the host path and the in-root path. The tree must not change
/// meanwhile (it is a context or a stage's unmodified root file system).
pub fn resolve_in_root(root: &Path, path: &str) -> io::Result<(PathBuf, Vec<String>)> {
    let mut resolved: Vec<String> = Vec::new();
    let mut pending: VecDeque<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect();
    let mut links = 0;
    while let Some(comp) = pending.pop_front() {
        match comp.as_str() {
            "." => {}
            ".." => {
                resolved.pop();
            }
            name => {
                let host = root.join(resolved.join("/")).join(name);
                let meta = fs::symlink_metadata(&host)?;
                if meta.file_type().is_symlink() {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    let target = fs::read_link(&host)?;
                    let target = target.to_string_lossy().into_owned();
                    if target.starts_with('/') {
                        resolved.clear();
                    }
                    for c in target.split('/').rev().filter(|c| !c.is_empty()) {
                        pending.push_front(c.to_string());
                    }
                } else {
                    resolved.push(name.to_string());
                }
            }
        }
    }
    Ok((root.join(resolved.join("/")), resolved))
}

/// Expands one source (glob or plain) to in-root paths that exist.
fn expand(root: &Path, src: &str) -> Vec<Vec<String>> {
    let segs = clean(src);
    let mut found: Vec<Vec<String>> = vec![Vec::new()];
    for seg in &segs {
        let mut next = Vec::new();
        for base in &found {
            if glob::has_meta(seg) {
                let Ok((dir, _)) = resolve_in_root(root, &base.join("/")) else {
                    continue;
                };
                let Ok(entries) = fs::read_dir(&dir) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| glob::match_segment(seg, n))
                    .collect();
                names.sort();
                for n in names {
                    let mut p = base.clone();
                    p.push(n);
                    next.push(p);
                }
            } else {
                let mut p = base.clone();
                p.push(seg.clone());
                next.push(p);
            }
        }
        found = next;
    }
    found
}

/// Writes the tar of the copied items and a digest of what matters
/// (names, types, modes, owners, contents; not mtimes).
struct ItemWriter {
    builder: tar::Builder<io::BufWriter<File>>,
    hasher: Sha256,
}

impl ItemWriter {
    fn header(kind: EntryType, mode: u32, owner: (u32, u32), mtime: i64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode & 0o7777);
        h.set_uid(owner.0 as u64);
        h.set_gid(owner.1 as u64);
        h.set_mtime(mtime.max(0) as u64);
        h.set_size(0);
        h
    }

    fn note(&mut self, kind: &str, name: &str, mode: u32, owner: (u32, u32), extra: &str) {
        self.hasher.update(format!(
            "{kind}\0{name}\0{mode:o}\0{}:{}\0{extra}\0",
            owner.0, owner.1
        ));
    }

    fn dir(&mut self, name: &str, mode: u32, owner: (u32, u32), mtime: i64) -> io::Result<()> {
        self.note("d", name, mode, owner, "");
        let mut h = Self::header(EntryType::Directory, mode, owner, mtime);
        self.builder
            .append_data(&mut h, format!("{name}/"), io::empty())
    }

    fn file(&mut self, name: &str, host: &Path, mode: u32, owner: (u32, u32)) -> io::Result<()> {
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(host)?;
        let meta = file.metadata()?;
        let mut content = Sha256::new();
        let mut reader = HashRead {
            inner: (&file).take(meta.len()),
            hasher: &mut content,
        };
        let mut h = Self::header(EntryType::Regular, mode, owner, meta.mtime());
        h.set_size(meta.len());
        self.builder.append_data(&mut h, name, &mut reader)?;
        let sum = hex::encode(content.finalize());
        self.note("f", name, mode, owner, &sum);
        Ok(())
    }

    fn special(&mut self, name: &str, meta: &fs::Metadata, owner: (u32, u32)) -> io::Result<()> {
        let ft = meta.file_type();
        let mode = meta.mode();
        if ft.is_symlink() {
            return Ok(());
        }
        let kind = if ft.is_fifo() {
            EntryType::Fifo
        } else if ft.is_char_device() {
            EntryType::Char
        } else if ft.is_block_device() {
            EntryType::Block
        } else {
            return Ok(());
        };
        self.note("s", name, mode, owner, &meta.rdev().to_string());
        let mut h = Self::header(kind, mode, owner, meta.mtime());
        if kind != EntryType::Fifo {
            h.set_device_major(libc::major(meta.rdev()))?;
            h.set_device_minor(libc::minor(meta.rdev()))?;
        }
        self.builder.append_data(&mut h, name, io::empty())
    }

    fn symlink(
        &mut self,
        name: &str,
        target: &Path,
        meta: &fs::Metadata,
        owner: (u32, u32),
    ) -> io::Result<()> {
        self.note("l", name, 0o777, owner, &target.to_string_lossy());
        let mut h = Self::header(EntryType::Symlink, 0o777, owner, meta.mtime());
        self.builder.append_link(&mut h, name, target)
    }
}

struct HashRead<'h, R> {
    inner: R,
    hasher: &'h mut Sha256,
}

impl<R: Read> Read for HashRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// An archive ADD extracts, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Archive {
    Tar,
    Gzip,
    Bzip2,
    Xz,
}

fn decoder<'a>(kind: Archive, file: File) -> io::Result<Box<dyn Read + 'a>> {
    let r = io::BufReader::new(file);
    Ok(match kind {
        Archive::Tar => Box::new(r),
        Archive::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Archive::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
        Archive::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(r)),
    })
}

fn is_tar_header(block: &[u8]) -> bool {
    block.len() >= 262 && &block[257..262] == b"ustar"
}

/// Is `path` a tar archive (maybe compressed)?
fn archive_kind(path: &Path) -> Option<Archive> {
    let mut prefix = Vec::new();
    File::open(path)
        .ok()?
        .take(512)
        .read_to_end(&mut prefix)
        .ok()?;
    let kind = if prefix.starts_with(&[0x1f, 0x8b]) {
        Archive::Gzip
    } else if prefix.starts_with(b"BZh") {
        Archive::Bzip2
    } else if prefix.starts_with(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) {
        Archive::Xz
    } else if is_tar_header(&prefix) {
        return Some(Archive::Tar);
    } else {
        return None;
    };
    let mut block = Vec::new();
    decoder(kind, File::open(path).ok()?)
        .ok()?
        .take(512)
        .read_to_end(&mut block)
        .ok()?;
    is_tar_header(&block).then_some(kind)
}

/// One resolved source.
struct Item {
    /// Host path with symlinks resolved.
    host: PathBuf,
    /// Context-relative path as resolved (for ignore rules).
    rel: String,
    /// The name as matched: a followed symlink keeps its own name.
    name: String,
    meta: fs::Metadata,
}

/// Why a copy failed: the message after `building at STEP "…": `.
pub type CopyError = String;

/// Resolves the sources: errors name the missing or filtered path.
fn resolve_sources(from: &SourceRoot<'_>, sources: &[String]) -> Result<Vec<Item>, CopyError> {
    let (root, ignore) = match from {
        SourceRoot::Context { dir, ignore } => (*dir, Some(*ignore)),
        SourceRoot::Rootfs(dir) => (*dir, None),
    };
    let mut items = Vec::new();
    for src in sources {
        let cleaned = clean(src).join("/");
        let matches = expand(root, src);
        let mut filtered = 0;
        let mut found = 0;
        for m in matches {
            let Ok((host, resolved)) = resolve_in_root(root, &m.join("/")) else {
                continue;
            };
            let Ok(meta) = fs::symlink_metadata(&host) else {
                continue;
            };
            let rel = resolved.join("/");
            if ignore.is_some_and(|ig| {
                !rel.is_empty()
                    && ig.excluded(&m.join("/"))
                    && !(meta.is_dir() && ig.may_include_below(&rel))
            }) {
                filtered += 1;
                continue;
            }
            found += 1;
            let name = m.last().cloned().unwrap_or_default();
            items.push(Item {
                host,
                rel,
                name,
                meta,
            });
        }
        if found == 0 {
            return Err(match (from, filtered) {
                (SourceRoot::Context { dir, ignore }, n) if n > 0 => format!(
                    "no items matching glob \"{}/{}\" copied ({n} filtered out using {}): no such file or directory",
                    dir.display(),
                    cleaned,
                    ignore
                        .source
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ),
                (SourceRoot::Context { dir, .. }, _) if glob::has_meta(src) => format!(
                    "checking on sources under \"{}\": Rel: can't make  relative to {}; copier: stat: [\"/{cleaned}\"]: no such file or directory",
                    dir.display(),
                    dir.display()
                ),
                (SourceRoot::Context { dir, .. }, _) => format!(
                    "checking on sources under \"{}\": copier: stat: \"/{cleaned}\": no such file or directory",
                    dir.display()
                ),
                (SourceRoot::Rootfs(_), _) => format!(
                    "copier: stat: \"/{cleaned}\": no such file or directory"
                ),
            });
        }
    }
    Ok(items)
}

/// Does the in-root directory `path` exist in `rootfs` (symlinks in root)?
fn dir_exists(rootfs: &root::Root, path: &[String]) -> bool {
    let comps: Vec<Vec<u8>> = path.iter().map(|c| c.as_bytes().to_vec()).collect();
    rootfs.resolve_dir(&comps, None).is_ok()
}

/// A copy ready to apply: the tar of the items, the archives to extract.
pub struct Prepared {
    pub copied: Copied,
    tar: tempfile::NamedTempFile,
    archives: Vec<(PathBuf, Archive)>,
    target_dir: Vec<String>,
}

/// Resolves the sources against the mounted working root file system
/// `merged` and writes what to copy; nothing is changed yet, so the digest
/// can be looked up in the cache first.
pub fn prepare(
    from: &SourceRoot<'_>,
    req: &CopyRequest<'_>,
    merged: &Path,
    tmp: &Path,
) -> Result<Prepared, CopyError> {
    let io_err = |what: &str, e: io::Error| format!("{what}: {e}");
    let items = resolve_sources(from, &req.sources)?;
    let ignore = match from {
        SourceRoot::Context { ignore, .. } => Some(*ignore),
        SourceRoot::Rootfs(_) => None,
    };
    let dest_abs = if req.dest.starts_with('/') {
        req.dest.clone()
    } else {
        format!(
            "{}/{}",
            if req.workdir.is_empty() {
                "/"
            } else {
                req.workdir
            },
            req.dest
        )
    };
    let dest = clean(&dest_abs);
    let rootfs = root::Root::open(merged).map_err(|e| io_err("opening the root file system", e))?;
    let trailing = req.dest.ends_with('/') || req.dest == "." || req.dest.ends_with("/.");
    let any_dir = items.iter().any(|i| i.meta.is_dir());
    let archive_kinds: Vec<Option<Archive>> = items
        .iter()
        .map(|i| {
            if req.extract && i.meta.is_file() {
                archive_kind(&i.host)
            } else {
                None
            }
        })
        .collect();
    let dest_is_dir = trailing
        || items.len() > 1
        || any_dir
        || dir_exists(&rootfs, &dest)
        || archive_kinds.iter().any(Option::is_some);
    let target_dir: Vec<String> = if dest_is_dir {
        dest.clone()
    } else {
        dest[..dest.len().saturating_sub(1)].to_vec()
    };
    let temp = tempfile::Builder::new()
        .prefix("copy-")
        .tempfile_in(tmp)
        .map_err(|e| io_err("creating a temporary file", e))?;
    let file = temp
        .reopen()
        .map_err(|e| io_err("creating a temporary file", e))?;
    let mut w = ItemWriter {
        builder: tar::Builder::new(io::BufWriter::new(file)),
        hasher: Sha256::new(),
    };
    // Missing parents (and the destination directory): 0755, the owner.
    for n in 1..=target_dir.len() {
        if !dir_exists(&rootfs, &target_dir[..n]) {
            w.dir(&target_dir[..n].join("/"), 0o755, req.owner, req.now)
                .map_err(|e| io_err("writing", e))?;
        }
    }
    let mut archives = Vec::new();
    let mut kinds = Vec::new();
    for (item, archive) in items.iter().zip(archive_kinds) {
        if item.meta.is_dir() {
            kinds.push("dir");
            let base = target_dir.join("/");
            walk(&mut w, &item.host, &item.rel, &base, ignore, req)
                .map_err(|e| io_err("copying", e))?;
        } else if let Some(kind) = archive {
            kinds.push("file");
            // The digest of an extracted archive is that of its tar stream.
            let file = File::open(&item.host).map_err(|e| io_err("reading", e))?;
            let mut content = Sha256::new();
            let mut reader = HashRead {
                inner: decoder(kind, file).map_err(|e| io_err("reading", e))?,
                hasher: &mut content,
            };
            io::copy(&mut reader, &mut io::sink())
                .map_err(|e| io_err(&format!("reading {}", item.rel), e))?;
            w.hasher.update(content.finalize());
            archives.push((item.host.clone(), kind));
        } else {
            kinds.push("file");
            let name = if dest_is_dir {
                let base = item.name.clone();
                let mut p = target_dir.clone();
                p.push(base);
                p.join("/")
            } else {
                dest.join("/")
            };
            let mode = req.chmod.unwrap_or(item.meta.mode() & 0o7777);
            w.file(&name, &item.host, mode, req.owner)
                .map_err(|e| io_err(&format!("copying {}", item.rel), e))?;
        }
    }
    let ItemWriter { builder, hasher } = w;
    let mut out = builder.into_inner().map_err(|e| io_err("writing", e))?;
    out.flush().map_err(|e| io_err("writing", e))?;
    let kind = if kinds.len() == 1 { kinds[0] } else { "multi" };
    Ok(Prepared {
        copied: Copied {
            kind,
            digest: hex::encode(hasher.finalize()),
        },
        tar: temp,
        archives,
        target_dir,
    })
}

impl Prepared {
    /// Writes the items into `merged` and extracts the archives.
    pub fn apply(self, merged: &Path) -> Result<(), CopyError> {
        let opts = Options::new(Mode::Flat);
        let file = File::open(self.tar.path()).map_err(|e| format!("reading: {e}"))?;
        unpack::apply_layer(io::BufReader::new(file), merged, &opts).map_err(|e| e.to_string())?;
        for (path, kind) in &self.archives {
            let mut opts = Options::new(Mode::Flat);
            opts.under = self
                .target_dir
                .iter()
                .map(|c| c.as_bytes().to_vec())
                .collect();
            let file = File::open(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            let reader =
                decoder(*kind, file).map_err(|e| format!("reading {}: {e}", path.display()))?;
            unpack::apply_layer(reader, merged, &opts)
                .map_err(|e| format!("extracting {}: {e}", path.display()))?;
        }
        Ok(())
    }
}

/// Copies the contents of directory `host` (context path `rel`) under
/// `base`, applying the ignore rules.
fn walk(
    w: &mut ItemWriter,
    host: &Path,
    rel: &str,
    base: &str,
    ignore: Option<&Ignore>,
    req: &CopyRequest<'_>,
) -> io::Result<bool> {
    let mut names: Vec<_> = fs::read_dir(host)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    let mut any = false;
    for name in names {
        let name = name.to_string_lossy().into_owned();
        let child_host = host.join(&name);
        let child_rel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let dest = if base.is_empty() {
            name.clone()
        } else {
            format!("{base}/{name}")
        };
        let meta = fs::symlink_metadata(&child_host)?;
        let excluded = ignore.is_some_and(|ig| ig.excluded(&child_rel));
        if meta.is_dir() {
            if excluded && !ignore.is_some_and(|ig| ig.may_include_below(&child_rel)) {
                continue;
            }
            // Written first so children land inside; an excluded directory
            // is only kept when something below it is re-included.
            let mode = req.chmod.unwrap_or(meta.mode() & 0o7777);
            if excluded {
                let mut probe = ItemWriter {
                    builder: tar::Builder::new(io::BufWriter::new(tempfile::tempfile()?)),
                    hasher: Sha256::new(),
                };
                if !walk(&mut probe, &child_host, &child_rel, &dest, ignore, req)? {
                    continue;
                }
            }
            w.dir(&dest, mode, req.owner, meta.mtime())?;
            walk(w, &child_host, &child_rel, &dest, ignore, req)?;
            any = true;
        } else if excluded {
            continue;
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&child_host)?;
            w.symlink(&dest, &target, &meta, req.owner)?;
            any = true;
        } else if meta.is_file() {
            let mode = req.chmod.unwrap_or(meta.mode() & 0o7777);
            w.file(&dest, &child_host, mode, req.owner)?;
            any = true;
        } else {
            w.special(&dest, &meta, req.owner)?;
            any = true;
        }
    }
    Ok(any)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_root_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("a/b")).unwrap();
        fs::write(r.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink("/a", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../a/b", r.join("a/up")).unwrap();
        let (host, rel) = resolve_in_root(r, "abs/b/f").unwrap();
        assert_eq!(host, r.join("a/b/f"));
        assert_eq!(rel, ["a", "b", "f"]);
        let (host, _) = resolve_in_root(r, "a/up/f").unwrap();
        assert_eq!(host, r.join("a/b/f"));
        let (host, _) = resolve_in_root(r, "../../a/b/f").unwrap();
        assert_eq!(host, r.join("a/b/f"));
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert!(resolve_in_root(r, "loop").is_err());
        assert_eq!(
            expand(r, "a/*/f"),
            vec![
                vec!["a".to_string(), "b".into(), "f".into()],
                vec!["a".into(), "up".into(), "f".into()]
            ]
        );
    }
}
