//! vigil's image store.
//!
//! Layout under the store directory (`--root`, `/var/lib/vigil` for root):
//!
//! ```text
//! images.lock                   flock: exclusive around every mutation
//! blobs/sha256/<hex>            image configs and manifests, by digest
//! layers/<chain-id hex>/rootfs  one unpacked layer (overlay representation)
//! layers/<chain-id hex>/layer.json
//! images/<image-id hex>.json    image records
//! tags.json                     name -> image ID
//! tmp/                          temporary files of running pulls, builds, imports
//!                               (swept when their process is gone: `tmpdir`)
//! ```
//!
//! Layers are keyed by chain ID, so a layer is unpacked once and shared by
//! every image built on the same parents; a layer directory is removed when
//! no image record refers to it any more. Every file is written to a
//! temporary name and renamed into place, and an import that fails removes
//! what it created: a half-imported image is never visible.
//!
//! Other runner code only needs [`Store::open`], [`Store::resolve`],
//! [`ImageRecord::config`] (via `config.config`) and
//! [`ImageRecord::layer_dirs`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::blobcache::{BlobCache, CachedBlob, TeeReader};
use super::compress;
use super::digest::{Digest, HashingReader};
use super::oci::{ContainerConfig, ImageConfig};
use super::progress::{Progress, ProgressReader};
use super::reference::{self, Reference, ReferenceError};
use super::source::{FormatError, ImportImage, LayerBlob, Source};
use super::unpack::{self, Mode, Options, UnpackError};
use crate::paths::Paths;

/// Why a store operation failed.
#[derive(Debug)]
pub enum StoreError {
    Io {
        what: String,
        source: io::Error,
    },
    /// The input is not a valid image.
    Format(FormatError),
    /// A layer could not be applied.
    Unpack {
        what: String,
        error: UnpackError,
    },
    /// No image answers to the name or ID.
    NotFound(String),
    /// Several images answer to a short name or ID prefix.
    Ambiguous {
        query: String,
        candidates: Vec<String>,
    },
    Reference(ReferenceError),
    /// A store file that vigil wrote does not parse.
    Corrupt {
        what: String,
        reason: String,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io { what, source } => write!(f, "{what}: {source}"),
            StoreError::Format(err) => err.fmt(f),
            StoreError::Unpack { what, error } => write!(f, "applying {what}: {error}"),
            StoreError::NotFound(q) => write!(f, "{q}: image not known"),
            StoreError::Ambiguous { query, candidates } => {
                write!(
                    f,
                    "{query}: ambiguous image name or ID, matches {}",
                    candidates.join(", ")
                )
            }
            StoreError::Reference(err) => err.fmt(f),
            StoreError::Corrupt { what, reason } => {
                write!(f, "corrupt store file {what}: {reason}")
            }
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            StoreError::Format(err) => Some(err),
            StoreError::Unpack { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<FormatError> for StoreError {
    fn from(err: FormatError) -> Self {
        StoreError::Format(err)
    }
}

impl From<ReferenceError> for StoreError {
    fn from(err: ReferenceError) -> Self {
        StoreError::Reference(err)
    }
}

fn io_err(what: impl fmt::Display) -> impl FnOnce(io::Error) -> StoreError {
    let what = what.to_string();
    move |source| StoreError::Io { what, source }
}

/// One layer of an image as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// The key of the layer directory.
    pub chain_id: Digest,
    /// The digest of the uncompressed layer tar.
    pub diff_id: Digest,
    /// Bytes of the uncompressed layer tar.
    pub size: u64,
}

/// An image in the store.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    /// The image ID (digest of the config).
    pub id: Digest,
    /// Names (`localhost/test:base`), sorted.
    pub names: Vec<String>,
    /// Digest of the manifest the image was loaded from (OCI inputs only).
    pub digest: Option<Digest>,
    pub manifest_media_type: Option<String>,
    /// The parsed image configuration; `config.config` holds Env, Cmd,
    /// Entrypoint, WorkingDir, User, ExposedPorts, Labels, StopSignal.
    pub config: ImageConfig,
    /// Layers, lowest first.
    pub layers: Vec<LayerInfo>,
    /// Sum of the uncompressed layer sizes.
    pub size: u64,
    /// When the image was loaded (seconds since the epoch).
    pub loaded: u64,
    store: PathBuf,
}

impl ImageRecord {
    /// The unpacked layer directories, lowest first. For an overlay mount,
    /// `lowerdir` lists them the other way round (topmost first). Each
    /// directory holds whiteouts as 0/0 character devices and opaque
    /// directories with `trusted.overlay.opaque=y` (`user.overlay.opaque`
    /// when the store was written by a non-root user).
    pub fn layer_dirs(&self) -> Vec<PathBuf> {
        self.layers
            .iter()
            .map(|l| layer_rootfs(&self.store, &l.chain_id))
            .collect()
    }

