//! The network module's errors, with the exit codes Podman uses for them.

use std::fmt;
use std::io;

/// Why setting up, tearing down or managing a network failed.
#[derive(Debug)]
pub enum NetworkError {
    /// Bad input or configuration (`-p` value, unknown network, overlapping
    /// subnet, missing helper package): exit 125, like Podman.
    Config(String),
    /// The network could not be set up for a start (port in use, netavark or
    /// slirp4netns failed): exit 126.
    Start(String),
    /// A program netavark needs was not found (iptables): exit 127.
    NotFound(String),
    /// A network still has containers (`network rm`): exit 2.
    InUse(String),
    /// An I/O failure, with what was being done.
    Io { context: String, source: io::Error },
}

impl NetworkError {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        NetworkError::Io {
            context: context.into(),
            source,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            NetworkError::Config(_) | NetworkError::Io { .. } => 125,
            NetworkError::Start(_) => 126,
            NetworkError::NotFound(_) => 127,
            NetworkError::InUse(_) => 2,
        }
    }
}

impl fmt::Display for NetworkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkError::Config(m)
            | NetworkError::Start(m)
            | NetworkError::NotFound(m)
            | NetworkError::InUse(m) => f.write_str(m),
            NetworkError::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for NetworkError {}

impl From<NetworkError> for crate::error::RunnerError {
    fn from(e: NetworkError) -> Self {
        use crate::error::RunnerError;
        match e {
            NetworkError::Start(m) => RunnerError::Exit(126, m),
            NetworkError::NotFound(m) => RunnerError::Exit(127, m),
            NetworkError::InUse(m) => RunnerError::Exit(2, m),
            // 125 even when it stops a start (`run` reports other start
            // failures as 126): a missing helper is a configuration error.
            NetworkError::Config(m) => RunnerError::Exit(125, m),
            NetworkError::Io { context, source } => RunnerError::Io { context, source },
        }
    }
}
