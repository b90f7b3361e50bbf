//! `vigil import`: a tarball (file or `-`) as a one-layer image.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::time::UNIX_EPOCH;

use clap::Args;
use serde_json::json;

use super::output::{engine_err, print_out};
use crate::clock::rfc3339_seconds;
use crate::context::Context;
use crate::error::RunnerError;
use crate::image::compose::{add_image, config_with_layers, write_layer_file, LayerFile, NewImage};
use crate::image::tmpdir::OwnedTempDir;
use crate::image::Store;

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// Apply a Dockerfile instruction to the image config (CMD, ENTRYPOINT,
    /// ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)
    #[arg(short, long, value_name = "INSTRUCTION")]
    pub change: Vec<String>,

    /// Set the image's commit message
    #[arg(short, long, value_name = "MESSAGE")]
    pub message: Option<String>,

    /// Suppress the progress output
    #[arg(short, long)]
    pub quiet: bool,

    /// A tarball (possibly gzip or zstd compressed), or - for stdin
    #[arg(value_name = "PATH")]
    pub source: String,

    /// Name the image
    #[arg(value_name = "REFERENCE")]
    pub reference: Option<String>,
}

/// The platform of this host as image configs write it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Copies the (decompressed) tar into `dest`, checking that it is a tar.
fn copy_layer(input: Box<dyn Read + '_>, dest: &Path) -> Result<LayerFile, RunnerError> {
    let (_, mut tar) = crate::image::compress::decompress(input)
        .map_err(|e| RunnerError::io("reading the tarball", e))?;
    let layer =
        write_layer_file(dest, |w| io::copy(&mut tar, w).map(|_| ())).map_err(engine_err)?;
    check_tar(&layer.path)?;
    Ok(layer)
}

/// Reads every entry header of `path`: a file that is not a tar is refused
/// before anything reaches the store.
fn check_tar(path: &Path) -> Result<(), RunnerError> {
    let file = File::open(path).map_err(|e| RunnerError::io(path.display().to_string(), e))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut archive = tar::Archive::new(file);
    let bad = |why: String| {
        RunnerError::Engine(format!(
            "writing blob: adding layer with blob: processing tar file({why}): not a tar archive"
        ))
    };
    let mut entries = 0usize;
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        io::copy(&mut entry, &mut io::sink()).map_err(|e| bad(e.to_string()))?;
        entries += 1;
    }
    if entries == 0 && len > 0 && len < 1024 {
        return Err(bad("unexpected EOF".into()));
    }
    Ok(())
}

pub fn handle(ctx: &Context, args: &ImportArgs) -> Result<i32, RunnerError> {
    let store = Store::open(&ctx.paths).map_err(engine_err)?;
    let work = OwnedTempDir::new_in(&store.tmp_dir(), "import-")
        .map_err(|e| RunnerError::io("creating a temporary directory", e))?;
    let layer_path = work.path().join("layer.tar");
    let (layer, created) = if args.source == "-" {
        let layer = copy_layer(Box::new(io::stdin().lock()), &layer_path)?;
        (layer, std::time::SystemTime::now())
    } else {
        let path = Path::new(&args.source);
        let file = File::open(path).map_err(|e| {
            RunnerError::Engine(format!(
                "error opening {:?}: open {}: {}",
                args.source,
                args.source,
                crate::error::os_message(&e)
            ))
        })?;
        let mtime = file
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| std::time::SystemTime::now());
        (copy_layer(Box::new(file), &layer_path)?, mtime)
    };
    let created = rfc3339_seconds(
        created
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    );
    let mut container_config = serde_json::Map::new();
    crate::image::change::apply(&mut container_config, &args.change)
        .map_err(RunnerError::Engine)?;
    let comment = args
        .message
        .clone()
        .unwrap_or_else(|| "imported from tarball".into());
    let mut config = json!({
        "created": created,
        "architecture": host_arch(),
        "os": "linux",
        "config": container_config,
        "history": [{
            "created": created,
            "created_by": format!("/bin/sh -c #(nop) ADD file:{} in /", layer.diff_id.hex()),
            "comment": comment,
        }],
    });
    if let Some(m) = &args.message {
        config["comment"] = json!(m);
    }
    if !args.quiet {
        eprintln!("Getting image source signatures");
        eprintln!("Copying blob {}", layer.diff_id);
    }
    let names: Vec<String> = args.reference.iter().cloned().collect();
    let layers = [layer];
    let record = add_image(
        &store,
        NewImage {
            parent_layers: &[],
            layers: &layers,
            config: config_with_layers(config, &[], &layers).map_err(engine_err)?,
            names: &names,
            docker: false,
        },
    )
    .map_err(engine_err)?;
    if !args.quiet {
        eprintln!("Copying config {}", record.id);
        eprintln!("Writing manifest to image destination");
        eprintln!("Storing signatures");
    }
    print_out(&format!("{}\n", record.id));
    Ok(0)
}
