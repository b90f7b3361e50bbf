//! Pulling one image: candidates (mirrors, then the primary), manifest and
//! platform choice, config, then the layers: missing ones download in
//! parallel into temporary files (streamed through size and digest checks),
//! while the store unpacks them in order as each arrives. A pull that fails
//! leaves nothing behind (the store's import is all or nothing).

use std::fs::{self, File};
use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use super::client::Session;
use super::error::RegistryError;
use super::manifest::{self, Document, WantedPlatform, MAX_CONFIG};
use super::name::ImageName;
use super::{Environment, PullOptions, Pulled};
use crate::image::blobcache::{BlobCache, CachedBlob};
use crate::image::digest::{Digest, HashingReader};
use crate::image::progress::Progress;
use crate::image::source::{self, FormatError, ImportImage, LayerBlob, ManifestBlob, Source};
use crate::image::tmpdir::OwnedTempDir;
use crate::image::Store;
use crate::interrupt::Interrupt;

/// Parallel layer downloads at most.
const DOWNLOAD_THREADS: usize = 6;
/// Attempts per blob download (the first plus retries) on transient errors.
const BLOB_ATTEMPTS: usize = 3;
/// Copy buffer for downloads.
const CHUNK: usize = 256 << 10;

/// Progress lines on stderr, Podman's wording.
pub struct Reporter {
    quiet: bool,
    tty: bool,
}

impl Reporter {
    pub fn new(quiet: bool) -> Reporter {
        Reporter {
            quiet,
            tty: io::stderr().is_terminal(),
        }
    }

    pub fn line(&self, text: &str) {
        if !self.quiet {
            let mut err = io::stderr().lock();
            let _ = writeln!(err, "{text}");
        }
    }

    /// A warning is printed even when quiet.
    pub fn warn(&self, text: &str) {
        let mut err = io::stderr().lock();
        let _ = writeln!(err, "WARNING: {text}");
    }

    fn blob_start(&self, digest: &Digest) {
        if !self.tty {
            self.line(&format!("Copying blob {digest}"));
        }
    }

    fn blob_done(&self, digest: &Digest, skipped: bool) {
        if self.tty {
            let what = if skipped {
                "skipped: already exists"
            } else {
                "done"
            };
            self.line(&format!("Copying blob {} {what}", &digest.hex()[..12]));
        } else if skipped {
            self.line(&format!("Copying blob {digest}"));
        }
    }

    fn config(&self, digest: &Digest) {
        if self.tty {
            self.line(&format!("Copying config {} done", &digest.hex()[..10]));
        } else {
            self.line(&format!("Copying config {digest}"));
        }
    }
}

/// A manifest chosen for pulling, from the candidate that served it.
struct Resolved<'t> {
    session: Session<'t>,
    repo: String,
    /// The document the reference named (an index or the manifest).
    top: ManifestBlob,
    manifest: crate::image::oci::Manifest,
}

/// Pulls `name` (qualified) trying each of its sources.
pub fn pull_name(
    env: &Environment,
    store: &Store,
    name: &ImageName,
    opts: &PullOptions,
    report: &Reporter,
) -> Result<Pulled, RegistryError> {
    let wanted = opts.platform.clone().unwrap_or_else(WantedPlatform::host);
    let interrupt = opts.interrupt.as_ref();
    closing_on_interrupt(interrupt, &env.transport, || {
        let resolved = resolve_manifest(env, name, &wanted)
            .map_err(|e| e.context(format!("initializing source docker://{name}")))?;
        fetch_into_store(store, name, resolved, &wanted, report, interrupt)
    })
}

/// How often the watcher of [`closing_on_interrupt`] looks at the signal
/// flag: the longest a ^C waits before the connections close.
const INTERRUPT_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// Runs `op`; if SIGINT/SIGTERM arrives meanwhile, closes every registry
/// connection. A download blocked on a stalled registry then fails at once
/// and the pull cleans up, instead of the ^C waiting out the read timeout
/// (120 s). The signal only sets a flag (see [`Interrupt`]), so a watcher
/// thread polls it; it ends as soon as `op` returns.
fn closing_on_interrupt<T>(
    interrupt: Option<&Interrupt>,
    transport: &super::transport::Transport,
    op: impl FnOnce() -> T,
) -> T {
    let Some(interrupt) = interrupt else {
        return op();
    };
    std::thread::scope(|scope| {
        let (done, finished) = std::sync::mpsc::channel::<()>();
        scope.spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                finished.recv_timeout(INTERRUPT_POLL)
            {
                if interrupt.requested() {
                    transport.shutdown();
                    return;
                }
            }
        });
        let result = op();
        // Disconnects the channel: the watcher ends without another poll.
        drop(done);
        result
    })
}

