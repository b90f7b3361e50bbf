//! Shared helpers for the image tests: a raw tar writer (full control over
//! names, PAX and GNU records, so hostile archives can be built), a sandbox
//! with decoy "host" files, and a snapshot of everything outside the target.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// One raw tar header, ustar layout.
#[derive(Clone, Debug)]
pub struct Header {
    pub name: Vec<u8>,
    pub kind: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub link: Vec<u8>,
    pub major: u32,
    pub minor: u32,
    /// Size written in the ustar field (defaults to the data length).
    pub size: Option<u64>,
}

impl Header {
    pub fn new(name: impl AsRef<[u8]>, kind: u8) -> Header {
        Header {
            name: name.as_ref().to_vec(),
            kind,
            mode: if kind == b'5' { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            link: Vec::new(),
            major: 0,
            minor: 0,
            size: None,
        }
    }
}

/// A tar archive built block by block.
#[derive(Default, Clone)]
pub struct Tar {
    buf: Vec<u8>,
}

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    let bytes = text.as_bytes();
    field[..digits].copy_from_slice(&bytes[bytes.len() - digits..]);
    field[digits] = 0;
}

impl Tar {
    pub fn new() -> Tar {
        Tar::default()
    }

    /// Appends a header (name up to 100 bytes is written raw, unchecked) and data.
    pub fn raw(&mut self, h: &Header, data: &[u8]) -> &mut Self {
        let mut block = [0u8; 512];
        let n = h.name.len().min(100);
        block[..n].copy_from_slice(&h.name[..n]);
        octal(&mut block[100..108], u64::from(h.mode));
        octal(&mut block[108..116], h.uid);
        octal(&mut block[116..124], h.gid);
        octal(&mut block[124..136], h.size.unwrap_or(data.len() as u64));
        octal(&mut block[136..148], h.mtime);
        block[156] = h.kind;
        let l = h.link.len().min(100);
        block[157..157 + l].copy_from_slice(&h.link[..l]);
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        octal(&mut block[329..337], u64::from(h.major));
        octal(&mut block[337..345], u64::from(h.minor));
        block[148..156].copy_from_slice(b"        ");
        let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
        octal(&mut block[148..155], sum);
        block[155] = b' ';
        self.buf.extend_from_slice(&block);
        self.data(data)
    }

    fn data(&mut self, data: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.buf.resize(self.buf.len() + pad, 0);
        self
    }

    /// A PAX extended header (`x`) applying to the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        for (key, value) in records {
            let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
            let mut len = rest + 1;
            while len.to_string().len() + rest != len {
                len += 1;
            }
            body.extend_from_slice(format!("{len} {key}=").as_bytes());
            body.extend_from_slice(value);
            body.push(b'\n');
        }
        self.raw(&Header::new("PaxHeader", b'x'), &body)
    }

    /// A GNU long-name record (`L`) for the next entry.
    pub fn gnu_long_name(&mut self, name: &[u8]) -> &mut Self {
        let mut data = name.to_vec();
        data.push(0);
        self.raw(&Header::new("././@LongLink", b'L'), &data)
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.raw(&Header::new(name, b'0'), data)
    }

    pub fn file_with(&mut self, name: &str, data: &[u8], f: impl FnOnce(&mut Header)) -> &mut Self {
        let mut h = Header::new(name, b'0');
        f(&mut h);
        self.raw(&h, data)
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.raw(&Header::new(name, b'5'), b"")
    }

    pub fn dir_with(&mut self, name: &str, f: impl FnOnce(&mut Header)) -> &mut Self {
        let mut h = Header::new(name, b'5');
        f(&mut h);
        self.raw(&h, b"")
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut h = Header::new(name, b'2');
        h.link = target.as_bytes().to_vec();
        h.mode = 0o777;
        self.raw(&h, b"")
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut h = Header::new(name, b'1');
        h.link = target.as_bytes().to_vec();
        self.raw(&h, b"")
    }

    pub fn fifo(&mut self, name: &str) -> &mut Self {
        self.raw(&Header::new(name, b'6'), b"")
    }

    pub fn chardev(&mut self, name: &str, major: u32, minor: u32) -> &mut Self {
        let mut h = Header::new(name, b'3');
        h.major = major;
        h.minor = minor;
        h.mode = 0o666;
        self.raw(&h, b"")
    }

    /// Appends raw bytes (for smuggling tests).
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// The archive with its two end-of-archive blocks.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.buf.clone();
        out.resize(out.len() + 1024, 0);
        out
    }
}

/// What the snapshot records per path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    pub size: u64,
    pub link: Option<PathBuf>,
    pub sha256: Option<String>,
}

/// Every path under `dir` except `exclude` (and below it), not following symlinks.
pub fn snapshot(dir: &Path, exclude: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    walk(dir, dir, exclude, &mut out);
    out
}

fn walk(base: &Path, dir: &Path, exclude: &Path, out: &mut BTreeMap<PathBuf, Node>) {
    let meta = fs::symlink_metadata(dir).expect("lstat");
    out.insert(
        dir.strip_prefix(base).unwrap().to_path_buf(),
        node(dir, &meta),
    );
    if !meta.is_dir() {
        return;
    }
    for entry in fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("dir entry").path();
        if path == exclude {
            continue;
        }
        walk(base, &path, exclude, out);
    }
}

fn node(path: &Path, meta: &fs::Metadata) -> Node {
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        "dir"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_file() {
        "file"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_char_device() {
        "char"
    } else if ft.is_block_device() {
        "block"
    } else {
        "other"
    };
    Node {
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        nlink: meta.nlink(),
        size: if ft.is_file() { meta.len() } else { 0 },
        link: ft.is_symlink().then(|| fs::read_link(path).unwrap()),
        sha256: ft
            .is_file()
            .then(|| hex::encode(Sha256::digest(fs::read(path).unwrap()))),
    }
}

/// A sandbox: `<dir>/host` holds decoys an escape would hit, `<dir>/target`
/// is where layers go.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host");
        fs::create_dir_all(host.join("dir/sub")).unwrap();
        fs::write(host.join("file"), "host secret\n").unwrap();
        fs::write(host.join("dir/keep"), "keep me\n").unwrap();
        fs::write(host.join("dir/sub/deep"), "deep\n").unwrap();
        fs::create_dir(dir.path().join("victim")).unwrap();
        fs::write(dir.path().join("victim/existing"), "victim\n").unwrap();
        fs::write(dir.path().join("outside"), "outside\n").unwrap();
        fs::create_dir(dir.path().join("target")).unwrap();
        Sandbox { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn target(&self) -> PathBuf {
        self.dir.path().join("target")
    }

    /// The absolute path of the decoy `host` directory, as a string.
    pub fn host(&self) -> String {
        self.dir.path().join("host").to_str().unwrap().to_string()
    }

    /// `p` inside the target, where an absolute symlink to `p` resolves in-root.
    pub fn in_root(&self, layer: &Path, p: &str) -> PathBuf {
        layer.join(p.trim_start_matches('/'))
    }

    pub fn snapshot(&self) -> BTreeMap<PathBuf, Node> {
        snapshot(self.path(), &self.target())
    }
}
