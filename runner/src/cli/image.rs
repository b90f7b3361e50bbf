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
}

impl ImageCommand {
    /// The command as typed, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            ImageCommand::Inspect(_) => "image inspect",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ImageInspectArgs {
    /// Images to inspect
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

pub fn handle(ctx: &Context, command: &ImageCommand) -> Result<i32, RunnerError> {
    match command {
        ImageCommand::Inspect(args) => inspect(ctx, args),
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
    print_out(&format!("{}\n", to_pretty(&Value::Array(out))));
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
