//! `vigil wait`: wait for containers to exit and print their exit codes.

use clap::Args;

use std::time::Duration;

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
        let rec = loop {
            let rec = {
                let _lock = engine.store.lock(&id)?;
                engine.refresh(&id)?
            };
            match rec.status {
                Status::Exited => break rec,
                Status::Running | Status::Paused => break engine.wait_exit(&id, None)?,
                // Not started yet: wait until someone starts it.
                Status::Created => std::thread::sleep(Duration::from_millis(250)),
            }
        };
        if let Some(error) = &rec.error {
            eprintln!("vigil wait: {}: {error}", rec.id);
        }
        println!("{}", rec.exit_code.unwrap_or(-1));
    }
    Ok(0)
}
