//! `vigil kill`: send a signal to containers' main processes.

use clap::Args;

use crate::container::runtime::parse_signal;
use crate::container::{Engine, Status};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct KillArgs {
    /// Signal to send, by name (KILL, SIGTERM) or number
    #[arg(short, long, value_name = "SIGNAL", default_value = "KILL")]
    pub signal: String,

    /// Containers to signal
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// Signal each container's process; print the names as given.
pub fn handle(ctx: &Context, args: &KillArgs) -> Result<i32, RunnerError> {
    let signal = parse_signal(&args.signal)?;
    let engine = Engine::new(ctx);
    for name in &args.containers {
        let id = engine.store.resolve(name)?;
        let _lock = engine.store.lock(&id)?;
        let rec = engine.refresh(&id)?;
        if rec.status != Status::Running {
            return Err(RunnerError::Engine(format!(
                "can only kill running containers. {} is in state {}: container state improper",
                rec.id,
                rec.status.as_str()
            )));
        }
        engine.runtime()?.kill(&id, signal, false)?;
        println!("{name}");
    }
    Ok(0)
}
