//! What every input format (OCI layout directory, oci-archive,
//! docker-archive) produces: files by relative path ([`Source`]) and, per
//! image, a verified config plus the layer blobs still to be read
//! ([`ImportImage`]). Errors of all formats are [`FormatError`]s.

use std::fmt;
use std::io::{self, Read};

use super::digest::{Digest, DigestError};
use super::oci::{self, Descriptor, ImageConfig};

/// Cap for manifests, indexes and `manifest.json` (as containers/image: 4 MiB
/// for configs, 1 MiB for manifest.json; vigil uses 4 MiB for all documents).
pub const MAX_DOCUMENT: u64 = 4 << 20;
/// Cap for image configs.
pub const MAX_CONFIG: u64 = 8 << 20;

/// Why an input could not be read as an image.
#[derive(Debug)]
pub enum FormatError {
    /// A file or blob the input refers to is not in it.
    Missing {
        what: String,
    },
    Io {
        what: String,
        source: io::Error,
    },
    Json {
        what: String,
        error: serde_json::Error,
    },
    TooLarge {
        what: String,
        limit: u64,
    },
    BadDigest {
        what: String,
        error: DigestError,
    },
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    SizeMismatch {
        what: String,
        expected: String,
        actual: u64,
    },
    /// The input is none of the formats `load` reads.
    NotAnArchive {
        what: String,
    },
    /// Anything else the specs forbid, with an explanation.
    Invalid(String),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Missing { what } => write!(f, "{what}: not found in the input"),
            FormatError::NotAnArchive { what } => write!(
                f,
                "{what}: payload does not match any of the supported image formats \
                 (docker-archive, oci-archive, OCI layout)"
            ),
            FormatError::Io { what, source } => write!(f, "reading {what}: {source}"),
            FormatError::Json { what, error } => write!(f, "parsing {what}: {error}"),
            FormatError::TooLarge { what, limit } => {
                write!(f, "{what} is larger than {limit} bytes")
            }
            FormatError::BadDigest { what, error } => write!(f, "{what}: {error}"),
            FormatError::DigestMismatch {
                what,
                expected,
                actual,
            } => {
                write!(
                    f,
                    "{what}: digest mismatch: expected {expected}, content has {actual}"
                )
            }
            FormatError::SizeMismatch {
                what,
                expected,
                actual,
            } => {
                write!(
                    f,
                    "{what}: size mismatch: expected {expected} bytes, found {actual}"
                )
            }
            FormatError::Invalid(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for FormatError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FormatError::Io { source, .. } => Some(source),
            FormatError::Json { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Files of an input by relative path (`index.json`, `blobs/sha256/<hex>`,
/// docker-archive member names). Paths are resolved inside the input only.
pub trait Source {
    /// Opens `path`, returning a reader and the file's size.
    fn open(&self, path: &str) -> Result<(Box<dyn Read + '_>, u64), FormatError>;

    /// Whether `path` exists.
    fn exists(&self, path: &str) -> bool;

    /// The input, for messages.
    fn describe(&self) -> String;

    /// A file holding exactly the blob at `path` that the store may move
    /// into its blob cache once verified (a download), instead of copying
    /// the bytes as they are read.
    fn blob_file(&self, _path: &str) -> Option<std::path::PathBuf> {
        None
    }
}

/// A compressed (or not) layer to read from the source.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    /// The path in the source.
    pub path: String,
    /// The blob digest and size from the manifest, if the format has them.
    pub digest: Option<Digest>,
    pub size: Option<u64>,
    /// The digest of the uncompressed tar (`rootfs.diff_ids`).
    pub diff_id: Digest,
    /// How to name the layer in messages.
    pub what: String,
}

/// A verified manifest, kept for `Digest` and `RepoDigests`.
#[derive(Debug, Clone)]
pub struct ManifestBlob {
    pub digest: Digest,
    pub bytes: Vec<u8>,
    pub media_type: String,
}

/// One image found in an input, with its config verified and parsed.
#[derive(Debug, Clone)]
pub struct ImportImage {
    /// The image ID: the digest of the config.
    pub id: Digest,
    pub config_bytes: Vec<u8>,
    pub config: ImageConfig,
    pub manifest: Option<ManifestBlob>,
    pub layers: Vec<LayerBlob>,
    /// Normalised names to give the image.
    pub names: Vec<String>,
    pub warnings: Vec<String>,
}

/// Reads at most `limit` bytes of `path` (more is an error).
pub fn read_limited(
    src: &dyn Source,
    path: &str,
    what: &str,
    limit: u64,
) -> Result<Vec<u8>, FormatError> {
    let (reader, size) = src.open(path)?;
    if size > limit {
        return Err(FormatError::TooLarge {
            what: what.into(),
            limit,
        });
    }
    let mut out = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|source| FormatError::Io {
            what: what.into(),
            source,
        })?;
    if out.len() as u64 > limit {
        return Err(FormatError::TooLarge {
            what: what.into(),
            limit,
        });
    }
    Ok(out)
}

/// The path of a blob in an OCI layout, built only from a validated digest.
pub fn blob_path(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// Parses and validates a descriptor's digest and size.
pub fn checked_descriptor(desc: &Descriptor, what: &str) -> Result<(Digest, u64), FormatError> {
    let digest = Digest::parse(&desc.digest).map_err(|error| FormatError::BadDigest {
        what: what.into(),
        error,
    })?;
    let size = u64::try_from(desc.size).map_err(|_| {
        FormatError::Invalid(format!("{what}: negative size {} in descriptor", desc.size))
    })?;
    Ok((digest, size))
}

/// Reads a blob named by a descriptor, verifying size (first) and digest.
pub fn read_blob(
    src: &dyn Source,
    desc: &Descriptor,
    what: &str,
    limit: u64,
) -> Result<(Digest, Vec<u8>), FormatError> {
    let (digest, size) = checked_descriptor(desc, what)?;
    let what = format!("{what} {digest}");
    if size > limit {
        return Err(FormatError::TooLarge { what, limit });
    }
    let path = blob_path(&digest);
    let (_, actual_size) = src.open(&path)?;
    if actual_size != size {
        return Err(FormatError::SizeMismatch {
            what,
            expected: size.to_string(),
            actual: actual_size,
        });
    }
    let bytes = read_limited(src, &path, &what, size)?;
    let actual = Digest::of(&bytes);
    if actual != digest {
        return Err(FormatError::DigestMismatch {
            what,
            expected: digest.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok((digest, bytes))
}

/// Parses JSON, naming the document in errors.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, FormatError> {
    serde_json::from_slice(bytes).map_err(|error| FormatError::Json {
        what: what.into(),
        error,
    })
}

/// Parses and checks an image config: `rootfs.type` is `layers`, the diff IDs
/// are valid and there are `layer_count` of them.
pub fn parse_config(
    bytes: &[u8],
    what: &str,
    layer_count: usize,
) -> Result<(ImageConfig, Vec<Digest>), FormatError> {
    let config: ImageConfig = parse_json(bytes, what)?;
    if config.rootfs.kind != "layers" {
        return Err(FormatError::Invalid(format!(
            "{what}: rootfs.type is {:?}, expected \"layers\"",
            config.rootfs.kind
        )));
    }
    let diff_ids = config
        .rootfs
        .diff_ids
        .iter()
        .map(|d| {
            Digest::parse(d).map_err(|error| FormatError::BadDigest {
                what: format!("{what}: diff_id"),
                error,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if diff_ids.len() != layer_count {
        return Err(FormatError::Invalid(format!(
            "{what}: {} diff_ids for {layer_count} layers",
            diff_ids.len()
        )));
    }
    Ok((config, diff_ids))
}

/// A warning if the image is for another platform.
pub fn platform_warning(config: &ImageConfig) -> Option<String> {
    let host = oci::Platform::host();
    let image = oci::Platform {
        architecture: config.architecture.clone(),
        os: config.os.clone(),
        variant: config.variant.clone(),
    };
    (!image.matches(&host)).then(|| {
        format!(
            "image platform ({}) does not match the expected platform ({})",
            image.display(),
            host.display()
        )
    })
}
