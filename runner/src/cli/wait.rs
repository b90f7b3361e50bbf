//! `vigil wait`: wait for containers to exit and print their exit codes.

use clap::Args;

use crate::container::{Engine, Status};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// Act on the most recently created container
    #[arg(short, long)]
    pub latest: bool,

    /// Containers to wait for
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Wait for each container to exit and print its exit code.
pub fn handle(ctx: &Context, args: &WaitArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    for (_, id) in super::latest::targets(&engine, &args.containers, args.latest)? {
        let rec = {
            let _lock = engine.store.lock(&id)?;
            engine.refresh(&id)?
        };
        let rec = match rec.status {
            // Never started counts as stopped, as in Podman 4.3.1 (its
            // exit code is 0).
            Status::Exited | Status::Created => rec,
            Status::Running | Status::Paused => engine.wait_exit(&id, None)?,
        };
        if let Some(error) = &rec.error {
            eprintln!("vigil wait: {}: {error}", rec.id);
        }
        let code = match rec.status {
            Status::Created => 0,
            _ => rec.exit_code.unwrap_or(-1),
        };
        println!("{code}");
    }
    Ok(0)
}
