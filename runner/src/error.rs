//! Runner errors and Podman's exit-code convention.
//!
//! A command that ran a container exits with the container's status; failures of
//! vigil itself use the codes Podman (and Docker) reserve above 124.

use std::fmt;
use std::io;

/// Exit codes shared with Podman.
pub mod exit_code {
    /// The engine itself failed (bad flags, missing image, runtime error...).
    pub const ENGINE: i32 = 125;
    /// The container command exists but cannot be invoked (e.g. not executable).
    pub const CANNOT_INVOKE: i32 = 126;
    /// The container command was not found.
    pub const NOT_FOUND: i32 = 127;
}

/// Why a runner command failed. `main` prints it as `vigil <command>: <error>`
/// and exits with [`RunnerError::exit_code`].
#[derive(Debug)]
pub enum RunnerError {
    /// The command is recognised but not implemented yet.
    NotImplemented,
    /// A failure of the engine, with a message for the user.
    Engine(String),
    /// An I/O failure, with what was being done at the time.
    Io { context: String, source: io::Error },
    /// The container command could not be invoked.
    CannotInvoke(String),
    /// The container command was not found.
    CommandNotFound(String),
    /// A message as is, with its own exit code (network set-up failures:
    /// 126 for a start that failed, 127 for a missing program, 2 for a
    /// network still in use, as Podman).
    Exit(i32, String),
}

impl RunnerError {
    /// An I/O error annotated with what was being attempted.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        RunnerError::Io {
            context: context.into(),
            source,
        }
    }

    /// The process exit code for this error, following Podman.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunnerError::NotImplemented | RunnerError::Engine(_) | RunnerError::Io { .. } => {
                exit_code::ENGINE
            }
            RunnerError::CannotInvoke(_) => exit_code::CANNOT_INVOKE,
            RunnerError::CommandNotFound(_) => exit_code::NOT_FOUND,
            RunnerError::Exit(code, _) => *code,
        }
    }
}

impl fmt::Display for RunnerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunnerError::NotImplemented => f.write_str("not implemented yet"),
            RunnerError::Engine(msg) => f.write_str(msg),
            RunnerError::Io { context, source } => write!(f, "{context}: {source}"),
            RunnerError::CannotInvoke(msg) => write!(f, "cannot invoke container command: {msg}"),
            RunnerError::CommandNotFound(msg) => write!(f, "container command not found: {msg}"),
            RunnerError::Exit(_, msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for RunnerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunnerError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_podman() {
        assert_eq!(RunnerError::NotImplemented.exit_code(), 125);
        assert_eq!(RunnerError::Engine("x".into()).exit_code(), 125);
        let io = RunnerError::io("reading x", io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(io.exit_code(), 125);
        assert_eq!(RunnerError::CannotInvoke("x".into()).exit_code(), 126);
        assert_eq!(RunnerError::CommandNotFound("x".into()).exit_code(), 127);
    }

    #[test]
    fn io_errors_name_their_context() {
        let err = RunnerError::io("reading /x", io::Error::from(io::ErrorKind::NotFound));
        assert!(err.to_string().starts_with("reading /x: "));
        assert!(std::error::Error::source(&err).is_some());
    }
}
