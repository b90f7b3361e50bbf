//! Why a build failed, with Podman's messages (runner-build.md §5.4) and
//! exit codes: a RUN that exits N fails the build with N, everything else
//! with 125. The CLI prints `Error: <message>`.

use std::fmt;

/// A failed build.
#[derive(Debug)]
pub enum BuildError {
    /// The Containerfile does not parse (nothing ran).
    Parse {
        path: String,
        line: usize,
        reason: String,
    },
    /// A step failed; `step` is the instruction as written.
    Step { step: String, reason: String },
    /// A RUN step's command exited with `code`.
    RunExit { step: String, code: i32 },
    /// Anything else (no FROM, missing Containerfile, a base image that is
    /// not known...).
    Other(String),
    /// SIGINT or SIGTERM arrived; the build container was removed.
    Interrupted,
}

impl BuildError {
    /// `building at STEP "<step>": <reason>`.
    pub fn step(step: &str, reason: impl Into<String>) -> BuildError {
        BuildError::Step {
            step: step.to_string(),
            reason: reason.into(),
        }
    }

    /// The process exit status, as Podman's.
    pub fn exit_code(&self) -> i32 {
        match self {
            BuildError::RunExit { code, .. } if (1..=255).contains(code) => *code,
            BuildError::Interrupted => 130,
            _ => 125,
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Parse { path, line, reason } => {
                write!(f, "parsing main Dockerfile: {path}: line {line}: {reason}")
            }
            BuildError::Step { step, reason } => {
                write!(f, "building at STEP \"{step}\": {reason}")
            }
            BuildError::RunExit { step, code } => write!(
                f,
                "building at STEP \"{step}\": while running runtime: exit status {code}"
            ),
            BuildError::Other(msg) => f.write_str(msg),
            BuildError::Interrupted => f.write_str("build interrupted; build containers removed"),
        }
    }
}

impl std::error::Error for BuildError {}

impl From<crate::image::StoreError> for BuildError {
    fn from(e: crate::image::StoreError) -> Self {
        BuildError::Other(e.to_string())
    }
}
