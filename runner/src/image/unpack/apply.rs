//! The per-layer state machine: applies entries in archive order, remembers
//! what this layer touched (whiteouts and opaque markers never remove those),
//! and finishes with deferred hard links, directory modes and times.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use super::entry::{Entry, Kind, Meta};
use super::xattr::{classify, XattrPolicy};
use super::{DevicePolicy, Mode, Options, UnpackError, UnpackReport};
use crate::fsroot::sys;
use crate::fsroot::{self as root, display, DirMaker, InPath, Root};

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const META_PREFIX: &[u8] = b".wh..wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";
const PLINK_DIR: &[u8] = b".wh..wh.plnk";

/// Applies the entries of one layer.
pub struct Applier<'o> {
    root: Root,
    opts: &'o Options,
    lowers: Vec<Root>,
    /// Paths of this layer's entries and all their ancestors.
    touched: HashSet<InPath>,
    /// Directories whose mode and times are applied at the end.
    dirs: HashMap<InPath, Meta>,
    /// Hard links whose target did not exist yet.
    pending_links: Vec<Entry>,
    used_plink: bool,
    warned: BTreeSet<String>,
    report: UnpackReport,
    /// Copy buffer, reused for every file.
    buf: Vec<u8>,
}

/// Creates implicit parent directories: mode 0755, owned by the caller, or in
/// overlay mode with the attributes of the same directory in a lower layer
/// (so an implicit parent does not change the merged directory's attributes).
struct Maker<'a> {
    lowers: &'a [Root],
    chown: bool,
}

impl DirMaker for Maker<'_> {
    fn make_dir(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        path: &[Vec<u8>],
    ) -> io::Result<()> {
        sys::mkdirat(parent, name, 0o700)?;
        let fd = sys::open_dir(parent, name)?;
        let lower = self.lowers.iter().find_map(|lower| {
            let (dir, last) = lower.resolve_parent(path, None).ok()?;
            let st = sys::lstat(dir.as_fd(), last).ok()?;
            (sys::file_type(&st) == libc::S_IFDIR).then_some(st)
        });
        match lower {
            Some(st) => {
                if self.chown {
                    sys::lchownat(fd.as_fd(), b"", st.st_uid, st.st_gid)?;
                }
                sys::fchmod(fd.as_fd(), st.st_mode & 0o7777)?;
                sys::lutimesat(fd.as_fd(), b"", st.st_mtime, st.st_mtime_nsec as u32)
            }
            None => sys::fchmod(fd.as_fd(), 0o755),
        }
    }
}

fn io_err<'e>(
    entry: &'e Entry,
    action: &'static str,
) -> impl FnOnce(io::Error) -> UnpackError + 'e {
    move |source| UnpackError::Io {
        name: entry.raw_name.clone(),
        action,
        source,
    }
}

fn is_missing(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP)
    )
}

impl<'o> Applier<'o> {
    pub fn new(target: &Path, opts: &'o Options) -> Result<Self, UnpackError> {
        let open = |path: &Path| {
            Root::open(path).map_err(|source| UnpackError::Io {
                name: path.display().to_string(),
                action: "opening directory",
                source,
            })
        };
        let root = open(target)?;
        let lowers = match opts.mode {
            Mode::Overlay => opts
                .lower_dirs
                .iter()
                .map(|p| open(p))
                .collect::<Result<_, _>>()?,
            Mode::Flat => Vec::new(),
        };
        Ok(Applier {
            root,
            opts,
            lowers,
            touched: HashSet::new(),
            dirs: HashMap::new(),
            pending_links: Vec::new(),
            used_plink: false,
            warned: BTreeSet::new(),
            report: UnpackReport::default(),
            buf: vec![0u8; 128 * 1024],
        })
    }

    fn warn(&mut self, message: String) {
        self.warned.insert(message);
    }

