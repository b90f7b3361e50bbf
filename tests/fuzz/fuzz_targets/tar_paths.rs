//! Layer unpacking (runner/src/image/unpack/): `apply_layer` of a hostile tar
//! stream into a fresh directory inside a sandbox.
//!
//! Input: byte 0 is flags (bit 0: overlay mode with a lower layer, else
//! flat; bit 1: structured input; bit 2: device entries skipped, else
//! placeholder files — real device nodes are never made here). The rest is
//! - raw mode: a tar stream; the harness only repairs header checksums
//!   (walking the headers as a tar reader does), so mutations reach the
//!   unpacker instead of dying at the checksum;
//! - structured mode: entries decoded with `arbitrary` (paths built from
//!   `..`, `.`, `/`, whiteout and sandbox names, symlink and hard-link
//!   targets, PAX and GNU long names, xattrs) and serialised to a tar stream.
//!
//! Invariants (cheap ones, checked after every input): nothing outside the
//! target changes — the sandbox holds exactly what the harness put there,
//! the sentinel directory next to the target stays empty, a file next to it
//! keeps its content and link count, the lower layer is unchanged (content,
//! modes, link counts), and the target is still a directory; `clean()` never
//! yields `..`, `.`, empty or `/`-containing components; PAX times have
//! nanoseconds below 1e9. Errors are fine, panics and hangs are not.
#![no_main]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use vigil_runner::fsroot::clean;
use vigil_runner::image::unpack::{
    apply_layer, parse_pax_time, DevicePolicy, Limits, Mode, Options,
};

const OUTSIDE: &[u8] = b"outside the target\n";

struct Sandbox {
    dir: PathBuf,
    lower_snapshot: BTreeMap<PathBuf, (u32, u64, u64, Vec<u8>)>,
}

fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u32, u64, u64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = fs::symlink_metadata(&p).expect("lstat in lower layer");
        let content = if md.file_type().is_file() {
            fs::read(&p).expect("read lower file")
        } else if md.file_type().is_symlink() {
            fs::read_link(&p)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes()
        } else {
            Vec::new()
        };
        if md.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        out.insert(
            p.strip_prefix(root).unwrap().to_path_buf(),
            (md.mode(), md.nlink(), md.size(), content),
        );
    }
    out
}

static SB: OnceLock<Sandbox> = OnceLock::new();

/// libFuzzer leaves with exit(): remove the sandbox then (not after a crash,
/// when it is evidence; scripts/fuzz runs with TMPDIR in a scratch directory).
extern "C" fn remove_sandbox() {
    if let Some(sb) = SB.get() {
        remove_tree(&sb.dir);
    }
}

fn sandbox() -> &'static Sandbox {
    SB.get_or_init(|| {
        let base = std::env::temp_dir();
        let dir = tempfile::Builder::new()
            .prefix("vigil-fuzz-tar-")
            .tempdir_in(base)
            .expect("sandbox")
            .keep();
        fs::create_dir(dir.join("sentinel")).unwrap();
        fs::write(dir.join("outside"), OUTSIDE).unwrap();
        let lower = dir.join("lower");
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::create_dir_all(lower.join("usr/bin")).unwrap();
        fs::create_dir_all(lower.join("opq/sub")).unwrap();
        fs::write(lower.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
        fs::write(lower.join("usr/bin/sh"), b"#!lower\n").unwrap();
        fs::write(lower.join("opq/sub/f"), b"lower f\n").unwrap();
        std::os::unix::fs::symlink("usr/bin", lower.join("bin")).unwrap();
        std::os::unix::fs::symlink("../sentinel", lower.join("escape")).unwrap();
        std::os::unix::fs::symlink("/", lower.join("rootlink")).unwrap();
        let lower_snapshot = snapshot(&lower);
        // SAFETY: registers a plain function.
        unsafe { libc::atexit(remove_sandbox) };
        Sandbox {
            dir,
            lower_snapshot,
        }
    })
}

