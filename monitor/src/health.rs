//! Healthchecks (vigil extension, `--health-*`; Podman never passes them).
//!
//! The monitor lives exactly as long as its container, so it keeps the
//! container's health itself: no daemon, no systemd timer. A check is an exec
//! session through the runtime, spawned the way the runtime's `create` is
//! (`runtime::spawn`): `runtime [runtime-args] exec --detach --pid-file P CID
//! CMD...`, which runs CMD with the container's own process settings (env,
//! cwd, user) and leaves it to us, the subreaper. Its stdout and stderr go to
//! one pipe that the event loop reads; nothing here ever blocks: the runtime
//! and the check are reaped through the loop's SIGCHLD, the schedule, the
//! timeout and the stop timeout are the loop's timers.
//!
//! Results go to the health log (`proto::health`, Podman's format and rules)
//! by an atomic rewrite. When a check leaves the container unhealthy, the
//! on-failure action is carried out here: `kill` (SIGKILL), `stop` (stop
//! signal, SIGKILL after the stop timeout) or `restart` (a marker file for the
//! engine's exit command, then the same stop).

use crate::fds;
use crate::runtime::{self, ChildSetup};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use vigil::logfmt::timestamp::TimestampCache;
use vigil::proto::health::{self, Entry, HealthLog, OnFailure};

/// What the options ask for (validated in `config`).
#[derive(Debug)]
pub struct HealthConfig {
    /// The whole runtime argv of one check.
    pub argv: Vec<CString>,
    /// `None`: only checks asked for over `ctl`.
    pub interval: Option<Duration>,
    pub timeout: Duration,
    pub start_period: Duration,
    pub retries: u32,
    pub on_failure: OnFailure,
    pub stop_signal: libc::c_int,
    pub stop_timeout: Duration,
    pub log_path: PathBuf,
    /// Where the runtime writes the check's pid.
    pub pidfile: PathBuf,
}

/// Where the current check is.
enum Phase {
    /// Waiting for `next` (or a request).
    Idle { next: Option<Instant> },
    /// `runtime exec` runs; it exits once the check has started.
    Spawning { runtime_pid: libc::pid_t },
    /// The check runs as `pid`.
    Running { pid: libc::pid_t },
}

/// A check in flight: its output pipe and when it started.
struct InFlight {
    output: Option<OwnedFd>,
    captured: Vec<u8>,
    start_wall: (i64, u32),
    start: Instant,
    deadline: Instant,
}

pub struct Health {
    cfg: HealthConfig,
    sigmask: nix::sys::signal::SigSet,
    saved_oom_score_adj: Vec<u8>,
    phase: Phase,
    check: Option<InFlight>,
    log: HealthLog,
    started: Instant,
    /// A check was asked for since the last one started.
    requested: bool,
    /// Children reaped before we knew they were the check (it can exit
    /// before the runtime that started it).
    early: Vec<(libc::pid_t, i32)>,
    /// The on-failure action ran; no further checks.
    acted: bool,
    /// After the stop signal: when SIGKILL follows.
    kill_at: Option<Instant>,
}

/// Bytes read from the output pipe per wake-up, at most (the rest waits for
/// the next turn of the loop, so a chatty check cannot starve the log path).
const OUTPUT_READS: usize = 16;

impl Health {
    /// Start keeping health: the log gets status `starting` (earlier entries
    /// of this container are kept, its failing streak starts again).
    pub fn new(
        cfg: HealthConfig,
        sigmask: nix::sys::signal::SigSet,
        saved_oom_score_adj: Vec<u8>,
    ) -> Health {
        let mut log = std::fs::read(&cfg.log_path)
            .ok()
            .and_then(|b| HealthLog::decode(&b).ok())
            .unwrap_or_default();
        log.status = health::STARTING.into();
        log.failing_streak = 0;
        let now = Instant::now();
        let h = Health {
            phase: Phase::Idle {
                next: cfg.interval.map(|i| now + i),
            },
            cfg,
            sigmask,
            saved_oom_score_adj,
            check: None,
            log,
            started: now,
            requested: false,
            early: Vec::new(),
            acted: false,
            kill_at: None,
        };
        h.write_log();
        h
    }

    /// A check was asked for (ctl): run one as soon as none is running.
    pub fn request(&mut self) {
        self.requested = true;
    }

    /// A check is in flight.
    pub fn busy(&self) -> bool {
        self.check.is_some()
    }

