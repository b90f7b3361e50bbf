//! Stored images written out as docker-archive, oci-archive, an OCI layout
//! directory or a `dir:` (docker-dir) directory: what `vigil load` and
//! `podman load` read back.
//!
//! Layers are written from their unpacked directories (the store does not
//! keep the tars it was given, see `compose`); when those tars hash to the
//! recorded diff IDs the config is saved unchanged (same image ID),
//! otherwise its `rootfs.diff_ids` are updated.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use serde_json::{json, Value};

use super::compose::{stored_layers, with_diff_ids, HashingWriter, LayerFile};
use super::digest::Digest;
use super::store::{ImageRecord, StoreError};

/// The output formats of `save`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveFormat {
    DockerArchive,
    OciArchive,
    OciDir,
    DockerDir,
}

impl SaveFormat {
    /// Podman's names; the error lists them as Podman does.
    pub fn parse(name: &str) -> Result<SaveFormat, String> {
        match name {
            "docker-archive" => Ok(SaveFormat::DockerArchive),
            "oci-archive" => Ok(SaveFormat::OciArchive),
            "oci-dir" => Ok(SaveFormat::OciDir),
            "docker-dir" => Ok(SaveFormat::DockerDir),
            _ => Err(
                "format value must be one of oci-dir oci-archive docker-dir docker-archive".into(),
            ),
        }
    }

    /// A tar stream (else a directory).
    pub fn is_archive(self) -> bool {
        matches!(self, SaveFormat::DockerArchive | SaveFormat::OciArchive)
    }
}

/// One image to write, with the names to give it.
pub struct SaveImage {
    pub record: ImageRecord,
    pub names: Vec<String>,
}

/// How to write.
pub struct SaveOptions {
    pub format: SaveFormat,
    /// OCI formats: gzip layers (default) or keep them uncompressed.
    pub compress_oci: bool,
    /// docker-dir: gzip layers.
    pub compress_dir: bool,
}

/// A file of the output: where its bytes are, and its mode.
enum Content {
    Bytes(Vec<u8>),
    File(PathBuf),
    Symlink(String),
    Dir,
}

struct OutFile {
    name: String,
    content: Content,
}

