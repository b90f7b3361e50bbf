//! A RUN step: a container of the current image, created, started and
//! waited for through the same code as `vigil run` (`crate::container`:
//! the record, the overlay rootfs, the runtime spec, the monitor and runc,
//! the rootless mapping). The monitor passes the container's stdout and
//! stderr straight through (`passthrough`), so RUN output reaches vigil's
//! own stdout and stderr as it is written. After the exit the container's
//! upper directory is the step's diff; the container is removed when the
//! [`BuildContainer`] is dropped.

use std::fs::OpenOptions;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use super::error::BuildError;
use crate::container::image::{ImageDefaults, ImageInfo};
use crate::container::record::{MountKind, RootfsSource};
use crate::container::{CreateRequest, Engine};
use crate::context::Context;
use crate::image::ImageRecord;
use crate::interrupt::Interrupt;

/// What to run.
pub struct RunRequest<'a> {
    pub image: &'a ImageRecord,
    pub argv: Vec<String>,
    /// The complete process environment.
    pub env: Vec<String>,
    pub user: String,
    pub workdir: String,
    /// A `--network` value (`private`, `host`, `none`, a network name).
    pub network: String,
    /// Discard the command's stdout (`-q`).
    pub quiet: bool,
    /// Bind mounts (`SRC:DST[:ro]`) for `RUN --mount=type=bind`.
    pub volumes: Vec<String>,
    /// tmpfs mounts for `RUN --mount=type=tmpfs`.
    pub tmpfs: Vec<String>,
    /// The instruction, for messages.
    pub step: String,
    /// SIGINT/SIGTERM: kill the container and stop.
    pub interrupt: Interrupt,
}

/// The exited build container; removed on drop.
pub struct BuildContainer<'a> {
    engine: Engine<'a>,
    id: String,
    /// How the rootfs was mounted (a copy has no usable upper directory).
    pub mounted: Option<MountKind>,
}

impl BuildContainer<'_> {
    /// The writable layer: what the step changed.
    pub fn upper_dir(&self) -> PathBuf {
        self.engine.files(&self.id).data.join("upper")
    }

    /// The root file system (the copy, when overlay was not available).
    pub fn rootfs_dir(&self) -> PathBuf {
        crate::container::rootfs::rootfs_path(&self.engine.files(&self.id).data)
    }
}

impl Drop for BuildContainer<'_> {
    fn drop(&mut self) {
        if let Ok(_lock) = self.engine.store.lock(&self.id) {
            if let Ok(mut rec) = self.engine.refresh(&self.id) {
                if let Ok(rt) = self.engine.runtime() {
                    let _ = rt.kill(&self.id, libc::SIGKILL, true);
                }
                let _ = self.engine.remove(&mut rec);
            }
        }
    }
}

/// Points fds 0 and (for `quiet`) 1 at /dev/null while the monitor is
/// spawned (it passes its stdio on to the container), then restores them.
struct StdioRedirect {
    /// (0 or 1, a copy of what it was).
    saved: Vec<(i32, OwnedFd)>,
}

impl StdioRedirect {
    fn new(quiet: bool) -> StdioRedirect {
        let mut saved = Vec::new();
        let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") else {
            return StdioRedirect { saved };
        };
        let fds: &[i32] = if quiet { &[0, 1] } else { &[0] };
        for &fd in fds {
            let copy = if fd == 0 {
                std::io::stdin().as_fd().try_clone_to_owned()
            } else {
                std::io::stdout().as_fd().try_clone_to_owned()
            };
            let Ok(copy) = copy else { continue };
            if redirect(fd, &null).is_ok() {
                saved.push((fd, copy));
            }
        }
        StdioRedirect { saved }
    }
}

/// `dup2(to, fd)` for stdin (0) or stdout (1).
fn redirect(fd: i32, to: &impl AsFd) -> nix::Result<()> {
    if fd == 0 {
        nix::unistd::dup2_stdin(to)
    } else {
        nix::unistd::dup2_stdout(to)
    }
}

impl Drop for StdioRedirect {
    fn drop(&mut self) {
        for (fd, copy) in &self.saved {
            let _ = redirect(*fd, copy);
        }
    }
}

/// Runs the step; returns the exit code and the exited container.
pub fn run<'a>(
    ctx: &'a Context,
    req: &RunRequest<'_>,
) -> Result<(i32, BuildContainer<'a>), BuildError> {
    let engine = Engine::new(ctx);
    let fail = |e: crate::RunnerError| BuildError::step(&req.step, e.to_string());
    engine.store.ensure().map_err(fail)?;
    let info = ImageInfo {
        name: req.image.id.hex().to_string(),
        id: req.image.id.hex().to_string(),
        defaults: ImageDefaults {
            cmd: req.argv.clone(),
            ..Default::default()
        },
        rootfs: RootfsSource::Layers(req.image.layer_dirs()),
        labels: Default::default(),
    };
    let mut create = CreateRequest {
        command: req.argv.clone(),
        entrypoint: Some(String::new()),
        workdir: Some(if req.workdir.is_empty() {
            "/".into()
        } else {
            req.workdir.clone()
        }),
        user: Some(req.user.clone()),
        net: crate::network::Request {
            network: vec![req.network.clone()],
            ..Default::default()
        },
        log_driver: "passthrough".into(),
        volumes: req.volumes.clone(),
        ..Default::default()
    };
    create.flags.tmpfs = req.tmpfs.clone();
    let net = crate::container::net::env(ctx);
    let mut rec =
        crate::container::create::create(&engine.store, &net, &info, &create).map_err(|e| {
            let msg = e.to_string();
            match msg.strip_prefix("unable to find user ") {
                Some(rest) => BuildError::step(
                    &req.step,
                    format!(
                        "determining run uid: user: unknown user error looking up user {:?}",
                        rest.split(':').next().unwrap_or(rest)
                    ),
                ),
                None => BuildError::step(&req.step, msg),
            }
        })?;
    // buildah's RUN environment: config Env, ARG values, HOSTNAME, HOME.
    let mut env = req.env.clone();
    let has = |env: &[String], k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
    if !has(&env, "HOSTNAME") {
        env.push(format!("HOSTNAME={}", rec.config.hostname));
    }
    if !has(&env, "HOME") {
        env.push("HOME=/root".into());
    }
    rec.config.env = env;
    let dir = engine.store.dir(&rec.id);
    let mut container = BuildContainer {
        engine: Engine::new(ctx),
        id: rec.id.clone(),
        mounted: None,
    };
    rec.save(&dir).map_err(fail)?;
    {
        let _lock = engine.store.lock(&rec.id).map_err(fail)?;
        let _stdio = StdioRedirect::new(req.quiet);
        engine.init(&mut rec, false).map_err(fail)?;
        container.mounted = rec.mounted;
        engine.start(&mut rec).map_err(fail)?;
    }
    let mut killed = false;
    let finished = loop {
        if req.interrupt.requested() && !killed {
            if let Ok(rt) = engine.runtime() {
                let _ = rt.kill(&rec.id, libc::SIGKILL, true);
            }
            killed = true;
        }
        match engine.wait_exit(&rec.id, Some(Duration::from_millis(250))) {
            Ok(done) => break done,
            Err(e) if e.to_string().starts_with("timed out waiting") => continue,
            Err(e) => return Err(fail(e)),
        }
    };
    if killed || req.interrupt.requested() {
        return Err(BuildError::Interrupted);
    }
    let code = finished.exit_code.unwrap_or(125);
    Ok((code, container))
}
