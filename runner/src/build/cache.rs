//! The layer cache (runner-build.md §4): a step's key is the sha256 of the
//! parent image ID, the platform and format, its `created_by` (which holds
//! the instruction, RUN's ARG prefix and COPY/ADD's content digest) and
//! what else changes its result; the index maps keys to the intermediate
//! image the step committed: `<store>/build-cache/<key>` holds its ID.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};

use crate::image::{ImageRecord, Store};

/// The cache index of a store.
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(store: &Store) -> Cache {
        Cache {
            dir: store.root().join("build-cache"),
        }
    }

    /// The key of a step.
    pub fn key(parts: &[&str]) -> String {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p.as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// The image committed for `key`, if it is still in the store.
    pub fn lookup(&self, store: &Store, key: &str) -> Option<ImageRecord> {
        let id = fs::read_to_string(self.dir.join(key)).ok()?;
        let id = id.trim();
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        store.resolve(id).ok().filter(|r| r.id.hex() == id)
    }

    /// Remembers `id` for `key` (best effort: a lost entry is only a miss).
    pub fn remember(&self, key: &str, id: &str) {
        if fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(&self.dir) {
            if tmp.write_all(id.as_bytes()).is_ok() {
                let _ = tmp.persist(self.dir.join(key));
            }
        }
    }
}