    fn maker(&self) -> Maker<'_> {
        Maker {
            lowers: &self.lowers,
            chown: self.opts.chown,
        }
    }

    fn touch_ancestors(&mut self, path: &[Vec<u8>]) {
        for len in 0..path.len() {
            self.touched.insert(path[..len].to_vec());
        }
    }

    fn touch(&mut self, path: &[Vec<u8>]) {
        self.touch_ancestors(path);
        self.touched.insert(path.to_vec());
    }

    /// Applies one entry; `data` is its file content.
    pub fn apply(&mut self, mut entry: Entry, data: &mut dyn Read) -> Result<(), UnpackError> {
        self.report.entries += 1;
        if let Some(map) = &self.opts.owner_map {
            entry.meta.uid = map.uid(entry.meta.uid);
            entry.meta.gid = map.gid(entry.meta.gid);
        }
        let Some((base, parent)) = entry.path.split_last() else {
            return self.apply_root(&entry);
        };
        let in_plink = entry.path[0] == PLINK_DIR;
        if in_plink {
            self.used_plink = true;
        } else if base.as_slice() == OPAQUE && !parent.iter().any(|c| c.starts_with(META_PREFIX)) {
            return self.opaque(&entry, parent);
        } else if entry.path.iter().any(|c| c.starts_with(META_PREFIX)) {
            // AUFS metadata (`.wh..wh.aufs`, `.wh..wh.orph/...`): not content.
            return Ok(());
        } else if let Some(name) = base.strip_prefix(WHITEOUT_PREFIX) {
            return self.whiteout(&entry, parent, name);
        }
        if let Kind::Hardlink(target) = &entry.kind {
            if !self.link(&entry, target)? {
                self.pending_links.push(entry);
            }
            return Ok(());
        }
        self.touch(&entry.path);
        let mut maker = self.maker();
        let (dir, name) = self
            .root
            .resolve_parent(&entry.path, Some(&mut maker))
            .map_err(io_err(&entry, "resolving parent of"))?;
        let name = name.to_vec();
        match &entry.kind {
            Kind::Dir => self.make_dir(&entry, dir.as_fd(), &name),
            Kind::File => self.make_file(&entry, dir.as_fd(), &name, data),
            Kind::Symlink(target) => {
                replace(dir.as_fd(), &name).map_err(io_err(&entry, "removing old"))?;
                sys::symlinkat(target, dir.as_fd(), &name)
                    .map_err(io_err(&entry, "creating symlink"))?;
                self.finish_node(&entry, dir.as_fd(), &name, None)
            }
            Kind::Fifo => self.make_node(&entry, dir.as_fd(), &name, libc::S_IFIFO, 0, 0),
            Kind::Char(major, minor) => {
                self.make_device(&entry, dir.as_fd(), &name, libc::S_IFCHR, *major, *minor)
            }
            Kind::Block(major, minor) => {
                self.make_device(&entry, dir.as_fd(), &name, libc::S_IFBLK, *major, *minor)
            }
            Kind::Hardlink(_) => Ok(()),
        }
    }

    fn apply_root(&mut self, entry: &Entry) -> Result<(), UnpackError> {
        if entry.kind != Kind::Dir {
            return Err(UnpackError::RootTypeChange {
                name: entry.raw_name.clone(),
            });
        }
        let fd = sys::open_dir(self.root.fd(), b".").map_err(io_err(entry, "opening"))?;
        self.dir_attrs(entry, fd.as_fd())?;
        self.dirs.insert(Vec::new(), entry.meta.clone());
        Ok(())
    }

    fn make_dir(
        &mut self,
        entry: &Entry,
        dir: BorrowedFd<'_>,
        name: &[u8],
    ) -> Result<(), UnpackError> {
        let existing = sys::lstat_opt(dir, name).map_err(io_err(entry, "inspecting"))?;
        if existing.map(|st| sys::file_type(&st)) != Some(libc::S_IFDIR) {
            replace(dir, name).map_err(io_err(entry, "removing old"))?;
            sys::mkdirat(dir, name, 0o700).map_err(io_err(entry, "creating directory"))?;
        }
        let fd = sys::open_dir(dir, name).map_err(io_err(entry, "opening directory"))?;
        self.dir_attrs(entry, fd.as_fd())?;
        self.dirs.insert(entry.path.clone(), entry.meta.clone());
        Ok(())
    }

    /// Owner and xattrs of a directory now; mode and times in `finish`.
    fn dir_attrs(&mut self, entry: &Entry, fd: BorrowedFd<'_>) -> Result<(), UnpackError> {
        if self.opts.chown {
            sys::lchownat(fd, b"", entry.meta.uid, entry.meta.gid)
                .map_err(io_err(entry, "changing owner of"))?;
        }
        self.xattrs(entry, |k, v| sys::fsetxattr(fd, k, v))
    }

    fn make_file(
        &mut self,
        entry: &Entry,
        dir: BorrowedFd<'_>,
        name: &[u8],
        data: &mut dyn Read,
    ) -> Result<(), UnpackError> {
        replace(dir, name).map_err(io_err(entry, "removing old"))?;
        let fd = sys::openat(
            dir,
            name,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            0o600,
        )
        .map_err(io_err(entry, "creating file"))?;
        let mut file = File::from(fd);
        self.copy_data(entry, data, &mut file)?;
        self.finish_node(entry, dir, name, Some(file.as_fd()))
    }

    fn copy_data(
        &mut self,
        entry: &Entry,
        data: &mut dyn Read,
        out: &mut File,
    ) -> Result<(), UnpackError> {
        let mut buf = std::mem::take(&mut self.buf);
        let result = self.copy_with(entry, data, out, &mut buf);
        self.buf = buf;
        result
    }

    fn copy_with(
        &mut self,
        entry: &Entry,
        data: &mut dyn Read,
        out: &mut File,
        buf: &mut [u8],
    ) -> Result<(), UnpackError> {
        loop {
            let n = match data.read(buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(UnpackError::Tar(err)),
            };
            self.report.bytes += n as u64;
            if self.report.bytes > self.opts.limits.max_bytes {
                return Err(UnpackError::LimitExceeded(format!(
                    "more than {} bytes of file data",
                    self.opts.limits.max_bytes
                )));
            }
            out.write_all(&buf[..n]).map_err(io_err(entry, "writing"))?;
        }
    }

    fn make_device(
        &mut self,
        entry: &Entry,
        dir: BorrowedFd<'_>,
        name: &[u8],
        kind: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), UnpackError> {
        match self.opts.devices {
            DevicePolicy::Skip => {
                self.warn(format!("skipped device node {}", display(&entry.path)));
                Ok(())
            }
            DevicePolicy::Placeholder => self.placeholder(entry, dir, name),
            DevicePolicy::Create => self.make_node(entry, dir, name, kind, major, minor),
            DevicePolicy::Auto => match self.make_node(entry, dir, name, kind, major, minor) {
                Err(UnpackError::Io { source, .. })
                    if source.raw_os_error() == Some(libc::EPERM) =>
                {
                    self.warn(format!(
                        "cannot create device nodes here: {} is an empty file instead",
                        display(&entry.path)
                    ));
                    self.placeholder(entry, dir, name)
                }
                other => other,
            },
        }
    }

    fn placeholder(
        &mut self,
        entry: &Entry,
        dir: BorrowedFd<'_>,
        name: &[u8],
    ) -> Result<(), UnpackError> {
        self.make_file(entry, dir, name, &mut io::empty())
    }

    fn make_node(
        &mut self,
        entry: &Entry,
        dir: BorrowedFd<'_>,
        name: &[u8],
        kind: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), UnpackError> {
        replace(dir, name).map_err(io_err(entry, "removing old"))?;
        sys::mknodat(dir, name, kind | 0o600, major, minor)
            .map_err(io_err(entry, "creating node"))?;
        self.finish_node(entry, dir, name, None)
    }

    /// Owner, then mode, then xattrs, then times, for anything but a
    /// directory; `fd` is an open fd for regular files.
    fn finish_node(
        &mut self,
        entry: &Entry,
        dir: BorrowedFd<'_>,
        name: &[u8],
        fd: Option<BorrowedFd<'_>>,
    ) -> Result<(), UnpackError> {
        let meta = &entry.meta;
        let symlink = matches!(entry.kind, Kind::Symlink(_));
        if self.opts.chown {
            match fd {
                Some(fd) => sys::lchownat(fd, b"", meta.uid, meta.gid),
                None => sys::lchownat(dir, name, meta.uid, meta.gid),
            }
            .map_err(io_err(entry, "changing owner of"))?;
        }
        if !symlink {
            match fd {
                Some(fd) => sys::fchmod(fd, meta.mode),
                None => sys::lchmodat(dir, name, meta.mode),
            }
            .map_err(io_err(entry, "changing mode of"))?;
        }
        match fd {
            Some(fd) => self.xattrs(entry, |k, v| sys::fsetxattr(fd, k, v))?,
            None => self.xattrs(entry, |k, v| sys::lsetxattrat(dir, name, k, v))?,
        }
        match fd {
            Some(fd) => sys::lutimesat(fd, b"", meta.mtime, meta.mtime_nsec),
            None => sys::lutimesat(dir, name, meta.mtime, meta.mtime_nsec),
        }
        .map_err(io_err(entry, "setting times of"))
    }

    fn xattrs(
        &mut self,
        entry: &Entry,
        mut set: impl FnMut(&[u8], &[u8]) -> io::Result<()>,
    ) -> Result<(), UnpackError> {
        for (key, value) in &entry.meta.xattrs {
            let shown = String::from_utf8_lossy(key);
            match classify(key) {
                XattrPolicy::Ignore => continue,
                XattrPolicy::Refuse => {
                    self.warn(format!("dropped xattr {shown} from the layer (reserved)"));
                    continue;
                }
                XattrPolicy::Keep => {}
            }
            if let Err(err) = set(key, value) {
                match err.raw_os_error() {
                    Some(libc::EPERM) | Some(libc::ENOTSUP) | Some(libc::ENOSPC)
                    | Some(libc::E2BIG) => {
                        self.warn(format!("cannot set xattr {shown}: {err}"));
                    }
                    _ => {
                        return Err(UnpackError::Io {
                            name: entry.raw_name.clone(),
                            action: "setting xattr on",
                            source: err,
                        })
                    }
                }
            }
        }
        Ok(())
    }

    /// Creates a hard link; `Ok(false)` if the target does not exist (yet).
    fn link(&mut self, entry: &Entry, target: &InPath) -> Result<bool, UnpackError> {
        if target.is_empty() {
            return Err(UnpackError::BadEntry {
                name: entry.raw_name.clone(),
                reason: "hard link to the root directory".into(),
            });
        }
        if *target == entry.path {
            return Ok(true);
        }
        let found = match self.root.resolve_parent(target, None) {
            Ok((tdir, tname)) => sys::lstat_opt(tdir.as_fd(), tname)
                .map_err(io_err(entry, "inspecting link target of"))?
                .map(|st| (tdir, st)),
            Err(err) if is_missing(&err) => None,
            Err(err) => return Err(io_err(entry, "resolving link target of")(err)),
        };
        let (tdir, st) = match found {
            Some(found) => found,
            None if self.opts.mode == Mode::Overlay => {
                if !self.copy_up(entry, target)? {
                    return Ok(false);
                }
                let (tdir, tname) = self
                    .root
                    .resolve_parent(target, None)
                    .map_err(io_err(entry, "resolving link target of"))?;
                let st = sys::lstat(tdir.as_fd(), tname)
                    .map_err(io_err(entry, "inspecting link target of"))?;
                (tdir, st)
            }
            None => return Ok(false),
        };
        if sys::file_type(&st) == libc::S_IFDIR {
            return Err(UnpackError::BadEntry {
                name: entry.raw_name.clone(),
                reason: "hard link to a directory".into(),
            });
        }
        self.touch(&entry.path);
        let mut maker = self.maker();
        let (dir, name) = self
            .root
            .resolve_parent(&entry.path, Some(&mut maker))
            .map_err(io_err(entry, "resolving parent of"))?;
        let tname = target.last().map(Vec::as_slice).unwrap_or_default();
        replace(dir.as_fd(), name).map_err(io_err(entry, "removing old"))?;
        sys::linkat(tdir.as_fd(), tname, dir.as_fd(), name)
            .map_err(io_err(entry, "creating hard link"))?;
        self.link_attrs(
            entry,
            dir.as_fd(),
            name,
            sys::file_type(&st) == libc::S_IFLNK,
        )?;
        Ok(true)
    }

    /// The attributes of a hard-link entry apply to the inode it names, as
    /// with Podman and Docker (containers/storage `createTarFile`): owner,
    /// xattrs (added), then mode and times unless the inode is a symlink.
    /// Writers give a link entry its target's attributes, so this changes
    /// something only when the inode changed since (a link to a file of a
    /// lower layer whose attributes this layer updates).
    fn link_attrs(
        &mut self,
        entry: &Entry,
        dir: BorrowedFd<'_>,
        name: &[u8],
        symlink: bool,
    ) -> Result<(), UnpackError> {
        let meta = &entry.meta;
        if self.opts.chown {
            sys::lchownat(dir, name, meta.uid, meta.gid)
                .map_err(io_err(entry, "changing owner of"))?;
        }
        self.xattrs(entry, |k, v| sys::lsetxattrat(dir, name, k, v))?;
        if symlink {
            return Ok(());
        }
        sys::lchmodat(dir, name, meta.mode).map_err(io_err(entry, "changing mode of"))?;
        sys::lutimesat(dir, name, meta.mtime, meta.mtime_nsec)
            .map_err(io_err(entry, "setting times of"))
    }

    /// Overlay mode: copies `target` from the nearest lower layer that has it
    /// into this layer, so a hard link to it can be made here.
    fn copy_up(&mut self, entry: &Entry, target: &InPath) -> Result<bool, UnpackError> {
        let Some(index) = find_in_lowers(&self.lowers, target) else {
            return Ok(false);
        };
        let err = |source| UnpackError::Io {
            name: entry.raw_name.clone(),
            action: "copying up link target of",
            source,
        };
        let (sdir, sname) = self.lowers[index]
            .resolve_parent(target, None)
            .map_err(err)?;
        let st = sys::lstat(sdir.as_fd(), sname).map_err(err)?;
        self.touch(target);
        let lowers = std::mem::take(&mut self.lowers);
        let result = (|| {
            let mut maker = Maker {
                lowers: &lowers,
                chown: self.opts.chown,
            };
            let (ddir, dname) = self.root.resolve_parent(target, Some(&mut maker))?;
            copy_node(
                sdir.as_fd(),
                sname,
                &st,
                ddir.as_fd(),
                dname,
                self.opts.chown,
            )
        })();
        self.lowers = lowers;
        result.map_err(err)?;
        if sys::file_type(&st) == libc::S_IFREG && st.st_nlink > 1 {
            self.copy_up_other_names(entry, index, target, &st)?;
        }
        Ok(true)
    }

    /// After `target` was copied up from lower layer `index`: its other names
    /// in that layer that the merged view shows (not replaced, whited out or
    /// hidden by a layer in between, not written by this layer) become hard
    /// links to the copy, so they stay one file as in a flat unpack.
    fn copy_up_other_names(
        &mut self,
        entry: &Entry,
        index: usize,
        target: &InPath,
        st: &libc::stat,
    ) -> Result<(), UnpackError> {
        let err = |source| UnpackError::Io {
            name: entry.raw_name.clone(),
            action: "copying up other names of the link target of",
            source,
        };
        let mut names = Vec::new();
        let root = sys::open_dir(self.lowers[index].fd(), b".").map_err(err)?;
        find_inode(
            root.as_fd(),
            &mut Vec::new(),
            (st.st_dev, st.st_ino),
            &mut names,
        )
        .map_err(err)?;
        let (tdir, tname) = self.root.resolve_parent(target, None).map_err(err)?;
        for name in names {
            if name == *target
                || self.touched.contains(&name)
                || find_in_lowers(&self.lowers, &name) != Some(index)
            {
                continue;
            }
            let lowers = std::mem::take(&mut self.lowers);
            let result = (|| {
                let mut maker = Maker {
                    lowers: &lowers,
                    chown: self.opts.chown,
                };
                let (dir, last) = self.root.resolve_parent(&name, Some(&mut maker))?;
                if sys::lstat_opt(dir.as_fd(), last)?.is_some() {
                    return Ok(()); // this layer put something there
                }
                sys::linkat(tdir.as_fd(), tname, dir.as_fd(), last)
            })();
            self.lowers = lowers;
            result.map_err(err)?;
        }
        Ok(())
    }

    fn whiteout(
        &mut self,
        entry: &Entry,
        parent: &[Vec<u8>],
        name: &[u8],
    ) -> Result<(), UnpackError> {
        if name.is_empty() || name == b"." || name == b".." {
            return Err(UnpackError::InvalidWhiteout {
                name: entry.raw_name.clone(),
            });
        }
        let mut target = parent.to_vec();
        target.push(name.to_vec());
        self.touch_ancestors(&target);
        if self.touched.contains(&target) {
            return Ok(()); // whiteouts never remove this layer's own entries
        }
        match self.opts.mode {
            Mode::Flat => match self.root.resolve_dir(parent, None) {
                Ok(dir) => {
                    root::remove_all(dir.as_fd(), name).map_err(io_err(entry, "applying whiteout"))
                }
                Err(err) if is_missing(&err) => Ok(()),
                Err(err) => Err(io_err(entry, "resolving parent of")(err)),
            },
            Mode::Overlay => {
                let mut maker = self.maker();
                let dir = self
                    .root
                    .resolve_dir(parent, Some(&mut maker))
                    .map_err(io_err(entry, "resolving parent of"))?;
                replace(dir.as_fd(), name).map_err(io_err(entry, "removing old"))?;
                sys::mknodat(dir.as_fd(), name, libc::S_IFCHR, 0, 0)
                    .map_err(io_err(entry, "creating whiteout"))
            }
        }
    }

    fn opaque(&mut self, entry: &Entry, dir_path: &[Vec<u8>]) -> Result<(), UnpackError> {
        self.touch(dir_path);
        let mut maker = self.maker();
        let dir = self
            .root
            .resolve_dir(dir_path, Some(&mut maker))
            .map_err(io_err(entry, "resolving opaque directory"))?;
        match self.opts.mode {
            Mode::Overlay => sys::fsetxattr(dir.as_fd(), self.opts.opaque_xattr.as_bytes(), b"y")
                .map_err(io_err(entry, "marking opaque")),
            Mode::Flat => self
                .clear_untouched(dir.as_fd(), &mut dir_path.to_vec())
                .map_err(io_err(entry, "applying opaque whiteout")),
        }
    }

    /// Removes everything below `dir` that this layer did not put there.
    fn clear_untouched(&self, dir: BorrowedFd<'_>, path: &mut InPath) -> io::Result<()> {
        for name in sys::list_dir(dir)? {
            path.push(name.clone());
            let result = if !self.touched.contains(path.as_slice()) {
                root::remove_all(dir, &name)
            } else {
                match sys::lstat(dir, &name) {
                    Ok(st) if sys::file_type(&st) == libc::S_IFDIR => {
                        let child = sys::open_dir(dir, &name)?;
                        self.clear_untouched(child.as_fd(), path)
                    }
                    _ => Ok(()),
                }
            };
            path.pop();
            result?;
        }
        Ok(())
    }

    /// Deferred hard links, AUFS link staging, directory modes and times.
    pub fn finish(mut self) -> Result<UnpackReport, UnpackError> {
        for entry in std::mem::take(&mut self.pending_links) {
            let Kind::Hardlink(target) = &entry.kind else {
                continue;
            };
            if !self.link(&entry, target)? {
                return Err(UnpackError::HardlinkTarget {
                    name: entry.raw_name.clone(),
                    target: display(target),
                });
            }
        }
        if self.used_plink {
            root::remove_all(self.root.fd(), PLINK_DIR).map_err(|source| UnpackError::Io {
                name: String::from_utf8_lossy(PLINK_DIR).into_owned(),
                action: "removing",
                source,
            })?;
        }
        let mut dirs: Vec<(InPath, Meta)> = std::mem::take(&mut self.dirs).into_iter().collect();
        dirs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        for (path, meta) in dirs {
            let fd = match self.open_final_dir(&path) {
                Ok(fd) => fd,
                Err(err) if is_missing(&err) => continue, // replaced later in the layer
                Err(source) => {
                    return Err(UnpackError::Io {
                        name: display(&path),
                        action: "opening directory",
                        source,
                    })
                }
            };
            let result = sys::fchmod(fd.as_fd(), meta.mode)
                .and_then(|()| sys::lutimesat(fd.as_fd(), b"", meta.mtime, meta.mtime_nsec));
            result.map_err(|source| UnpackError::Io {
                name: display(&path),
                action: "setting mode and times of",
                source,
            })?;
        }
        self.report.warnings = std::mem::take(&mut self.warned).into_iter().collect();
        Ok(self.report)
    }

    /// Opens a directory by in-root path without following its last component.
    fn open_final_dir(&self, path: &[Vec<u8>]) -> io::Result<OwnedFd> {
        match path.split_last() {
            None => sys::open_dir(self.root.fd(), b"."),
            Some((name, parent)) => {
                let dir = self.root.resolve_dir(parent, None)?;
                sys::open_dir(dir.as_fd(), name)
            }
        }
    }
}

