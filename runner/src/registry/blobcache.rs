//! Compressed layer blobs kept next to the unpacked layers, by diff ID, so
//! an image that was pulled can be pushed back byte for byte (same blob
//! digests, same config, same image ID) and blobs can be mounted across
//! repositories of the source registry.
//!
//! `<store>/layer-blobs/<blob hex>` holds the blob, `<diff-id hex>.json`
//! what it is (digest, size, media type, the repository it came from).

use std::fs;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::image::digest::Digest;
use crate::image::Store;

/// What is known about a cached blob.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CachedBlob {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    /// `registry/repository` it was pulled from or pushed to.
    #[serde(default)]
    pub source: Option<String>,
}

/// The cache of one store.
#[derive(Debug, Clone)]
pub struct BlobCache {
    dir: PathBuf,
}

impl BlobCache {
    pub fn open(store: &Store) -> BlobCache {
        let dir = store.root().join("layer-blobs");
        let _ = fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir);
        BlobCache { dir }
    }

    /// Moves `file` (verified to have `info.digest`) into the cache as the
    /// blob of the layer `diff_id`.
    pub fn insert(&self, diff_id: &Digest, file: &Path, info: &CachedBlob) -> std::io::Result<()> {
        let digest = Digest::parse(&info.digest)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        fs::rename(file, self.dir.join(digest.hex()))?;
        self.describe(diff_id, info)
    }

    /// Records (or updates) the description of the blob of `diff_id`.
    pub fn describe(&self, diff_id: &Digest, info: &CachedBlob) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(info).map_err(std::io::Error::other)?;
        let mut temp = tempfile::NamedTempFile::new_in(&self.dir)?;
        temp.write_all(&bytes)?;
        temp.persist(self.dir.join(format!("{}.json", diff_id.hex())))
            .map_err(|e| e.error)?;
        Ok(())
    }

    /// The cached blob of layer `diff_id`, if there is one.
    pub fn get(&self, diff_id: &Digest) -> Option<(PathBuf, CachedBlob)> {
        let bytes = fs::read(self.dir.join(format!("{}.json", diff_id.hex()))).ok()?;
        let info: CachedBlob = serde_json::from_slice(&bytes).ok()?;
        let digest = Digest::parse(&info.digest).ok()?;
        let path = self.dir.join(digest.hex());
        let len = fs::metadata(&path).ok()?.len();
        (len == info.size).then_some((path, info))
    }
}
