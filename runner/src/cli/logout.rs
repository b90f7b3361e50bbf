//! `vigil logout`: remove stored credentials (only from the primary auth
//! file, never from Docker's).

use std::path::PathBuf;

use clap::Args;

use super::output::print_out;
use crate::config::auth::normalize_key;
use crate::context::Context;
use crate::error::RunnerError;
use crate::registry;

#[derive(Debug, Clone, Args)]
pub struct LogoutArgs {
    /// Remove the credentials of every registry
    #[arg(short, long)]
    pub all: bool,

    /// Path of the authentication file
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,

    /// Registry: HOST[:PORT][/NAMESPACE] or a URL
    #[arg(value_name = "REGISTRY", required_unless_present = "all")]
    pub registry: Option<String>,
}

pub fn handle(_ctx: &Context, args: &LogoutArgs) -> Result<i32, RunnerError> {
    let files = registry::auth_files(args.authfile.as_deref());
    let config_err = |e: crate::config::ConfigError| RunnerError::Engine(e.to_string());
    if args.all {
        files.remove_all().map_err(config_err)?;
        print_out("Removed login credentials for all registries\n");
        return Ok(0);
    }
    let key = normalize_key(args.registry.as_deref().unwrap_or_default());
    if files.remove(&key).map_err(config_err)? {
        print_out(&format!("Removed login credentials for {key}\n"));
        Ok(0)
    } else {
        Err(RunnerError::Engine(format!("not logged into {key}")))
    }
}
