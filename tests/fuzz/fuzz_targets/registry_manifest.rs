//! What a registry serves: manifests and indexes (with any Content-Type and
//! any expected media type from an index entry), platform selection, and
//! `WWW-Authenticate` challenges.
//!
//! Input: byte 0 picks the Content-Type header, byte 1 the expected media
//! type, the rest is the document (and, as text, the challenge header).
//!
//! Invariants: no panic; an accepted manifest has at most 1000 layers, an
//! image config descriptor and valid digests; an accepted index is within
//! the limits and platform selection returns one of its entries or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_runner::registry::challenge;
use vigil_runner::registry::manifest::{self, Document, WantedPlatform, MAX_LAYERS};

const TYPES: [Option<&str>; 8] = [
    None,
    Some("application/json"),
    Some("application/vnd.oci.image.manifest.v1+json"),
    Some("application/vnd.oci.image.index.v1+json"),
    Some("application/vnd.docker.distribution.manifest.v2+json"),
    Some("application/vnd.docker.distribution.manifest.list.v2+json"),
    Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
    Some("text/plain; charset=utf-8"),
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let content_type = TYPES[data[0] as usize % TYPES.len()];
    let expected = TYPES[data[1] as usize % TYPES.len()];
    let doc = &data[2..];
    match manifest::parse(doc, content_type, expected) {
        Ok(Document::Manifest { manifest: m, .. }) => {
            assert!(m.layers.len() <= MAX_LAYERS);
            assert!(manifest::checked(&m.config, "config").is_ok());
            for l in &m.layers {
                assert!(manifest::checked(l, "layer").is_ok());
            }
        }
        Ok(Document::Index { index, .. }) => {
            assert!(index.manifests.len() <= MAX_LAYERS);
            for arch in ["amd64", "arm64", "arm"] {
                let wanted = WantedPlatform {
                    os: "linux".into(),
                    architecture: arch.into(),
                    variant: None,
                };
                if let Ok(entry) = manifest::select(&index, &wanted, "x") {
                    assert!(index.manifests.iter().any(|e| std::ptr::eq(e, entry)));
                }
            }
        }
        Err(_) => {}
    }
    if let Ok(text) = std::str::from_utf8(doc) {
        for c in challenge::parse(&[text]) {
            assert!(!c.scheme.is_empty());
        }
    }
});
