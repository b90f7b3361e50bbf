//! The runner's image documents: OCI index / manifest / config, docker-archive
//! `manifest.json`, image names and digests, resolved through the public API
//! (`layout::read_layout` on an in-memory `Source`, and
//! `archive::ArchiveSource` + `archive::read_archive` on a tar built from the
//! input), plus every document parsed directly.
//!
//! Input: documents separated by a line `--` (`\n--\n`). Document 0 is
//! `index.json`, or `manifest.json` if it starts with `[`; document N >= 1 is
//! the blob `blobs/sha256/<digest of it>` and the archive member `dN` (a
//! document `symlink:TARGET` is a symlink member `dN` instead). So that the
//! fuzzer can pass digest and size verification, `@N` in document i < N is
//! replaced by `sha256:<hex digest of document N>` and `#N` by its size
//! (N = 1..9, documents are finalised from the last one).
//!
//! Invariants: no panic; every image read has `id == sha256(config_bytes)`,
//! as many layers as diff IDs, a manifest whose digest is that of its bytes,
//! validated layer digests and documents within the size caps; the
//! in-memory layout and the oci-archive of the same files agree; normalised
//! names normalise to themselves; parsed configs survive a JSON roundtrip.
#![no_main]

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vigil_runner::image::archive::{read_archive, ArchiveSource};
use vigil_runner::image::digest::Digest;
use vigil_runner::image::layout::read_layout;
use vigil_runner::image::oci::{DockerArchiveItem, ImageConfig, Index, Manifest};
use vigil_runner::image::reference::{normalize, normalize_docker, Reference};
use vigil_runner::image::source::{
    parse_config, FormatError, ImportImage, Source, MAX_CONFIG, MAX_DOCUMENT,
};
use vigil_runner::fsroot::clean;

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Files of an OCI layout, in memory.
struct MemSource {
    files: HashMap<String, Vec<u8>>,
}

fn key(path: &str) -> String {
    let parts: Vec<String> = clean(path.as_bytes())
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    parts.join("/")
}

impl Source for MemSource {
    fn open(&self, path: &str) -> Result<(Box<dyn Read + '_>, u64), FormatError> {
        match self.files.get(&key(path)) {
            Some(bytes) => Ok((Box::new(&bytes[..]), bytes.len() as u64)),
            None => Err(FormatError::Missing {
                what: path.to_string(),
            }),
        }
    }

    fn exists(&self, path: &str) -> bool {
        self.files.contains_key(&key(path))
    }

    fn describe(&self) -> String {
        "in-memory layout".into()
    }
}

fn split_docs(data: &[u8]) -> Vec<Vec<u8>> {
    let mut docs = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(4).position(|w| w == b"\n--\n") {
        docs.push(rest[..i].to_vec());
        rest = &rest[i + 4..];
    }
    docs.push(rest.to_vec());
    docs
}

/// Replaces `@N`/`#N` (N > own index) with the digest/size of document N.
fn substitute(docs: &mut [Vec<u8>]) {
    for i in (0..docs.len()).rev() {
        let mut out = Vec::with_capacity(docs[i].len());
        let doc = &docs[i];
        let mut j = 0;
        while j < doc.len() {
            let c = doc[j];
            let n = doc
                .get(j + 1)
                .filter(|d| (b'1'..=b'9').contains(d))
                .map(|d| usize::from(d - b'0'));
            match (c, n) {
                (b'@', Some(n)) if n > i && n < docs.len() => {
                    out.extend_from_slice(
                        format!("sha256:{}", Digest::of(&docs[n]).hex()).as_bytes(),
                    );
                    j += 2;
                }
                (b'#', Some(n)) if n > i && n < docs.len() => {
                    out.extend_from_slice(docs[n].len().to_string().as_bytes());
                    j += 2;
                }
                _ => {
                    out.push(c);
                    j += 1;
                }
            }
        }
        docs[i] = out;
    }
}

/// A ustar header block for `name` (short names only, as the harness makes).
fn header(name: &str, size: usize, kind: u8, link: &[u8]) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    let link = &link[..link.len().min(100)];
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn append(tar: &mut Vec<u8>, name: &str, data: &[u8]) {
    tar.extend_from_slice(&header(name, data.len(), b'0', b""));
    tar.extend_from_slice(data);
    tar.resize(tar.len().next_multiple_of(512), 0);
}

static DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_temp_dir() {
    if let Some(dir) = DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Where `ArchiveSource` puts its copy of the archive; removed at exit().
fn temp_dir() -> &'static PathBuf {
    DIR.get_or_init(|| {
        let base = std::env::temp_dir();
        let dir = tempfile::Builder::new()
            .prefix("vigil-fuzz-image-")
            .tempdir_in(base)
            .expect("temp dir")
            .keep();
        // SAFETY: registers a plain function.
        unsafe { libc::atexit(remove_temp_dir) };
        dir
    })
}

fn check_images(images: &[ImportImage]) {
    for image in images {
        assert!(image.config_bytes.len() as u64 <= MAX_CONFIG);
        assert_eq!(
            image.id,
            Digest::of(&image.config_bytes),
            "image id is not the config digest"
        );
        assert_eq!(image.layers.len(), image.config.rootfs.diff_ids.len());
        if let Some(m) = &image.manifest {
            assert!(m.bytes.len() as u64 <= MAX_DOCUMENT);
            assert_eq!(
                m.digest,
                Digest::of(&m.bytes),
                "manifest digest is not that of its bytes"
            );
        }
        for (layer, diff_id) in image.layers.iter().zip(&image.config.rootfs.diff_ids) {
            assert_eq!(&layer.diff_id.to_string(), diff_id);
            if let Some(d) = &layer.digest {
                assert_eq!(layer.path, format!("blobs/sha256/{}", d.hex()));
            }
        }
        for name in &image.names {
            assert_eq!(
                normalize(name).as_deref(),
                Ok(name.as_str()),
                "stored name {name:?} does not normalise to itself"
            );
        }
    }
}

