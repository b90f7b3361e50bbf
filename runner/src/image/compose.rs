//! New images from a parent's layers, new layer tars and a config (`build`,
//! `commit`, `import`), and the layer tars of a stored image (`save`).
//!
//! A new image goes through the same import as `load` (verified, unpacked,
//! recorded atomically), then is tagged. The parent's layers are reused by
//! chain ID, so they keep their diff IDs. The store keeps layers unpacked,
//! not as the tars they came in, so a stored layer written back out from its
//! directory (`save`) has the same content, but not necessarily the same
//! bytes.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::digest::Digest;
use super::layer_tar::{write_tree, TreeOptions};
use super::progress::Progress;
use super::source::{self, FormatError, ImportImage, LayerBlob, ManifestBlob, Source};
use super::store::{ImageRecord, LayerInfo, Store, StoreError};

/// An uncompressed layer tar on disk.
#[derive(Clone, Debug)]
pub struct LayerFile {
    pub path: PathBuf,
    /// sha256 of the file (uncompressed: also the diff ID).
    pub diff_id: Digest,
    pub size: u64,
}

/// A writer that hashes and counts what goes through it.
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub fn finish(self) -> (W, Digest, u64) {
        let hex = hex::encode(self.hasher.finalize());
        let digest = Digest::from_hex(&hex).unwrap_or_else(|| Digest::of(b""));
        (self.inner, digest, self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn io_err(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> StoreError {
    let what = what.to_string();
    move |source| StoreError::Io { what, source }
}

/// Writes `produce`'s output to `path`, hashing it.
pub fn write_layer_file(
    path: &Path,
    produce: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<LayerFile, StoreError> {
    let file = File::create(path).map_err(io_err(path.display()))?;
    let mut w = HashingWriter::new(BufWriter::new(file));
    produce(&mut w).map_err(io_err(path.display()))?;
    w.flush().map_err(io_err(path.display()))?;
    let (_, diff_id, size) = w.finish();
    Ok(LayerFile {
        path: path.to_path_buf(),
        diff_id,
        size,
    })
}

/// The tar of a directory tree (layer form: whiteouts as `.wh.` files).
pub fn tree_layer(
    tree: &Path,
    path: &Path,
    exclude: &dyn Fn(&str) -> bool,
) -> Result<LayerFile, StoreError> {
    write_layer_file(path, |w| {
        let opts = TreeOptions {
            layer: true,
            exclude,
            ..Default::default()
        };
        write_tree(tree, w, &opts).map(|_| ())
    })
}

/// The layer tars of a stored image, written into `dir` (`layer-N.tar`).
pub fn stored_layers(record: &ImageRecord, dir: &Path) -> Result<Vec<LayerFile>, StoreError> {
    record
        .layer_dirs()
        .iter()
        .enumerate()
        .map(|(i, layer)| tree_layer(layer, &dir.join(format!("layer-{i}.tar")), &|_| false))
        .collect()
}

/// What [`add_image`] adds to the store.
pub struct NewImage<'a> {
    /// Layers already in the store (the parent image's), lowest first:
    /// found by chain ID, never read again, so they keep their diff IDs.
    pub parent_layers: &'a [LayerInfo],
    /// New layers on top, lowest first. The store moves the files into
    /// its blob cache (kept for push).
    pub layers: &'a [LayerFile],
    /// The image config document; its `rootfs.diff_ids` must list the
    /// parent's diff IDs, then the new layers' ([`config_with_layers`]).
    pub config: Vec<u8>,
    /// Names to give it (tagged after the import).
    pub names: &'a [String],
    /// Docker media types in its manifest (`--format docker`), else OCI.
    pub docker: bool,
}

/// The manifest a new image is recorded with (its digest is the image's
/// `Digest` in `images --digests` and `inspect`): the config and the layers
/// as the store keeps them, uncompressed, so a layer's digest is its diff ID.
/// `push` writes its own, for the blobs it sends.
fn manifest(
    config: &[u8],
    parent: &[LayerInfo],
    layers: &[LayerFile],
    docker: bool,
) -> Result<ManifestBlob, StoreError> {
    let (manifest_type, config_type, layer_type) = if docker {
        (
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar",
        )
    } else {
        (
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar",
        )
    };
    let descriptors: Vec<Value> = parent
        .iter()
        .map(|l| (&l.diff_id, l.size))
        .chain(layers.iter().map(|l| (&l.diff_id, l.size)))
        .map(|(digest, size)| {
            json!({"mediaType": layer_type, "digest": digest.to_string(), "size": size})
        })
        .collect();
    let doc = json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {
            "mediaType": config_type,
            "digest": Digest::of(config).to_string(),
            "size": config.len(),
        },
        "layers": descriptors,
    });
    let bytes = serde_json::to_vec(&doc).map_err(|e| StoreError::Corrupt {
        what: "new image manifest".into(),
        reason: e.to_string(),
    })?;
    Ok(ManifestBlob {
        digest: Digest::of(&bytes),
        bytes,
        media_type: manifest_type.into(),
    })
}

/// The image config with `layers` as its diff IDs (`save`).
pub fn with_diff_ids(config: Value, layers: &[LayerFile]) -> Value {
    set_diff_ids(
        config,
        layers.iter().map(|l| l.diff_id.to_string()).collect(),
    )
}

fn set_diff_ids(mut config: Value, diff_ids: Vec<String>) -> Value {
    config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
    config
}

/// `config` with `rootfs.diff_ids` set to `parent` then `layers`, as bytes.
pub fn config_with_layers(
    config: Value,
    parent: &[LayerInfo],
    layers: &[LayerFile],
) -> Result<Vec<u8>, StoreError> {
    let diff_ids: Vec<String> = parent
        .iter()
        .map(|l| l.diff_id.to_string())
        .chain(layers.iter().map(|l| l.diff_id.to_string()))
        .collect();
    serde_json::to_vec(&set_diff_ids(config, diff_ids)).map_err(|e| StoreError::Corrupt {
        what: "new image config".into(),
        reason: e.to_string(),
    })
}

/// Serves the new layer files to the store's import (`layer-N`).
struct NewLayers<'a>(&'a [LayerFile]);

