//! `vigil run`: create and start a container, attached unless `--detach`.

use clap::Args;

use super::attach::AttachOptions;
use super::create::CreateArgs;
use crate::container::session::{self, parse_detach_keys};
use crate::container::{image, Engine, Record};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Run the container in the background and print its ID
    #[arg(short, long)]
    pub detach: bool,

    #[command(flatten)]
    pub attach: AttachOptions,

    #[command(flatten)]
    pub create: CreateArgs,
}

/// Create and start; attached, exit with the container's status.
///
/// Like Podman, what fails once the container is created (its user or
/// working directory, the runtime, attaching) exits 126, or 127 when the
/// runtime found no command ([`RunnerError::StartFailed`]); what `create`
/// refuses is an engine error (125).
pub fn handle(ctx: &Context, args: &RunArgs) -> Result<i32, RunnerError> {
    let started_failed = |e| RunnerError::StartFailed(Box::new(e));
    // Podman reads the detach keys when it attaches, after creating.
    let detach_keys =
        parse_detach_keys(args.attach.detach_keys.as_deref()).map_err(started_failed)?;
    let engine = Engine::new(ctx);
    let name = super::pull::ensure_image(ctx, &args.create)?;
    let image = image::resolve(ctx, &name, args.create.rootfs)?;
    let mut rec =
        crate::container::create::create(&engine.store, &image, &args.create.request_with(ctx))?;
    let result = if args.detach {
        run_detached(&engine, &mut rec)
    } else {
        run_attached(&engine, &mut rec, args, detach_keys)
    };
    if result.is_err() && rec.auto_remove {
        remove(&engine, &rec.id);
    }
    result.map_err(started_failed)
}

fn run_detached(engine: &Engine<'_>, rec: &mut Record) -> Result<i32, RunnerError> {
    let _lock = engine.store.lock(&rec.id)?;
    let auto_remove = rec.auto_remove;
    engine.init(rec, auto_remove)?;
    engine.start(rec)?;
    println!("{}", rec.id);
    Ok(0)
}

fn run_attached(
    engine: &Engine<'_>,
    rec: &mut Record,
    args: &RunArgs,
    keys: Vec<u8>,
) -> Result<i32, RunnerError> {
    let code = session::start_attached(engine, rec, true, args.attach.sig_proxy, keys)?;
    if rec.auto_remove && rec.status == crate::container::Status::Exited {
        remove(engine, &rec.id);
    }
    Ok(code)
}

fn remove(engine: &Engine<'_>, id: &str) {
    if let Ok(_lock) = engine.store.lock(id) {
        if let Ok(mut rec) = engine.refresh(id) {
            let _ = engine.remove(&mut rec);
        }
    }
}