fn summary(
    images: &Result<Vec<ImportImage>, FormatError>,
) -> Result<Vec<(String, usize, Vec<String>)>, ()> {
    match images {
        Ok(images) => Ok(images
            .iter()
            .map(|i| (i.id.to_string(), i.layers.len(), i.names.clone()))
            .collect()),
        Err(_) => Err(()),
    }
}

/// `VIGIL_FUZZ_DEBUG=1`: print each outcome (for looking at seeds).
fn debug() -> bool {
    static DEBUG: OnceLock<bool> = OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("VIGIL_FUZZ_DEBUG").is_some())
}

fn names(s: &str) {
    if s.len() > 1024 {
        return;
    }
    if let Ok(n) = normalize(s) {
        assert_eq!(
            normalize(&n).as_deref(),
            Ok(n.as_str()),
            "normalize({s:?}) = {n:?} is not a fixpoint"
        );
    }
    if let Ok(n) = normalize_docker(s) {
        assert_eq!(
            normalize_docker(&n).as_deref(),
            Ok(n.as_str()),
            "normalize_docker({s:?}) = {n:?} is not a fixpoint"
        );
    }
    if let Ok(r) = Reference::parse(s) {
        let _ = r.matches(&r.clone().normalized());
    }
    if let Ok(d) = Digest::parse(s) {
        assert_eq!(d.to_string(), s);
        assert!(!d.hex().contains('/') && !d.hex().contains(".."));
    }
}

fn direct(doc: &[u8]) {
    let _ = serde_json::from_slice::<Index>(doc);
    let _ = serde_json::from_slice::<Manifest>(doc);
    let _ = serde_json::from_slice::<Vec<DockerArchiveItem>>(doc);
    if let Ok(cfg) = serde_json::from_slice::<ImageConfig>(doc) {
        let once = serde_json::to_string(&cfg).expect("serialise config");
        let back: ImageConfig = serde_json::from_str(&once).expect("reparse serialised config");
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            once,
            "config JSON roundtrip"
        );
        let n = cfg.rootfs.diff_ids.len();
        let _ = parse_config(doc, "config", n);
        let _ = parse_config(doc, "config", n + 1);
    }
    if let Ok(s) = std::str::from_utf8(doc) {
        names(s);
    }
    // Strings inside JSON documents are names, tags and digests too.
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(doc) {
        let mut stack = vec![&v];
        let mut budget = 256;
        while let Some(v) = stack.pop() {
            budget -= 1;
            if budget == 0 {
                break;
            }
            match v {
                serde_json::Value::String(s) => names(s),
                serde_json::Value::Array(a) => stack.extend(a.iter()),
                serde_json::Value::Object(o) => stack.extend(o.values()),
                _ => {}
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 512 * 1024 {
        return;
    }
    let mut docs = split_docs(data);
    docs.truncate(10);
    substitute(&mut docs);
    for doc in &docs {
        direct(doc);
    }

    let docker = docs[0].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let top = if docker {
        "manifest.json"
    } else {
        "index.json"
    };
    let mut files = HashMap::new();
    files.insert("oci-layout".to_string(), OCI_LAYOUT.to_vec());
    files.insert(top.to_string(), docs[0].clone());
    let mut tar = Vec::new();
    append(&mut tar, "oci-layout", OCI_LAYOUT);
    append(&mut tar, top, &docs[0]);
    for (n, doc) in docs.iter().enumerate().skip(1) {
        let blob = format!("blobs/sha256/{}", Digest::of(doc).hex());
        append(&mut tar, &blob, doc);
        files.insert(blob, doc.clone());
        let member = format!("d{n}");
        match doc.strip_prefix(b"symlink:") {
            Some(target) => {
                tar.extend_from_slice(&header(&member, 0, b'2', target));
            }
            None => {
                append(&mut tar, &member, doc);
                files.insert(member, doc.clone());
            }
        }
    }
    tar.extend_from_slice(&[0u8; 1024]);

    let layout = if docker {
        None
    } else {
        Some(read_layout(&MemSource { files }))
    };
    if let Some(Ok(images)) = &layout {
        check_images(images);
    }
    let archive = ArchiveSource::from_reader(&tar[..], temp_dir(), "fuzz archive".into())
        .expect("the harness' tar is valid");
    let _ = archive.kind();
    let from_archive = read_archive(&archive);
    if let Ok(images) = &from_archive {
        check_images(images);
    }
    if debug() {
        let show = |r: &Result<Vec<ImportImage>, FormatError>| match r {
            Ok(images) => format!(
                "Ok({:?})",
                images
                    .iter()
                    .map(|i| (i.id.short(), i.layers.len(), &i.names, &i.warnings))
                    .collect::<Vec<_>>()
            ),
            Err(e) => format!("Err({e})"),
        };
        eprintln!(
            "image_docs: layout: {}",
            layout.as_ref().map_or("-".into(), show)
        );
        eprintln!("image_docs: archive: {}", show(&from_archive));
    }
    if let Some(layout) = &layout {
        // Same files, two Sources: same outcome. (The archive may add names
        // from a manifest.json, which the harness never writes with index.json.)
        assert_eq!(
            summary(layout),
            summary(&from_archive),
            "in-memory layout and oci-archive disagree"
        );
    }
});
