//! The client's error type.

use std::fmt;
use std::io;

use crate::proto::sync::DecodeError;

/// Exit code Podman uses for engine errors (and runtime errors it cannot classify).
pub const EXIT_ENGINE: i32 = 125;
/// Exit code for "the command exists but cannot be invoked".
pub const EXIT_CANNOT_INVOKE: i32 = 126;
/// Exit code for "the command was not found".
pub const EXIT_NOT_FOUND: i32 = 127;

/// The OCI runtime failed to create (or exec) the container; `message` is what
/// the runtime wrote to its stderr, as relayed by the monitor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeError {
    pub message: String,
}

impl RuntimeError {
    /// Podman's classification: "permission denied" / "operation not permitted"
    /// -> 126, "executable file not found" / "no such file or directory" -> 127,
    /// anything else -> 125 (case-insensitive, in that order).
    ///
    /// ```
    /// use vigil::client::RuntimeError;
    /// let e = RuntimeError { message: "exec: \"/x\": stat /x: no such file or directory".into() };
    /// assert_eq!(e.exit_code(), 127);
    /// ```
    pub fn exit_code(&self) -> i32 {
        let m = self.message.to_ascii_lowercase();
        if m.contains("permission denied") || m.contains("operation not permitted") {
            EXIT_CANNOT_INVOKE
        } else if m.contains("executable file not found") || m.contains("no such file or directory")
        {
            EXIT_NOT_FOUND
        } else {
            EXIT_ENGINE
        }
    }

    /// The message without the runtime's logrus decoration: the `msg="..."`
    /// value when present (runc/crun text logs), else the trimmed text.
    ///
    /// ```
    /// use vigil::client::RuntimeError;
    /// let e = RuntimeError { message: "time=\"x\" level=error msg=\"runc create failed: \\\"a\\\"\"\n".into() };
    /// assert_eq!(e.summary(), "runc create failed: \"a\"");
    /// ```
    pub fn summary(&self) -> String {
        let text = self.message.trim();
        let Some(start) = text.find("msg=\"") else {
            return text.to_string();
        };
        let mut out = String::new();
        let mut chars = text[start + 5..].chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.extend(chars.next()),
                '"' => return out,
                _ => out.push(c),
            }
        }
        text.to_string()
    }
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

/// Why a client operation failed.
#[derive(Debug)]
pub enum Error {
    /// An I/O failure, with what was being done.
    Io { context: String, source: io::Error },
    /// The monitor's launcher process exited with a failure (bad options...).
    Launcher { status: String, stderr: String },
    /// The monitor went away without reporting (its diagnostics, if any).
    MonitorExited { stderr: String },
    /// The monitor reported a runtime failure.
    Runtime(RuntimeError),
    /// The monitor sent something unparseable.
    Protocol(DecodeError),
    /// Nothing happened before the deadline.
    Timeout(String),
    /// The caller asked for something these options do not allow.
    Usage(&'static str),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The exit code Podman would use for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Runtime(e) => e.exit_code(),
            _ => EXIT_ENGINE,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Launcher { status, stderr } => {
                write!(f, "monitor failed ({status})")?;
                if !stderr.trim().is_empty() {
                    write!(f, ": {}", stderr.trim())?;
                }
                Ok(())
            }
            Error::MonitorExited { stderr } => {
                f.write_str("monitor exited without reporting a pid")?;
                if !stderr.trim().is_empty() {
                    write!(f, ": {}", stderr.trim())?;
                }
                Ok(())
            }
            Error::Runtime(e) => write!(f, "OCI runtime error: {e}"),
            Error::Protocol(e) => e.fmt(f),
            Error::Timeout(what) => write!(f, "timed out waiting for {what}"),
            Error::Usage(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

/// Result alias of the client.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_like_podman() {
        let code = |m: &str| RuntimeError { message: m.into() }.exit_code();
        assert_eq!(
            code("exec: \"foo\": executable file not found in $PATH"),
            127
        );
        assert_eq!(code("stat /x: No such file or directory"), 127);
        assert_eq!(code("exec /etc/passwd: permission denied"), 126);
        assert_eq!(
            code("Operation not permitted; no such file or directory"),
            126
        );
        assert_eq!(code("cgroup busy"), 125);
        assert_eq!(Error::Timeout("x".into()).exit_code(), 125);
    }

    #[test]
    fn summary_strips_logrus() {
        let e = RuntimeError {
            message: "plain text\n".into(),
        };
        assert_eq!(e.summary(), "plain text");
        let e = RuntimeError {
            message: "msg=\"unterminated".into(),
        };
        assert_eq!(e.summary(), "msg=\"unterminated");
    }
}
