//! `vigil run`: create and start a container, attached unless `--detach`.

use clap::Args;

use super::attach::AttachOptions;
use super::create::CreateArgs;
use crate::container::session::{parse_detach_keys, relay, SessionEnd, SessionOptions};
use crate::container::{image, Engine, Record};
use crate::context::Context;
use crate::error::RunnerError;
use vigil::client::{Attach, Ctl};

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
pub fn handle(ctx: &Context, args: &RunArgs) -> Result<i32, RunnerError> {
    let detach_keys = parse_detach_keys(args.attach.detach_keys.as_deref())?;
    let engine = Engine::new(ctx);
    let image = image::resolve(ctx, &args.create.target.image, args.create.rootfs)?;
    let net = crate::container::net::env(ctx);
    let mut rec =
        crate::container::create::create(&engine.store, &net, &image, &args.create.request())?;
    let result = if args.detach {
        run_detached(&engine, &mut rec)
    } else {
        run_attached(&engine, &mut rec, args, detach_keys)
    };
    if result.is_err() && rec.auto_remove {
        remove(&engine, &rec.id);
    }
    result
}

fn run_detached(engine: &Engine<'_>, rec: &mut Record) -> Result<i32, RunnerError> {
    let _lock = engine.store.lock(&rec.id)?;
    let auto_remove = rec.auto_remove;
    engine.init(rec, auto_remove)?;
    engine.start(rec)?;
    println!("{}", rec.id);
    Ok(0)
}

/// Start with the session attached, like Podman: attach first, then start,
/// so no output is missed.
pub fn start_attached(
    engine: &Engine<'_>,
    rec: &mut Record,
    stdin: bool,
    sig_proxy: bool,
    detach_keys: Vec<u8>,
) -> Result<i32, RunnerError> {
    let dir = engine.store.dir(&rec.id);
    let lock = engine.store.lock(&rec.id)?;
    engine.init(rec, false)?;
    let attach = if rec.log.driver == "passthrough" {
        None
    } else {
        Some(Attach::connect(&dir).map_err(|e| RunnerError::Engine(e.to_string()))?)
    };
    let ctl = if rec.config.tty {
        Ctl::open(&dir).ok()
    } else {
        None
    };
    engine.start(rec)?;
    drop(lock);
    if let Some(attach) = attach {
        let opts = SessionOptions {
            stdin: stdin && rec.config.stdin,
            tty: rec.config.tty,
            detach_keys,
            sig_proxy: if sig_proxy {
                Some((engine.runtime()?, rec.id.clone()))
            } else {
                None
            },
        };
        if relay(attach, ctl, opts)? != SessionEnd::Exited {
            return Ok(0);
        }
    }
    *rec = engine.wait_exit(&rec.id, None)?;
    Ok(rec.exit_code.unwrap_or(crate::error::exit_code::ENGINE))
}

fn run_attached(
    engine: &Engine<'_>,
    rec: &mut Record,
    args: &RunArgs,
    keys: Vec<u8>,
) -> Result<i32, RunnerError> {
    let code = start_attached(engine, rec, true, args.attach.sig_proxy, keys)?;
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