/// Removes a tree whatever its modes (the layer may have made 0000 dirs).
fn remove_tree(p: &Path) {
    let Ok(md) = fs::symlink_metadata(p) else {
        return;
    };
    if md.is_dir() {
        let _ = fs::set_permissions(p, fs::Permissions::from_mode(0o700));
        if let Ok(rd) = fs::read_dir(p) {
            for e in rd.flatten() {
                remove_tree(&e.path());
            }
        }
        fs::remove_dir(p).unwrap_or_else(|e| panic!("cannot remove {}: {e}", p.display()));
    } else {
        fs::remove_file(p).unwrap_or_else(|e| panic!("cannot remove {}: {e}", p.display()));
    }
}

fn check_sandbox(sb: &Sandbox, with_target: bool) {
    let mut names: Vec<String> = fs::read_dir(&sb.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let expected: &[&str] = if with_target {
        &["lower", "outside", "sentinel", "target"]
    } else {
        &["lower", "outside", "sentinel"]
    };
    assert_eq!(names, expected, "something appeared next to the target");
    let sentinel: Vec<_> = fs::read_dir(sb.dir.join("sentinel")).unwrap().collect();
    assert!(
        sentinel.is_empty(),
        "the sentinel directory outside the target was written to"
    );
    let md = fs::symlink_metadata(sb.dir.join("outside")).unwrap();
    assert!(
        md.is_file() && md.nlink() == 1,
        "the file outside the target was replaced or hard-linked"
    );
    assert_eq!(
        fs::read(sb.dir.join("outside")).unwrap(),
        OUTSIDE,
        "the file outside the target changed"
    );
    assert!(
        snapshot(&sb.dir.join("lower")) == sb.lower_snapshot,
        "the lower layer changed"
    );
}

// ---------------------------------------------------------------- raw mode

fn octal(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        // base-256
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let s: Vec<u8> = field
        .iter()
        .copied()
        .filter(|b| !matches!(b, 0 | b' '))
        .collect();
    let s = std::str::from_utf8(&s).ok()?;
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

fn set_checksum(h: &mut [u8]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// Repairs the checksums of the header blocks a tar reader would visit.
fn fix_checksums(buf: &mut [u8]) {
    let mut off = 0usize;
    while off + 512 <= buf.len() {
        let h = &mut buf[off..off + 512];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        set_checksum(h);
        let Some(size) = octal(&h[124..136]) else {
            break;
        };
        let mut next = off + 512;
        if h[156] == b'S' && h[482] != 0 {
            // GNU sparse extension blocks follow the header.
            while next + 512 <= buf.len() {
                let ext = buf[next + 504];
                next += 512;
                if ext == 0 {
                    break;
                }
            }
        }
        let Ok(size) = usize::try_from(size) else {
            break;
        };
        let Some(n) = size
            .checked_next_multiple_of(512)
            .and_then(|s| next.checked_add(s))
        else {
            break;
        };
        off = n;
    }
}

// --------------------------------------------------------- structured mode

#[derive(Arbitrary, Debug)]
enum Comp {
    Dot,
    DotDot,
    Empty,
    A,
    B,
    Etc,
    Bin,
    Sentinel,
    Outside,
    Target,
    Whiteout(u8),
    Opaque,
    Plink,
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Name {
    absolute: bool,
    comps: Vec<Comp>,
}

impl Name {
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.absolute {
            out.push(b'/');
        }
        for (i, c) in self.comps.iter().enumerate() {
            if i > 0 {
                out.push(b'/');
            }
            match c {
                Comp::Dot => out.extend_from_slice(b"."),
                Comp::DotDot => out.extend_from_slice(b".."),
                Comp::Empty => {}
                Comp::A => out.extend_from_slice(b"a"),
                Comp::B => out.extend_from_slice(b"b"),
                Comp::Etc => out.extend_from_slice(b"etc"),
                Comp::Bin => out.extend_from_slice(b"bin"),
                Comp::Sentinel => out.extend_from_slice(b"sentinel"),
                Comp::Outside => out.extend_from_slice(b"outside"),
                Comp::Target => out.extend_from_slice(b"target"),
                Comp::Whiteout(n) => {
                    out.extend_from_slice(b".wh.");
                    out.extend_from_slice(match n % 6 {
                        0 => &b"a"[..],
                        1 => b"b",
                        2 => b"etc",
                        3 => b"",
                        4 => b"..",
                        _ => b"bin",
                    });
                }
                Comp::Opaque => out.extend_from_slice(b".wh..wh..opq"),
                Comp::Plink => out.extend_from_slice(b".wh..wh.plnk"),
                Comp::Raw(r) => out.extend(r.iter().copied().filter(|&b| b != 0).take(300)),
            }
        }
        out
    }
}

#[derive(Arbitrary, Debug)]
enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Fifo,
    Char,
    Block,
    Sparse,
    Other(u8),
}

#[derive(Arbitrary, Debug)]
enum Pax {
    Path(Name),
    Linkpath(Name),
    Mtime(Vec<u8>),
    Xattr(Vec<u8>, Vec<u8>),
    Size(u32),
    Other(Vec<u8>, Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Item {
    name: Name,
    kind: Kind,
    link: Name,
    mode: u16,
    uid: u16,
    gid: u16,
    mtime: u32,
    data: Vec<u8>,
    pax: Vec<Pax>,
    gnu_long: bool,
}

#[derive(Arbitrary, Debug)]
struct Layer {
    items: Vec<Item>,
    pax_time: Vec<u8>,
}

fn header(name: &[u8], size: u64, kind: u8, link: &[u8], it: Option<&Item>) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    let (mode, uid, gid, mtime) = it.map_or((0o644, 0, 0, 0), |i| {
        (
            u32::from(i.mode),
            u32::from(i.uid),
            u32::from(i.gid),
            i.mtime,
        )
    });
    h[100..108].copy_from_slice(format!("{:07o}\0", mode & 0o7777).as_bytes());
    h[108..116].copy_from_slice(format!("{uid:07o}\0").as_bytes());
    h[116..124].copy_from_slice(format!("{gid:07o}\0").as_bytes());
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(format!("{mtime:011o}\0").as_bytes());
    h[156] = kind;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[329..337].copy_from_slice(b"0000001\0");
    h[337..345].copy_from_slice(b"0000003\0");
    set_checksum(&mut h);
    h
}

fn push_entry(out: &mut Vec<u8>, h: [u8; 512], data: &[u8]) {
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(512), 0);
}

fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn build(layer: &Layer) -> Vec<u8> {
    let mut out = Vec::new();
    for it in layer.items.iter().take(64) {
        let name = it.name.bytes();
        let link = it.link.bytes();
        if !it.pax.is_empty() {
            let mut recs = Vec::new();
            for p in it.pax.iter().take(8) {
                match p {
                    Pax::Path(n) => pax_record(&mut recs, b"path", &n.bytes()),
                    Pax::Linkpath(n) => pax_record(&mut recs, b"linkpath", &n.bytes()),
                    Pax::Mtime(v) => pax_record(&mut recs, b"mtime", v),
                    Pax::Xattr(k, v) => {
                        let mut key = b"SCHILY.xattr.".to_vec();
                        key.extend(k.iter().copied().filter(|&b| b != b'=' && b != 0));
                        pax_record(&mut recs, &key, v);
                    }
                    Pax::Size(s) => pax_record(&mut recs, b"size", s.to_string().as_bytes()),
                    Pax::Other(k, v) => pax_record(
                        &mut recs,
                        &k.iter().copied().filter(|&b| b != b'=').collect::<Vec<_>>(),
                        v,
                    ),
                }
            }
            push_entry(
                &mut out,
                header(b"PaxHeaders/x", recs.len() as u64, b'x', b"", None),
                &recs,
            );
        }
        if it.gnu_long || name.len() > 100 {
            let mut d = name.clone();
            d.push(0);
            push_entry(
                &mut out,
                header(b"././@LongLink", d.len() as u64, b'L', b"", None),
                &d,
            );
        }
        if it.gnu_long || link.len() > 100 {
            let mut d = link.clone();
            d.push(0);
            push_entry(
                &mut out,
                header(b"././@LongLink", d.len() as u64, b'K', b"", None),
                &d,
            );
        }
        let (kind, data): (u8, &[u8]) = match it.kind {
            Kind::File => (b'0', &it.data),
            Kind::Dir => (b'5', &[]),
            Kind::Symlink => (b'2', &[]),
            Kind::Hardlink => (b'1', &[]),
            Kind::Fifo => (b'6', &[]),
            Kind::Char => (b'3', &[]),
            Kind::Block => (b'4', &[]),
            Kind::Sparse => (b'S', &it.data),
            Kind::Other(k) => (k, &it.data),
        };
        let mut h = header(&name, data.len() as u64, kind, &link, Some(it));
        if kind == b'S' {
            // GNU sparse: old-GNU magic, one region at offset 4 GiB, real size just past it.
            h[257..265].copy_from_slice(b"ustar  \0");
            h[386..398].copy_from_slice(b"40000000000\0");
            h[398..410].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
            h[483..495]
                .copy_from_slice(format!("{:011o}\0", (4u64 << 30) + data.len() as u64).as_bytes());
            set_checksum(&mut h);
        }
        push_entry(&mut out, h, data);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

// ------------------------------------------------------------------ target

/// `VIGIL_FUZZ_DEBUG=1`: print each outcome (for looking at seeds).
fn debug() -> bool {
    static DEBUG: OnceLock<bool> = OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("VIGIL_FUZZ_DEBUG").is_some())
}

fn check_clean(raw: &[u8]) {
    for c in clean(raw) {
        assert!(
            !c.is_empty() && c != b"." && c != b".." && !c.contains(&b'/'),
            "clean({raw:?}) gave {c:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    if body.len() > 1 << 20 {
        return;
    }
    let stream = if flags & 2 == 0 {
        let mut raw = body.to_vec();
        fix_checksums(&mut raw);
        raw
    } else {
        let Ok(layer) = Layer::arbitrary_take_rest(Unstructured::new(body)) else {
            return;
        };
        if let Some((_, nsec)) = parse_pax_time(&layer.pax_time) {
            assert!(
                nsec < 1_000_000_000,
                "PAX time {:?}: nsec {nsec}",
                layer.pax_time
            );
        }
        for it in &layer.items {
            check_clean(&it.name.bytes());
            check_clean(&it.link.bytes());
        }
        build(&layer)
    };
    check_clean(body);

    let sb = sandbox();
    let target = sb.dir.join("target");
    fs::create_dir(&target).expect("fresh target");
    let mut opts = Options::new(if flags & 1 == 1 {
        Mode::Overlay
    } else {
        Mode::Flat
    });
    if opts.mode == Mode::Overlay {
        opts.lower_dirs = vec![sb.dir.join("lower")];
    }
    opts.devices = if flags & 4 == 0 {
        DevicePolicy::Placeholder
    } else {
        DevicePolicy::Skip
    };
    opts.limits = Limits {
        max_bytes: 8 << 20,
        max_entries: 4096,
    };
    let result = apply_layer(&stream[..], &target, &opts);
    if debug() {
        eprintln!(
            "tar_paths: {:?} {:?}: {:?}",
            opts.mode, opts.devices, result
        );
    }
    if let Ok(report) = &result {
        assert!(report.bytes <= opts.limits.max_bytes && report.entries <= opts.limits.max_entries);
    } else if let Err(e) = &result {
        let _ = e.to_string();
    }
    let md = fs::symlink_metadata(&target).expect("target still exists");
    assert!(md.is_dir(), "the target itself was replaced");
    check_sandbox(sb, true);
    remove_tree(&target);
    check_sandbox(sb, false);
});
