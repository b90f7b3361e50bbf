//! Pushing an image of the store to a registry.

use super::error::RegistryError;
use super::RegistryOptions;
use crate::context::Context;

/// What [`push`] needs besides the names.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub registry: RegistryOptions,
    pub quiet: bool,
}

/// Pushes `source` (a local image) to `dest`; returns the manifest digest.
pub fn push(_ctx: &Context, _source: &str, _dest: &str, _opts: &PushOptions) -> Result<String, RegistryError> {
    Err(RegistryError::Config("push: not implemented yet".into()))
}
