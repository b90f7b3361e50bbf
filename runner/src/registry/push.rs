//! Pushing an image of the store: each layer blob (the compressed blob kept
//! from the pull, recompressed when another compression is asked for) is
//! skipped when the registry has it (HEAD), mounted from another repository
//! of the same registry when one is known, or uploaded: POST, then one
//! streamed PUT, or for a blob larger than the chunk size (or when the
//! registry asks for chunks of a minimum length) PATCHes of one chunk each
//! with `Content-Range` and a closing PUT; then the config, then the
//! manifest (OCI or Docker v2s2).
//! Mirrors are never used for push.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::json;

use super::client::{pull_scope, push_scope, Session};
use super::error::RegistryError;
use super::name::ImageName;
use super::pull::Reporter;
use super::{Environment, RegistryOptions};
use crate::config::Env as _;
use crate::context::Context;
use crate::image::blobcache::{BlobCache, CachedBlob};
use crate::image::compress::{self, Compression};
use crate::image::digest::{Digest, HashingReader};
use crate::image::oci::media;
use crate::image::tmpdir::OwnedTempDir;
use crate::image::Store;

/// Parallel uploads at most.
const UPLOAD_THREADS: usize = 4;

/// Blobs larger than this go in chunks of this size (one request each
/// stays short enough for proxies' body limits and timeouts).
const DEFAULT_CHUNK_SIZE: u64 = 64 << 20;

/// `VIGIL_PUSH_CHUNK_SIZE` (bytes, at least 1 KiB) replaces the default:
/// a vigil extension for registries behind small body limits, and tests.
fn chunk_size() -> u64 {
    crate::config::process_env()
        .var("VIGIL_PUSH_CHUNK_SIZE")
        .and_then(|v| v.to_str().and_then(|s| s.trim().parse::<u64>().ok()))
        .filter(|&n| n >= 1024)
        .unwrap_or(DEFAULT_CHUNK_SIZE)
}

/// Manifest format of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ManifestFormat {
    #[default]
    Oci,
    V2s2,
}

/// What [`push`] needs besides the names.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub registry: RegistryOptions,
    pub quiet: bool,
    pub format: ManifestFormat,
    /// `--compression-format`; `None`: keep each blob as stored (gzip for
    /// layers that have none).
    pub compression: Option<Compression>,
}

/// One layer ready to send.
struct LayerUpload {
    diff_id: Digest,
    file: PathBuf,
    digest: Digest,
    size: u64,
    compression: Compression,
    source: Option<String>,
}

