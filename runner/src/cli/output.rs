//! What every command shares to print results and report errors.

use std::io::{self, Write};

use crate::error::RunnerError;

/// Writes `text` to stdout; a closed pipe (`vigil images | head`) is not an error.
pub fn print_out(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Maps an error of a layer below the CLI (image store, archives) to the
/// runner's engine error (exit code 125).
pub fn engine_err(err: impl std::fmt::Display) -> RunnerError {
    RunnerError::Engine(err.to_string())
}