    /// When the loop must wake up for us next.
    pub fn next_wake(&self) -> Option<Instant> {
        let phase = match (&self.phase, &self.check) {
            (Phase::Idle { .. }, _) if self.acted => None,
            (Phase::Idle { .. }, _) if self.requested => Some(Instant::now()),
            (Phase::Idle { next }, _) => *next,
            (_, Some(c)) => Some(c.deadline),
            (_, None) => None,
        };
        match (phase, self.kill_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Start a due check, enforce the timeout and the stop timeout.
    pub fn tick(&mut self, registry: &Registry, token: Token, container_pid: libc::pid_t) {
        let now = Instant::now();
        if self.kill_at.is_some_and(|k| now >= k) {
            self.kill_at = None;
            crate::info!("container did not stop in time after its healthcheck failed: SIGKILL");
            signal(container_pid, libc::SIGKILL);
        }
        match self.phase {
            Phase::Idle { next } => {
                let due = self.requested || next.is_some_and(|n| now >= n);
                if due && !self.acted && container_pid > 0 {
                    self.start(registry, token);
                }
            }
            Phase::Spawning { runtime_pid: pid } | Phase::Running { pid } => {
                if self.check.as_ref().is_some_and(|c| now >= c.deadline) {
                    crate::info!("healthcheck timed out: killing pid {pid}");
                    signal(pid, libc::SIGKILL);
                    let code = health::TIMED_OUT_EXIT_CODE;
                    self.finish(registry, code, container_pid);
                }
            }
        }
    }

    fn start(&mut self, registry: &Registry, token: Token) {
        self.requested = false;
        self.early.clear();
        let start_wall = TimestampCache::now();
        let start = Instant::now();
        let deadline = start + self.cfg.timeout;
        let _ = std::fs::remove_file(&self.cfg.pidfile);
        let spawned = (|| {
            let (read, write) = fds::pipe().map_err(|e| format!("healthcheck pipe: {e}"))?;
            let null = std::fs::File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
            fds::set_nonblocking(&read, true).map_err(|e| e.to_string())?;
            let setup = ChildSetup {
                argv: self.cfg.argv.clone(),
                stdio: [
                    Some(null.as_raw_fd()),
                    Some(write.as_raw_fd()),
                    Some(write.as_raw_fd()),
                ],
                chmod_stdio: [false; 3],
                replace_listen_pid: false,
                start_pipe: None,
                saved_oom_score_adj: self.saved_oom_score_adj.clone(),
                sigmask: self.sigmask,
            };
            let pid = runtime::spawn(&setup).map_err(|f| f.text)?;
            Ok::<_, String>((pid, read))
        })();
        match spawned {
            Ok((pid, read)) => {
                if let Err(e) =
                    registry.register(&mut SourceFd(&read.as_raw_fd()), token, Interest::READABLE)
                {
                    crate::warn!("Failed to watch the healthcheck output: {e}");
                }
                crate::debug!("healthcheck: runtime exec is pid {pid}");
                self.phase = Phase::Spawning { runtime_pid: pid };
                self.check = Some(InFlight {
                    output: Some(read),
                    captured: Vec::with_capacity(health::MAX_OUTPUT + 1),
                    start_wall,
                    start,
                    deadline,
                });
            }
            Err(msg) => {
                // Could not even start the runtime: a failed check.
                crate::warn!("healthcheck could not be started: {msg}");
                self.check = Some(InFlight {
                    output: None,
                    captured: msg.into_bytes(),
                    start_wall,
                    start,
                    deadline,
                });
                self.phase = Phase::Spawning { runtime_pid: 0 };
                self.finish(registry, 1, 0);
            }
        }
    }

    /// The output pipe is readable.
    pub fn on_output(&mut self, registry: &Registry) {
        let Some(c) = &mut self.check else { return };
        if read_output(c, OUTPUT_READS) {
            if let Some(fd) = c.output.take() {
                let _ = registry.deregister(&mut SourceFd(&fd.as_raw_fd()));
            }
        }
    }

    /// A child other than the container was reaped.
    pub fn on_reaped(
        &mut self,
        registry: &Registry,
        pid: libc::pid_t,
        status: i32,
        container_pid: libc::pid_t,
    ) {
        match self.phase {
            Phase::Spawning { runtime_pid } if pid == runtime_pid && runtime_pid > 0 => {
                if status != 0 {
                    // The runtime could not run the command (not found, not
                    // executable, container gone): its message is the output.
                    crate::debug!("healthcheck: runtime exec failed ({status})");
                    self.finish(registry, 1, container_pid);
                    return;
                }
                match runtime::read_pidfile(&self.cfg.pidfile) {
                    Ok(check) => {
                        if let Some(i) = self.early.iter().position(|&(p, _)| p == check) {
                            let (_, st) = self.early.swap_remove(i);
                            self.finish(registry, exit_code(st), container_pid);
                        } else {
                            self.phase = Phase::Running { pid: check };
                        }
                    }
                    Err(msg) => {
                        if let Some(c) = &mut self.check {
                            c.captured.extend_from_slice(msg.as_bytes());
                        }
                        self.finish(registry, 1, container_pid);
                    }
                }
            }
            Phase::Spawning { .. } if self.early.len() < 16 => {
                self.early.push((pid, status));
            }
            Phase::Running { pid: check } if pid == check => {
                self.finish(registry, exit_code(status), container_pid);
            }
            _ => {}
        }
    }

    /// Log the result of the check in flight, then act on it.
    fn finish(&mut self, registry: &Registry, exit_code: i32, container_pid: libc::pid_t) {
        let next = self.cfg.interval.map(|i| Instant::now() + i);
        self.phase = Phase::Idle { next };
        let Some(mut c) = self.check.take() else {
            return;
        };
        if exit_code != health::TIMED_OUT_EXIT_CODE && exiting(container_pid) {
            // The check died with its container (or the runtime found it
            // gone): nothing was checked, as when the container exits first.
            crate::debug!("healthcheck ended with the container: not logged");
            if let Some(fd) = c.output.take() {
                let _ = registry.deregister(&mut SourceFd(&fd.as_raw_fd()));
            }
            return;
        }
        // What the check wrote before it ended is in the pipe now.
        read_output(&mut c, OUTPUT_READS);
        if let Some(fd) = c.output.take() {
            let _ = registry.deregister(&mut SourceFd(&fd.as_raw_fd()));
        }
        let (s, ns) = TimestampCache::now();
        let in_start_period = c.start < self.started + self.cfg.start_period;
        let entry = Entry {
            start: health::format_time(c.start_wall.0, c.start_wall.1),
            end: health::format_time(s, ns),
            exit_code,
            output: health::log_output(&c.captured),
        };
        crate::debug!("healthcheck finished with {exit_code}");
        self.log.record(entry, in_start_period, self.cfg.retries);
        self.write_log();
        if self.log.status == health::UNHEALTHY {
            self.act(container_pid);
        }
    }

    fn act(&mut self, container_pid: libc::pid_t) {
        if container_pid <= 0 || self.cfg.on_failure == OnFailure::None {
            return;
        }
        self.acted = true;
        crate::info!(
            "container is unhealthy: on-failure action {}",
            self.cfg.on_failure.as_str()
        );
        match self.cfg.on_failure {
            OnFailure::None => {}
            OnFailure::Kill => signal(container_pid, libc::SIGKILL),
            OnFailure::Restart | OnFailure::Stop => {
                if self.cfg.on_failure == OnFailure::Restart {
                    let marker = self.cfg.log_path.with_file_name(health::RESTART_MARKER);
                    if let Err(e) = std::fs::write(&marker, b"") {
                        crate::warn!("Failed to write {}: {e}", marker.display());
                    }
                }
                if self.cfg.stop_timeout.is_zero() {
                    signal(container_pid, libc::SIGKILL);
                } else {
                    signal(container_pid, self.cfg.stop_signal);
                    self.kill_at = Some(Instant::now() + self.cfg.stop_timeout);
                }
            }
        }
    }

    fn write_log(&self) {
        if let Err(e) = vigil::proto::exit::write_atomic(&self.cfg.log_path, &self.log.encode()) {
            crate::warn!(
                "Failed to write the health log {}: {e}",
                self.cfg.log_path.display()
            );
        }
    }

    /// The container exited: a check still in flight is dropped unlogged
    /// (its process died with the container; the runtime is killed).
    pub fn abandon(&mut self) {
        if let Phase::Spawning { runtime_pid } = self.phase {
            if runtime_pid > 0 {
                signal(runtime_pid, libc::SIGKILL);
            }
        }
        self.phase = Phase::Idle { next: None };
        self.check = None;
        self.kill_at = None;
    }
}

/// Read what is available into the capture (the first `MAX_OUTPUT + 1`
/// bytes are kept, the rest is drained and dropped); true at EOF.
fn read_output(c: &mut InFlight, reads: usize) -> bool {
    let Some(fd) = &c.output else { return true };
    let mut buf = [0u8; 4096];
    for _ in 0..reads {
        match fds::read(fd, &mut buf) {
            Ok(0) => return true,
            Ok(n) => {
                let room = (health::MAX_OUTPUT + 1).saturating_sub(c.captured.len());
                c.captured.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
    false
}

/// A check's `ExitCode`: 0, or 1 for any failure (Podman logs 1 whatever
/// the status).
fn exit_code(wait_status: i32) -> i32 {
    i32::from(crate::exit::status_of(wait_status) != 0)
}

/// The container's process is exiting or gone: /proc says zombie, dead or
/// `PF_EXITING` (set from the start of exit, before the kernel kills the
/// rest of its pid namespace, checks included).
fn exiting(pid: libc::pid_t) -> bool {
    const PF_EXITING: u64 = 0x4;
    if pid <= 0 {
        return false;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return true;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first().copied().unwrap_or("X");
    let flags: u64 = fields.get(6).and_then(|f| f.parse().ok()).unwrap_or(0);
    matches!(state, "Z" | "X" | "x") || flags & PF_EXITING != 0
}

fn signal(pid: libc::pid_t, sig: libc::c_int) {
    // Our own child (the container or a check we started).
    if let (true, Ok(sig)) = (pid > 0, nix::sys::signal::Signal::try_from(sig)) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }
}
