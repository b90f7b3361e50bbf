//! Running a container through the monitor: init (rootfs, spec, `runc create`
//! by the monitor), start, state refresh and cleanup, stop, kill, remove.
//! All monitor interaction goes through `vigil::client`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::resource::{getrlimit, Resource};
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
use vigil::client::{self, ExitWatcher, LogDriver, Monitor, MonitorOptions};

use super::create::resolve_user;
use super::etc;
use super::record::{now_nanos, MountKind, Record, Status};
use super::rootfs;
use super::runtime::{same_process, start_time, Runtime};
use super::store::Store;
use crate::context::{Context, LogLevel};
use crate::error::RunnerError;
use crate::spec::{self, Network, SpecOptions};

/// How long the monitor may take to report the container pid.
pub const PID_TIMEOUT: Duration = Duration::from_secs(120);

/// The store, the runtime and the monitor of one invocation.
pub struct Engine<'a> {
    pub ctx: &'a Context,
    pub store: Store,
}

/// Files of a container's state directory (its bundle).
pub struct Files {
    pub dir: PathBuf,
    pub data: PathBuf,
}

impl Files {
    pub fn exit_dir(&self) -> PathBuf {
        self.dir.join("exits")
    }
    pub fn persist_dir(&self) -> PathBuf {
        self.dir.join("persist")
    }
    pub fn oci_log(&self) -> PathBuf {
        self.dir.join("oci-log")
    }
}

/// Map a client error to the runner's; a runtime failure keeps what the
/// runtime said, for the commands to give Podman's exit codes.
pub fn client_error(e: client::Error, oci_log: Option<&Path>) -> RunnerError {
    let runtime = match e {
        client::Error::Runtime(r) => r,
        client::Error::MonitorExited { ref stderr } => match oci_log.and_then(last_runtime_error) {
            Some(message) => client::RuntimeError { message },
            None if stderr.is_empty() => return RunnerError::Engine(e.to_string()),
            None => client::RuntimeError {
                message: stderr.clone(),
            },
        },
        other => return RunnerError::Engine(other.to_string()),
    };
    RunnerError::runtime(runtime.summary())
}

/// The last error the runtime wrote to its JSON log (`--log-format=json`).
pub fn last_runtime_error(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().rev().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        (v["level"] == "error")
            .then(|| v["msg"].as_str().map(str::to_string))
            .flatten()
    })
}

fn log_level(level: LogLevel) -> client::LogLevel {
    match level {
        LogLevel::Trace => client::LogLevel::Trace,
        LogLevel::Debug => client::LogLevel::Debug,
        LogLevel::Info => client::LogLevel::Info,
        LogLevel::Warn => client::LogLevel::Warn,
        LogLevel::Error => client::LogLevel::Error,
        LogLevel::Fatal | LogLevel::Panic => client::LogLevel::Fatal,
    }
}

