//! `vigil healthcheck`: `run` a container's healthcheck now (exit 0 healthy,
//! 1 unhealthy, as Podman). The check runs in the container's monitor, like
//! the scheduled ones. `--health-on-failure restart` is carried out by
//! `container cleanup`, the monitor's exit command.

use clap::{Args, Subcommand};

use crate::container::health::{run_check, CheckResult};
use crate::container::Engine;
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Subcommand)]
pub enum HealthcheckCommand {
    /// Run a container's healthcheck
    Run(HealthcheckRunArgs),
}

impl HealthcheckCommand {
    /// The command as typed, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            HealthcheckCommand::Run(_) => "healthcheck run",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct HealthcheckRunArgs {
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub fn handle(ctx: &Context, command: &HealthcheckCommand) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    match command {
        HealthcheckCommand::Run(args) => match run_check(&engine, &args.container)? {
            CheckResult::Healthy => Ok(0),
            CheckResult::Unhealthy => {
                println!("unhealthy");
                Ok(1)
            }
        },
    }
}
