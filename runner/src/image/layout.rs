//! OCI image layouts: the directory form ([`DirSource`]) and the resolution
//! of `index.json` → (nested indexes →) manifests → configs and layers, used
//! for layout directories and oci-archives alike ([`read_layout`]).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::digest::Digest;
use super::oci::{media, Descriptor, Index, Manifest, Platform};
use super::reference;
use super::source::{
    checked_descriptor, parse_config, parse_json, platform_warning, read_blob, read_limited,
    FormatError, ImportImage, LayerBlob, ManifestBlob, Source, MAX_CONFIG, MAX_DOCUMENT,
};
use crate::fsroot::clean;
use crate::fsroot::sys;

/// How deep nested indexes may go.
const MAX_INDEX_DEPTH: usize = 4;

/// An OCI layout directory. Files are opened component by component with
/// `O_NOFOLLOW`, so a blob that is a symlink (out of the layout or not) is
/// refused, and only regular files are read.
pub struct DirSource {
    dir: OwnedFd,
    path: PathBuf,
}

impl DirSource {
    /// Opens the layout directory `path`.
    pub fn open(path: &Path) -> Result<DirSource, FormatError> {
        let file = File::open(path).map_err(|source| FormatError::Io {
            what: path.display().to_string(),
            source,
        })?;
        let dir = OwnedFd::from(file);
        Ok(DirSource {
            dir,
            path: path.to_path_buf(),
        })
    }

    fn open_file(&self, rel: &str) -> std::io::Result<(File, u64)> {
        let comps = clean(rel.as_bytes());
        let Some((last, parents)) = comps.split_last() else {
            return Err(std::io::Error::from_raw_os_error(libc::EISDIR));
        };
        let mut dir = sys::open_dir(self.dir.as_fd(), b".")?;
        for comp in parents {
            dir = sys::open_dir(dir.as_fd(), comp)?;
        }
        let fd = sys::openat(dir.as_fd(), last, libc::O_RDONLY | libc::O_NONBLOCK, 0)?;
        let st = sys::lstat(fd.as_fd(), b"")?;
        if sys::file_type(&st) != libc::S_IFREG {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        Ok((File::from(fd), st.st_size as u64))
    }
}

impl Source for DirSource {
    fn open(&self, path: &str) -> Result<(Box<dyn Read + '_>, u64), FormatError> {
        match self.open_file(path) {
            Ok((file, size)) => Ok((Box::new(file), size)),
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Err(FormatError::Missing {
                what: format!("{path} in {}", self.describe()),
            }),
            Err(source) => Err(FormatError::Io {
                what: format!("{path} in {}", self.describe()),
                source,
            }),
        }
    }

    fn exists(&self, path: &str) -> bool {
        self.open_file(path).is_ok()
    }

