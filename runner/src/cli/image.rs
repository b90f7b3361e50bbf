//! `vigil image`: the image command group (`vigil image inspect`).

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::cli::output::{engine_err, print_out};
use crate::context::Context;
use crate::error::RunnerError;
use crate::image::reference::Reference;
use crate::image::{ImageRecord, Store, StoreError};

#[derive(Debug, Clone, Subcommand)]
pub enum ImageCommand {
    /// Display the configuration of images
    Inspect(ImageInspectArgs),
    /// List images in local storage
    #[command(visible_alias = "ls", alias = "list")]
    Images(super::images::ImagesArgs),
    /// Remove one or more images
    Rm(super::rmi::RmiArgs),
    /// Remove unused images
    Prune(super::prune::ImagePruneArgs),
    /// Save images to an archive or a directory
    Save(super::save::SaveArgs),
    /// Show the history of an image
    History(super::history::HistoryArgs),
    /// Import a tarball as a file system image
    Import(super::import::ImportArgs),
    /// Load images from an archive or an OCI layout
    Load(super::load::LoadArgs),
    /// Add an additional name to a local image
    Tag(super::tag::TagArgs),
    /// Inspect changes to an image's file system
    Diff(super::diff::DiffArgs),
}

impl ImageCommand {
    /// The command as typed, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            ImageCommand::Inspect(_) => "image inspect",
            ImageCommand::Images(_) => "image ls",
            ImageCommand::Rm(_) => "image rm",
            ImageCommand::Prune(_) => "image prune",
            ImageCommand::Save(_) => "image save",
            ImageCommand::History(_) => "image history",
            ImageCommand::Import(_) => "image import",
            ImageCommand::Load(_) => "image load",
            ImageCommand::Tag(_) => "image tag",
            ImageCommand::Diff(_) => "image diff",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ImageInspectArgs {
    /// Format the output with a Go template (`{{.Id}}`) or `json`
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Images to inspect
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

pub fn handle(ctx: &Context, command: &ImageCommand) -> Result<i32, RunnerError> {
    match command {
        ImageCommand::Inspect(args) => inspect(ctx, args),
        ImageCommand::Images(a) => super::images::handle(ctx, a),
        ImageCommand::Rm(a) => super::rmi::handle(ctx, a),
        ImageCommand::Prune(a) => super::prune::image_prune(ctx, a),
        ImageCommand::Save(a) => super::save::handle(ctx, a),
        ImageCommand::History(a) => super::history::handle(ctx, a),
        ImageCommand::Import(a) => super::import::handle(ctx, a),
        ImageCommand::Load(a) => super::load::handle(ctx, a),
        ImageCommand::Tag(a) => super::tag::handle(ctx, a),
        ImageCommand::Diff(a) => super::diff::handle(ctx, a),
    }
}

fn inspect(ctx: &Context, args: &ImageInspectArgs) -> Result<i32, RunnerError> {
    let store = Store::open(&ctx.paths).map_err(engine_err)?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for image in &args.images {
        match store.resolve(image) {
            Ok(record) => out.push(inspect_json(&record).map_err(engine_err)?),
            Err(StoreError::NotFound(q)) => missing.push(q),
            Err(err) => return Err(engine_err(err)),
        }
    }
    match super::template::Output::parse("inspect", args.format.as_deref())? {
        super::template::Output::Template(f) => {
            let mut text = String::new();
            for v in &out {
                text.push_str(&f.render(v)?);
                text.push('\n');
            }
            print_out(&text);
        }
        _ => print_out(&format!("{}\n", to_pretty(&Value::Array(out)))),
    }
    match missing.first() {
        None => Ok(0),
        Some(q) => Err(RunnerError::Engine(format!("no such image {q}"))),
    }
}

/// JSON with four-space indentation, as podman prints it.
pub fn to_pretty(value: &Value) -> String {
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    match serde::Serialize::serialize(value, &mut ser) {
        Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
        Err(_) => value.to_string(),
    }
}

/// The `image inspect` object of an image (podman's field names).
pub fn inspect_json(record: &ImageRecord) -> Result<Value, StoreError> {
    let raw = record.raw_config()?;
    let manifest = record.raw_manifest()?;
    let cfg = &record.config;
    let digest = record
        .digest
        .as_ref()
        .map(|d| d.to_string())
        .unwrap_or_default();
    let repo_digests: Vec<String> = match &record.digest {
        Some(d) => {
            let mut repos: Vec<String> = record
                .names
                .iter()
                .filter_map(|n| Reference::parse(n).ok())
                .map(|r| format!("{}@{d}", r.repository()))
                .collect();
            repos.dedup();
            repos
        }
        None => Vec::new(),
    };
    let mut lower: Vec<String> = record
        .layer_dirs()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    lower.reverse();
    let labels = cfg.config.labels.clone();
    Ok(json!({
        "Id": record.id.hex(),
        "Digest": digest,
        "RepoTags": record.names,
        "RepoDigests": repo_digests,
        "Parent": "",
        "Comment": raw.get("comment").cloned().unwrap_or(json!("")),
        "Created": cfg.created,
        "Config": raw.get("config").cloned().unwrap_or(json!({})),
        "Version": raw.get("docker_version").cloned().unwrap_or(json!("")),
        "Author": cfg.author.clone().unwrap_or_default(),
        "Architecture": cfg.architecture,
        "Os": cfg.os,
        "Variant": cfg.variant.clone().unwrap_or_default(),
        "Size": record.size,
        "VirtualSize": record.size,
        "GraphDriver": {
            "Name": "overlay",
            "Data": { "LowerDir": lower.join(":") }
        },
        "RootFS": {
            "Type": "layers",
            "Layers": record.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>()
        },
        "Labels": labels,
        "Annotations": manifest.as_ref().and_then(|m| m.get("annotations").cloned()).unwrap_or(json!({})),
        "ManifestType": record.manifest_media_type.clone().unwrap_or_else(|| "application/vnd.docker.distribution.manifest.v2+json".into()),
        "User": cfg.config.user.clone().unwrap_or_default(),
        "History": raw.get("history").cloned().unwrap_or(json!([])),
        "NamesHistory": record.names,
    }))
}