    /// The container defaults of the image (`config.config`).
    pub fn container_config(&self) -> &ContainerConfig {
        &self.config.config
    }

    /// Copies the image into `target` (an empty directory) as one flat root
    /// file system, applying whiteouts and opaque directories: the fallback
    /// when the layers cannot be mounted with overlayfs. Returns warnings.
    /// Hold [`Store::lock_shared`] while copying.
    pub fn flatten_into(&self, target: &Path) -> Result<Vec<String>, StoreError> {
        let opts = Options::new(Mode::Flat);
        let mut warnings = Vec::new();
        for (layer, dir) in self.layers.iter().zip(self.layer_dirs()) {
            let report = unpack::apply_layer_dir(&dir, target, &opts).map_err(|error| {
                StoreError::Unpack {
                    what: format!("layer {}", layer.diff_id),
                    error,
                }
            })?;
            warnings.extend(report.warnings);
        }
        Ok(warnings)
    }

    /// Where the store keeps the blob `digest` (configs, manifests).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        blob_file(&self.store, digest)
    }

    /// The image config as stored, as JSON (for `image inspect`).
    pub fn raw_config(&self) -> Result<serde_json::Value, StoreError> {
        let path = blob_file(&self.store, &self.id);
        let bytes = fs::read(&path).map_err(io_err(path.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            what: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// The manifest as stored, if any.
    pub fn raw_manifest(&self) -> Result<Option<serde_json::Value>, StoreError> {
        let Some(digest) = &self.digest else {
            return Ok(None);
        };
        let path = blob_file(&self.store, digest);
        let bytes = fs::read(&path).map_err(io_err(path.display()))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                what: path.display().to_string(),
                reason: e.to_string(),
            })
    }
}

/// The on-disk form of an image record.
#[derive(Debug, Serialize, Deserialize)]
struct RecordFile {
    id: String,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    manifest_media_type: Option<String>,
    loaded: u64,
    layers: Vec<LayerFile>,
    size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LayerFile {
    chain_id: String,
    diff_id: String,
    size: u64,
}

/// The diff IDs every image of the store uses.
fn layers_diff_ids(
    store: &Store,
    tags: &BTreeMap<String, String>,
) -> Result<BTreeSet<String>, StoreError> {
    let mut out = BTreeSet::new();
    for id in store.ids()? {
        let record = store.load_record(&id, tags)?;
        out.extend(record.layers.iter().map(|l| l.diff_id.hex().to_string()));
    }
    Ok(out)
}

fn layer_rootfs(store: &Path, chain: &Digest) -> PathBuf {
    store.join("layers").join(chain.hex()).join("rootfs")
}

fn blob_file(store: &Path, digest: &Digest) -> PathBuf {
    store.join("blobs/sha256").join(digest.hex())
}

/// An flock on the store; released when dropped.
pub struct StoreLock {
    _file: File,
}

/// What [`Store::remove`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removal {
    /// Names removed.
    pub untagged: Vec<String>,
    /// The image deleted, if it was (not only untagged).
    pub deleted: Option<Digest>,
}

/// What [`Store::import`] did.
#[derive(Debug, Clone)]
pub struct Imported {
    pub record: ImageRecord,
    /// Non-fatal problems (skipped xattrs, device placeholders...).
    pub warnings: Vec<String>,
}

/// How a query matched.
enum Matched {
    Id,
    Name(String),
}

/// The image store. Cheap to open; every call reads the current state.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed, mode 0700) the store of `paths`.
    pub fn open(paths: &Paths) -> Result<Store, StoreError> {
        Store::open_dir(&paths.store)
    }

