//! `vigil kill`: send a signal to containers' main processes.

use clap::Args;

use crate::container::runtime::parse_signal;
use crate::container::{control, Engine};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct KillArgs {
    /// Signal to send, by name (KILL, SIGTERM) or number
    #[arg(short, long, value_name = "SIGNAL", default_value = "KILL")]
    pub signal: String,

    /// Act on the most recently created container
    #[arg(short, long)]
    pub latest: bool,

    /// Containers to signal
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Signal each container's process; print the names as given.
pub fn handle(ctx: &Context, args: &KillArgs) -> Result<i32, RunnerError> {
    let signal = parse_signal(&args.signal)?;
    let engine = Engine::new(ctx);
    for (name, id) in super::latest::targets(&engine, &args.containers, args.latest)? {
        control::kill(&engine, &id, signal)?;
        println!("{name}");
    }
    Ok(0)
}
