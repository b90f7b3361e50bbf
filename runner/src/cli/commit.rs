//! `vigil commit`: a new image from a container's changes (its overlay upper
//! directory as one more layer on its image) and its effective config.

use clap::{Args, ValueEnum};
use serde_json::json;

use super::diff::ENGINE_PATHS;
use super::output::{engine_err, print_out};
use crate::clock::rfc3339_seconds;
use crate::container::record::{now_nanos, MountKind, RootfsSource};
use crate::container::{Engine, Status};
use crate::context::Context;
use crate::error::RunnerError;
use crate::image::compose::{add_image, config_with_layers, tree_layer, NewImage};
use crate::image::tmpdir::OwnedTempDir;
use crate::image::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImageFormat {
    Oci,
    Docker,
}

#[derive(Debug, Clone, Args)]
pub struct CommitArgs {
    /// Set the author of the image
    #[arg(short, long, value_name = "AUTHOR")]
    pub author: Option<String>,

    /// Apply a Dockerfile instruction to the image config (CMD, ENV, LABEL...)
    #[arg(short, long, value_name = "INSTRUCTION")]
    pub change: Vec<String>,

    /// Set the commit message (docker format only)
    #[arg(short, long, value_name = "MESSAGE")]
    pub message: Option<String>,

    /// Image format
    #[arg(short, long, value_enum, default_value_t = ImageFormat::Oci)]
    pub format: ImageFormat,

    /// Pause a running container while its files are copied (default true);
    /// a running container is not committed with --pause=false
    #[arg(short, long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub pause: bool,

    /// Suppress the progress output
    #[arg(short, long)]
    pub quiet: bool,

    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,

    /// Name for the new image
    #[arg(value_name = "IMAGE")]
    pub image: Option<String>,
}

pub fn handle(ctx: &Context, args: &CommitArgs) -> Result<i32, RunnerError> {
    if args.message.is_some() && args.format == ImageFormat::Oci {
        return Err(RunnerError::Engine(
            "messages are only compatible with the docker image format (-f docker)".into(),
        ));
    }
    let engine = Engine::new(ctx);
    let id = engine.store.resolve(&args.container)?;
    let _lock = engine.store.lock(&id)?;
    let rec = engine.refresh(&id)?;
    if rec.status == Status::Running && !args.pause {
        return Err(RunnerError::Engine(format!(
            "cannot commit running container {} without --pause: its files could change while \
             they are copied",
            rec.name
        )));
    }
    let store = Store::open(&ctx.paths).map_err(engine_err)?;
    let base = (!rec.image_id.is_empty())
        .then(|| store.resolve(&rec.image_id))
        .transpose()
        .map_err(engine_err)?;
    let work = OwnedTempDir::new_in(&store.tmp_dir(), "commit-")
        .map_err(|e| RunnerError::io("creating a temporary directory", e))?;
    let copied = rec.mounted == Some(MountKind::Copy) || rec.userns.is_some();
    // The base image's layers stay as they are (same diff IDs); a copied
    // root file system (no upper directory) is one layer of its own.
    let mut parent_layers = Vec::new();
    let mut layers = Vec::new();
    if !copied {
        match (&base, &rec.rootfs_source) {
            (Some(image), _) => parent_layers = image.layers.clone(),
            (None, RootfsSource::Directory(dir)) => layers.push(
                tree_layer(dir, &work.path().join("rootfs.tar"), &|_| false).map_err(engine_err)?,
            ),
            (None, RootfsSource::Layers(_)) => {}
        }
    }
    let exclude = |rel: &str| {
        let abs = format!("/{rel}");
        ENGINE_PATHS.contains(&abs.as_str()) || abs == crate::spec::INIT_PATH
    };
    let rt = engine.runtime()?;
    let freeze = rec.status == Status::Running && args.pause;
    if freeze {
        rt.pause(&id)?;
    }
    let data = engine.store.data_dir(&id);
    let top = engine.with_rootfs(&rec, |merged| {
        let tree = if copied {
            merged.to_path_buf()
        } else {
            data.join("upper")
        };
        tree_layer(&tree, &work.path().join("top.tar"), &exclude).map_err(engine_err)
    });
    if freeze {
        let _ = rt.resume(&id);
    }
    layers.push(top?);

    let now = rfc3339_seconds((now_nanos() / 1_000_000_000) as i64);
    let mut config = base
        .as_ref()
        .map(|b| b.raw_config())
        .transpose()
        .map_err(engine_err)?
        .unwrap_or_else(|| json!({"architecture": super::import::host_arch(), "os": "linux"}));
    let mut c = config["config"].as_object().cloned().unwrap_or_default();
    c.insert("Env".into(), json!(rec.config.env));
    c.insert("Cmd".into(), json!(rec.config.cmd));
    if !rec.config.entrypoint.is_empty() {
        c.insert("Entrypoint".into(), json!(rec.config.entrypoint));
    }
    c.insert("WorkingDir".into(), json!(rec.config.cwd));
    if !rec.labels.is_empty() {
        c.insert("Labels".into(), json!(rec.labels));
    }
    crate::image::change::apply(&mut c, &args.change).map_err(RunnerError::Engine)?;
    config["config"] = serde_json::Value::Object(c);
    config["created"] = json!(now);
    if let Some(a) = &args.author {
        config["author"] = json!(a);
    }
    if let Some(m) = &args.message {
        config["comment"] = json!(m);
    }
    let mut history = config["history"].as_array().cloned().unwrap_or_default();
    let mut entry =
        json!({"created": now, "created_by": "/bin/sh", "comment": format!("FROM {}", rec.image)});
    if let Some(a) = &args.author {
        entry["author"] = json!(a);
    }
    history.push(entry);
    config["history"] = json!(history);
    if !args.quiet {
        eprintln!("Getting image source signatures");
        for diff_id in parent_layers
            .iter()
            .map(|l| &l.diff_id)
            .chain(layers.iter().map(|l| &l.diff_id))
        {
            eprintln!("Copying blob {diff_id}");
        }
    }
    let names: Vec<String> = args.image.iter().cloned().collect();
    let record = add_image(
        &store,
        NewImage {
            parent_layers: &parent_layers,
            layers: &layers,
            config: config_with_layers(config, &parent_layers, &layers).map_err(engine_err)?,
            names: &names,
            docker: args.format == ImageFormat::Docker,
        },
    )
    .map_err(engine_err)?;
    if !args.quiet {
        eprintln!("Copying config {}", record.id);
        eprintln!("Writing manifest to image destination");
        eprintln!("Storing signatures");
    }
    print_out(&format!("{}\n", record.id.hex()));
    Ok(0)
}
