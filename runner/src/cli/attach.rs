//! `vigil attach`: attach to a running container's stdio through its monitor.

use clap::{ArgAction, Args};

use vigil::client::{Attach, Ctl};

use crate::container::session::{parse_detach_keys, relay, SessionEnd, SessionOptions};
use crate::container::{Engine, Status};
use crate::context::Context;
use crate::error::RunnerError;

/// Options for an attached session, shared by `run`, `start` and `attach`.
#[derive(Debug, Clone, Args)]
pub struct AttachOptions {
    /// Key sequence that detaches from the container [default: ctrl-p,ctrl-q]
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,

    /// Forward signals received by vigil to the container process
    #[arg(
        long,
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value_t = true,
        default_missing_value = "true"
    )]
    pub sig_proxy: bool,
}

#[derive(Debug, Clone, Args)]
pub struct AttachArgs {
    /// Do not attach stdin
    #[arg(long)]
    pub no_stdin: bool,

    #[command(flatten)]
    pub options: AttachOptions,

    /// Container to attach to
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Attach to a running container until it exits (its status is ours) or detach.
pub fn handle(ctx: &Context, args: &AttachArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    let id = engine.store.resolve(&args.container)?;
    let rec = {
        let _lock = engine.store.lock(&id)?;
        engine.refresh(&id)?
    };
    if rec.status != Status::Running {
        return Err(RunnerError::Engine(format!(
            "you can only attach to running containers: container {} is {}",
            rec.short_id(),
            rec.status.as_str()
        )));
    }
    if rec.log.driver == "passthrough" {
        return Err(RunnerError::Engine(
            "cannot attach to a container using the passthrough log driver".into(),
        ));
    }
    let dir = engine.store.dir(&id);
    let attach = Attach::connect(&dir).map_err(|e| RunnerError::Engine(e.to_string()))?;
    let ctl = if rec.config.tty {
        Ctl::open(&dir).ok()
    } else {
        None
    };
    let opts = SessionOptions {
        stdin: !args.no_stdin && rec.config.stdin,
        tty: rec.config.tty,
        detach_keys: parse_detach_keys(args.options.detach_keys.as_deref())?,
        sig_proxy: if args.options.sig_proxy {
            Some((engine.runtime()?, id.clone()))
        } else {
            None
        },
    };
    if relay(attach, ctl, opts)? != SessionEnd::Exited {
        return Ok(0);
    }
    let rec = engine.wait_exit(&id, None)?;
    Ok(rec.exit_code.unwrap_or(crate::error::exit_code::ENGINE))
}
