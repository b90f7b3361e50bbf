//! New images from layer tars and a config (`import`, `commit`), and the
//! layer tars of a stored image (`save`, `commit`'s base layers).
//!
//! A new image is written as an OCI layout in the store's `tmp/` and
//! imported through the same path as `load` (verified, unpacked, recorded
//! atomically), then tagged. The store keeps layers unpacked, not as the tars
//! they came in, so a stored layer is written back out from its directory
//! (`layer_tar`): same content, but not necessarily the same bytes, so the
//! diff IDs (and with them the image ID) change unless the tar reproduces.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::digest::Digest;
use super::layer_tar::{write_tree, TreeOptions};
use super::layout::{read_layout, DirSource};
use super::progress::Progress;
use super::store::{ImageRecord, Store, StoreError};

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

/// The image config with `layers` as its diff IDs.
pub fn with_diff_ids(mut config: Value, layers: &[LayerFile]) -> Value {
    config["rootfs"] = json!({
        "type": "layers",
        "diff_ids": layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>(),
    });
    config
}

/// Adds an image made of `config` (its `rootfs` is set from `layers`) to
/// the store, named `names`. `work` is a scratch directory (in the store's
/// `tmp/`, so layer files can be moved rather than copied).
pub fn add_image(
    store: &Store,
    config: Value,
    layers: &[LayerFile],
    names: &[String],
    work: &Path,
) -> Result<ImageRecord, StoreError> {
    let config = with_diff_ids(config, layers);
    let layout = work.join("layout");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(io_err(blobs.display()))?;
    let mut descriptors = Vec::new();
    for layer in layers {
        let dest = blobs.join(layer.diff_id.hex());
        if fs::hard_link(&layer.path, &dest).is_err() {
            fs::copy(&layer.path, &dest).map_err(io_err(dest.display()))?;
        }
        descriptors.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer.diff_id.to_string(),
            "size": layer.size,
        }));
    }
    let write_blob = |bytes: &[u8]| -> Result<(Digest, usize), StoreError> {
        let digest = Digest::of(bytes);
        let path = blobs.join(digest.hex());
        fs::write(&path, bytes).map_err(io_err(path.display()))?;
        Ok((digest, bytes.len()))
    };
    let config_bytes = serde_json::to_vec(&config).map_err(|e| StoreError::Corrupt {
        what: "new image config".into(),
        reason: e.to_string(),
    })?;
    let (config_digest, config_size) = write_blob(&config_bytes)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config_size,
        },
        "layers": descriptors,
    });
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    let (manifest_digest, manifest_size) = write_blob(&manifest_bytes)?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest.to_string(),
            "size": manifest_size,
        }],
    });
    for (name, text) in [
        ("index.json", index.to_string()),
        (
            "oci-layout",
            r#"{"imageLayoutVersion":"1.0.0"}"#.to_string(),
        ),
    ] {
        let path = layout.join(name);
        fs::write(&path, text).map_err(io_err(path.display()))?;
    }
    let src = DirSource::open(&layout)?;
    let images = read_layout(&src)?;
    let mut progress = Progress::new(false);
    let mut record = None;
    for image in &images {
        record = Some(store.import(&src, image, &mut progress)?.record);
    }
    let record = record.ok_or_else(|| StoreError::Corrupt {
        what: "new image".into(),
        reason: "the layout held no image".into(),
    })?;
    if names.is_empty() {
        Ok(record)
    } else {
        store.tag(record.id.hex(), names)
    }
}

/// RFC 3339 (seconds, UTC) of a Unix time, as image configs write `created`.
pub fn rfc3339_seconds(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_hashes() {
        assert_eq!(rfc3339_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_seconds(981_173_106), "2001-02-03T04:05:06Z");
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (bytes, digest, n) = w.finish();
        assert_eq!((bytes.as_slice(), n), (&b"abc"[..], 3));
        assert_eq!(digest, Digest::of(b"abc"));
    }
}
