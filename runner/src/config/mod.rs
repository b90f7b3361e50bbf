//! The containers configuration files vigil reads (registries.conf and
//! auth.json here; containers.conf and storage.conf join them), and the
//! small pieces their loaders share.
//!
//! Each file format owns a module; this one only has the search-order and
//! error helpers.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

pub mod auth;
pub mod registries;

/// A configuration file that could not be used: which file, and why (the
/// TOML/JSON parser's message carries the line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// How configuration loaders read the environment (a closure in tests,
/// `std::env::var_os` in the binary).
pub trait Env {
    fn var(&self, name: &str) -> Option<OsString>;
}

impl<F: Fn(&str) -> Option<OsString>> Env for F {
    fn var(&self, name: &str) -> Option<OsString> {
        self(name)
    }
}

/// The process environment.
pub fn process_env() -> impl Env {
    |name: &str| std::env::var_os(name)
}

/// An environment variable as an absolute path, if it is one.
pub fn absolute_var(env: &dyn Env, name: &str) -> Option<PathBuf> {
    let value = PathBuf::from(env.var(name)?);
    value.is_absolute().then_some(value)
}

/// `$HOME`, if set to an absolute path.
pub fn home(env: &dyn Env) -> Option<PathBuf> {
    absolute_var(env, "HOME")
}

/// The `*.conf` files of a drop-in directory, in lexical order of name
/// (a missing directory has none).
pub fn drop_ins(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf") && p.is_file())
        .collect();
    files.sort();
    files
}