/// Removes whatever is at `name` (a directory with its contents).
fn replace(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    root::remove_all(dir, name)
}

/// The index of the topmost lower layer holding `path`, honouring whiteouts
/// and opaque directories of the layers above it.
fn find_in_lowers(lowers: &[Root], path: &[Vec<u8>]) -> Option<usize> {
    for (index, lower) in lowers.iter().enumerate() {
        let (dir, name) = match lower.resolve_parent(path, None) {
            Ok(found) => found,
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(_) => return None,
        };
        match sys::lstat_opt(dir.as_fd(), name) {
            Ok(Some(st)) if sys::file_type(&st) == libc::S_IFCHR && st.st_rdev == 0 => return None,
            Ok(Some(_)) => return Some(index),
            Ok(None) => {}
            Err(_) => return None,
        }
        let opaque = [b"trusted.overlay.opaque".as_slice(), b"user.overlay.opaque"]
            .iter()
            .any(|key| matches!(sys::fgetxattr(dir.as_fd(), key), Ok(Some(v)) if v == b"y"));
        if opaque {
            return None;
        }
    }
    None
}

/// Collects the in-root paths below `dir` (at `path`) of the inode `id`.
fn find_inode(
    dir: BorrowedFd<'_>,
    path: &mut InPath,
    id: (u64, u64),
    found: &mut Vec<InPath>,
) -> io::Result<()> {
    for name in sys::list_dir(dir)? {
        let st = sys::lstat(dir, &name)?;
        path.push(name.clone());
        match sys::file_type(&st) {
            libc::S_IFDIR => {
                let child = sys::open_dir(dir, &name)?;
                find_inode(child.as_fd(), path, id, found)?;
            }
            libc::S_IFREG if (st.st_dev, st.st_ino) == id => found.push(path.clone()),
            _ => {}
        }
        path.pop();
    }
    Ok(())
}

