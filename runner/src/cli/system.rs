//! `vigil system ...`: the system command group.

use clap::Subcommand;

use super::{df, info, prune};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show vigil's disk usage
    Df(df::DfArgs),
    /// Remove unused containers and images
    Prune(prune::SystemPruneArgs),
    /// Display vigil's system information
    Info(info::InfoArgs),
}

impl SystemCommand {
    pub fn name(&self) -> &'static str {
        match self {
            SystemCommand::Df(_) => "system df",
            SystemCommand::Prune(_) => "system prune",
            SystemCommand::Info(_) => "system info",
        }
    }
}

pub fn handle(ctx: &Context, command: &SystemCommand) -> Result<i32, RunnerError> {
    match command {
        SystemCommand::Df(a) => df::handle(ctx, a),
        SystemCommand::Prune(a) => prune::system_prune(ctx, a),
        SystemCommand::Info(a) => info::handle(ctx, a),
    }
}