/// Tries each source (mirrors, then the primary) until one serves the
/// manifest; Podman's combined error if none does.
fn resolve_manifest<'t>(
    env: &'t Environment,
    name: &ImageName,
    wanted: &WantedPlatform,
) -> Result<Resolved<'t>, RegistryError> {
    let sources = env
        .registries
        .pull_sources(&name.to_string(), name.digest.is_some())
        .map_err(|(registry, file)| RegistryError::Blocked {
            registry,
            file: file.display().to_string(),
        })?;
    let mut failures: Vec<(String, RegistryError)> = Vec::new();
    let count = sources.len();
    for (i, source) in sources.into_iter().enumerate() {
        let result = ImageName::parse(&source.name)
            .and_then(|candidate| try_source(env, &candidate, source.insecure, wanted));
        match result {
            Ok(resolved) => return Ok(resolved),
            Err(err) if i + 1 < count => failures.push((source.name, err)),
            Err(err) if failures.is_empty() => return Err(err),
            Err(err) => {
                return Err(RegistryError::Mirrors {
                    mirrors: failures,
                    primary: (source.name, Box::new(err)),
                })
            }
        }
    }
    Err(RegistryError::Config(format!(
        "no source to pull {name} from"
    )))
}

fn try_source<'t>(
    env: &'t Environment,
    candidate: &ImageName,
    insecure_in_config: bool,
    wanted: &WantedPlatform,
) -> Result<Resolved<'t>, RegistryError> {
    let session = env.session(
        &candidate.registry,
        &candidate.repository_name(),
        insecure_in_config,
    )?;
    let repo = candidate.repository.clone();
    let reference = candidate.manifest_reference();
    let fetched = session.get_manifest(&repo, &reference)?;
    let top = ManifestBlob {
        digest: fetched.digest.clone(),
        bytes: fetched.bytes.clone(),
        media_type: String::new(),
    };
    let doc =
        manifest::parse(&fetched.bytes, fetched.content_type.as_deref(), None).map_err(|e| {
            e.within(&format!(
                "reading manifest {reference} in {}",
                candidate.repository_name()
            ))
        })?;
    let (top_type, manifest) = match doc {
        Document::Manifest {
            media_type,
            manifest,
        } => (media_type, manifest),
        Document::Index { media_type, index } => {
            let what = format!("docker://{candidate}");
            let entry = manifest::select(&index, wanted, &what)?;
            let (digest, _) = manifest::checked(entry, "index entry")?;
            let child = session.get_manifest(&repo, &digest.to_string())?;
            match manifest::parse(
                &child.bytes,
                child.content_type.as_deref(),
                Some(&entry.media_type),
            )? {
                Document::Manifest { manifest, .. } => (media_type, manifest),
                Document::Index { .. } => {
                    return Err(RegistryError::Content(format!(
                        "{what}: nested image indexes are not supported"
                    )))
                }
            }
        }
    };
    Ok(Resolved {
        session,
        repo,
        top: ManifestBlob {
            media_type: top_type,
            ..top
        },
        manifest,
    })
}

/// Where each download stands.
#[derive(Debug, Clone)]
enum Slot {
    Pending,
    Ready(PathBuf),
    Failed(String),
}

/// Layers arriving from download threads, read by the store's import in
/// order: `open("layer/N")` waits until layer N is on disk.
struct Arrivals {
    slots: Mutex<Vec<Slot>>,
    changed: Condvar,
    /// Set by a failed download, a failed import, or SIGINT/SIGTERM when
    /// the caller installed the handlers.
    cancel: Interrupt,
}

impl Arrivals {
    fn set(&self, i: usize, slot: Slot) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots[i] = slot;
        self.changed.notify_all();
    }

    fn cancel(&self) {
        self.cancel.stop();
        let _guard = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        self.changed.notify_all();
    }
}

