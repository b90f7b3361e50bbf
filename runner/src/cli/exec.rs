//! `vigil exec`: run an additional process in a running container.

use clap::Args;

use super::argv::ContainerAndCommand;
use crate::container::exec::{exec, ExecRequest};
use crate::container::session::parse_detach_keys;
use crate::container::Engine;
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    /// Keep stdin open
    #[arg(short, long)]
    pub interactive: bool,

    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,

    /// Run the process in the background
    #[arg(short, long)]
    pub detach: bool,

    /// Key sequence that detaches from the process [default: ctrl-p,ctrl-q]
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,

    /// Set an environment variable; a bare NAME takes the value from vigil's environment
    #[arg(short, long, value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,

    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,

    /// User (and group) to run the process as
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// Pass N additional file descriptors (3 to 3+N-1) to the process
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,

    #[command(flatten)]
    pub target: ContainerAndCommand,
}

/// Run the command in the container; exit with its status.
///
/// Like Podman, once the container is found what fails exits 255, or 127 /
/// 126 when the runtime found no command / was denied
/// ([`RunnerError::ExecFailed`]); a missing container or a bad `-e` is an
/// engine error (125).
pub fn handle(ctx: &Context, args: &ExecArgs) -> Result<i32, RunnerError> {
    if args.preserve_fds > 0 {
        return Err(RunnerError::Engine(
            "not supported yet: --preserve-fds".into(),
        ));
    }
    check_env(&args.env)?;
    let engine = Engine::new(ctx);
    let id = engine.store.resolve(&args.target.container)?;
    let session = || {
        if args.target.command.is_empty() {
            return Err(RunnerError::Engine(
                "must provide a non-empty command to start an exec session: invalid argument"
                    .into(),
            ));
        }
        let req = ExecRequest {
            command: args.target.command.clone(),
            env: args.env.clone(),
            workdir: args.workdir.clone(),
            user: args.user.clone(),
            tty: args.tty,
            stdin: args.interactive,
            detach: args.detach,
            detach_keys: parse_detach_keys(args.detach_keys.as_deref())?,
        };
        exec(&engine, &id, &req)
    };
    session().map_err(|e| RunnerError::ExecFailed(Box::new(e)))
}

/// `-e NAME=VALUE`: the name must not be empty (Podman's check).
fn check_env(env: &[String]) -> Result<(), RunnerError> {
    match env.iter().find(|e| e.starts_with('=')) {
        Some(bad) => Err(RunnerError::Engine(format!(
            "parsing environment variables: invalid environment variable: {bad:?}"
        ))),
        None => Ok(()),
    }
}