    /// Opens (creating if needed) a store in `dir`.
    pub fn open_dir(dir: &Path) -> Result<Store, StoreError> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true).mode(0o700);
        for sub in ["blobs/sha256", "layers", "images", "tmp"] {
            let path = dir.join(sub);
            builder
                .create(&path)
                .map_err(io_err(format!("creating {}", path.display())))?;
        }
        // What a killed pull or build left behind (see `tmpdir`).
        super::tmpdir::sweep_stale(&dir.join("tmp"));
        Ok(Store {
            root: dir.to_path_buf(),
        })
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Is the layer with chain ID `chain` unpacked in the store? (A pull
    /// skips downloading it.)
    pub fn has_layer(&self, chain: &Digest) -> bool {
        self.root
            .join("layers")
            .join(chain.hex())
            .join("layer.json")
            .is_file()
    }

    /// A directory for temporary files on the store's file system.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn flock(&self, shared: bool) -> Result<StoreLock, StoreError> {
        let path = self.root.join("images.lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(path.display()))?;
        loop {
            // flock(LOCK_SH or LOCK_EX).
            let locked = if shared {
                file.lock_shared()
            } else {
                file.lock()
            };
            match locked {
                Ok(()) => return Ok(StoreLock { _file: file }),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(io_err(format!("locking {}", path.display()))(err)),
            }
        }
    }

    /// Takes the store lock exclusively (what every mutation here does).
    pub fn lock(&self) -> Result<StoreLock, StoreError> {
        self.flock(false)
    }

    /// Takes the store lock shared: image records and layers stay as they
    /// are while it is held (e.g. while mounting layers).
    pub fn lock_shared(&self) -> Result<StoreLock, StoreError> {
        self.flock(true)
    }

    fn read_tags(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let path = self.root.join("tags.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                what: path.display().to_string(),
                reason: e.to_string(),
            }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(err) => Err(io_err(path.display())(err)),
        }
    }

    fn write_tags(&self, tags: &BTreeMap<String, String>) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(tags).map_err(|e| StoreError::Corrupt {
            what: "tags".into(),
            reason: e.to_string(),
        })?;
        self.write_atomic(&self.root.join("tags.json"), &bytes)
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = path.parent().unwrap_or(&self.root);
        let mut temp = tempfile::NamedTempFile::new_in(dir)
            .map_err(io_err(format!("writing {}", path.display())))?;
        temp.write_all(bytes)
            .map_err(io_err(format!("writing {}", path.display())))?;
        temp.as_file()
            .sync_all()
            .map_err(io_err(format!("writing {}", path.display())))?;
        temp.persist(path)
            .map_err(|e| io_err(format!("writing {}", path.display()))(e.error))?;
        Ok(())
    }

    fn load_record(
        &self,
        id: &Digest,
        tags: &BTreeMap<String, String>,
    ) -> Result<ImageRecord, StoreError> {
        let path = self.root.join("images").join(format!("{}.json", id.hex()));
        let corrupt = |reason: String| StoreError::Corrupt {
            what: path.display().to_string(),
            reason,
        };
        let bytes = fs::read(&path).map_err(io_err(path.display()))?;
        let file: RecordFile =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let digest_of = |s: &str| Digest::parse(s).map_err(|e| corrupt(e.to_string()));
        let layers = file
            .layers
            .iter()
            .map(|l| {
                Ok(LayerInfo {
                    chain_id: digest_of(&l.chain_id)?,
                    diff_id: digest_of(&l.diff_id)?,
                    size: l.size,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let config_path = blob_file(&self.root, id);
        let config_bytes = fs::read(&config_path).map_err(io_err(config_path.display()))?;
        let config: ImageConfig =
            serde_json::from_slice(&config_bytes).map_err(|e| StoreError::Corrupt {
                what: config_path.display().to_string(),
                reason: e.to_string(),
            })?;
        let names = tags
            .iter()
            .filter(|(_, v)| **v == id.hex())
            .map(|(k, _)| k.clone())
            .collect();
        Ok(ImageRecord {
            id: id.clone(),
            names,
            digest: file.digest.as_deref().map(digest_of).transpose()?,
            manifest_media_type: file.manifest_media_type,
            config,
            layers,
            size: file.size,
            loaded: file.loaded,
            store: self.root.clone(),
        })
    }

    fn ids(&self) -> Result<Vec<Digest>, StoreError> {
        let dir = self.root.join("images");
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(dir.display()))? {
            let entry = entry.map_err(io_err(dir.display()))?;
            let name = entry.file_name();
            let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if let Some(id) = Digest::from_hex(hex) {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Every image, newest config first.
    pub fn list(&self) -> Result<Vec<ImageRecord>, StoreError> {
        let tags = self.read_tags()?;
        let mut records = self
            .ids()?
            .iter()
            .map(|id| self.load_record(id, &tags))
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by(|a, b| {
            b.config
                .created
                .cmp(&a.config.created)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(records)
    }

    /// Finds the image a user means by `query`: a full ID (`sha256:` optional),
    /// a name (exact after normalisation, or a short name such as `busybox`
    /// for `docker.io/library/busybox:latest`), `name@sha256:<manifest>`, or
    /// an unambiguous ID prefix of at least 3 hex digits.
    pub fn resolve(&self, query: &str) -> Result<ImageRecord, StoreError> {
        self.find(query).map(|(record, _)| record)
    }

    fn find(&self, query: &str) -> Result<(ImageRecord, Matched), StoreError> {
        let tags = self.read_tags()?;
        let ids = self.ids()?;
        let hex = query.strip_prefix("sha256:").unwrap_or(query);
        if let Some(id) = Digest::from_hex(hex) {
            if ids.contains(&id) {
                return Ok((self.load_record(&id, &tags)?, Matched::Id));
            }
        }
        if let Ok(wanted) = Reference::parse(query) {
            if let Some(digest) = &wanted.digest {
                for id in &ids {
                    let record = self.load_record(id, &tags)?;
                    let same_repo = record.names.iter().any(|n| {
                        Reference::parse(n).is_ok_and(|stored| {
                            let mut q = wanted.clone();
                            q.digest = None;
                            q.tag = stored.tag.clone();
                            q.matches(&stored)
                        })
                    });
                    if same_repo
                        && record.digest.as_ref().map(|d| d.to_string()).as_deref()
                            == Some(digest.as_str())
                    {
                        return Ok((record, Matched::Id));
                    }
                }
            } else {
                let exact = wanted.clone().normalized().to_string();
                if let Some(id) = tags.get(&exact).and_then(|h| Digest::from_hex(h)) {
                    return Ok((self.load_record(&id, &tags)?, Matched::Name(exact)));
                }
                let hits: Vec<(&String, &String)> = tags
                    .iter()
                    .filter(|(name, _)| {
                        Reference::parse(name).is_ok_and(|stored| wanted.matches(&stored))
                    })
                    .collect();
                let distinct: BTreeSet<&String> = hits.iter().map(|(_, id)| *id).collect();
                if distinct.len() > 1 {
                    return Err(StoreError::Ambiguous {
                        query: query.into(),
                        candidates: hits.iter().map(|(n, _)| (*n).clone()).collect(),
                    });
                }
                if let Some((name, id)) = hits.first() {
                    if let Some(id) = Digest::from_hex(id) {
                        return Ok((
                            self.load_record(&id, &tags)?,
                            Matched::Name((*name).clone()),
                        ));
                    }
                }
            }
        }
        if hex.len() >= 3 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let prefix = hex.to_ascii_lowercase();
            let hits: Vec<&Digest> = ids
                .iter()
                .filter(|id| id.hex().starts_with(&prefix))
                .collect();
            match hits.as_slice() {
                [one] => return Ok((self.load_record(one, &tags)?, Matched::Id)),
                [] => {}
                many => {
                    return Err(StoreError::Ambiguous {
                        query: query.into(),
                        candidates: many.iter().map(|d| d.short().to_string()).collect(),
                    })
                }
            }
        }
        Err(StoreError::NotFound(query.into()))
    }

    /// Adds `names` (normalised as podman does: `x` is `localhost/x:latest`)
    /// to the image `query` refers to, taking them from other images.
    pub fn tag(&self, query: &str, names: &[String]) -> Result<ImageRecord, StoreError> {
        let normalized = names
            .iter()
            .map(|n| reference::normalize(n))
            .collect::<Result<Vec<_>, _>>()?;
        let _lock = self.lock()?;
        let (record, _) = self.find(query)?;
        let mut tags = self.read_tags()?;
        for name in normalized {
            tags.insert(name, record.id.hex().to_string());
        }
        self.write_tags(&tags)?;
        self.resolve(record.id.hex())
    }

    /// Removes `query`: by a name the image has besides others, only that
    /// name; otherwise the image with all its names, then any layer and blob
    /// no remaining image uses.
    pub fn remove(&self, query: &str) -> Result<Removal, StoreError> {
        let _lock = self.lock()?;
        let (record, matched) = self.find(query)?;
        let mut tags = self.read_tags()?;
        if let Matched::Name(name) = &matched {
            if record.names.len() > 1 {
                tags.remove(name);
                self.write_tags(&tags)?;
                return Ok(Removal {
                    untagged: vec![name.clone()],
                    deleted: None,
                });
            }
        }
        tags.retain(|_, id| *id != record.id.hex());
        self.write_tags(&tags)?;
        let path = self
            .root
            .join("images")
            .join(format!("{}.json", record.id.hex()));
        fs::remove_file(&path).map_err(io_err(format!("removing {}", path.display())))?;
        self.collect_garbage()?;
        Ok(Removal {
            untagged: record.names.clone(),
            deleted: Some(record.id),
        })
    }

    /// Removes layer directories and blobs no image record refers to, and
    /// leftovers of interrupted imports. Call with the lock held.
    fn collect_garbage(&self) -> Result<(), StoreError> {
        let tags = self.read_tags()?;
        let mut layers = BTreeSet::new();
        let mut blobs = BTreeSet::new();
        for id in self.ids()? {
            let record = self.load_record(&id, &tags)?;
            layers.extend(record.layers.iter().map(|l| l.chain_id.hex().to_string()));
            blobs.insert(id.hex().to_string());
            blobs.extend(record.digest.iter().map(|d| d.hex().to_string()));
        }
        let diff_ids: BTreeSet<String> = layers_diff_ids(self, &tags)?;
        BlobCache::open(&self.root)
            .retain(&diff_ids)
            .map_err(io_err("cleaning the layer blob cache"))?;
        for (dir, keep) in [("layers", &layers), ("blobs/sha256", &blobs)] {
            let dir = self.root.join(dir);
            for entry in fs::read_dir(&dir).map_err(io_err(dir.display()))? {
                let entry = entry.map_err(io_err(dir.display()))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if keep.contains(&name) {
                    continue;
                }
                let path = entry.path();
                let result = if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                result.map_err(io_err(format!("removing {}", path.display())))?;
            }
        }
        Ok(())
    }

    /// Imports one image read from `src`: verifies and unpacks each layer not
    /// already in the store, stores config and manifest, writes the record
    /// and gives it the image's names. On error nothing new is left behind.
    pub fn import(
        &self,
        src: &dyn Source,
        image: &ImportImage,
        progress: &mut Progress,
    ) -> Result<Imported, StoreError> {
        let _lock = self.lock()?;
        let mut created: Vec<PathBuf> = Vec::new();
        let result = self.import_locked(src, image, progress, &mut created);
        if result.is_err() {
            for dir in created {
                let _ = fs::remove_dir_all(dir);
            }
            let _ = self.collect_garbage();
        }
        result
    }

    fn import_locked(
        &self,
        src: &dyn Source,
        image: &ImportImage,
        progress: &mut Progress,
        created: &mut Vec<PathBuf>,
    ) -> Result<Imported, StoreError> {
        let mut warnings = image.warnings.clone();
        let mut layers = Vec::new();
        let mut parent: Option<Digest> = None;
        let mut lowers: Vec<PathBuf> = Vec::new();
        for (i, blob) in image.layers.iter().enumerate() {
            let chain = Digest::chain(parent.as_ref(), &blob.diff_id);
            let dir = self.root.join("layers").join(chain.hex());
            let size = match self.existing_layer(&dir)? {
                Some(size) => size,
                None => {
                    progress.begin(format!(
                        "Copying blob {}/{} {}",
                        i + 1,
                        image.layers.len(),
                        blob.diff_id.short()
                    ));
                    let (size, layer_warnings) =
                        self.unpack_layer(src, blob, &chain, &dir, &lowers, progress)?;
                    progress.end();
                    created.push(dir.clone());
                    warnings.extend(
                        layer_warnings
                            .into_iter()
                            .map(|w| format!("{}: {w}", blob.what)),
                    );
                    size
                }
            };
            lowers.push(dir.join("rootfs"));
            layers.push(LayerFile {
                chain_id: chain.to_string(),
                diff_id: blob.diff_id.to_string(),
                size,
            });
            parent = Some(chain);
        }
        self.write_atomic(&blob_file(&self.root, &image.id), &image.config_bytes)?;
        if let Some(manifest) = &image.manifest {
            self.write_atomic(&blob_file(&self.root, &manifest.digest), &manifest.bytes)?;
        }
        let record_path = self
            .root
            .join("images")
            .join(format!("{}.json", image.id.hex()));
        let loaded = match fs::read(&record_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<RecordFile>(&b).ok())
        {
            Some(old) => old.loaded,
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        let file = RecordFile {
            id: image.id.hex().to_string(),
            digest: image.manifest.as_ref().map(|m| m.digest.to_string()),
            manifest_media_type: image.manifest.as_ref().map(|m| m.media_type.clone()),
            loaded,
            size: layers.iter().map(|l| l.size).sum(),
            layers,
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| StoreError::Corrupt {
            what: "record".into(),
            reason: e.to_string(),
        })?;
        self.write_atomic(&record_path, &bytes)?;
        let mut tags = self.read_tags()?;
        for name in &image.names {
            tags.insert(name.clone(), image.id.hex().to_string());
        }
        self.write_tags(&tags)?;
        let record = self.load_record(&image.id, &tags)?;
        Ok(Imported { record, warnings })
    }

    /// The size of an already unpacked layer, if `dir` holds one.
    fn existing_layer(&self, dir: &Path) -> Result<Option<u64>, StoreError> {
        let path = dir.join("layer.json");
        match fs::read(&path) {
            Ok(bytes) => {
                let file: LayerFile =
                    serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                        what: path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                Ok(Some(file.size))
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                if dir.exists() {
                    // A leftover without its metadata: redo it.
                    fs::remove_dir_all(dir)
                        .map_err(io_err(format!("removing {}", dir.display())))?;
                }
                Ok(None)
            }
            Err(err) => Err(io_err(path.display())(err)),
        }
    }

    /// Unpacks one layer into a temporary directory, verifies blob digest and
    /// size (when known) and the diff ID, then renames it to `dir`.
    fn unpack_layer(
        &self,
        src: &dyn Source,
        blob: &LayerBlob,
        chain: &Digest,
        dir: &Path,
        lowers: &[PathBuf],
        progress: &mut Progress,
    ) -> Result<(u64, Vec<String>), StoreError> {
        let layers_dir = self.root.join("layers");
        let temp = tempfile::Builder::new()
            .prefix(".tmp-layer-")
            .tempdir_in(&layers_dir)
            .map_err(io_err(format!(
                "creating a directory in {}",
                layers_dir.display()
            )))?;
        let rootfs = temp.path().join("rootfs");
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&rootfs)
            .map_err(io_err(rootfs.display()))?;
        let (reader, actual_size) = src.open(&blob.path)?;
        if let Some(size) = blob.size {
            if actual_size != size {
                return Err(FormatError::SizeMismatch {
                    what: blob.what.clone(),
                    expected: size.to_string(),
                    actual: actual_size,
                }
                .into());
            }
        }
        let limit = blob.size.unwrap_or(u64::MAX).saturating_add(1);
        // The blob is kept for push: moved in when the source hands over a
        // file, else copied as it is read.
        let cache = BlobCache::open(&self.root);
        let handover = src.blob_file(&blob.path);
        let mut copy = match handover {
            Some(_) => None,
            None => cache.temp_file().ok(),
        };
        let mut tee = TeeReader::new(reader.take(limit), copy.as_mut().map(|t| t.as_file_mut()));
        let mut compressed = HashingReader::new(ProgressReader::new(&mut tee, progress));
        let mut opts = Options::new(Mode::Overlay);
        opts.lower_dirs = lowers.iter().rev().cloned().collect();
        let (applied, diff_id, tar_size) = {
            let (_, plain) =
                compress::decompress(&mut compressed).map_err(|source| StoreError::Io {
                    what: format!("reading {}", blob.what),
                    source,
                })?;
            let mut plain = HashingReader::new(plain);
            let applied = unpack::apply_layer(&mut plain, &rootfs, &opts);
            // Trailing bytes (tar padding, zeros) belong to the diff ID too.
            let _ = plain.drain();
            let (diff_id, tar_size) = plain.finish();
            (applied, diff_id, tar_size)
        };
        let _ = compressed.drain();
        let (blob_digest, blob_size) = compressed.finish();
        let copy_failed = tee.copy_error().is_some();
        if let (Some(expected), Some(size)) = (&blob.digest, blob.size) {
            if blob_size != size {
                return Err(FormatError::SizeMismatch {
                    what: blob.what.clone(),
                    expected: size.to_string(),
                    actual: blob_size,
                }
                .into());
            }
            if &blob_digest != expected {
                return Err(FormatError::DigestMismatch {
                    what: blob.what.clone(),
                    expected: expected.to_string(),
                    actual: blob_digest.to_string(),
                }
                .into());
            }
        }
        let report = applied.map_err(|error| StoreError::Unpack {
            what: blob.what.clone(),
            error,
        })?;
        if diff_id != blob.diff_id {
            return Err(FormatError::DigestMismatch {
                what: format!("{}: uncompressed content (diff_id)", blob.what),
                expected: blob.diff_id.to_string(),
                actual: diff_id.to_string(),
            }
            .into());
        }
        let meta = LayerFile {
            chain_id: chain.to_string(),
            diff_id: diff_id.to_string(),
            size: tar_size,
        };
        let bytes = serde_json::to_vec_pretty(&meta).map_err(|e| StoreError::Corrupt {
            what: "layer".into(),
            reason: e.to_string(),
        })?;
        fs::write(temp.path().join("layer.json"), bytes)
            .map_err(io_err(format!("writing layer metadata for {}", blob.what)))?;
        // Layer directories are traversable (overlay needs it); the store root is 0700.
        fs::set_permissions(
            temp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .map_err(io_err(temp.path().display()))?;
        let kept = CachedBlob {
            digest: blob_digest.to_string(),
            size: blob_size,
            media_type: String::new(),
            source: None,
        };
        match (handover, copy) {
            (Some(file), _) => {
                let _ = cache.insert(&diff_id, &file, &kept);
            }
            (None, Some(copy)) if !copy_failed => {
                let path = copy.into_temp_path();
                if cache.insert(&diff_id, &path, &kept).is_ok() {
                    let _ = path.keep();
                }
            }
            _ => {}
        }
        let temp_path = temp.keep();
        if let Err(err) = fs::rename(&temp_path, dir) {
            let _ = fs::remove_dir_all(&temp_path);
            return Err(io_err(format!("moving layer into {}", dir.display()))(err));
        }
        Ok((tar_size, report.warnings))
    }
}