impl NewLayers<'_> {
    fn find(&self, path: &str) -> Option<&LayerFile> {
        let n: usize = path.strip_prefix("layer-")?.parse().ok()?;
        self.0.get(n)
    }
}

impl Source for NewLayers<'_> {
    fn open(&self, path: &str) -> Result<(Box<dyn Read + '_>, u64), FormatError> {
        let layer = self
            .find(path)
            .ok_or_else(|| FormatError::Missing { what: path.into() })?;
        let file = File::open(&layer.path).map_err(|source| FormatError::Io {
            what: layer.path.display().to_string(),
            source,
        })?;
        Ok((Box::new(file), layer.size))
    }

    fn exists(&self, path: &str) -> bool {
        self.find(path).is_some()
    }

    fn describe(&self) -> String {
        "new layers".into()
    }

    /// The layer files are ours: the store moves them instead of copying.
    fn blob_file(&self, path: &str) -> Option<PathBuf> {
        self.find(path).map(|l| l.path.clone())
    }
}

/// Adds a new image to the store: the parent's layers as they are, the new
/// layer tars through the same verified import as `load` (unpacked by the
/// safe unpacker into layer directories shared by chain ID), the config as
/// given. The ID is the config's digest, so the same config twice gives the
/// same image (`build`'s cache). Used by `build` (every step), `commit`,
/// `import` and `build --squash`.
pub fn add_image(store: &Store, image: NewImage<'_>) -> Result<ImageRecord, StoreError> {
    let count = image.parent_layers.len() + image.layers.len();
    let (config, _) = source::parse_config(&image.config, "image config", count)?;
    let parent = image.parent_layers.iter().map(|l| LayerBlob {
        // Already in the store (by chain ID): never opened.
        path: String::new(),
        digest: None,
        size: None,
        diff_id: l.diff_id.clone(),
        what: format!("layer {}", l.diff_id),
    });
    let new = image.layers.iter().enumerate().map(|(i, l)| LayerBlob {
        path: format!("layer-{i}"),
        digest: None,
        size: None,
        diff_id: l.diff_id.clone(),
        what: format!("new layer {}", l.diff_id),
    });
    let manifest = manifest(
        &image.config,
        image.parent_layers,
        image.layers,
        image.docker,
    )?;
    let import = ImportImage {
        id: Digest::of(&image.config),
        config_bytes: image.config,
        config,
        manifest: Some(manifest),
        layers: parent.chain(new).collect(),
        names: Vec::new(),
        warnings: Vec::new(),
    };
    let record = store
        .import(&NewLayers(image.layers), &import, &mut Progress::new(false))?
        .record;
    if image.names.is_empty() {
        Ok(record)
    } else {
        store.tag(record.id.hex(), image.names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_writer_counts_and_hashes() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (bytes, digest, n) = w.finish();
        assert_eq!((bytes.as_slice(), n), (&b"abc"[..], 3));
        assert_eq!(digest, Digest::of(b"abc"));
    }
}
