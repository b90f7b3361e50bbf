//! Layer blobs (as imported: compressed or not) kept next to the unpacked
//! layers, by diff ID, so an image can be pushed with the exact bytes it
//! came with: same diff IDs, so the same config and image ID; for pulled
//! images even the same blob digests, which lets a push skip or mount them.
//!
//! `<store>/layer-blobs/<blob hex>` holds a blob, `<diff-id hex>.json` what
//! it is (digest, size, media type when known, the repository it came
//! from). The store's garbage collection drops entries no image uses.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::digest::Digest;

/// What is known about a kept blob.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CachedBlob {
    pub digest: String,
    pub size: u64,
    /// Empty when the source did not say (archives); compression is sniffed.
    #[serde(default)]
    pub media_type: String,
    /// `registry/repository` it was pulled from or pushed to.
    #[serde(default)]
    pub source: Option<String>,
}

/// The blob cache of one store.
#[derive(Debug, Clone)]
pub struct BlobCache {
    dir: PathBuf,
}

impl BlobCache {
    /// The cache of the store at `root` (created 0700 if missing).
    pub fn open(root: &Path) -> BlobCache {
        let dir = root.join("layer-blobs");
        let _ = fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir);
        BlobCache { dir }
    }

    /// A temporary file in the cache's directory (same file system).
    pub fn temp_file(&self) -> io::Result<tempfile::NamedTempFile> {
        tempfile::Builder::new()
            .prefix(".tmp-blob-")
            .tempfile_in(&self.dir)
    }

    /// Moves `file` (verified to hold `info.digest`) into the cache as the
    /// blob of layer `diff_id`.
    pub fn insert(&self, diff_id: &Digest, file: &Path, info: &CachedBlob) -> io::Result<()> {
        let digest = Digest::parse(&info.digest)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        fs::rename(file, self.dir.join(digest.hex()))?;
        self.describe(diff_id, info)
    }

    /// Records (or replaces) the description of the blob of `diff_id`.
    pub fn describe(&self, diff_id: &Digest, info: &CachedBlob) -> io::Result<()> {
        let bytes = serde_json::to_vec(info).map_err(io::Error::other)?;
        let mut temp = self.temp_file()?;
        temp.write_all(&bytes)?;
        temp.persist(self.dir.join(format!("{}.json", diff_id.hex())))
            .map_err(|e| e.error)?;
        Ok(())
    }

    /// The kept blob of layer `diff_id`, if there is one.
    pub fn get(&self, diff_id: &Digest) -> Option<(PathBuf, CachedBlob)> {
        let bytes = fs::read(self.dir.join(format!("{}.json", diff_id.hex()))).ok()?;
        let info: CachedBlob = serde_json::from_slice(&bytes).ok()?;
        let digest = Digest::parse(&info.digest).ok()?;
        let path = self.dir.join(digest.hex());
        let len = fs::metadata(&path).ok()?.len();
        (len == info.size).then_some((path, info))
    }

    /// Drops every entry whose diff ID is not in `keep`, and blobs no kept
    /// entry names (leftover temporary files too).
    pub fn retain(&self, keep: &BTreeSet<String>) -> io::Result<()> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Ok(());
        };
        let mut blobs = BTreeSet::new();
        let mut files = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(diff) = name.strip_suffix(".json") {
                if keep.contains(diff) {
                    if let Some(info) = fs::read(entry.path())
                        .ok()
                        .and_then(|b| serde_json::from_slice::<CachedBlob>(&b).ok())
                    {
                        if let Ok(d) = Digest::parse(&info.digest) {
                            blobs.insert(d.hex().to_string());
                        }
                    }
                    continue;
                }
            }
            files.push((name, entry.path()));
        }
        for (name, path) in files {
            if !blobs.contains(&name) {
                fs::remove_file(&path)?;
            }
        }
        Ok(())
    }
}

/// A reader that copies what it reads into a file.
pub struct TeeReader<'f, R> {
    inner: R,
    copy: Option<&'f mut File>,
    failed: Option<io::Error>,
}

impl<'f, R: Read> TeeReader<'f, R> {
    pub fn new(inner: R, copy: Option<&'f mut File>) -> Self {
        TeeReader {
            inner,
            copy,
            failed: None,
        }
    }

    /// The first error writing the copy, if any (reading goes on regardless).
    pub fn copy_error(&mut self) -> Option<io::Error> {
        self.failed.take()
    }
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(file) = self.copy.as_mut() {
            if self.failed.is_none() {
                if let Err(e) = file.write_all(&buf[..n]) {
                    self.failed = Some(e);
                }
            }
        }
        Ok(n)
    }
}