impl Source for Arrivals {
    fn open(&self, path: &str) -> Result<(Box<dyn Read + '_>, u64), FormatError> {
        let i: usize = path
            .strip_prefix("layer/")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| FormatError::Missing { what: path.into() })?;
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match slots.get(i) {
                None => return Err(FormatError::Missing { what: path.into() }),
                Some(Slot::Ready(file)) => {
                    let f = File::open(file).map_err(|source| FormatError::Io {
                        what: path.into(),
                        source,
                    })?;
                    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                    return Ok((Box::new(io::BufReader::with_capacity(CHUNK, f)), size));
                }
                Some(Slot::Failed(msg)) => return Err(FormatError::Invalid(msg.clone())),
                Some(Slot::Pending) if self.cancel.stop_flag().load(Ordering::SeqCst) => {
                    return Err(FormatError::Invalid("pull cancelled".into()))
                }
                Some(Slot::Pending) => {
                    slots = self.changed.wait(slots).unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }

    fn exists(&self, path: &str) -> bool {
        path.starts_with("layer/")
    }

    fn describe(&self) -> String {
        "registry".into()
    }

    fn blob_file(&self, path: &str) -> Option<PathBuf> {
        let i: usize = path.strip_prefix("layer/")?.parse().ok()?;
        match self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(i)?
        {
            Slot::Ready(file) => Some(file.clone()),
            _ => None,
        }
    }
}

fn fetch_into_store(
    store: &Store,
    name: &ImageName,
    resolved: Resolved,
    wanted: &WantedPlatform,
    report: &Reporter,
    interrupt: Option<&Interrupt>,
) -> Result<Pulled, RegistryError> {
    let Resolved {
        session,
        repo,
        top,
        manifest,
    } = resolved;
    report.line("Getting image source signatures");
    let (config_digest, config_size) = manifest::checked(&manifest.config, "config")?;
    let config_bytes = read_small_blob(&session, &repo, &config_digest, config_size, MAX_CONFIG)?;
    let (config, diff_ids) = source::parse_config(
        &config_bytes,
        &format!("config {config_digest}"),
        manifest.layers.len(),
    )
    .map_err(|e| RegistryError::Content(e.to_string()))?;

    let mut layers = Vec::new();
    let mut missing = Vec::new();
    let mut parent: Option<Digest> = None;
    for (i, (desc, diff_id)) in manifest.layers.iter().zip(&diff_ids).enumerate() {
        let (digest, size) = manifest::checked(desc, "layer")?;
        let chain = Digest::chain(parent.as_ref(), diff_id);
        if store.has_layer(&chain) {
            report.blob_done(&digest, true);
        } else {
            report.blob_start(&digest);
            missing.push(i);
        }
        layers.push(LayerBlob {
            path: format!("layer/{i}"),
            digest: Some(digest.clone()),
            size: Some(size),
            diff_id: diff_id.clone(),
            what: format!("layer {digest}"),
        });
        parent = Some(chain);
    }

    let tmp = OwnedTempDir::new_in(&store.tmp_dir(), "pull-").map_err(|e| {
        RegistryError::io(
            format!("creating a directory in {}", store.tmp_dir().display()),
            e,
        )
    })?;
    let arrivals = Arrivals {
        slots: Mutex::new(vec![Slot::Pending; layers.len()]),
        changed: Condvar::new(),
        cancel: interrupt.cloned().unwrap_or_default(),
    };
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<RegistryError>> = Mutex::new(None);
    let mut warnings = Vec::new();
    if config.os != wanted.os || config.architecture != wanted.architecture {
        let image = WantedPlatform {
            os: config.os.clone(),
            architecture: config.architecture.clone(),
            variant: config.variant.clone(),
        };
        warnings.push(format!(
            "image platform ({}) does not match the expected platform ({})",
            image.display(),
            wanted.display()
        ));
    }
    let image = ImportImage {
        id: Digest::of(&config_bytes),
        config_bytes: config_bytes.clone(),
        config,
        manifest: Some(top),
        layers: layers.clone(),
        names: name
            .tag
            .as_ref()
            .map(|_| vec![name.to_string()])
            .unwrap_or_default(),
        warnings: Vec::new(),
    };

    let imported = std::thread::scope(|scope| {
        let threads = missing.len().min(DOWNLOAD_THREADS);
        for _ in 0..threads {
            scope.spawn(|| loop {
                if arrivals.cancel.stop_flag().load(Ordering::SeqCst) {
                    return;
                }
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = missing.get(k) else { return };
                let blob = &layers[i];
                let target = tmp.path().join(format!("layer-{i}"));
                match download_blob(&session, &repo, blob, &target, arrivals.cancel.stop_flag()) {
                    Ok(()) => {
                        if let Some(d) = &blob.digest {
                            report.blob_done(d, false);
                        }
                        arrivals.set(i, Slot::Ready(target));
                    }
                    Err(err) => {
                        let text = err.to_string();
                        let mut first = first_error.lock().unwrap_or_else(|e| e.into_inner());
                        if first.is_none() {
                            *first = Some(err);
                        }
                        drop(first);
                        arrivals.set(i, Slot::Failed(text));
                        arrivals.cancel();
                        return;
                    }
                }
            });
        }
        let mut progress = Progress::new(false);
        let result = store.import(&arrivals, &image, &mut progress);
        if result.is_err() {
            arrivals.cancel();
        }
        result
    });
    if interrupt.is_some_and(Interrupt::requested) && imported.is_err() {
        // The temporary directory goes with `tmp`; the store's import
        // removed what it had begun.
        return Err(RegistryError::Interrupted);
    }
    let imported = match imported {
        Ok(imported) => imported,
        Err(store_err) => {
            let first = first_error.lock().unwrap_or_else(|e| e.into_inner()).take();
            return Err(first.unwrap_or(RegistryError::Store(store_err)));
        }
    };
    // The store kept the downloaded blobs; note their media type and where
    // they came from (a later push can mount them from there).
    let cache = BlobCache::open(store.root());
    for &i in &missing {
        let (blob, desc) = (&layers[i], &manifest.layers[i]);
        if let (Some(digest), Some(size)) = (&blob.digest, blob.size) {
            let info = CachedBlob {
                digest: digest.to_string(),
                size,
                media_type: desc.media_type.clone(),
                source: Some(format!("{}/{repo}", session.registry)),
            };
            if cache
                .get(&blob.diff_id)
                .is_some_and(|(_, old)| old.digest == info.digest)
            {
                let _ = cache.describe(&blob.diff_id, &info);
            }
        }
    }
    drop(tmp);
    report.config(&config_digest);
    report.line("Writing manifest to image destination");
    report.line("Storing signatures");
    warnings.extend(imported.warnings);
    Ok(Pulled {
        id: imported.record.id,
        name: name.to_string(),
        warnings,
    })
}

/// Reads a small blob (a config) whole, checking size and digest.
fn read_small_blob(
    session: &Session,
    repo: &str,
    digest: &Digest,
    size: u64,
    limit: u64,
) -> Result<Vec<u8>, RegistryError> {
    if size > limit {
        return Err(RegistryError::Content(format!(
            "blob {digest} is larger than {limit} bytes"
        )));
    }
    let (reader, _) = session.open_blob(repo, digest)?;
    let mut bytes = Vec::new();
    reader
        .take(size + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| RegistryError::Network {
            context: format!("reading blob {digest}"),
            cause: e.to_string(),
        })?;
    check_blob(digest, size, &Digest::of(&bytes), bytes.len() as u64)?;
    Ok(bytes)
}

fn check_blob(
    expected: &Digest,
    size: u64,
    actual: &Digest,
    actual_size: u64,
) -> Result<(), RegistryError> {
    if actual_size != size {
        return Err(RegistryError::Content(format!(
            "blob {expected}: size mismatch: the manifest says {size} bytes, the registry sent {}",
            if actual_size > size {
                format!("more than {size}")
            } else {
                actual_size.to_string()
            }
        )));
    }
    if actual != expected {
        return Err(RegistryError::Content(format!(
            "blob {expected}: digest mismatch: content has {actual}"
        )));
    }
    Ok(())
}

/// Downloads one layer into `target`, verifying size (never reading more
/// than declared plus one byte) and digest; retried on transient errors.
fn download_blob(
    session: &Session,
    repo: &str,
    blob: &LayerBlob,
    target: &std::path::Path,
    cancel: &AtomicBool,
) -> Result<(), RegistryError> {
    let (Some(digest), Some(size)) = (&blob.digest, blob.size) else {
        return Err(RegistryError::Content(format!("{}: no digest", blob.what)));
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = download_once(session, repo, digest, size, target, cancel);
        match result {
            Err(err)
                if err.is_transient()
                    && attempt < BLOB_ATTEMPTS
                    && !cancel.load(Ordering::SeqCst) =>
            {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

fn download_once(
    session: &Session,
    repo: &str,
    digest: &Digest,
    size: u64,
    target: &std::path::Path,
    cancel: &AtomicBool,
) -> Result<(), RegistryError> {
    let (reader, declared) = session.open_blob(repo, digest)?;
    if let Some(len) = declared {
        if len > size {
            return Err(RegistryError::Content(format!(
                "blob {digest}: the registry announces {len} bytes, the manifest says {size}"
            )));
        }
    }
    let mut file =
        File::create(target).map_err(|e| RegistryError::io(target.display().to_string(), e))?;
    let mut hashing = HashingReader::new(reader.take(size + 1));
    let mut buf = vec![0u8; CHUNK];
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Err(RegistryError::Content("pull cancelled".into()));
        }
        let n = match hashing.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(RegistryError::Network {
                    context: format!("reading blob {digest}"),
                    cause: e.to_string(),
                })
            }
        };
        file.write_all(&buf[..n])
            .map_err(|e| RegistryError::io(format!("writing {}", target.display()), e))?;
    }
    let (actual, count) = hashing.finish();
    if let Err(err) = check_blob(digest, size, &actual, count) {
        let _ = fs::remove_file(target);
        return Err(err);
    }
    Ok(())
}