fn io_err(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> StoreError {
    let what = what.to_string();
    move |source| StoreError::Io { what, source }
}

/// The config of `record` with diff IDs matching `layers`, and its digest.
fn config_for(record: &ImageRecord, layers: &[LayerFile]) -> Result<(Vec<u8>, Digest), StoreError> {
    let raw = record.raw_config()?;
    let recorded: Vec<String> = record
        .layers
        .iter()
        .map(|l| l.diff_id.to_string())
        .collect();
    let written: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
    if recorded == written {
        let path = record_config_path(record);
        if let Ok(bytes) = fs::read(&path) {
            let digest = Digest::of(&bytes);
            return Ok((bytes, digest));
        }
    }
    let bytes = serde_json::to_vec(&with_diff_ids(raw, layers)).unwrap_or_default();
    let digest = Digest::of(&bytes);
    Ok((bytes, digest))
}

fn record_config_path(record: &ImageRecord) -> PathBuf {
    record.blob_path(&record.id)
}

fn gzip_file(src: &Path, dest: &Path) -> Result<(Digest, u64), StoreError> {
    let mut input = File::open(src).map_err(io_err(src.display()))?;
    let out = File::create(dest).map_err(io_err(dest.display()))?;
    let mut w = HashingWriter::new(io::BufWriter::new(out));
    {
        let mut gz = GzEncoder::new(&mut w, flate2::Compression::default());
        io::copy(&mut input, &mut gz).map_err(io_err(dest.display()))?;
        gz.finish().map_err(io_err(dest.display()))?;
    }
    w.flush().map_err(io_err(dest.display()))?;
    let (_, digest, size) = w.finish();
    Ok((digest, size))
}

/// Writes `images` to `out` (a tar stream) or into the directory `dir`.
/// `work` holds the layer files meanwhile.
pub fn save(
    images: &[SaveImage],
    opts: &SaveOptions,
    work: &Path,
    out: Sink<'_>,
) -> Result<(), StoreError> {
    let mut files = Vec::new();
    match opts.format {
        SaveFormat::DockerArchive => docker_archive(images, work, &mut files)?,
        SaveFormat::OciArchive | SaveFormat::OciDir => oci(images, opts, work, &mut files)?,
        SaveFormat::DockerDir => docker_dir(images, opts, work, &mut files)?,
    }
    match out {
        Sink::Tar(w) => write_tar(&files, w, opts.format == SaveFormat::DockerArchive),
        Sink::Dir(dir) => write_dir(&files, dir),
    }
}

/// Where `save` writes.
pub enum Sink<'a> {
    Tar(&'a mut dyn Write),
    Dir(&'a Path),
}

fn docker_archive(
    images: &[SaveImage],
    work: &Path,
    files: &mut Vec<OutFile>,
) -> Result<(), StoreError> {
    let mut manifest = Vec::new();
    let mut repositories = serde_json::Map::new();
    for (n, image) in images.iter().enumerate() {
        let dir = work.join(format!("image-{n}"));
        fs::create_dir_all(&dir).map_err(io_err(dir.display()))?;
        let layers = stored_layers(&image.record, &dir)?;
        let (config, config_digest) = config_for(&image.record, &layers)?;
        let mut layer_names = Vec::new();
        let mut parent: Option<String> = None;
        let created = image.record.config.created.clone().unwrap_or_default();
        for layer in &layers {
            let name = format!("{}.tar", layer.diff_id.hex());
            let v1 = Digest::of(
                format!("{}\n{}", parent.clone().unwrap_or_default(), layer.diff_id).as_bytes(),
            )
            .hex()
            .to_string();
            if !files.iter().any(|f| f.name == name) {
                files.push(OutFile {
                    name: name.clone(),
                    content: Content::File(layer.path.clone()),
                });
            }
            let mut v1json = json!({"id": v1, "created": created});
            if let Some(p) = &parent {
                v1json["parent"] = json!(p);
            }
            // As `podman save` writes it: no entry for the directory itself.
            for (file, content) in [
                (format!("{v1}/VERSION"), Content::Bytes(b"1.0".to_vec())),
                (
                    format!("{v1}/json"),
                    Content::Bytes(v1json.to_string().into_bytes()),
                ),
                (
                    format!("{v1}/layer.tar"),
                    Content::Symlink(format!("../{name}")),
                ),
            ] {
                if !files.iter().any(|f| f.name == file) {
                    files.push(OutFile {
                        name: file,
                        content,
                    });
                }
            }
            layer_names.push(name);
            parent = Some(v1);
        }
        let config_name = format!("{}.json", config_digest.hex());
        files.push(OutFile {
            name: config_name.clone(),
            content: Content::Bytes(config),
        });
        manifest.push(json!({
            "Config": config_name,
            "RepoTags": image.names,
            "Layers": layer_names,
        }));
        for name in &image.names {
            if let Some((repo, tag)) = name.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
                let entry = repositories
                    .entry(repo.to_string())
                    .or_insert_with(|| json!({}));
                entry[tag] = json!(parent.clone().unwrap_or_default());
            }
        }
    }
    files.push(OutFile {
        name: "manifest.json".into(),
        content: Content::Bytes(Value::Array(manifest).to_string().into_bytes()),
    });
    files.push(OutFile {
        name: "repositories".into(),
        content: Content::Bytes(Value::Object(repositories).to_string().into_bytes()),
    });
    Ok(())
}

fn oci(
    images: &[SaveImage],
    opts: &SaveOptions,
    work: &Path,
    files: &mut Vec<OutFile>,
) -> Result<(), StoreError> {
    let mut index = Vec::new();
    for (n, image) in images.iter().enumerate() {
        let dir = work.join(format!("image-{n}"));
        fs::create_dir_all(&dir).map_err(io_err(dir.display()))?;
        let layers = stored_layers(&image.record, &dir)?;
        let (config, config_digest) = config_for(&image.record, &layers)?;
        let mut descriptors = Vec::new();
        for (i, layer) in layers.iter().enumerate() {
            let (path, digest, size, media) = if opts.compress_oci {
                let gz = dir.join(format!("layer-{i}.tar.gz"));
                let (digest, size) = gzip_file(&layer.path, &gz)?;
                (
                    gz,
                    digest,
                    size,
                    "application/vnd.oci.image.layer.v1.tar+gzip",
                )
            } else {
                (
                    layer.path.clone(),
                    layer.diff_id.clone(),
                    layer.size,
                    "application/vnd.oci.image.layer.v1.tar",
                )
            };
            push_blob(files, &digest, Content::File(path));
            descriptors
                .push(json!({"mediaType": media, "digest": digest.to_string(), "size": size}));
        }
        let config_size = config.len();
        push_blob(files, &config_digest, Content::Bytes(config));
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
        let bytes = manifest.to_string().into_bytes();
        let digest = Digest::of(&bytes);
        let size = bytes.len();
        push_blob(files, &digest, Content::Bytes(bytes));
        let mut entry = json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest.to_string(),
            "size": size,
        });
        if let Some(name) = image.names.first() {
            entry["annotations"] = json!({"org.opencontainers.image.ref.name": name});
        }
        index.push(entry);
    }
    files.push(OutFile {
        name: "oci-layout".into(),
        content: Content::Bytes(br#"{"imageLayoutVersion": "1.0.0"}"#.to_vec()),
    });
    files.push(OutFile {
        name: "index.json".into(),
        content: Content::Bytes(
            json!({"schemaVersion": 2, "manifests": index})
                .to_string()
                .into_bytes(),
        ),
    });
    Ok(())
}

