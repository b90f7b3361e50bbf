//! Errors of the registry client, worded like Podman's where a user sees them.

use std::fmt;
use std::io;

use crate::image::StoreError;

/// Why talking to a registry (or preparing to) failed.
#[derive(Debug)]
pub enum RegistryError {
    /// A name that is not a valid image reference.
    Reference(String),
    /// registries.conf, auth.json or certs.d could not be used.
    Config(String),
    /// The registry is blocked in registries.conf.
    Blocked {
        registry: String,
        file: String,
    },
    /// No connection, TLS failure, reset: `context: cause`. Retried.
    Network {
        context: String,
        cause: String,
    },
    /// The registry answered with an error status. 5xx and 429 are retried.
    Http {
        context: String,
        status: u16,
        /// `code: message` lines from the error body, or the status text.
        message: String,
    },
    /// What the registry sent is not acceptable (digest, size, limits,
    /// media types, JSON). Never retried; nothing is stored.
    Content(String),
    /// No image in an index for the wanted platform.
    Platform(String),
    /// Several candidates (mirrors then the primary) all failed.
    Mirrors {
        mirrors: Vec<(String, RegistryError)>,
        primary: (String, Box<RegistryError>),
    },
    /// Short-name resolution failed.
    ShortName(String),
    /// Several search registries tried for a short name, all failed.
    Several(Vec<(String, RegistryError)>),
    /// Credentials were refused.
    Credentials(String),
    /// SIGINT or SIGTERM arrived; what was partly downloaded is deleted.
    Interrupted,
    Io {
        what: String,
        source: io::Error,
    },
    Store(StoreError),
    /// An error with what was being done around it.
    Context {
        context: String,
        inner: Box<RegistryError>,
    },
}

impl RegistryError {
    /// Is this worth trying again (network trouble, 5xx, 429)?
    pub fn is_transient(&self) -> bool {
        match self {
            // A TLS failure will not heal by itself; a reset or refusal may.
            RegistryError::Network { cause, .. } => !is_tls_failure(cause),
            RegistryError::Http { status, .. } => *status == 429 || *status >= 500,
            RegistryError::Mirrors { primary, .. } => primary.1.is_transient(),
            RegistryError::Context { inner, .. } => inner.is_transient(),
            _ => false,
        }
    }

    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        RegistryError::Io {
            what: what.into(),
            source,
        }
    }

    /// Wraps any error in `context`.
    pub fn context(self, context: impl Into<String>) -> Self {
        RegistryError::Context {
            context: context.into(),
            inner: Box::new(self),
        }
    }

    /// The innermost error (through contexts).
    pub fn root(&self) -> &RegistryError {
        match self {
            RegistryError::Context { inner, .. } => inner.root(),
            other => other,
        }
    }

    /// Prefixes the context of a network or HTTP error.
    pub fn within(self, outer: &str) -> Self {
        match self {
            RegistryError::Network { context, cause } => RegistryError::Network {
                context: format!("{outer}: {context}"),
                cause,
            },
            RegistryError::Http {
                context,
                status,
                message,
            } => RegistryError::Http {
                context: format!("{outer}: {context}"),
                status,
                message,
            },
            other => other,
        }
    }
}

/// Does a transport error text describe a TLS problem (certificate, a
/// plain-HTTP server)?
pub fn is_tls_failure(cause: &str) -> bool {
    let lower = cause.to_ascii_lowercase();
    [
        "certificate",
        "tls",
        "corrupt message",
        "handshake",
        "https client",
    ]
    .iter()
    .any(|k| lower.contains(k))
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::Reference(name) => {
                write!(f, "invalid image name {name:?}: invalid reference format")
            }
            RegistryError::Config(msg) => f.write_str(msg),
            RegistryError::Blocked { registry, file } => {
                write!(f, "registry {registry} is blocked in {file}")
            }
            RegistryError::Network { context, cause } => write!(f, "{context}: {cause}"),
            RegistryError::Http {
                context, message, ..
            } => write!(f, "{context}: {message}"),
            RegistryError::Content(msg) => f.write_str(msg),
            RegistryError::Platform(msg) => f.write_str(msg),
            RegistryError::Mirrors { mirrors, primary } => {
                f.write_str("(Mirrors also failed: [")?;
                for (i, (name, err)) in mirrors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("]\n[")?;
                    }
                    write!(f, "{name}: {err}")?;
                }
                write!(f, "]): {}: {}", primary.0, primary.1)
            }
            RegistryError::ShortName(msg) => f.write_str(msg),
            RegistryError::Several(errors) => {
                writeln!(f, "{} errors occurred while pulling:", errors.len())?;
                for (i, (_, err)) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, " * {err}")?;
                }
                Ok(())
            }
            RegistryError::Credentials(msg) => f.write_str(msg),
            RegistryError::Interrupted => f.write_str("pull interrupted"),
            RegistryError::Io { what, source } => write!(f, "{what}: {source}"),
            RegistryError::Store(err) => err.fmt(f),
            RegistryError::Context { context, inner } => write!(f, "{context}: {inner}"),
        }
    }
}

impl std::error::Error for RegistryError {}

impl From<StoreError> for RegistryError {
    fn from(err: StoreError) -> Self {
        RegistryError::Store(err)
    }
}