/// Pushes the local image `source` to `dest` (`[docker://]host/repo[:tag]`);
/// returns the digest of the manifest written.
pub fn push(
    ctx: &Context,
    source: &str,
    dest: &str,
    opts: &PushOptions,
) -> Result<Digest, RegistryError> {
    let env = Environment::load(&opts.registry)?;
    let store = Store::open(&ctx.paths)?;
    let report = Reporter::new(opts.quiet);
    let record = store.resolve(source)?;
    let dest = dest.strip_prefix("docker://").unwrap_or(dest);
    let name = ImageName::parse(dest)?;
    if name.digest.is_some() {
        return Err(RegistryError::Reference(format!(
            "{dest} (push to a tag, not a digest)"
        )));
    }
    let target = env
        .registries
        .push_target(&name.to_string())
        .map_err(|(registry, file)| RegistryError::Blocked {
            registry,
            file: file.display().to_string(),
        })?;
    let located = ImageName::parse(&target.name)?;
    let repo = located.repository.clone();
    let session = Session::connect(
        &env.transport,
        &located.registry,
        env.insecure(&located.registry, target.insecure),
        env.credentials(&located.repository_name())?,
    )
    .map_err(|e| e.context(format!("trying to reuse blob at destination {located}")))?;

    let config_path = store.root().join("blobs/sha256").join(record.id.hex());
    let config_bytes = std::fs::read(&config_path)
        .map_err(|e| RegistryError::io(config_path.display().to_string(), e))?;
    let cache = BlobCache::open(store.root());
    let tmp = OwnedTempDir::new_in(&store.tmp_dir(), "push-")
        .map_err(|e| RegistryError::io("creating a temporary directory", e))?;

    report.line("Getting image source signatures");
    let mut uploads = Vec::new();
    for (i, layer) in record.layers.iter().enumerate() {
        let cached = cache.get(&layer.diff_id).ok_or_else(|| {
            RegistryError::Content(format!(
                "layer {}: its blob is not in the store (an image imported before vigil kept \
                 layer blobs: remove it and load or pull it again)",
                layer.diff_id
            ))
        })?;
        let (path, info) = cached;
        let have = compression_of(&info.media_type, &path);
        let want = opts.compression.unwrap_or(if have == Compression::None {
            Compression::Gzip
        } else {
            have
        });
        if opts.format == ManifestFormat::V2s2 && want == Compression::Zstd {
            return Err(RegistryError::Config(
                "zstd compression is not allowed in a Docker v2s2 manifest (use --format oci)"
                    .into(),
            ));
        }
        let upload = if want == have {
            LayerUpload {
                diff_id: layer.diff_id.clone(),
                file: path,
                digest: Digest::parse(&info.digest)
                    .map_err(|e| RegistryError::Content(e.to_string()))?,
                size: info.size,
                compression: have,
                source: info.source.clone(),
            }
        } else {
            let out = tmp.path().join(format!("layer-{i}"));
            let (digest, size) = recompress(&path, &out, want)?;
            LayerUpload {
                diff_id: layer.diff_id.clone(),
                file: out,
                digest,
                size,
                compression: want,
                source: None,
            }
        };
        report.line(&format!("Copying blob {}", layer.diff_id));
        uploads.push(upload);
    }

    let dest_repo = format!("{}/{repo}", session.registry);
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<RegistryError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..uploads.len().min(UPLOAD_THREADS) {
            scope.spawn(|| loop {
                if failure.lock().map(|f| f.is_some()).unwrap_or(true) {
                    return;
                }
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(up) = uploads.get(k) else { return };
                let result = send_blob(
                    &session,
                    &repo,
                    &up.digest,
                    &up.file,
                    up.size,
                    up.source.as_deref(),
                );
                if let Err(err) = result {
                    let mut f = failure.lock().unwrap_or_else(|e| e.into_inner());
                    f.get_or_insert(err);
                    return;
                }
            });
        }
    });
    if let Some(err) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(err);
    }
    let config_digest = Digest::of(&config_bytes);
    report.line(&format!("Copying config {config_digest}"));
    let config_file = tmp.path().join("config");
    std::fs::write(&config_file, &config_bytes)
        .map_err(|e| RegistryError::io(config_file.display().to_string(), e))?;
    send_blob(
        &session,
        &repo,
        &config_digest,
        &config_file,
        config_bytes.len() as u64,
        None,
    )?;

    report.line("Writing manifest to image destination");
    let (manifest_type, config_type) = match opts.format {
        ManifestFormat::Oci => (media::OCI_MANIFEST, media::OCI_CONFIG),
        ManifestFormat::V2s2 => (media::DOCKER_MANIFEST, media::DOCKER_CONFIG),
    };
    let layers: Vec<serde_json::Value> = uploads
        .iter()
        .map(|u| {
            json!({
                "mediaType": layer_type(opts.format, u.compression),
                "digest": u.digest.to_string(),
                "size": u.size,
            })
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {
            "mediaType": config_type,
            "digest": config_digest.to_string(),
            "size": config_bytes.len(),
        },
        "layers": layers,
    });
    let bytes = serde_json::to_vec(&manifest).map_err(|e| RegistryError::Content(e.to_string()))?;
    let tag = located.tag.clone().unwrap_or_else(|| "latest".into());
    session.put_manifest(&repo, &tag, manifest_type, &bytes)?;
    report.line("Storing signatures");
    // Remember where each blob now lives, for later mounts.
    for up in &uploads {
        if up.source.is_none() && cache.get(&up.diff_id).is_none() {
            let _ = cache.describe(
                &up.diff_id,
                &CachedBlob {
                    digest: up.digest.to_string(),
                    size: up.size,
                    media_type: layer_type(opts.format, up.compression).to_string(),
                    source: Some(dest_repo.clone()),
                },
            );
        }
    }
    Ok(Digest::of(&bytes))
}

