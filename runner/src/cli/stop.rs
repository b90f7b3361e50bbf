//! `vigil stop`: stop containers, with SIGKILL after a timeout.

use clap::Args;

use std::time::Duration;

use crate::container::{Engine, Status};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    /// Seconds to wait after the stop signal before killing
    /// [default: the container's stop timeout, 10]
    #[arg(short, long, value_name = "SECONDS")]
    pub time: Option<u32>,

    /// Containers to stop
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// The stop signal, then SIGKILL (to every process) after the timeout.
pub fn handle(ctx: &Context, args: &StopArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    for name in &args.containers {
        let id = engine.store.resolve(name)?;
        let rec = {
            let _lock = engine.store.lock(&id)?;
            engine.refresh(&id)?
        };
        if rec.status == Status::Running {
            let rt = engine.runtime()?;
            let timeout = args.time.unwrap_or(rec.config.stop_timeout);
            let stopped = timeout > 0
                && rt.kill(&id, rec.config.stop_signal, false).is_ok()
                && engine
                    .wait_exit(&id, Some(Duration::from_secs(timeout.into())))
                    .is_ok_and(|r| r.status == Status::Exited);
            if !stopped {
                // Already gone is fine: the exit file tells.
                let _ = rt.kill(&id, libc::SIGKILL, true);
                engine.wait_exit(&id, Some(Duration::from_secs(30)))?;
            }
        }
        println!("{name}");
    }
    Ok(0)
}
