//! `vigil cp`: copy files between a container (running or not) and the host,
//! or a tar stream (`-`).
//!
//! Inside the container every path is resolved in its root file system
//! (symlinks as if its top were `/`, never out of it): reading walks
//! directory fds (`image::layer_tar`), writing goes through the layer
//! unpacker in flat mode (`image::unpack`), which resolves every entry the
//! same way. Host to container files get the container user's uid/gid
//! (`--archive`, the default) or keep the host's.

use std::io::{self, IsTerminal, Read};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use clap::{ArgAction, Args};

use crate::container::{Engine, Record};
use crate::context::Context;
use crate::error::RunnerError;
use crate::fsroot::{clean, sys, Root};
use crate::image::layer_tar::{write_tree, write_tree_at, TreeOptions};
use crate::image::unpack::{apply_layer, Mode, Options};

#[derive(Debug, Clone, Args)]
pub struct CpArgs {
    /// Chown copied files to the container's user (false: keep the source's owners)
    #[arg(short, long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub archive: bool,

    /// Allow a directory to replace a non-directory and the other way round
    #[arg(long)]
    pub overwrite: bool,

    /// CONTAINER:PATH, a host path, or - (a tar stream on stdin)
    #[arg(value_name = "SRC")]
    pub source: String,

    /// CONTAINER:PATH, a host path, or - (a tar stream to stdout)
    #[arg(value_name = "DEST")]
    pub dest: String,
}

/// `CONTAINER:PATH` split, or `None` for a host path (one with a `/` before
/// any `:` is a host path, like `./a:b`).
fn container_part(arg: &str) -> Option<(&str, &str)> {
    let (c, p) = arg.split_once(':')?;
    (!c.is_empty() && !c.contains('/')).then_some((c, p))
}

fn missing(path: &str, container: &str) -> RunnerError {
    RunnerError::Engine(format!(
        "{path:?} could not be found on container {container}: no such file or directory"
    ))
}

/// The container's name, record and root file system work, under its lock.
fn with_container<T>(
    engine: &Engine<'_>,
    name: &str,
    work: impl FnOnce(&Record, &Path) -> Result<T, RunnerError>,
) -> Result<T, RunnerError> {
    let id = engine.store.resolve(name)?;
    let _lock = engine.store.lock(&id)?;
    let rec = engine.refresh(&id)?;
    engine.with_rootfs(&rec, |root| work(&rec, root))
}

/// The base name a copy of `path` gets (`/` itself: `.`).
fn base_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into())
}

/// A tar of `path` inside `root` (resolved in-root), its top entry named `name`.
fn tar_from_container(
    root: &Path,
    path: &str,
    name: &str,
    container: &str,
) -> Result<Vec<u8>, RunnerError> {
    let tree = Root::open(root).map_err(|e| RunnerError::io(root.display().to_string(), e))?;
    let parts = clean(path.as_bytes());
    let opts_for = |only| TreeOptions {
        only,
        ..Default::default()
    };
    let result = match parts.split_last() {
        None => {
            let opts = TreeOptions {
                prefix: if name == "." {
                    String::new()
                } else {
                    format!("{name}/")
                },
                ..Default::default()
            };
            write_tree_at(tree.fd(), Vec::new(), &opts)
        }
        Some((last, parent)) => {
            let dir = tree
                .resolve_dir(parent, None)
                .map_err(|_| missing(path, container))?;
            match sys::lstat_opt(dir.as_fd(), last) {
                Ok(Some(_)) => {}
                _ => return Err(missing(path, container)),
            }
            write_tree_at(
                dir.as_fd(),
                Vec::new(),
                &opts_for(Some((last.clone(), name.to_string()))),
            )
        }
    };
    result.map_err(|e| RunnerError::io(format!("copying {path}"), e))
}

/// Is `path` (in-root) an existing directory of the container? `None`: it
/// does not exist; an error if its parent does not exist.
fn container_dir_kind(
    root: &Path,
    path: &str,
    container: &str,
) -> Result<Option<bool>, RunnerError> {
    let tree = Root::open(root).map_err(|e| RunnerError::io(root.display().to_string(), e))?;
    let parts = clean(path.as_bytes());
    let Some((last, parent)) = parts.split_last() else {
        return Ok(Some(true));
    };
    let dir = tree
        .resolve_dir(parent, None)
        .map_err(|_| missing(path, container))?;
    if tree.resolve_dir(&parts, None).is_ok() {
        return Ok(Some(true));
    }
    match sys::lstat_opt(dir.as_fd(), last) {
        Ok(Some(_)) => Ok(Some(false)),
        _ => Ok(None),
    }
}

/// Applies `tar` (entry names relative to `dest_dir`, in-root) to the
/// container's root file system through the unpacker.
fn apply_to_container(root: &Path, dest_dir: &str, tar: &[u8]) -> Result<(), RunnerError> {
    let prefix: Vec<String> = clean(dest_dir.as_bytes())
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    // Re-root the entries under dest_dir.
    let mut out = tar::Builder::new(Vec::new());
    let mut archive = tar::Archive::new(tar);
    let bad = |e: io::Error| {
        RunnerError::Engine(format!(
            "source must be a (compressed) tar archive when copying from stdin: {e}"
        ))
    };
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let mut header = entry.header().clone();
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let mut full = prefix.join("/");
        if !full.is_empty() {
            full.push('/');
        }
        full.push_str(name.trim_start_matches("./"));
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(bad)?;
        let written = match (header.entry_type(), link) {
            (tar::EntryType::Link, Some(target)) => {
                let mut t = prefix.join("/");
                if !t.is_empty() {
                    t.push('/');
                }
                t.push_str(String::from_utf8_lossy(&target).trim_start_matches("./"));
                out.append_link(&mut header, &full, t)
            }
            (tar::EntryType::Symlink, Some(target)) => out.append_link(
                &mut header,
                &full,
                String::from_utf8_lossy(&target).into_owned(),
            ),
            _ => out.append_data(&mut header, &full, data.as_slice()),
        };
        written.map_err(|e| RunnerError::io("copying into the container", e))?;
    }
    let bytes = out
        .into_inner()
        .map_err(|e| RunnerError::io("copying into the container", e))?;
    apply_layer(bytes.as_slice(), root, &Options::new(Mode::Flat))
        .map_err(|e| RunnerError::Engine(format!("copying into the container: {e}")))?;
    Ok(())
}

