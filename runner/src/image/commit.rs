//! Committing a new image into the store from a parent's layers, an
//! optional new layer tar (from [`super::diff`]) and a config document:
//! the new layer goes through the same verified import path as `vigil
//! load` (unpacked by the safe unpacker into its own layer directory,
//! shared by chain ID), so a built image is like any loaded one.
//!
//! `vigil build` commits every step with it; `vigil commit` can do the
//! same: diff the container's upper directory with
//! [`super::diff::write_upper_dir`], then [`commit`].

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::digest::Digest;
use super::progress::Progress;
use super::source::{self, FormatError, ImportImage, LayerBlob, Source};
use super::store::{ImageRecord, LayerInfo, Store, StoreError};

/// What to commit.
pub struct NewImage<'a> {
    /// The layers below (those of the parent image), lowest first.
    pub parent_layers: &'a [LayerInfo],
    /// A new top layer: the tar file and its diff ID.
    pub layer: Option<(&'a Path, Digest)>,
    /// The image config document; its `rootfs.diff_ids` must list the
    /// parent's diff IDs plus the new one.
    pub config: Vec<u8>,
    /// Normalised names to give it.
    pub names: Vec<String>,
}

/// Serves the one layer tar to the store's import.
struct LayerFile {
    path: PathBuf,
}

const LAYER_NAME: &str = "layer.tar";

impl Source for LayerFile {
    fn open(&self, path: &str) -> Result<(Box<dyn Read + '_>, u64), FormatError> {
        if path != LAYER_NAME {
            return Err(FormatError::Missing { what: path.into() });
        }
        let file = File::open(&self.path).map_err(|source| FormatError::Io {
            what: self.path.display().to_string(),
            source,
        })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok((Box::new(file), size))
    }

    fn exists(&self, path: &str) -> bool {
        path == LAYER_NAME
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    /// The layer tar is ours: the store moves it into its blob cache (kept
    /// for push) instead of copying it.
    fn blob_file(&self, path: &str) -> Option<PathBuf> {
        (path == LAYER_NAME).then(|| self.path.clone())
    }
}

/// Stores the image; returns its record. The ID is the config's digest, so
/// committing the same config twice gives the same image.
pub fn commit(store: &Store, image: NewImage<'_>) -> Result<ImageRecord, StoreError> {
    let count = image.parent_layers.len() + usize::from(image.layer.is_some());
    let (config, _) = source::parse_config(&image.config, "image config", count)?;
    let mut layers: Vec<LayerBlob> = image
        .parent_layers
        .iter()
        .map(|l| LayerBlob {
            // Already in the store (by chain ID): never opened.
            path: String::new(),
            digest: None,
            size: None,
            diff_id: l.diff_id.clone(),
            what: format!("layer {}", l.diff_id),
        })
        .collect();
    let source = LayerFile {
        path: image
            .layer
            .as_ref()
            .map(|(p, _)| p.to_path_buf())
            .unwrap_or_default(),
    };
    if let Some((_, diff_id)) = &image.layer {
        layers.push(LayerBlob {
            path: LAYER_NAME.into(),
            digest: None,
            size: None,
            diff_id: diff_id.clone(),
            what: format!("new layer {diff_id}"),
        });
    }
    let import = ImportImage {
        id: Digest::of(&image.config),
        config_bytes: image.config,
        config,
        manifest: None,
        layers,
        names: image.names,
        warnings: Vec::new(),
    };
    let imported = store.import(&source, &import, &mut Progress::new(false))?;
    Ok(imported.record)
}
