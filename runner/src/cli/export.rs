//! `vigil export`: a container's root file system as a tar, to a file or stdout.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;

use crate::container::Engine;
use crate::context::Context;
use crate::error::RunnerError;
use crate::image::layer_tar::{write_tree, TreeOptions};

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Write to FILE instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The container to export
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Writes through `produce` into a temporary file beside `dest`, renamed
/// into place only when complete: a failure leaves nothing half-written.
pub fn write_file_atomically(
    dest: &Path,
    produce: impl FnOnce(&mut dyn Write) -> Result<(), RunnerError>,
) -> Result<(), RunnerError> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".vigil-")
        .tempfile_in(parent)
        .map_err(|e| RunnerError::io(format!("creating {}", dest.display()), e))?;
    {
        let mut w = std::io::BufWriter::new(temp.as_file_mut());
        produce(&mut w)?;
        w.flush()
            .map_err(|e| RunnerError::io(format!("writing {}", dest.display()), e))?;
    }
    temp.persist(dest)
        .map_err(|e| RunnerError::io(format!("writing {}", dest.display()), e.error))?;
    Ok(())
}

pub fn handle(ctx: &Context, args: &ExportArgs) -> Result<i32, RunnerError> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(RunnerError::Engine(
            "refusing to export to terminal. Use -o flag or redirect".into(),
        ));
    }
    let engine = Engine::new(ctx);
    let id = engine.store.resolve(&args.container)?;
    let _lock = engine.store.lock(&id)?;
    let rec = engine.refresh(&id)?;
    engine.with_rootfs(&rec, |merged| {
        let tar_err = |e: std::io::Error| RunnerError::io("exporting the root file system", e);
        match &args.output {
            Some(path) => write_file_atomically(path, |w| {
                write_tree(merged, w, &TreeOptions::default())
                    .map(|_| ())
                    .map_err(tar_err)
            }),
            None => {
                let mut out = std::io::stdout().lock();
                match write_tree(merged, &mut out, &TreeOptions::default()) {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                    Err(e) => Err(tar_err(e)),
                }
            }
        }
    })?;
    Ok(0)
}