    fn describe(&self) -> String {
        format!("OCI layout {}", self.path.display())
    }
}

/// Checks the `oci-layout` file.
fn check_layout_header(src: &dyn Source) -> Result<(), FormatError> {
    let bytes = read_limited(src, "oci-layout", "oci-layout", 64 * 1024)?;
    let header: serde_json::Value = parse_json(&bytes, "oci-layout")?;
    match header.get("imageLayoutVersion").and_then(|v| v.as_str()) {
        Some(v) if v.starts_with("1.") => Ok(()),
        other => Err(FormatError::Invalid(format!(
            "{}: unsupported imageLayoutVersion {other:?}",
            src.describe()
        ))),
    }
}

/// Reads and checks an index document.
fn parse_index(bytes: &[u8], what: &str) -> Result<Index, FormatError> {
    let index: Index = parse_json(bytes, what)?;
    if index.schema_version != 2 {
        return Err(FormatError::Invalid(format!(
            "{what}: schemaVersion {} is not 2",
            index.schema_version
        )));
    }
    if index.layers.is_some() || index.config.is_some() {
        return Err(FormatError::Invalid(format!(
            "{what}: document has both manifests and layers/config (ambiguous media type)"
        )));
    }
    if let Some(mt) = &index.media_type {
        if !media::is_index(mt) {
            return Err(FormatError::Invalid(format!(
                "{what}: mediaType {mt:?} is not an image index"
            )));
        }
    }
    Ok(index)
}

/// Reads every image of the layout in `src`: each manifest listed in
/// `index.json` (skipping unknown media types and other platforms), with
/// nested indexes resolved to the host platform.
pub fn read_layout(src: &dyn Source) -> Result<Vec<ImportImage>, FormatError> {
    check_layout_header(src)?;
    let bytes = read_limited(src, "index.json", "index.json", MAX_DOCUMENT)?;
    let index = parse_index(&bytes, "index.json")?;
    let host = Platform::host();
    let mut images = Vec::new();
    for desc in &index.manifests {
        if let Some(p) = &desc.platform {
            if !p.matches(&host) {
                continue;
            }
        }
        let manifest_desc = if media::is_manifest(&desc.media_type) {
            desc.clone()
        } else if media::is_index(&desc.media_type) {
            resolve_index(src, desc, &host, 1)?
        } else {
            continue; // unknown media types are skipped (image-layout.md)
        };
        let mut image = read_image(src, &manifest_desc)?;
        image.names = names_of(desc, &mut image.warnings);
        images.push(image);
    }
    if images.is_empty() {
        return Err(FormatError::Invalid(format!(
            "{}: index.json lists no image for {}",
            src.describe(),
            host.display()
        )));
    }
    Ok(images)
}

/// The names an index entry gives its image.
fn names_of(desc: &Descriptor, warnings: &mut Vec<String>) -> Vec<String> {
    let full = desc.annotations.get("io.containerd.image.name");
    let reference = desc.annotations.get("org.opencontainers.image.ref.name");
    let name = match (full, reference) {
        (Some(full), _) => reference::normalize(full),
        // A full name ("localhost/test:base", as podman writes) or a bare
        // one ("base", as skopeo writes), which becomes localhost/base:latest.
        (None, Some(r)) => reference::normalize(r),
        (None, None) => return Vec::new(),
    };
    match name {
        Ok(name) => vec![name],
        Err(err) => {
            warnings.push(format!("ignoring image name: {err}"));
            Vec::new()
        }
    }
}

/// Picks the manifest for `host` from a nested index.
fn resolve_index(
    src: &dyn Source,
    desc: &Descriptor,
    host: &Platform,
    depth: usize,
) -> Result<Descriptor, FormatError> {
    if depth > MAX_INDEX_DEPTH {
        return Err(FormatError::Invalid(format!(
            "image indexes nested deeper than {MAX_INDEX_DEPTH}"
        )));
    }
    let (digest, bytes) = read_blob(src, desc, "image index", MAX_DOCUMENT)?;
    let index = parse_index(&bytes, &format!("image index {digest}"))?;
    let mut fallback = None;
    for entry in &index.manifests {
        let fits = match &entry.platform {
            Some(p) => p.matches(host),
            None => true,
        };
        if !fits {
            continue;
        }
        if media::is_manifest(&entry.media_type) {
            if entry.platform.is_some() {
                return Ok(entry.clone());
            }
            fallback.get_or_insert_with(|| entry.clone());
        } else if media::is_index(&entry.media_type) && fallback.is_none() {
            fallback = Some(resolve_index(src, entry, host, depth + 1)?);
        }
    }
    fallback.ok_or_else(|| {
        FormatError::Invalid(format!(
            "image index {digest} has no image for {}",
            host.display()
        ))
    })
}

/// Reads and verifies one manifest and its config.
fn read_image(src: &dyn Source, desc: &Descriptor) -> Result<ImportImage, FormatError> {
    let (digest, bytes) = read_blob(src, desc, "manifest", MAX_DOCUMENT)?;
    let what = format!("manifest {digest}");
    let manifest: Manifest = parse_json(&bytes, &what)?;
    if manifest.schema_version != 2 {
        return Err(FormatError::Invalid(format!(
            "{what}: schemaVersion {} is not 2",
            manifest.schema_version
        )));
    }
    if manifest.manifests.is_some() {
        return Err(FormatError::Invalid(format!(
            "{what}: document has both manifests and layers/config (ambiguous media type)"
        )));
    }
    let media_type = manifest
        .media_type
        .clone()
        .unwrap_or_else(|| desc.media_type.clone());
    if !media::is_manifest(&media_type) {
        return Err(FormatError::Invalid(format!(
            "{what}: mediaType {media_type:?} is not an image manifest"
        )));
    }
    if !media::is_image_config(&manifest.config.media_type) {
        return Err(FormatError::Invalid(format!(
            "{what}: config media type {:?} is not an image configuration (an artifact, not an image)",
            manifest.config.media_type
        )));
    }
    let (_, config_bytes) = read_blob(src, &manifest.config, "config", MAX_CONFIG)?;
    let id = Digest::of(&config_bytes);
    let (config, diff_ids) = parse_config(
        &config_bytes,
        &format!("config {id}"),
        manifest.layers.len(),
    )?;
    let mut layers = Vec::new();
    for (i, (layer, diff_id)) in manifest.layers.iter().zip(diff_ids).enumerate() {
        let what = format!("layer {} of {}", i + 1, manifest.layers.len());
        if !media::is_layer(&layer.media_type) {
            return Err(FormatError::Invalid(format!(
                "{what}: unsupported media type {:?}",
                layer.media_type
            )));
        }
        let (digest, size) = checked_descriptor(layer, &what)?;
        let path = super::source::blob_path(&digest);
        if !layer.urls.is_empty() && !src.exists(&path) {
            return Err(FormatError::Invalid(format!(
                "{what} ({digest}) is a foreign layer not included in the input; vigil never fetches layer URLs"
            )));
        }
        layers.push(LayerBlob {
            path,
            digest: Some(digest.clone()),
            size: Some(size),
            diff_id,
            what: format!("{what} ({digest})"),
        });
    }
    let mut warnings = Vec::new();
    warnings.extend(platform_warning(&config));
    Ok(ImportImage {
        id,
        config_bytes,
        config,
        manifest: Some(ManifestBlob {
            digest,
            bytes,
            media_type,
        }),
        layers,
        names: Vec::new(),
        warnings,
    })
}
