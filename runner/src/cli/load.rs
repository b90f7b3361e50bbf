//! `vigil load`: load images from a docker-archive or oci-archive, or from an
//! OCI image layout directory.

use std::path::PathBuf;

use clap::Args;

use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Read the archive from FILE instead of stdin
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,

    /// Load from an OCI image layout directory instead of an archive (vigil extension)
    #[arg(long, value_name = "DIR", conflicts_with = "input")]
    pub layout: Option<PathBuf>,
}

pub fn handle(_ctx: &Context, _args: &LoadArgs) -> Result<i32, RunnerError> {
    Err(RunnerError::NotImplemented)
}
