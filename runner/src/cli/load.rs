//! `vigil load`: load images from a docker-archive or oci-archive (file or
//! stdin, possibly compressed), or from an OCI image layout directory.

use std::io::{self, IsTerminal};
use std::path::PathBuf;

use clap::Args;

use super::output::{engine_err, print_out};
use crate::context::Context;
use crate::error::RunnerError;
use crate::image::archive::{read_archive, ArchiveSource};
use crate::image::layout::{read_layout, DirSource};
use crate::image::progress::Progress;
use crate::image::source::{FormatError, ImportImage, Source};
use crate::image::Store;

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Read the archive from FILE instead of stdin (a directory: an OCI image layout)
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,

    /// Load from an OCI image layout directory instead of an archive (vigil extension)
    #[arg(long, value_name = "DIR", conflicts_with = "input")]
    pub layout: Option<PathBuf>,

    /// Suppress the progress output
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn handle(ctx: &Context, args: &LoadArgs) -> Result<i32, RunnerError> {
    let store = Store::open(&ctx.paths).map_err(engine_err)?;
    // Like Podman, `-i DIR` reads a directory as an OCI image layout.
    let layout = args
        .layout
        .as_ref()
        .or(args.input.as_ref().filter(|p| p.is_dir()));
    let loaded = match (layout, &args.input) {
        (Some(dir), _) => {
            let src = DirSource::open(dir).map_err(engine_err)?;
            let images = read_layout(&src).map_err(engine_err)?;
            import_all(&store, &src, &images, args.quiet)?
        }
        (None, Some(file)) => {
            let src = ArchiveSource::open(file, &store.tmp_dir()).map_err(engine_err)?;
            let images = read_archive(&src).map_err(engine_err)?;
            import_all(&store, &src, &images, args.quiet)?
        }
        (None, None) => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                return Err(RunnerError::Engine(
                    "cannot read an archive from a terminal: use -i FILE, --layout DIR or a pipe"
                        .into(),
                ));
            }
            let src = ArchiveSource::from_reader(stdin.lock(), &store.tmp_dir(), "stdin".into())
                .map_err(|e: FormatError| engine_err(e))?;
            let images = read_archive(&src).map_err(engine_err)?;
            import_all(&store, &src, &images, args.quiet)?
        }
    };
    let lines: String = loaded
        .iter()
        .map(|name| format!("Loaded image: {name}\n"))
        .collect();
    print_out(&lines);
    Ok(0)
}

/// Imports every image; returns the names to report (the ID for unnamed ones).
fn import_all(
    store: &Store,
    src: &dyn Source,
    images: &[ImportImage],
    quiet: bool,
) -> Result<Vec<String>, RunnerError> {
    let mut progress = Progress::new(!quiet);
    let mut loaded = Vec::new();
    for image in images {
        let imported = store
            .import(src, image, &mut progress)
            .map_err(engine_err)?;
        for warning in &imported.warnings {
            log::warn!("{warning}");
        }
        if image.names.is_empty() {
            loaded.push(imported.record.id.to_string());
        } else {
            loaded.extend(image.names.iter().cloned());
        }
    }
    Ok(loaded)
}
