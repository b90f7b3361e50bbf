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
    /// An exec session could not be started (Podman's -1).
    pub const EXEC_FAILED: i32 = 255;
}

/// What the OCI runtime's error says, classified as Podman classifies it
/// (permission first, then not found): the exit code of a `run` or `exec`
/// that failed in the runtime depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeFailure {
    /// "permission denied" / "operation not permitted": the command (or
    /// something it needs) cannot be invoked.
    PermissionDenied,
    /// "executable file not found" / "no such file or directory": the
    /// command, or the working directory an exec asked for, is missing.
    NotFound,
    /// Anything else (a mount that failed, a cgroup limit the kernel refused...).
    Other,
}

impl RuntimeFailure {
    /// Classifies the runtime's message.
    pub fn of(message: &str) -> RuntimeFailure {
        let m = message.to_ascii_lowercase();
        if m.contains("permission denied") || m.contains("operation not permitted") {
            RuntimeFailure::PermissionDenied
        } else if m.contains("executable file not found") || m.contains("no such file or directory")
        {
            RuntimeFailure::NotFound
        } else {
            RuntimeFailure::Other
        }
    }
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
    /// The OCI runtime failed (its message, without logrus decoration).
    Runtime {
        failure: RuntimeFailure,
        message: String,
    },
    /// `run`: the container was created but could not be started. Podman's
    /// codes: 127 when the runtime found no command, 126 for anything else
    /// (a user or working directory that does not resolve, a failed mount...).
    StartFailed(Box<RunnerError>),
    /// `exec`: the session could not be started (the container was found):
    /// 127 not found, 126 permission denied, else 255, as Podman.
    ExecFailed(Box<RunnerError>),
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
            RunnerError::NotImplemented
            | RunnerError::Engine(_)
            | RunnerError::Io { .. }
            | RunnerError::Runtime { .. } => exit_code::ENGINE,
            RunnerError::StartFailed(inner) => match inner.runtime_failure() {
                Some(RuntimeFailure::NotFound) => exit_code::NOT_FOUND,
                _ => exit_code::CANNOT_INVOKE,
            },
            RunnerError::ExecFailed(inner) => match inner.runtime_failure() {
                Some(RuntimeFailure::NotFound) => exit_code::NOT_FOUND,
                Some(RuntimeFailure::PermissionDenied) => exit_code::CANNOT_INVOKE,
                _ => exit_code::EXEC_FAILED,
            },
        }
    }

    /// How the runtime failed, if this is (or wraps) a runtime error.
    pub fn runtime_failure(&self) -> Option<RuntimeFailure> {
        match self {
            RunnerError::Runtime { failure, .. } => Some(*failure),
            RunnerError::StartFailed(inner) | RunnerError::ExecFailed(inner) => {
                inner.runtime_failure()
            }
            _ => None,
        }
    }

    /// A runtime error, classified by its message.
    pub fn runtime(message: impl Into<String>) -> Self {
        let message = message.into();
        RunnerError::Runtime {
            failure: RuntimeFailure::of(&message),
            message,
        }
    }
}

impl fmt::Display for RunnerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunnerError::NotImplemented => f.write_str("not implemented yet"),
            RunnerError::Engine(msg) => f.write_str(msg),
            RunnerError::Io { context, source } => write!(f, "{context}: {source}"),
            RunnerError::Runtime { failure, message } => match failure {
                RuntimeFailure::PermissionDenied => {
                    write!(f, "cannot invoke container command: {message}")
                }
                RuntimeFailure::NotFound => write!(f, "container command not found: {message}"),
                RuntimeFailure::Other => write!(f, "OCI runtime error: {message}"),
            },
            RunnerError::StartFailed(inner) | RunnerError::ExecFailed(inner) => inner.fmt(f),
        }
    }
}

/// An OS error as Go (and so Podman) prints it: `no such file or directory`.
pub fn os_error_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl std::error::Error for RunnerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunnerError::Io { source, .. } => Some(source),
            RunnerError::StartFailed(inner) | RunnerError::ExecFailed(inner) => Some(&**inner),
            _ => None,
        }
    }
}

/// An I/O error as Go prints it (`no such file or directory`), for
/// messages that copy Podman's.
pub fn os_message(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => text.as_str(),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
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
        assert_eq!(
            RunnerError::runtime("cgroup: invalid argument").exit_code(),
            125
        );
    }

    #[test]
    fn runtime_failures_are_classified_like_podman() {
        let cases = [
            (
                r#"exec: "nosuch": executable file not found in $PATH"#,
                RuntimeFailure::NotFound,
            ),
            (
                r#"exec: "/x": stat /x: no such file or directory"#,
                RuntimeFailure::NotFound,
            ),
            (
                r#"exec: "/etc": permission denied"#,
                RuntimeFailure::PermissionDenied,
            ),
            (
                "error setting cgroup config: write memory.limit: device or resource busy",
                RuntimeFailure::Other,
            ),
            (
                r#"error mounting "/etc/passwd" to rootfs at "/etc": not a directory"#,
                RuntimeFailure::Other,
            ),
        ];
        for (message, failure) in cases {
            assert_eq!(RuntimeFailure::of(message), failure, "{message}");
        }
        // `run` after create: 127 not found, otherwise 126, whatever failed.
        let start = |e| RunnerError::StartFailed(Box::new(e));
        assert_eq!(start(RunnerError::runtime(cases[0].0)).exit_code(), 127);
        assert_eq!(start(RunnerError::runtime(cases[2].0)).exit_code(), 126);
        assert_eq!(start(RunnerError::runtime(cases[4].0)).exit_code(), 126);
        assert_eq!(
            start(RunnerError::Engine("unable to find user x".into())).exit_code(),
            126
        );
        // `exec` once the container was found: 127, 126, else 255.
        let exec = |e| RunnerError::ExecFailed(Box::new(e));
        assert_eq!(exec(RunnerError::runtime(cases[1].0)).exit_code(), 127);
        assert_eq!(exec(RunnerError::runtime(cases[2].0)).exit_code(), 126);
        assert_eq!(
            exec(RunnerError::runtime("Cwd must be an absolute path")).exit_code(),
            255
        );
        assert_eq!(
            exec(RunnerError::Engine("state improper".into())).exit_code(),
            255
        );
        assert_eq!(exec(RunnerError::Engine("x".into())).to_string(), "x");
    }

    #[test]
    fn os_messages_read_like_go() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(os_message(&e), "no such file or directory");
    }

    #[test]
    fn io_errors_name_their_context() {
        let err = RunnerError::io("reading /x", io::Error::from(io::ErrorKind::NotFound));
        assert!(err.to_string().starts_with("reading /x: "));
        assert!(std::error::Error::source(&err).is_some());
    }
}
