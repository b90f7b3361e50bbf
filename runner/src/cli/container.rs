//! `vigil container ...`: the container command group, Podman's noun form
//! (`container ls`, `container rm`...), plus `container cleanup`, which the
//! monitor's exit command runs.

use clap::{Args, Subcommand};

use super::{
    commit, cp, diff, export, inspect, kill, logs, pause, prune, ps, rename, restart, rm, start,
    stats, stop, top, unpause, wait,
};
use crate::container::{control, Engine};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// List containers
    #[command(visible_alias = "ls", alias = "list")]
    Ps(ps::PsArgs),
    /// Display the configuration of containers
    Inspect(inspect::InspectArgs),
    /// Fetch the logs of one or more containers
    Logs(logs::LogsArgs),
    /// Start one or more containers
    Start(start::StartArgs),
    /// Stop one or more containers
    Stop(stop::StopArgs),
    /// Restart one or more containers
    Restart(restart::RestartArgs),
    /// Kill one or more running containers with a signal
    Kill(kill::KillArgs),
    /// Block on one or more containers and print their exit codes
    Wait(wait::WaitArgs),
    /// Remove one or more containers
    Rm(rm::RmArgs),
    /// Pause all the processes in containers
    Pause(pause::PauseArgs),
    /// Unpause the processes in paused containers
    Unpause(unpause::UnpauseArgs),
    /// Rename a container
    Rename(rename::RenameArgs),
    /// Display the running processes of a container
    Top(top::TopArgs),
    /// Export a container's file system as a tar archive
    Export(export::ExportArgs),
    /// Inspect changes to a container's file system
    Diff(diff::DiffArgs),
    /// Create a new image from a container's changes
    Commit(commit::CommitArgs),
    /// Copy files between a container and the host
    Cp(cp::CpArgs),
    /// Display container resource usage
    Stats(stats::StatsArgs),
    /// Remove all containers that are not running
    Prune(prune::ContainerPruneArgs),
    /// Record a container's exit and apply its restart policy or --rm
    /// (run by the monitor when the container exits)
    #[command(hide = true)]
    Cleanup(CleanupArgs),
}

impl ContainerCommand {
    /// The command as typed, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            ContainerCommand::Ps(_) => "container ls",
            ContainerCommand::Inspect(_) => "container inspect",
            ContainerCommand::Logs(_) => "container logs",
            ContainerCommand::Start(_) => "container start",
            ContainerCommand::Stop(_) => "container stop",
            ContainerCommand::Restart(_) => "container restart",
            ContainerCommand::Kill(_) => "container kill",
            ContainerCommand::Wait(_) => "container wait",
            ContainerCommand::Rm(_) => "container rm",
            ContainerCommand::Pause(_) => "container pause",
            ContainerCommand::Unpause(_) => "container unpause",
            ContainerCommand::Rename(_) => "container rename",
            ContainerCommand::Cleanup(_) => "container cleanup",
            ContainerCommand::Top(_) => "container top",
            ContainerCommand::Export(_) => "container export",
            ContainerCommand::Diff(_) => "container diff",
            ContainerCommand::Commit(_) => "container commit",
            ContainerCommand::Cp(_) => "container cp",
            ContainerCommand::Stats(_) => "container stats",
            ContainerCommand::Prune(_) => "container prune",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct CleanupArgs {
    /// The container that exited
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub fn handle(ctx: &Context, command: &ContainerCommand) -> Result<i32, RunnerError> {
    match command {
        ContainerCommand::Ps(a) => ps::handle(ctx, a),
        ContainerCommand::Inspect(a) => inspect::handle(ctx, a),
        ContainerCommand::Logs(a) => logs::handle(ctx, a),
        ContainerCommand::Start(a) => start::handle(ctx, a),
        ContainerCommand::Stop(a) => stop::handle(ctx, a),
        ContainerCommand::Restart(a) => restart::handle(ctx, a),
        ContainerCommand::Kill(a) => kill::handle(ctx, a),
        ContainerCommand::Wait(a) => wait::handle(ctx, a),
        ContainerCommand::Rm(a) => rm::handle(ctx, a),
        ContainerCommand::Pause(a) => pause::handle(ctx, a),
        ContainerCommand::Unpause(a) => unpause::handle(ctx, a),
        ContainerCommand::Rename(a) => rename::handle(ctx, a),
        ContainerCommand::Top(a) => top::handle(ctx, a),
        ContainerCommand::Export(a) => export::handle(ctx, a),
        ContainerCommand::Diff(a) => diff::handle(ctx, a),
        ContainerCommand::Commit(a) => commit::handle(ctx, a),
        ContainerCommand::Cp(a) => cp::handle(ctx, a),
        ContainerCommand::Stats(a) => stats::handle(ctx, a),
        ContainerCommand::Prune(a) => prune::container_prune(ctx, a),
        ContainerCommand::Cleanup(a) => {
            let engine = Engine::new(ctx);
            control::cleanup(&engine, &a.container)?;
            Ok(0)
        }
    }
}
