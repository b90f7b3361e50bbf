//! `vigil healthcheck`: `run` a container's healthcheck now (exit 0 healthy,
//! 1 unhealthy, as Podman). The check runs in the container's monitor, like
//! the scheduled ones; `on-exit` is the monitor's exit command for
//! `--health-on-failure restart` (hidden).

use clap::{Args, Subcommand};

use crate::container::health::{restart_if_requested, run_check, CheckResult};
use crate::container::Engine;
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Subcommand)]
pub enum HealthcheckCommand {
    /// Run a container's healthcheck
    Run(HealthcheckRunArgs),
    /// Restart a container its monitor stopped because its healthcheck failed
    #[command(hide = true)]
    OnExit(HealthcheckRunArgs),
}

impl HealthcheckCommand {
    /// The command as typed, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            HealthcheckCommand::Run(_) => "healthcheck run",
            HealthcheckCommand::OnExit(_) => "healthcheck on-exit",
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
        HealthcheckCommand::OnExit(args) => {
            let id = engine.store.resolve(&args.container)?;
            restart_if_requested(&engine, &id)?;
            Ok(0)
        }
    }
}