fn push_blob(files: &mut Vec<OutFile>, digest: &Digest, content: Content) {
    if !files.iter().any(|f| f.name == "blobs/") {
        files.push(OutFile {
            name: "blobs/".into(),
            content: Content::Dir,
        });
        files.push(OutFile {
            name: "blobs/sha256/".into(),
            content: Content::Dir,
        });
    }
    let name = format!("blobs/sha256/{}", digest.hex());
    if !files.iter().any(|f| f.name == name) {
        files.push(OutFile { name, content });
    }
}

fn docker_dir(
    images: &[SaveImage],
    opts: &SaveOptions,
    work: &Path,
    files: &mut Vec<OutFile>,
) -> Result<(), StoreError> {
    let Some(image) = images.first() else {
        return Ok(());
    };
    let layers = stored_layers(&image.record, work)?;
    let (config, config_digest) = config_for(&image.record, &layers)?;
    let mut descriptors = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let (path, digest, size) = if opts.compress_dir {
            let gz = work.join(format!("layer-{i}.tar.gz"));
            let (digest, size) = gzip_file(&layer.path, &gz)?;
            (gz, digest, size)
        } else {
            (layer.path.clone(), layer.diff_id.clone(), layer.size)
        };
        files.push(OutFile {
            name: digest.hex().to_string(),
            content: Content::File(path),
        });
        // As containers/image writes it: the type says gzip even when not.
        descriptors.push(json!({
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "digest": digest.to_string(),
            "size": size,
        }));
    }
    let config_size = config.len();
    files.push(OutFile {
        name: config_digest.hex().to_string(),
        content: Content::Bytes(config),
    });
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": config_digest.to_string(),
            "size": config_size,
        },
        "layers": descriptors,
    });
    files.push(OutFile {
        name: "manifest.json".into(),
        content: Content::Bytes(manifest.to_string().into_bytes()),
    });
    files.push(OutFile {
        name: "version".into(),
        content: Content::Bytes(b"Directory Transport Version: 1.1\n".to_vec()),
    });
    Ok(())
}

fn write_tar(files: &[OutFile], out: &mut dyn Write, docker: bool) -> Result<(), StoreError> {
    let err = io_err("writing the archive");
    let mut b = tar::Builder::new(out);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // docker save writes epoch times and 0444 files; OCI archives real times.
    let (mtime, mode) = if docker { (0, 0o444) } else { (now, 0o644) };
    let result = (|| -> io::Result<()> {
        for f in files {
            let mut h = tar::Header::new_ustar();
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(mtime);
            match &f.content {
                Content::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_size(0);
                    b.append_data(&mut h, &f.name, io::empty())?;
                }
                Content::Symlink(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_mode(0o777);
                    h.set_size(0);
                    b.append_link(&mut h, &f.name, target)?;
                }
                Content::Bytes(bytes) => {
                    h.set_mode(mode);
                    h.set_size(bytes.len() as u64);
                    b.append_data(&mut h, &f.name, bytes.as_slice())?;
                }
                Content::File(path) => {
                    let file = File::open(path)?;
                    let len = file.metadata()?.len();
                    h.set_mode(mode);
                    h.set_size(len);
                    b.append_data(&mut h, &f.name, file.take(len))?;
                }
            }
        }
        b.finish()
    })();
    result.map_err(err)
}

fn write_dir(files: &[OutFile], dir: &Path) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(io_err(dir.display()))?;
    for f in files {
        let dest = dir.join(&f.name);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent.display()))?;
        }
        match &f.content {
            Content::Dir => fs::create_dir_all(&dest).map_err(io_err(dest.display()))?,
            Content::Symlink(target) => {
                std::os::unix::fs::symlink(target, &dest).map_err(io_err(dest.display()))?
            }
            Content::Bytes(bytes) => fs::write(&dest, bytes).map_err(io_err(dest.display()))?,
            Content::File(path) => {
                if fs::hard_link(path, &dest).is_err() {
                    fs::copy(path, &dest).map_err(io_err(dest.display()))?;
                }
            }
        }
    }
    Ok(())
}