impl<'a> Engine<'a> {
    pub fn new(ctx: &'a Context) -> Engine<'a> {
        Engine {
            ctx,
            store: Store::new(&ctx.paths),
        }
    }

    pub fn files(&self, id: &str) -> Files {
        Files {
            dir: self.store.dir(id),
            data: self.store.data_dir(id),
        }
    }

    pub fn runtime(&self) -> Result<Runtime, RunnerError> {
        Ok(Runtime::new(
            self.ctx.runtime_path()?,
            self.store.runtime_root(),
        ))
    }

    /// Mounts (or, for a copy, fills) the container's root file system as
    /// storage.conf and its user namespace ask. Idempotent for a copy.
    pub fn mount_rootfs(&self, rec: &Record) -> Result<MountKind, RunnerError> {
        let f = self.files(&rec.id);
        let image_id = rec.image_id.clone();
        let flatten = |target: &Path| super::image::flatten_image(self.ctx, &image_id, target);
        let use_store = matches!(rec.rootfs_source, super::record::RootfsSource::Layers(_))
            && !image_id.is_empty();
        let kind = match &rec.userns {
            // Its own user namespace: a copy with owners as that mapping wants them.
            Some(ns) => {
                let source = rec.rootfs_source.clone();
                let copy = |target: &Path| {
                    super::image::copy_translated(self.ctx, &image_id, &source, ns, target)
                };
                let kind = rootfs::mount_with(
                    &rec.rootfs_source,
                    &f.data,
                    Some(&copy),
                    &rootfs::OverlayMethod::Copy,
                )?;
                if ns.mode == "keep-id" {
                    let (uids, gids) = (ns.uids(), ns.gids());
                    if let (Some(uid), Some(gid)) = (uids.to_container(0), gids.to_container(0)) {
                        let root = rootfs::rootfs_path(&f.data);
                        crate::rootless::add_user_entries(&root, uid, gid)
                            .map_err(RunnerError::Engine)?;
                    }
                }
                kind
            }
            None => rootfs::mount_with(
                &rec.rootfs_source,
                &f.data,
                if use_store { Some(&flatten) } else { None },
                &self.overlay_method(),
            )?,
        };
        Ok(kind)
    }

    /// Runs `work` on the container's root file system: the mounted one
    /// while it runs, else mounted for the call and unmounted after (a
    /// stopped container's files for `cp`, `export`, `diff`, `commit`).
    /// Call under the container's lock.
    pub fn with_rootfs<T>(
        &self,
        rec: &Record,
        work: impl FnOnce(&Path) -> Result<T, RunnerError>,
    ) -> Result<T, RunnerError> {
        let data = self.store.data_dir(&rec.id);
        let merged = rootfs::rootfs_path(&data);
        let mounted_here = if rootfs::is_mounted(&merged) || rec.mounted == Some(MountKind::Copy) {
            None
        } else {
            Some(self.mount_rootfs(rec)?)
        };
        let result = work(&merged);
        if mounted_here == Some(MountKind::Overlay) {
            let _ = rootfs::unmount(&data);
        }
        result
    }

    /// How storage.conf says to make a root file system.
    pub fn overlay_method(&self) -> rootfs::OverlayMethod {
        let storage = &self.ctx.storage_conf;
        match (storage.driver, &storage.mount_program) {
            (crate::config::storage::Driver::Vfs, _) => rootfs::OverlayMethod::Copy,
            (_, Some(path)) => rootfs::OverlayMethod::Program {
                path: path.clone(),
                options: storage.mount_options.clone(),
            },
            (_, None) => rootfs::OverlayMethod::Kernel,
        }
    }

    /// Monitor options for the container (create mode).
    fn monitor_options(&self, rec: &Record, rt: &Runtime, f: &Files) -> MonitorOptions {
        let mut o = MonitorOptions::new(rec.id.clone(), rt.path.clone());
        o.name = Some(rec.name.clone());
        o.bundle = Some(f.dir.clone());
        o.container_pidfile = Some(f.dir.join("pidfile"));
        o.conmon_pidfile = Some(f.dir.join("conmon.pid"));
        o.exit_dir = Some(f.exit_dir());
        o.persist_dir = Some(f.persist_dir());
        o.runtime_args = rt.global_args(Some(&f.oci_log()));
        o.log_drivers = vec![match rec.log.driver.as_str() {
            "journald" => LogDriver::Journald,
            "passthrough" => LogDriver::Passthrough,
            "none" => LogDriver::None,
            _ => LogDriver::K8sFile(
                rec.log
                    .path
                    .clone()
                    .unwrap_or_else(|| f.data.join("ctr.log")),
            ),
        }];
        o.log_level = Some(log_level(self.ctx.log_level));
        o.syslog = self.ctx.syslog;
        o.log_size_max = rec.log.size_max;
        o.log_rotate = rec.log.max_files.is_some();
        o.log_max_files = rec.log.max_files;
        o.log_tag = rec.log.tag.clone();
        o.log_rate_limit = rec.log.rate_limit;
        o.terminal = rec.config.tty;
        // Like Podman: `-t` alone for terminals (with `-i` the monitor would
        // close the terminal input when the first attach client leaves).
        o.stdin = rec.config.stdin && !rec.config.tty;
        o
    }

    /// Exit command the monitor runs when the container exits: `vigil
    /// container cleanup [--rm] ID` with this invocation's global options,
    /// which tears the network down, applies the restart policy, and with
    /// `--rm` removes a detached `--rm` container (Podman's `container cleanup`).
    fn cleanup_command(&self, rec: &Record, remove: bool) -> Option<client::ExitCommand> {
        if remove {
            self.vigil_command(&["container", "cleanup", "--rm", &rec.id])
        } else {
            self.vigil_command(&["container", "cleanup", &rec.id])
        }
    }

    /// This vigil with the global options of this invocation, then `tail`.
    fn vigil_command(&self, tail: &[&str]) -> Option<client::ExitCommand> {
        let exe = std::env::current_exe().ok()?;
        let mut args = self.ctx.vigil_global_args();
        args.extend(tail.iter().map(std::ffi::OsString::from));
        Some(client::ExitCommand {
            path: exe,
            args,
            delay: None,
        })
    }

    /// Mount the rootfs, write the spec and /etc files, and have the monitor
    /// create the container. On success the record has the pids (still `Created`).
    pub fn init(
        &self,
        rec: &mut Record,
        detached_auto_remove: bool,
    ) -> Result<Monitor, RunnerError> {
        let rt = self.runtime()?;
        let monitor = self.ctx.monitor_path()?;
        let f = self.files(&rec.id);
        for stale in ["pidfile", "conmon.pid", "attach", "oci-log"] {
            let _ = fs::remove_file(f.dir.join(stale));
        }
        let _ = fs::remove_dir_all(f.exit_dir());
        let _ = fs::remove_dir_all(f.persist_dir());
        for d in [f.exit_dir(), f.persist_dir()] {
            fs::create_dir_all(&d)
                .map_err(|e| RunnerError::io(format!("creating {}", d.display()), e))?;
        }
        let kind = self.mount_rootfs(rec)?;
        rec.mounted = Some(kind);
        rec.save(&f.dir)?;
        let result = super::net::setup(self.ctx, rec, &f.dir).and_then(|mut attached| {
            rec.save(&f.dir)?;
            // netavark may still be setting the namespace up: the runtime
            // creates the container meanwhile, the start waits for it.
            let pending = attached.pending.take();
            let spawned =
                self.spawn_monitor(rec, &rt, &monitor, &f, detached_auto_remove, attached);
            let finished = super::net::finish(rec, pending, &f.dir);
            let spawned = spawned?;
            finished?;
            Ok(spawned)
        });
        match result {
            Ok((m, pid)) => {
                rec.pid = Some(pid);
                rec.monitor_pid = m.pid();
                // Both are ours now: the monitor is waiting for the start
                // and the container process for `runtime start`.
                rec.pid_start = start_time(pid);
                rec.monitor_start = rec.monitor_pid.and_then(start_time);
                rec.error = None;
                rec.save(&f.dir)?;
                Ok(m)
            }
            Err(e) => {
                let _ = rt.delete(&rec.id);
                super::net::teardown(self.ctx, rec);
                self.unmount(rec);
                let _ = rec.save(&f.dir);
                Err(e)
            }
        }
    }

    fn spawn_monitor(
        &self,
        rec: &Record,
        rt: &Runtime,
        monitor: &Path,
        f: &Files,
        detached_auto_remove: bool,
        attached: crate::network::Attached,
    ) -> Result<(Monitor, i32), RunnerError> {
        use crate::network::Mode;
        let network = match (&rec.config.net.mode, &attached.netns) {
            (Mode::Host, _) => Network::Host,
            (_, Some(path)) => Network::Path(path.clone()),
            _ => Network::None,
        };
        let parsed = rec.config.parsed()?;
        let mut binds = etc::write_files(
            &f.dir,
            &rec.config.hostname,
            &rec.name,
            &attached.etc,
            rec.config.net.mode != Mode::None,
        )?;
        binds.extend(parsed.volumes.iter().cloned());
        let user = resolve_user(&rec.rootfs_source, &rec.config.user)?;
        rootfs::check_workdir(&rootfs::rootfs_path(&f.data), &rec.config.cwd, &rec.id)?;
        let rootless = crate::rootless::active().is_some();
        // Root of the rootless namespace cannot raise limits on the host.
        let can_raise = !rootless && has_cap_sys_resource();
        let nr_open = fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let is_root = user.uid == 0;
        let mut spec = spec::build(&SpecOptions {
            rootfs: rootfs::rootfs_path(&f.data),
            args: rec.config.args.clone(),
            env: rec.config.env.clone(),
            cwd: rec.config.cwd.clone(),
            user,
            terminal: rec.config.tty,
            console_size: spec::terminal_size(),
            hostname: rec.config.hostname.clone(),
            network,
            cgroups_path: format!("/vigil/vigil-{}", rec.id),
            binds,
            tmpfs: parsed.tmpfs.clone(),
            pids_limit: parsed.pids_limit,
            memory_limit: if rootless { None } else { rec.memory_limit },
            rlimit_nofile: spec::rlimit_value(
                can_raise,
                nr_open,
                hard_limit(Resource::RLIMIT_NOFILE),
            ),
            rlimit_nproc: spec::rlimit_value(can_raise, None, hard_limit(Resource::RLIMIT_NPROC)),
            cgroup_ns: is_cgroup2(),
            rootless,
            userns: rec.userns.as_ref().map(|ns| (ns.uids(), ns.gids())),
            flags: rec.config.flags.clone(),
        })?;
        let flags = &rec.config.flags;
        super::defaults::apply(
            &mut spec,
            &self.ctx.containers_conf.containers,
            (&flags.cap_add, &flags.cap_drop),
            is_root,
            (!can_raise).then(|| {
                hard_limit(Resource::RLIMIT_NOFILE).min(hard_limit(Resource::RLIMIT_NPROC))
            }),
        )?;
        let config = f.dir.join("config.json");
        spec.save(&config)
            .map_err(|e| RunnerError::Engine(format!("writing {}: {e}", config.display())))?;
        let mut opts = self.monitor_options(rec, rt, f);
        opts.health = super::health::monitor_options(rec, &f.dir);
        let health_restart = opts
            .health
            .as_ref()
            .is_some_and(|h| h.on_failure == client::OnFailure::Restart);
        if detached_auto_remove
            || rec.restart_policy.is_set()
            || health_restart
            || !rec.net_state.is_empty()
        {
            opts.exit_command = self.cleanup_command(rec, detached_auto_remove);
        }
        // The monitor holds the port reservations and the helpers' exit
        // pipe for as long as the container lives.
        let fds: Vec<std::os::fd::BorrowedFd<'_>> = attached
            .monitor_fds
            .iter()
            .map(std::os::fd::AsFd::as_fd)
            .collect();
        log::debug!(
            "starting the monitor {} for container {}",
            monitor.display(),
            rec.id
        );
        let mut m = Monitor::spawn(monitor, &opts, &fds).map_err(|e| client_error(e, None))?;
        drop(fds);
        drop(attached);
        let pid = m
            .await_pid(Some(PID_TIMEOUT))
            .map_err(|e| client_error(e, Some(&f.oci_log())))?;
        Ok((m, pid))
    }

    /// `runtime start`: the container process runs its command from now on.
    pub fn start(&self, rec: &mut Record) -> Result<(), RunnerError> {
        let rt = self.runtime()?;
        rt.start(&rec.id)?;
        rec.status = Status::Running;
        rec.started_at = Some(now_nanos());
        rec.exit_code = None;
        rec.finished_at = None;
        rec.oom_killed = false;
        rec.save(&self.store.dir(&rec.id))
    }

    /// Load the record and bring its status up to date: a container whose
    /// exit file appeared becomes `Exited` and is cleaned up (runtime state
    /// deleted, rootfs unmounted). If the monitor died without writing one,
    /// the runtime is asked: a container process that still runs keeps its
    /// status (with an error saying it is unmonitored); one that is gone is
    /// `Exited` with code -1. Call under its lock.
    pub fn refresh(&self, id: &str) -> Result<Record, RunnerError> {
        let f = self.files(id);
        let mut rec = Record::load(&f.dir)?;
        let Some(monitor) = rec.monitor_pid else {
            return Ok(rec);
        };
        let watcher = ExitWatcher::new(&f.exit_dir(), id).persist_dir(&f.persist_dir());
        let mut status = watcher.try_read().map_err(|e| client_error(e, None))?;
        if status.is_none() && !self.monitor_alive(&rec) {
            // It may have written the file just before exiting.
            status = watcher.try_read().map_err(|e| client_error(e, None))?;
            if status.is_none() {
                if self.container_alive(&rec) {
                    let error = monitor_died(monitor, "container state unknown");
                    if rec.error.as_deref() != Some(error.as_str()) {
                        rec.error = Some(error);
                        rec.save(&f.dir)?;
                    }
                    return Ok(rec);
                }
                rec.error = Some(monitor_died(monitor, "exit code unknown"));
                status = Some(client::ExitStatus {
                    code: -1,
                    oom_killed: watcher.oom_killed(),
                });
            }
        }
        if let Some(st) = status {
            rec.status = Status::Exited;
            rec.exit_code = Some(st.code);
            rec.oom_killed = st.oom_killed;
            rec.finished_at = Some(mtime_nanos(watcher.exit_file()).unwrap_or_else(now_nanos));
            self.cleanup(&mut rec);
            rec.save(&f.dir)?;
        }
        Ok(rec)
    }

    /// [`refresh`](Self::refresh) under the container's lock.
    pub fn refresh_locked(&self, id: &str) -> Result<Record, RunnerError> {
        let _lock = self.store.lock(id)?;
        self.refresh(id)
    }

    /// The recorded monitor is alive and is the process we started (not a
    /// stranger that was given its pid after it died).
    pub fn monitor_alive(&self, rec: &Record) -> bool {
        rec.monitor_pid
            .is_some_and(|pid| same_process(pid, rec.monitor_start))
    }

    /// The container's process still exists, as the runtime sees it (it
    /// checks the process's start time against its own record). If the
    /// runtime cannot tell, the recorded pid and start time decide.
    pub fn container_alive(&self, rec: &Record) -> bool {
        match self.runtime().and_then(|rt| rt.state(&rec.id)) {
            Ok(Some(state)) => state.is_alive(),
            Ok(None) => false,
            Err(_) => rec.pid.is_some_and(|pid| same_process(pid, rec.pid_start)),
        }
    }

    /// After exit: delete the runtime's state, tear the network down,
    /// unmount, forget the pids.
    pub fn cleanup(&self, rec: &mut Record) {
        // The container has exited: its network goes down while the
        // runtime deletes it and the rootfs is unmounted.
        let mut net_state = std::mem::take(&mut rec.net_state);
        let id = rec.id.clone();
        let ctx = self.ctx;
        std::thread::scope(|s| {
            let net = s.spawn(|| super::net::teardown_state(ctx, &id, &mut net_state));
            if let Ok(rt) = self.runtime() {
                // `rm` after an exit cleans up a second time: no runtime
                // process when there is nothing left to delete.
                if rt.has_state(&rec.id) != Some(false) {
                    let _ = rt.delete(&rec.id);
                }
            }
            self.unmount(rec);
            let _ = net.join();
        });
        rec.net_state = net_state;
        rec.pid = None;
        rec.monitor_pid = None;
        rec.pid_start = None;
        rec.monitor_start = None;
    }

    fn unmount(&self, rec: &mut Record) {
        let data = self.store.data_dir(&rec.id);
        if rec.mounted == Some(MountKind::Overlay)
            || rootfs::is_mounted(&rootfs::rootfs_path(&data))
        {
            let _ = rootfs::unmount(&data);
        }
        if rec.mounted == Some(MountKind::Overlay) {
            rec.mounted = None;
        }
    }

    /// Stop a running container: its stop signal, then after `timeout`
    /// seconds (at once for 0) SIGKILL to every process; returns the record
    /// once it exited.
    pub fn stop(&self, rec: &Record, timeout: u32) -> Result<Record, RunnerError> {
        super::control::stop(self, &rec.id, Some(timeout))
    }

    /// Wait for the container to exit (under no lock), then refresh it:
    /// for its exit file while its monitor lives, for the runtime to report
    /// it stopped once the monitor is gone. With a timeout, running out of
    /// time is an error.
    pub fn wait_exit(&self, id: &str, timeout: Option<Duration>) -> Result<Record, RunnerError> {
        let f = self.files(id);
        let rec = Record::load(&f.dir)?;
        let deadline = timeout.map(|t| Instant::now() + t);
        if rec.monitor_pid.is_some() {
            let watcher = ExitWatcher::new(&f.exit_dir(), id);
            loop {
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                if left.is_some_and(|l| l.is_zero()) {
                    return Err(RunnerError::Engine(format!(
                        "timed out waiting for container {id} to exit"
                    )));
                }
                let step = left.map_or(WAIT_STEP, |l| l.min(WAIT_STEP));
                if self.monitor_alive(&rec) {
                    match watcher.wait(Some(step)) {
                        Ok(_) => break,
                        Err(client::Error::Timeout(_)) => continue,
                        Err(e) => return Err(client_error(e, None)),
                    }
                }
                if watcher
                    .try_read()
                    .map_err(|e| client_error(e, None))?
                    .is_some()
                    || !self.container_alive(&rec)
                {
                    break;
                }
                std::thread::sleep(step.min(Duration::from_millis(100)));
            }
        }
        let _lock = self.store.lock(id)?;
        self.refresh(id)
    }

    /// Remove a stopped container: runtime state, mounts, state and data dirs.
    pub fn remove(&self, rec: &mut Record) -> Result<(), RunnerError> {
        self.cleanup(rec);
        let f = self.files(&rec.id);
        let _ = rootfs::unmount(&f.data);
        for d in [&f.data, &f.dir] {
            match fs::remove_dir_all(d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(RunnerError::io(format!("removing {}", d.display()), e)),
            }
        }
        Ok(())
    }
}

/// How often [`Engine::wait_exit`] re-checks that the monitor lives.
const WAIT_STEP: Duration = Duration::from_millis(250);

/// `State.Error` when the monitor is gone without an exit file.
fn monitor_died(pid: i32, what: &str) -> String {
    format!("monitor (pid {pid}) died; {what}")
}

fn mtime_nanos(path: &Path) -> Option<i128> {
    let t = fs::metadata(path).ok()?.modified().ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos() as i128)
}

/// CAP_SYS_RESOURCE in our effective set (root in a sandbox may lack it).
fn has_cap_sys_resource() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

fn hard_limit(resource: Resource) -> u64 {
    getrlimit(resource).map_or(1024, |(_soft, hard)| hard)
}

/// The unified cgroup hierarchy (v2) is mounted at /sys/fs/cgroup.
pub fn is_cgroup2() -> bool {
    statfs("/sys/fs/cgroup").is_ok_and(|st| st.filesystem_type() == CGROUP2_SUPER_MAGIC)
}