/// Copies one non-directory inode (regular file or symlink) with owner,
/// mode, xattrs and times.
fn copy_node(
    sdir: BorrowedFd<'_>,
    sname: &[u8],
    st: &libc::stat,
    ddir: BorrowedFd<'_>,
    dname: &[u8],
    chown: bool,
) -> io::Result<()> {
    replace(ddir, dname)?;
    match sys::file_type(st) {
        libc::S_IFREG => {
            let src = sys::openat(sdir, sname, libc::O_RDONLY, 0)?;
            let dst = sys::openat(
                ddir,
                dname,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                0o600,
            )?;
            let mut dst = File::from(dst);
            io::copy(&mut File::from(src.try_clone()?), &mut dst)?;
            if chown {
                sys::lchownat(dst.as_fd(), b"", st.st_uid, st.st_gid)?;
            }
            sys::fchmod(dst.as_fd(), st.st_mode & 0o7777)?;
            for (key, value) in sys::fxattrs(src.as_fd())? {
                if classify(&key) == XattrPolicy::Keep {
                    sys::fsetxattr(dst.as_fd(), &key, &value)?;
                }
            }
            sys::lutimesat(dst.as_fd(), b"", st.st_mtime, st.st_mtime_nsec as u32)
        }
        libc::S_IFLNK => {
            let handle = sys::open_path(sdir, sname)?;
            let target = sys::readlink_fd(handle.as_fd())?;
            sys::symlinkat(&target, ddir, dname)?;
            if chown {
                sys::lchownat(ddir, dname, st.st_uid, st.st_gid)?;
            }
            sys::lutimesat(ddir, dname, st.st_mtime, st.st_mtime_nsec as u32)
        }
        _ => {
            let dev = st.st_rdev;
            sys::mknodat(
                ddir,
                dname,
                sys::file_type(st) | 0o600,
                libc::major(dev),
                libc::minor(dev),
            )?;
            if chown {
                sys::lchownat(ddir, dname, st.st_uid, st.st_gid)?;
            }
            sys::lchmodat(ddir, dname, st.st_mode & 0o7777)?;
            sys::lutimesat(ddir, dname, st.st_mtime, st.st_mtime_nsec as u32)
        }
    }
}
