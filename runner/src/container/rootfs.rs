//! The container's root file system: an overlay of the image layers (lower)
//! and a private upper/work directory, or a private copy when overlay fails.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::errno::Errno;
use nix::mount::{mount as mount_fs, umount2, MntFlags, MsFlags};

use super::record::{MountKind, RootfsSource};
use crate::error::RunnerError;

/// Fills a directory with a flat copy of the image (the overlay fallback).
pub type Flatten<'a> = dyn Fn(&Path) -> Result<(), String> + 'a;

/// Podman's checks of the working directory before the runtime starts: it
/// must be absolute, and if it exists in the root file system `rootfs`
/// (resolved inside it, symlinks as the container would see them) it must be
/// a directory. A missing one is created by the runtime.
pub fn check_workdir(rootfs: &Path, cwd: &str, id: &str) -> Result<(), RunnerError> {
    if !cwd.starts_with('/') {
        return Err(RunnerError::Engine(format!(
            "workdir {cwd:?} does not exist on container {id}"
        )));
    }
    let Ok(root) = crate::fsroot::Root::open(rootfs) else {
        return Ok(()); // not mounted here: nothing to check against
    };
    match root.resolve_dir(&crate::fsroot::clean(cwd.as_bytes()), None) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Err(RunnerError::Engine(format!(
            "workdir {cwd:?} exists on container {id}, but is not a directory"
        ))),
        _ => Ok(()),
    }
}

/// The mounted root file system of the container with data dir `data`.
pub fn rootfs_path(data: &Path) -> PathBuf {
    data.join("merged")
}

fn lower_dirs(source: &RootfsSource) -> Vec<PathBuf> {
    match source {
        // overlay wants the top-most layer first.
        RootfsSource::Layers(layers) => layers.iter().rev().cloned().collect(),
        RootfsSource::Directory(dir) => vec![dir.clone()],
    }
}

fn mkdirs(dirs: &[&Path]) -> Result<(), RunnerError> {
    for d in dirs {
        fs::create_dir_all(d)
            .map_err(|e| RunnerError::io(format!("creating {}", d.display()), e))?;
    }
    Ok(())
}

/// How the overlay is mounted (storage.conf's driver and mount_program).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OverlayMethod {
    /// The kernel's overlay, a copy if that fails.
    Kernel,
    /// A FUSE program such as fuse-overlayfs (storage.conf `mount_program`),
    /// with extra `-o` options; no fallback: it was asked for.
    Program { path: PathBuf, options: Vec<String> },
    /// No overlay: a copy (the `vfs` driver, or a container whose user
    /// namespace needs owners translated, see `crate::rootless`).
    Copy,
}

/// Mount the rootfs under `data` (idempotent for an already-populated copy).
/// When the kernel overlay fails, `flatten` (if given) fills the directory
/// instead of copying the layers one by one.
pub fn mount(
    source: &RootfsSource,
    data: &Path,
    flatten: Option<&Flatten<'_>>,
) -> Result<MountKind, RunnerError> {
    mount_with(source, data, flatten, &OverlayMethod::Kernel)
}

/// [`mount`] with the overlay made as `method` says.
pub fn mount_with(
    source: &RootfsSource,
    data: &Path,
    flatten: Option<&Flatten<'_>>,
    method: &OverlayMethod,
) -> Result<MountKind, RunnerError> {
    let (upper, work, merged) = (data.join("upper"), data.join("work"), rootfs_path(data));
    mkdirs(&[&upper, &work, &merged])?;
    let lowers = lower_dirs(source);
    if lowers.is_empty() {
        return Ok(MountKind::Copy);
    }
    if data.join("copied").exists() {
        return Ok(MountKind::Copy);
    }
    let attempt = match method {
        OverlayMethod::Kernel => mount_overlay(&lowers, &upper, &work, &merged),
        OverlayMethod::Program { path, options } => {
            return mount_program(path, options, &lowers, &upper, &work, &merged)
                .map(|()| MountKind::Overlay)
                .map_err(|e| {
                    RunnerError::Engine(format!("mounting the rootfs with {}: {e}", path.display()))
                });
        }
        OverlayMethod::Copy => Err("not used for this container".to_string()),
    };
    match attempt {
        Ok(()) => Ok(MountKind::Overlay),
        Err(overlay_err) => match flatten {
            Some(f) => f(&merged),
            None => copy_layers(&lowers, &merged),
        }
        .map(|()| {
            let _ = fs::write(data.join("copied"), b"");
            MountKind::Copy
        })
        .map_err(|e| {
            RunnerError::Engine(format!(
                "mounting the rootfs: overlay: {overlay_err}; copy: {e}"
            ))
        }),
    }
}

