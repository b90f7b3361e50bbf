//! `vigil save`: images to a docker-archive (default), oci-archive, OCI
//! layout directory or docker-dir, readable by `vigil load` and `podman load`.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use super::output::engine_err;
use crate::context::Context;
use crate::error::RunnerError;
use crate::image::reference::normalize;
use crate::image::save::{save, SaveFormat, SaveImage, SaveOptions, Sink};
use crate::image::tmpdir::OwnedTempDir;
use crate::image::{Store, StoreError};

#[derive(Debug, Clone, Args)]
pub struct SaveArgs {
    /// Write to FILE (a directory for oci-dir and docker-dir) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// docker-archive, oci-archive, oci-dir or docker-dir
    #[arg(long, value_name = "FORMAT", default_value = "docker-archive")]
    pub format: String,

    /// Save several images into one docker-archive (else extra names are tags of the first)
    #[arg(short, long)]
    pub multi_image_archive: bool,

    /// docker-dir: compress the layers
    #[arg(long)]
    pub compress: bool,

    /// OCI formats: keep the layers uncompressed
    #[arg(long)]
    pub uncompressed: bool,

    /// Suppress the progress output
    #[arg(short, long)]
    pub quiet: bool,

    /// Images to save
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

pub fn handle(ctx: &Context, args: &SaveArgs) -> Result<i32, RunnerError> {
    let format = SaveFormat::parse(&args.format).map_err(RunnerError::Engine)?;
    if args.compress && format != SaveFormat::DockerDir {
        return Err(RunnerError::Engine(
            "--compress can only be set when --format is 'docker-dir'".into(),
        ));
    }
    if args.multi_image_archive && format != SaveFormat::DockerArchive {
        return Err(RunnerError::Engine(format!(
            "unsupported format {:?} for saving multiple images (only docker-archive)",
            args.format
        )));
    }
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(RunnerError::Engine(
            "refusing to save to terminal. Use -o flag or redirect".into(),
        ));
    }
    if args.output.is_none() && !format.is_archive() {
        return Err(RunnerError::Engine(format!(
            "--format {} writes a directory: use -o DIR",
            args.format
        )));
    }
    let store = Store::open(&ctx.paths).map_err(engine_err)?;
    let not_known = |e: StoreError| match e {
        StoreError::NotFound(q) => RunnerError::Engine(format!("{q}: image not known")),
        other => engine_err(other),
    };
    // The names to write for an argument: itself if it names the image
    // (normalised), none for an id.
    let name_of = |arg: &str, record: &crate::image::ImageRecord| -> Option<String> {
        let n = normalize(arg).ok()?;
        record.names.contains(&n).then_some(n)
    };
    let mut images: Vec<SaveImage> = Vec::new();
    for arg in &args.images {
        let record = store.resolve(arg).map_err(not_known)?;
        let name = name_of(arg, &record);
        let target = if args.multi_image_archive {
            images.iter_mut().find(|i| i.record.id == record.id)
        } else {
            images.first_mut()
        };
        match target {
            Some(existing) => {
                if format == SaveFormat::DockerArchive {
                    existing
                        .names
                        .extend(name.filter(|n| !existing.names.contains(n)));
                }
            }
            None => images.push(SaveImage {
                record,
                names: name.into_iter().collect(),
            }),
        }
    }
    let opts = SaveOptions {
        format,
        compress_oci: !args.uncompressed,
        compress_dir: args.compress,
    };
    let work = OwnedTempDir::new_in(&store.tmp_dir(), "save-")
        .map_err(|e| RunnerError::io("creating a temporary directory", e))?;
    let progress = !args.quiet && args.output.is_some();
    if progress {
        eprintln!("Getting image source signatures");
    }
    match &args.output {
        None => {
            let mut out = std::io::stdout().lock();
            save(&images, &opts, work.path(), Sink::Tar(&mut out)).map_err(engine_err)?;
        }
        Some(path) if format.is_archive() => {
            super::export::write_file_atomically(path, |w| {
                save(&images, &opts, work.path(), Sink::Tar(w)).map_err(engine_err)
            })?;
        }
        Some(dir) => {
            // Into a temporary directory beside the destination, renamed
            // into place when complete.
            let parent = match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let temp = tempfile::Builder::new()
                .prefix(".vigil-save-")
                .tempdir_in(&parent)
                .map_err(|e| RunnerError::io(format!("creating {}", dir.display()), e))?;
            save(&images, &opts, work.path(), Sink::Dir(temp.path())).map_err(engine_err)?;
            let temp = temp.keep();
            std::fs::rename(&temp, dir).map_err(|e| {
                let _ = std::fs::remove_dir_all(&temp);
                RunnerError::io(format!("writing {}", dir.display()), e)
            })?;
        }
    }
    if progress {
        eprintln!("Writing manifest to image destination");
        eprintln!("Storing signatures");
    }
    Ok(0)
}