fn layer_type(format: ManifestFormat, compression: Compression) -> &'static str {
    match (format, compression) {
        (ManifestFormat::Oci, Compression::Gzip) => "application/vnd.oci.image.layer.v1.tar+gzip",
        (ManifestFormat::Oci, Compression::Zstd) => "application/vnd.oci.image.layer.v1.tar+zstd",
        (ManifestFormat::Oci, Compression::None) => "application/vnd.oci.image.layer.v1.tar",
        (ManifestFormat::V2s2, Compression::None) => "application/vnd.docker.image.rootfs.diff.tar",
        (ManifestFormat::V2s2, _) => "application/vnd.docker.image.rootfs.diff.tar.gzip",
    }
}

/// The compression of a cached blob: sniffed from its first bytes.
fn compression_of(_media_type: &str, path: &Path) -> Compression {
    let mut prefix = [0u8; 4];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut prefix))
        .unwrap_or(0);
    Compression::sniff(&prefix[..n])
}

/// Decompresses `src` and compresses it again as `want` into `out`.
fn recompress(src: &Path, out: &Path, want: Compression) -> Result<(Digest, u64), RegistryError> {
    let io_err = |e: io::Error| RegistryError::io(format!("recompressing {}", src.display()), e);
    let input = BufReader::new(File::open(src).map_err(io_err)?);
    let (_, mut plain) = compress::decompress(input).map_err(io_err)?;
    let file = File::create(out).map_err(io_err)?;
    match want {
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
            io::copy(&mut plain, &mut enc).map_err(io_err)?;
            enc.finish().map_err(io_err)?.flush().map_err(io_err)?;
        }
        Compression::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(file, 3).map_err(io_err)?;
            io::copy(&mut plain, &mut enc).map_err(io_err)?;
            enc.finish().map_err(io_err)?.flush().map_err(io_err)?;
        }
        Compression::None => {
            let mut file = file;
            io::copy(&mut plain, &mut file).map_err(io_err)?;
        }
    }
    let mut hashing = HashingReader::new(File::open(out).map_err(io_err)?);
    hashing.drain().map_err(io_err)?;
    Ok(hashing.finish())
}

/// HEAD, then a mount from `source` (same registry only), then POST + PUT,
/// or POST + PATCH per chunk + PUT.
fn send_blob(
    session: &Session,
    repo: &str,
    digest: &Digest,
    file: &Path,
    size: u64,
    source: Option<&str>,
) -> Result<(), RegistryError> {
    let mut scopes = vec![push_scope(repo)];
    let mount_from = source.and_then(|s| {
        let (registry, from) = s.split_once('/')?;
        (registry == session.registry && from != repo).then_some(from)
    });
    if let Some(from) = mount_from {
        scopes.push(pull_scope(from));
    }
    if session.blob_exists(repo, digest, &scopes)? {
        return Ok(());
    }
    let upload = match session.start_upload(repo, &scopes, mount_from.map(|f| (digest, f)))? {
        None => return Ok(()),
        Some(upload) => upload,
    };
    let mut reader = BufReader::with_capacity(
        256 << 10,
        File::open(file).map_err(|e| RegistryError::io(file.display().to_string(), e))?,
    );
    let chunk = chunk_size().max(upload.min_chunk.unwrap_or(0));
    if size <= chunk && upload.min_chunk.is_none() {
        return session.finish_upload(&upload.location, &scopes, digest, &mut reader, size);
    }
    let mut location = upload.location;
    let mut sent = 0;
    while sent < size {
        let len = chunk.min(size - sent);
        let mut part = (&mut reader).take(len);
        location = session.upload_chunk(&location, &scopes, &mut part, sent, len)?;
        sent += len;
    }
    session.finish_upload(&location, &scopes, digest, &mut io::empty(), 0)
}