/// `lowerdir=...,upperdir=...,workdir=...`, refusing paths that would
/// break the option syntax.
fn overlay_options(lowers: &[PathBuf], upper: &Path, work: &Path) -> Result<String, String> {
    let check = |p: &Path| {
        let s = p.to_string_lossy().into_owned();
        if s.contains([',', ':']) {
            Err(format!("path {s:?} cannot be used in overlay options"))
        } else {
            Ok(s)
        }
    };
    let lower = lowers
        .iter()
        .map(|p| check(p))
        .collect::<Result<Vec<_>, _>>()?
        .join(":");
    Ok(format!(
        "lowerdir={lower},upperdir={},workdir={}",
        check(upper)?,
        check(work)?
    ))
}

/// Runs the FUSE overlay program (`fuse-overlayfs -o OPTIONS MERGED`); it
/// daemonizes once the mount is in place.
fn mount_program(
    program: &Path,
    extra: &[String],
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    merged: &Path,
) -> Result<(), String> {
    let mut options = overlay_options(lowers, upper, work)?;
    for o in extra {
        if o.contains(',') {
            return Err(format!("mount option {o:?} contains a comma"));
        }
        options.push(',');
        options.push_str(o);
    }
    let out = Command::new(program)
        .arg("-o")
        .arg(&options)
        .arg(merged)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", program.display()))?;
    if out.status.success() && is_mounted(merged) {
        Ok(())
    } else {
        Err(format!(
            "{} ({})",
            String::from_utf8_lossy(&out.stderr).trim(),
            out.status
        ))
    }
}

fn mount_overlay(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    merged: &Path,
) -> Result<(), String> {
    let mut data = overlay_options(lowers, upper, work)?;
    // In the rootless user namespace overlay keeps its metadata (whiteouts'
    // opaque markers, copy-up state) in `user.overlay.*` (Linux ≥ 5.11).
    if crate::rootless::in_user_namespace() {
        data.push_str(",userxattr");
    }
    let c = |s: &[u8]| CString::new(s).map_err(|_| "NUL in path".to_string());
    let (target, data) = (c(merged.as_os_str().as_bytes())?, c(data.as_bytes())?);
    mount_fs(
        Some("overlay"),
        target.as_c_str(),
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_c_str()),
    )
    .map_err(|e| std::io::Error::from(e).to_string())
}

/// Copy the layers, lowest first, into `merged`; whiteouts (0/0 character
/// devices) are applied by removing what they name.
fn copy_layers(lowers: &[PathBuf], merged: &Path) -> Result<(), String> {
    for layer in lowers.iter().rev() {
        let status = Command::new("cp")
            .arg("-a")
            .arg("--remove-destination")
            .arg(format!("{}/.", layer.display()))
            .arg(merged)
            .status()
            .map_err(|e| format!("running cp: {e}"))?;
        if !status.success() {
            return Err(format!("cp -a {} failed ({status})", layer.display()));
        }
        remove_whiteouts(merged);
    }
    Ok(())
}

fn remove_whiteouts(dir: &Path) {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(meta) = e.path().symlink_metadata() else {
            continue;
        };
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            let _ = fs::remove_file(e.path());
        } else if meta.is_dir() {
            remove_whiteouts(&e.path());
        }
    }
}

/// Unmount the rootfs (lazily if busy). Not mounted is fine.
pub fn unmount(data: &Path) -> Result<(), RunnerError> {
    let merged = rootfs_path(data);
    let Ok(target) = CString::new(merged.as_os_str().as_bytes()) else {
        return Ok(());
    };
    let failed = |e: Errno| RunnerError::io(format!("unmounting {}", merged.display()), e.into());
    match umount2(target.as_c_str(), MntFlags::empty()) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EBUSY) => umount2(target.as_c_str(), MntFlags::MNT_DETACH).map_err(failed),
        Err(e) => Err(failed(e)),
    }
}

/// Is `path` a mount point (per /proc/self/mountinfo)?
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m == want))
}
