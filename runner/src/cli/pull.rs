//! `vigil pull`: pull images from a registry into the store.

use clap::Args;

use super::output::print_out;
use super::registry_flags::{registry_err, PlatformFlags, RegistryFlags};
use crate::context::Context;
use crate::error::RunnerError;
use crate::image::Store;
use crate::interrupt::Interrupt;
use crate::registry::{self, Environment, PullOptions};

#[derive(Debug, Clone, Args)]
pub struct PullArgs {
    /// Pull every tagged image of the repository
    #[arg(short, long)]
    pub all_tags: bool,

    /// Suppress output information when pulling images
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub registry: RegistryFlags,

    #[command(flatten)]
    pub platform: PlatformFlags,

    /// Images to pull: [REGISTRY/]NAME[:TAG|@DIGEST]
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

pub fn handle(ctx: &Context, args: &PullArgs) -> Result<i32, RunnerError> {
    // The process ends with the pull, so the handlers may stay installed.
    let interrupt = Interrupt::install();
    let result = pull_all(ctx, args, &interrupt);
    if result.is_err() {
        // What was partly downloaded is gone: end as the signal would have.
        interrupt.exit_as_signalled();
    }
    result
}

fn pull_all(ctx: &Context, args: &PullArgs, interrupt: &Interrupt) -> Result<i32, RunnerError> {
    let opts = PullOptions {
        registry: args.registry.options()?,
        platform: args.platform.wanted()?,
        quiet: args.quiet,
        interrupt: Some(interrupt.clone()),
    };
    let env = Environment::load(&opts.registry).map_err(registry_err)?;
    let store = Store::open(&ctx.paths).map_err(|e| RunnerError::Engine(e.to_string()))?;
    let mut ids = Vec::new();
    for image in &args.images {
        if args.all_tags {
            if image.contains('@')
                || image
                    .rsplit('/')
                    .next()
                    .is_some_and(|last| last.contains(':'))
            {
                return Err(RunnerError::Engine(
                    "tag can't be used with --all-tags/-a".into(),
                ));
            }
            let (name, tags) = registry::list_tags(image, &opts.registry).map_err(registry_err)?;
            for tag in tags {
                let one = name.with_tag(&tag).to_string();
                let pulled =
                    registry::pull_with(&env, &store, &one, &opts).map_err(registry_err)?;
                ids.push(pulled.id.hex().to_string());
            }
        } else {
            let pulled = registry::pull_with(&env, &store, image, &opts).map_err(registry_err)?;
            ids.push(pulled.id.hex().to_string());
        }
    }
    let mut out = String::new();
    for id in ids {
        out.push_str(&id);
        out.push('\n');
    }
    print_out(&out);
    Ok(0)
}

/// `run`/`create --pull`: pulls the image if the policy says so; returns the
/// name to look the image up by (its ID after a pull).
pub fn ensure_image(
    ctx: &Context,
    args: &super::create::CreateArgs,
) -> Result<String, RunnerError> {
    if args.rootfs {
        return Ok(args.target.image.clone());
    }
    let registry = args.registry.options()?;
    let platform = args.platform.wanted()?;
    // Not `Interrupt::install`: its handlers would stay for the container's
    // run, where SIGINT must keep its default (or go through sig-proxy).
    let (ensured, interrupt) = Interrupt::during(|interrupt| {
        let opts = PullOptions {
            registry,
            platform,
            quiet: args.quiet,
            interrupt: Some(interrupt.clone()),
        };
        let ensured = registry::ensure(ctx, &args.target.image, args.pull, &opts);
        (ensured, interrupt.clone())
    });
    // ^C during the pull: what was downloaded is gone; end by the signal,
    // as `vigil pull` does, rather than run the container. (Only now: the
    // signal is blocked until `during` returns.)
    interrupt.exit_as_signalled();
    match ensured.map_err(registry_err)? {
        Some(id) => Ok(id.hex().to_string()),
        None => Ok(args.target.image.clone()),
    }
}
