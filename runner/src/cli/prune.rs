//! `container prune`, `image prune` and `system prune`: remove what is not
//! in use, after Podman's prompt (`-f` skips it).

use std::collections::BTreeSet;
use std::io::{BufRead, Write};

use clap::Args;

use super::filter::PruneFilter;
use super::output::{engine_err, print_out};
use crate::container::{usage, Engine, Status};
use crate::context::Context;
use crate::error::RunnerError;
use crate::image::Store;

#[derive(Debug, Clone, Args)]
pub struct ContainerPruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,

    /// Remove only what matches: until=TIME, label=KEY[=VALUE], label!=KEY[=VALUE]
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ImagePruneArgs {
    /// Remove every image no container uses, not only dangling ones
    #[arg(short, long)]
    pub all: bool,

    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,

    /// Remove only what matches: until=TIME, label=KEY[=VALUE], label!=KEY[=VALUE]
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SystemPruneArgs {
    /// Remove every unused image, not only dangling ones
    #[arg(short, long)]
    pub all: bool,

    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,

    /// Prune volumes too (vigil has none yet)
    #[arg(long)]
    pub volumes: bool,

    /// Remove only what matches: until=TIME, label=KEY[=VALUE], label!=KEY[=VALUE]
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// Prints `question` and reads the answer from stdin: only `y`/`Y` is yes.
fn confirm(question: &str) -> bool {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim(), "y" | "Y")
}

/// Removes every container that is not running; (id, bytes freed).
fn prune_containers(
    ctx: &Context,
    filter: &PruneFilter,
) -> Result<Vec<(String, u64)>, RunnerError> {
    let engine = Engine::new(ctx);
    let mut removed = Vec::new();
    for id in engine.store.ids()? {
        let _all = engine.store.lock_all()?;
        let _lock = engine.store.lock(&id)?;
        let mut rec = engine.refresh(&id)?;
        if matches!(rec.status, Status::Created | Status::Exited)
            && filter.matches(rec.created, &rec.labels)
        {
            let size = usage::rw_size(&rec, &engine.store.data_dir(&id));
            engine.remove(&mut rec)?;
            removed.push((id, size));
        }
    }
    Ok(removed)
}

/// Removes unused images (dangling ones only, unless `all`); (id, bytes).
fn prune_images(
    ctx: &Context,
    all: bool,
    filter: &PruneFilter,
) -> Result<Vec<(String, u64)>, RunnerError> {
    let engine = Engine::new(ctx);
    let used: BTreeSet<String> = engine
        .store
        .records()?
        .into_iter()
        .map(|r| r.image_id)
        .collect();
    let store = Store::open(&ctx.paths).map_err(engine_err)?;
    let mut removed = Vec::new();
    for image in store.list().map_err(engine_err)? {
        let id = image.id.hex().to_string();
        if used.contains(&id) || (!all && !image.names.is_empty()) {
            continue;
        }
        let created = image
            .config
            .created
            .as_deref()
            .and_then(vigil::client::parse_rfc3339_nanos)
            .unwrap_or(0);
        let labels = image.config.config.labels.clone().unwrap_or_default();
        if !filter.matches(created, &labels) {
            continue;
        }
        if removed.iter().any(|(r, _)| r == &id) {
            continue;
        }
        store.remove(&id).map_err(engine_err)?;
        removed.push((id, image.size));
    }
    Ok(removed)
}

/// Podman's words for a filter `container prune` does not take.
fn container_filter_error(key: &str) -> String {
    format!("{key} is an invalid filter")
}

/// Podman's words for a filter `image prune` does not take.
fn image_filter_error(key: &str) -> String {
    format!("unsupported image filter {key:?}")
}

pub fn container_prune(ctx: &Context, args: &ContainerPruneArgs) -> Result<i32, RunnerError> {
    let filter = PruneFilter::parse(&args.filter, &container_filter_error)?;
    if !args.force
        && !confirm("WARNING! This will remove all non running containers.\nAre you sure you want to continue? [y/N] ")
    {
        return Ok(0);
    }
    let removed = prune_containers(ctx, &filter)?;
    print_out(
        &removed
            .iter()
            .map(|(id, _)| format!("{id}\n"))
            .collect::<String>(),
    );
    Ok(0)
}

pub fn image_prune(ctx: &Context, args: &ImagePruneArgs) -> Result<i32, RunnerError> {
    let filter = PruneFilter::parse(&args.filter, &image_filter_error)?;
    let what = if args.all {
        "WARNING! This command removes all images without at least one container associated with them.\n"
    } else {
        "WARNING! This command removes all dangling images.\n"
    };
    if !args.force && !confirm(&format!("{what}Are you sure you want to continue? [y/N] ")) {
        return Ok(0);
    }
    let removed = prune_images(ctx, args.all, &filter)?;
    print_out(
        &removed
            .iter()
            .map(|(id, _)| format!("{id}\n"))
            .collect::<String>(),
    );
    Ok(0)
}

pub fn system_prune(ctx: &Context, args: &SystemPruneArgs) -> Result<i32, RunnerError> {
    let filter = PruneFilter::parse(&args.filter, &container_filter_error)?;
    let images = if args.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    };
    let volumes = if args.volumes {
        "\t- all volumes not used by at least one container\n"
    } else {
        ""
    };
    let question = format!(
        "WARNING! This command removes:\n\t- all stopped containers\n\t- all networks not used by at least one container\n{volumes}\t- {images}\n\t- all dangling build cache\n\nAre you sure you want to continue? [y/N] "
    );
    if !args.force && !confirm(&question) {
        return Ok(0);
    }
    let containers = prune_containers(ctx, &filter)?;
    let images = prune_images(ctx, args.all, &filter)?;
    let mut out = String::new();
    for (title, list) in [
        ("Deleted Containers", &containers),
        ("Deleted Images", &images),
    ] {
        if !list.is_empty() {
            out.push_str(&format!("{title}\n"));
            for (id, _) in list.iter() {
                out.push_str(&format!("{id}\n"));
            }
        }
    }
    let total: u64 = containers.iter().chain(&images).map(|(_, s)| s).sum();
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        super::units::human_size4(total)
    ));
    print_out(&out);
    Ok(0)
}