fn host_to_container(
    engine: &Engine<'_>,
    src: &str,
    container: &str,
    dest: &str,
    archive: bool,
) -> Result<(), RunnerError> {
    let from_stdin = src == "-";
    let tar = if from_stdin {
        let mut input = Vec::new();
        let (_, mut reader) = crate::image::compress::decompress(io::stdin().lock())
            .map_err(|e| RunnerError::io("reading stdin", e))?;
        reader
            .read_to_end(&mut input)
            .map_err(|e| RunnerError::io("reading stdin", e))?;
        input
    } else {
        std::fs::symlink_metadata(src).map_err(|_| {
            RunnerError::Engine(format!(
                "{src:?} could not be found on the host: no such file or directory"
            ))
        })?;
        Vec::new()
    };
    with_container(engine, container, |rec, root| {
        let kind = container_dir_kind(root, dest, container)?;
        let owner = if archive {
            let user =
                crate::container::create::resolve_user(&rec.rootfs_source, &rec.config.user)?;
            Some((user.uid, user.gid))
        } else {
            None
        };
        if from_stdin {
            if kind != Some(true) {
                return Err(RunnerError::Engine(
                    "destination must be a directory when copying from stdin".into(),
                ));
            }
            if tar::Archive::new(tar.as_slice())
                .entries()
                .map(|mut e| e.next().is_some())
                .unwrap_or(false)
                || tar.is_empty()
            {
                return apply_to_container(root, dest, &tar);
            }
            return Err(RunnerError::Engine(
                "source must be a (compressed) tar archive when copying from stdin".into(),
            ));
        }
        // Into an existing directory under the source's name, else as `dest`.
        let (dest_dir, name) = match kind {
            Some(true) => (dest.to_string(), base_name(src)),
            _ => {
                let p = Path::new(dest);
                (
                    p.parent()
                        .map(|d| d.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "/".into()),
                    base_name(dest),
                )
            }
        };
        let src_path = Path::new(src);
        let parent = src_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let file_name = src_path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        let opts = TreeOptions {
            only: Some((
                std::os::unix::ffi::OsStrExt::as_bytes(file_name.as_os_str()).to_vec(),
                name,
            )),
            owner,
            ..Default::default()
        };
        let tar = write_tree(parent, Vec::new(), &opts)
            .map_err(|e| RunnerError::io(format!("reading {src}"), e))?;
        apply_to_container(root, &dest_dir, &tar)
    })
}

fn container_to_host(
    engine: &Engine<'_>,
    container: &str,
    src: &str,
    dest: &str,
) -> Result<(), RunnerError> {
    let name = base_name(src);
    if dest == "-" {
        if io::stdout().is_terminal() {
            return Err(RunnerError::Engine(
                "refusing to write a tar archive to a terminal".into(),
            ));
        }
        let tar = with_container(engine, container, |_, root| {
            tar_from_container(root, src, &name, container)
        })?;
        super::output::print_bytes(&tar);
        return Ok(());
    }
    let dest_path = PathBuf::from(dest);
    let (target_dir, final_name) = if dest_path.is_dir() {
        (dest_path.clone(), name.clone())
    } else {
        let parent = dest_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        if !parent.is_dir() {
            return Err(RunnerError::Engine(format!(
                "{:?} could not be found on the host: no such file or directory",
                parent.display().to_string()
            )));
        }
        (parent, base_name(dest))
    };
    let tar = with_container(engine, container, |_, root| {
        tar_from_container(root, src, &final_name, container)
    })?;
    let mut archive = tar::Archive::new(tar.as_slice());
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    archive.unpack(&target_dir).map_err(|e| {
        RunnerError::io(
            format!("copying to {}", target_dir.join(&final_name).display()),
            e,
        )
    })
}

pub fn handle(ctx: &Context, args: &CpArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    match (container_part(&args.source), container_part(&args.dest)) {
        (Some((c, p)), None) => container_to_host(&engine, c, p, &args.dest)?,
        (None, Some((c, p))) => host_to_container(&engine, &args.source, c, p, args.archive)?,
        (Some((c1, p1)), Some((c2, p2))) => {
            // Container to container: through a tar in memory.
            let name = base_name(p1);
            let tar = with_container(&engine, c1, |_, root| {
                tar_from_container(root, p1, &name, c1)
            })?;
            with_container(&engine, c2, |_, root| {
                match container_dir_kind(root, p2, c2)? {
                    Some(true) => apply_to_container(root, p2, &tar),
                    _ => Err(RunnerError::Engine(format!(
                        "destination {p2:?} must be an existing directory of container {c2}"
                    ))),
                }
            })?;
        }
        (None, None) => return Err(RunnerError::Engine("name or ID cannot be empty".into())),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides() {
        assert_eq!(container_part("c:/etc"), Some(("c", "/etc")));
        assert_eq!(container_part("./a:b"), None);
        assert_eq!(container_part("/tmp/x"), None);
        assert_eq!(container_part("-"), None);
        assert_eq!(base_name("/etc/passwd"), "passwd");
        assert_eq!(base_name("/"), ".");
    }
}
