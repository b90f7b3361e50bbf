//! `vigil build`: a Containerfile built into an image of the store, with the
//! results `podman build` 4.3.1 (buildah 1.28.2) gives (runner-build.md).
//!
//! - [`parse`]: the Containerfile grammar; [`words`]: argument splitting and
//!   variable substitution; [`glob`] and [`ignore`]: COPY globs and
//!   `.containerignore`.
//! - [`stage`]: the evaluator: stages, each instruction's effect on the
//!   config ([`config`]) and file system, history, cache ([`cache`]),
//!   output.
//! - [`run`]: RUN through `crate::container` (the same path as `vigil run`);
//!   [`copy`]: COPY/ADD through the safe unpacker; [`mount`]: the working
//!   root file system of COPY/ADD.
//! - Layers are committed with `crate::image::diff` (upper directory to
//!   layer tar) and `crate::image::commit` (into the store).
//!
//! The CLI (`cli/build.rs`) fills [`BuildOptions`] and prints errors.

pub mod cache;
pub mod config;
pub mod copy;
pub mod error;
pub mod glob;
pub mod ignore;
pub mod mount;
pub mod parse;
pub mod run;
pub mod stage;
pub mod words;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use config::Format;
pub use error::BuildError;
pub use stage::build;

/// `--pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Missing,
    Always,
    Never,
}

/// Everything a build needs, parsed from the command line.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The context directory (absolute).
    pub context: PathBuf,
    /// The Containerfile's path (for messages) and text.
    pub containerfile: PathBuf,
    pub text: String,
    /// Names to tag the result with, as given.
    pub tags: Vec<String>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub layers: bool,
    pub pull: PullPolicy,
    pub quiet: bool,
    /// `--label K=V`, in order.
    pub labels: Vec<(String, String)>,
    pub format: Format,
    pub squash: bool,
    /// `--squash-all`: the result is one layer, the base's files included.
    pub squash_all: bool,
    /// `--timestamp`: the images' `created` time and every layer entry's
    /// modification time, in seconds since the epoch.
    pub timestamp: Option<i64>,
    /// RUN's network, a `--network` value: `private` (the default network,
    /// as `podman build`), `host`, `none`, `slirp4netns` or a network name.
    pub network: String,
    pub ignore_file: Option<PathBuf>,
    /// How to reach registries for `FROM`/`COPY --from` images not in the
    /// store (`--tls-verify`, `--authfile`, `--creds`, `--cert-dir`).
    pub registry: crate::registry::RegistryOptions,
}

/// The result.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image ID (64 hex).
    pub id: String,
    /// Normalised names given.
    pub names: Vec<String>,
}
