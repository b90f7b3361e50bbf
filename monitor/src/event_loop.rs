//! The monitoring phase: one `mio::Poll` over the container's output, the
//! attach socket and its clients, the ctl/winsz FIFOs, the signalfd and the
//! timeout, until the container exits (conmon-interface §2.8).
//!
//! Data path, in one place: `read(pipe or pty) -> buf -> log sinks -> attach
//! clients` (see [`EventLoop::pump`]).

use crate::attach::AttachServer;
use crate::coalesce::{Next, Pacing};
use crate::ctl::{resize_pty, CtlFifos};
use crate::health::Health;
use crate::logging::LogSinks;
use crate::oom::OomMonitor;
use crate::pagebuf::PageBuf;
use crate::signals::{SignalFd, FORWARDED};
use crate::stdio::{OutputStream, ReadOutcome, READ_SIZE};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

const SIGNAL: Token = Token(0);
const STDOUT: Token = Token(1);
const STDERR: Token = Token(2);
const LISTENER: Token = Token(3);
const CTL: Token = Token(4);
const WINSZ: Token = Token(5);
const STDIN: Token = Token(6);
const OOM: Token = Token(7);
const NOTIFY: Token = Token(8);
const HEALTH: Token = Token(9);
const CLIENT_BASE: usize = 16;

/// Read size while an attach client is connected.
const ATTACHED_READ_SIZE: usize = 64 * 1024;
/// Reads per stream when draining at exit (16 x 1 MiB = 16 MiB).
const DRAIN_READS: usize = 16;
/// Idle time after which buffer pages are returned to the kernel.
const IDLE_RELEASE: Duration = Duration::from_millis(200);
/// How often a paused loop checks for stuck attach clients.
const CONGESTION_TICK: Duration = Duration::from_millis(250);

/// The container's processes as the monitor knows them.
pub struct Children {
    pub runtime_pid: libc::pid_t,
    /// Set once the runtime reported it.
    pub container_pid: libc::pid_t,
    /// Wait status of the container process, once reaped.
    pub container_status: Option<i32>,
    /// Other children reaped (healthcheck processes), for `Health`.
    pub others: Vec<(libc::pid_t, i32)>,
}

impl Children {
    /// Reap every exited child; notes the container's status.
    pub fn reap(&mut self) {
        loop {
            let mut st = 0;
            // SAFETY: valid out-pointer.
            let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
            if pid > 0 {
                if pid == self.container_pid {
                    crate::debug!(
                        "container {} exited with status {}",
                        pid,
                        crate::exit::status_of(st)
                    );
                    self.container_status = Some(st);
                } else if self.others.len() < 64 {
                    self.others.push((pid, st));
                }
                continue;
            }
            if pid < 0
                && crate::diag::last_errno() == libc::ECHILD
                && self.container_pid > 0
                && self.container_status.is_none()
            {
                // Signal 0 only probes; EPERM means alive too.
                let alive = !matches!(
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.container_pid), None),
                    Err(nix::errno::Errno::ESRCH)
                );
                if alive {
                    crate::info!(
                        "Container process {} is still alive but not a direct child",
                        self.container_pid
                    );
                } else {
                    crate::info!(
                        "Container process {} has exited (detected via kill probe)",
                        self.container_pid
                    );
                    self.container_status = Some(0);
                }
            }
            return;
        }
    }

    pub fn exited(&self) -> bool {
        self.container_status.is_some()
    }

    /// Forward a signal to the container (or the runtime before the pid is known).
    pub fn forward(&self, sig: libc::c_int) {
        // Once reaped, the pid may belong to a stranger: never signal it.
        if self.container_status.is_some() {
            return;
        }
        // FORWARDED holds standard signals only, which nix names.
        let Ok(sig) = nix::sys::signal::Signal::try_from(sig) else {
            return;
        };
        let target = if self.container_pid > 0 {
            self.container_pid
        } else if self.runtime_pid > 0 {
            self.runtime_pid
        } else {
            return;
        };
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(target), sig);
    }
}

/// What one read of a stream did.
enum Pumped {
    Data(usize),
    /// Data was read and an attach client cannot take more now.
    Congested,
    /// Nothing to read now.
    Empty,
    /// End of the stream (or no stream).
    Closed,
}

/// Why the loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum LoopEnd {
    ContainerExited,
    TimedOut,
}

/// Where client input goes: the stdin pipe, or the pty master.
pub struct StdinTarget {
    pub fd: Option<OwnedFd>,
    /// `--stdin` without `--leave-stdin-open`: close it when a client ends its input.
    pub close_on_client_eof: bool,
}

pub struct EventLoop {
    poll: Poll,
    pub signals: SignalFd,
    pub streams: [Option<OutputStream>; 2],
    /// When each stream is read next (batching of small writes).
    pacing: [Option<Pacing>; 2],
    pub logs: LogSinks,
    pub attach: Option<AttachServer>,
    pub ctl: Option<CtlFifos>,
    pub stdin: StdinTarget,
    /// The pty master (terminal mode), for resizes.
    pub pty: Option<RawFd>,
    pub oom: Option<OomMonitor>,
    notify: Option<crate::notify::NotifyRelay>,
    pub health: Option<Health>,
    buf: PageBuf,
    /// Buffers were used since they were last released.
    buffers_dirty: bool,
    dropped: Vec<usize>,
}

impl EventLoop {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        signals: SignalFd,
        stdout: Option<OutputStream>,
        stderr: Option<OutputStream>,
        logs: LogSinks,
        attach: Option<AttachServer>,
        ctl: Option<CtlFifos>,
        stdin: StdinTarget,
        pty: Option<RawFd>,
    ) -> std::io::Result<EventLoop> {
        crate::residency::init();
        let poll = Poll::new()?;
        let reg = poll.registry();
        reg.register(
            &mut SourceFd(&signals.as_raw_fd()),
            SIGNAL,
            Interest::READABLE,
        )?;
        for (s, tok) in [(&stdout, STDOUT), (&stderr, STDERR)] {
            if let Some(s) = s {
                reg.register(&mut SourceFd(&s.raw()), tok, Interest::READABLE)?;
            }
        }
        if let Some(a) = &attach {
            reg.register(
                &mut SourceFd(&a.listener_fd()),
                LISTENER,
                Interest::READABLE,
            )?;
        }
        if let Some(c) = &ctl {
            reg.register(&mut SourceFd(&c.ctl.fd()), CTL, Interest::READABLE)?;
            if pty.is_some() {
                reg.register(&mut SourceFd(&c.winsz.fd()), WINSZ, Interest::READABLE)?;
            }
        }
        if let Some(fd) = &stdin.fd {
            crate::fds::set_nonblocking(fd, true)?;
            reg.register(&mut SourceFd(&fd.as_raw_fd()), STDIN, Interest::WRITABLE)?;
        }
        let pace = |s: &Option<OutputStream>| {
            // A terminal is interactive: never batched.
            let delay = if pty.is_some() {
                Duration::ZERO
            } else {
                crate::coalesce::DEFAULT_DELAY
            };
            s.as_ref().map(|s| Pacing::new(s.fd.as_fd(), delay))
        };
        let pacing = [pace(&stdout), pace(&stderr)];
        Ok(EventLoop {
            poll,
            signals,
            streams: [stdout, stderr],
            pacing,
            logs,
            attach,
            ctl,
            stdin,
            pty,
            oom: None,
            notify: None,
            health: None,
            buf: PageBuf::new(READ_SIZE)?,
            // Start-up touched most of the binary: release it at the first idle too.
            buffers_dirty: true,
            dropped: Vec::with_capacity(8),
        })
    }

    /// `--log-coalesce-ms`: the longest a byte of a busy writer waits before
    /// it is read (zero: read every write at once).
    pub fn set_coalescing(&mut self, delay: Duration) {
        for (p, s) in self.pacing.iter_mut().zip(&self.streams) {
            if let (Some(p), Some(s)) = (p, s) {
                if self.pty.is_none() {
                    *p = Pacing::new(s.fd.as_fd(), delay);
                }
            }
        }
    }

    /// Watch the container's memory cgroup for OOM kills.
    pub fn set_oom(&mut self, oom: OomMonitor) {
        if let Some(fd) = oom.fd() {
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut SourceFd(&fd), OOM, Interest::READABLE)
            {
                crate::warn!("Failed to watch for OOM events: {e}");
            }
        }
        self.oom = Some(oom);
    }

    /// Relay sd-notify messages from the container.
    pub fn set_notify(&mut self, relay: crate::notify::NotifyRelay) {
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut SourceFd(&relay.fd()), NOTIFY, Interest::READABLE)
        {
            crate::warn!("Failed to watch the notify socket: {e}");
        }
        self.notify = Some(relay);
    }

    /// Keep the container's health (vigil extension): checks run from this loop.
    pub fn set_health(&mut self, health: Health) {
        self.health = Some(health);
    }

    /// Healthcheck hook: start a due check, enforce timeouts, hand over
    /// reaped children; returns when the loop must wake up next for it.
    fn health_turn(&mut self, children: &mut Children) -> Option<Instant> {
        let Some(h) = &mut self.health else {
            children.others.clear();
            return None;
        };
        let reg = self.poll.registry();
        for (pid, st) in children.others.drain(..) {
            h.on_reaped(reg, pid, st, children.container_pid);
        }
        h.tick(reg, HEALTH, children.container_pid);
        if h.busy() {
            // A check ran code and buffers: release them again once idle.
            self.buffers_dirty = true;
        }
        h.next_wake()
    }

    /// Run until the container exits or `deadline` passes.
    pub fn run(&mut self, children: &mut Children, deadline: Option<Instant>) -> LoopEnd {
        let mut events = Events::with_capacity(64);
        // Clients connected before we got here must see all output.
        self.accept_clients();
        children.reap();
        loop {
            if children.exited() {
                return LoopEnd::ContainerExited;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                crate::info!("Timed out, killing main loop");
                return LoopEnd::TimedOut;
            }
            // The earliest of the timeout and the healthcheck's next timer.
            let timer = match (deadline, self.health_turn(children)) {
                (Some(d), Some(h)) => Some(d.min(h)),
                (d, h) => d.or(h),
            };
            let paused = self.congested();
            let hot = self.pacing.iter().flatten().any(|p| p.hot);
            let parked = self.next_parked();
            let timeout = if paused {
                // Waiting for a slow attach client; check for stuck ones regularly.
                Some(timer.map_or(CONGESTION_TICK, |d| {
                    d.saturating_duration_since(now).min(CONGESTION_TICK)
                }))
            } else if hot {
                Some(Duration::ZERO)
            } else {
                let mut t = timer.map(|d| d.saturating_duration_since(now));
                if let Some(p) = parked {
                    let until = p.saturating_duration_since(now);
                    t = Some(t.map_or(until, |t| t.min(until)));
                }
                if self.buffers_dirty {
                    t = Some(t.map_or(IDLE_RELEASE, |t| t.min(IDLE_RELEASE)));
                }
                t
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    crate::warn!("poll failed: {e}");
                }
                continue;
            }
            if events.is_empty() && self.buffers_dirty && !paused && !hot && parked.is_none() {
                self.release_memory();
                // Sleep until the next event without our binary's pages mapped.
                crate::residency::release_own_text_and_wait(
                    self.poll.as_raw_fd(),
                    timer.map(|d| d.saturating_duration_since(Instant::now())),
                );
                continue;
            }
            let mut signalled = false;
            // Accept first, so a client connecting now sees the output read below.
            if events.iter().any(|e| e.token() == LISTENER) {
                self.accept_clients();
            }
            for ev in events.iter() {
                match ev.token() {
                    SIGNAL => signalled = true,
                    STDOUT => self.mark_hot(0),
                    STDERR => self.mark_hot(1),
                    LISTENER => {}
                    CTL => self.on_ctl(),
                    WINSZ => self.on_winsz(),
                    STDIN => self.on_stdin_writable(),
                    NOTIFY => {
                        if let Some(n) = &mut self.notify {
                            n.on_readable();
                        }
                    }
                    OOM => {
                        if let Some(o) = &mut self.oom {
                            o.on_event();
                        }
                    }
                    HEALTH => {
                        if let Some(h) = &mut self.health {
                            h.on_output(self.poll.registry());
                        }
                    }
                    Token(t) if t >= CLIENT_BASE => {
                        let slot = t - CLIENT_BASE;
                        if ev.is_writable() {
                            self.flush_client(slot);
                        }
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.on_client_readable(slot);
                        }
                        // Hung up in both directions (not a half-close): its
                        // input was read above; nothing can reach it any more.
                        if ev.is_write_closed() {
                            if let Some(a) = &mut self.attach {
                                a.drop_client(slot);
                            }
                        }
                    }
                    _ => {}
                }
            }
            if let Some(a) = &mut self.attach {
                if a.congested() {
                    a.drop_stuck();
                }
            }
            let now = Instant::now();
            for i in 0..2 {
                let due = self.pacing[i].as_ref().is_some_and(|p| p.hot || p.due(now));
                if due && !self.congested() {
                    self.service(i);
                }
            }
            if signalled {
                while let Some(sig) = self.signals.next() {
                    if FORWARDED.contains(&sig) {
                        crate::debug!("forwarding signal {sig}");
                        children.forward(sig);
                    }
                }
                children.reap();
            }
        }
    }

    /// The stream's fd is readable (edge): read it on this turn, unless parked.
    fn mark_hot(&mut self, i: usize) {
        if let Some(p) = &mut self.pacing[i] {
            if p.parked_until.is_none() {
                p.hot = true;
            }
        }
    }

    /// The earliest time a parked stream is due.
    fn next_parked(&self) -> Option<Instant> {
        self.pacing
            .iter()
            .flatten()
            .filter_map(|p| p.parked_until)
            .min()
    }

    /// One read of stream `i`, then decide when it is read next: on the next
    /// turn, after a bounded pause out of the poll set (a slow writer: its
    /// small writes are batched), or when it is readable again.
    fn service(&mut self, i: usize) {
        let pumped = self.pump(i);
        let interactive = self.attach.as_ref().is_some_and(|a| a.has_clients());
        let now = Instant::now();
        let Some(pace) = &mut self.pacing[i] else {
            return;
        };
        let want_registered = match pumped {
            Pumped::Data(n) => match pace.after_data(n, now, interactive) {
                Next::ReadAgain => {
                    pace.hot = true;
                    pace.parked_until = None;
                    true
                }
                Next::ParkUntil(t) => {
                    pace.hot = false;
                    pace.parked_until = Some(t);
                    false
                }
            },
            Pumped::Congested => {
                pace.hot = true;
                pace.parked_until = None;
                true
            }
            Pumped::Empty => {
                pace.note_empty();
                true
            }
            Pumped::Closed => {
                self.pacing[i] = None;
                return;
            }
        };
        if want_registered != pace.registered {
            let Some(s) = &self.streams[i] else { return };
            let tok = if i == 0 { STDOUT } else { STDERR };
            let reg = self.poll.registry();
            let res = if want_registered {
                reg.register(&mut SourceFd(&s.raw()), tok, Interest::READABLE)
            } else {
                reg.deregister(&mut SourceFd(&s.raw()))
            };
            match res {
                Ok(()) => pace.registered = want_registered,
                Err(e) => {
                    crate::warn!("Failed to update the poll set: {e}");
                    // Stay registered, read it again: never lose a wake-up.
                    pace.registered = true;
                    pace.parked_until = None;
                    pace.hot = true;
                }
            }
        }
    }

    /// A client attached: parked streams are read now, and no longer parked.
    fn unpark_all(&mut self) {
        let now = Instant::now();
        for p in self.pacing.iter_mut().flatten() {
            if p.parked_until.is_some() {
                p.parked_until = Some(now);
            }
        }
    }

    /// Read stream `i` once into the logs and attach clients.
    fn pump(&mut self, i: usize) -> Pumped {
        let Some(s) = &self.streams[i] else {
            return Pumped::Closed;
        };
        // With a client attached, read what its socket can take in one
        // go: a bigger chunk would mostly be queued (copied) for it.
        let space = self.buf.space();
        let limit = if self.attach.as_ref().is_some_and(|a| a.has_clients()) {
            ATTACHED_READ_SIZE
        } else {
            space.len()
        };
        match s.read(&mut space[..limit]) {
            ReadOutcome::Data(n) => {
                self.buffers_dirty = true;
                let stream = s.stream;
                let chunk = &self.buf.space()[..n];
                self.logs.write(stream, chunk);
                if let Some(a) = &mut self.attach {
                    a.broadcast(stream, chunk, &mut self.dropped);
                    self.dropped.clear();
                    if a.congested() {
                        // Back-pressure: read more once the client caught up.
                        return Pumped::Congested;
                    }
                }
                Pumped::Data(n)
            }
            ReadOutcome::WouldBlock => Pumped::Empty,
            ReadOutcome::Eof => {
                if let Some(s) = self.streams[i].take() {
                    if self.pacing[i].as_ref().is_none_or(|p| p.registered) {
                        let _ = self.poll.registry().deregister(&mut SourceFd(&s.raw()));
                    }
                }
                Pumped::Closed
            }
        }
    }

    /// Nothing happened for a while: give buffer pages back to the kernel.
    fn release_memory(&mut self) {
        self.buf.release();
        self.logs.release_memory();
        if let Some(a) = &mut self.attach {
            a.release_memory();
        }
        // Free heap pages too (glibc keeps freed chunks mapped otherwise).
        #[cfg(target_env = "gnu")]
        // SAFETY: malloc_trim has no preconditions.
        unsafe {
            libc::malloc_trim(0)
        };
        self.buffers_dirty = false;
    }

    fn congested(&self) -> bool {
        self.attach.as_ref().is_some_and(|a| a.congested())
    }

    fn accept_clients(&mut self) {
        let Some(a) = &mut self.attach else { return };
        let mut accepted = false;
        while let Some((slot, fd)) = a.accept() {
            accepted = true;
            let tok = Token(CLIENT_BASE + slot);
            if let Err(e) = self.poll.registry().register(
                &mut SourceFd(&fd),
                tok,
                Interest::READABLE | Interest::WRITABLE,
            ) {
                crate::warn!("Failed to watch attach client: {e}");
                a.drop_client(slot);
            }
        }
        if accepted {
            self.unpark_all();
        }
    }

    fn flush_client(&mut self, slot: usize) {
        if let Some(a) = &mut self.attach {
            a.flush_client(slot);
        }
    }

    fn on_client_readable(&mut self, slot: usize) {
        let stdin = self.stdin.fd.as_ref().map(|f| f.as_fd());
        let Some(a) = &mut self.attach else { return };
        let up = a.read_client(slot, stdin);
        if up.input_ended && self.stdin.close_on_client_eof && self.stdin.fd.is_some() {
            crate::debug!("attach client closed its input: closing container stdin");
            if let Some(fd) = self.stdin.fd.take() {
                let _ = self
                    .poll
                    .registry()
                    .deregister(&mut SourceFd(&fd.as_raw_fd()));
            }
        } else if up.input_ended && !self.stdin.close_on_client_eof {
            crate::info!("Not closing input");
        }
    }

    fn on_stdin_writable(&mut self) {
        let blocked = self
            .attach
            .as_ref()
            .map(|a| a.blocked_input())
            .unwrap_or_default();
        for slot in blocked {
            self.on_client_readable(slot);
        }
    }

    fn on_ctl(&mut self) {
        let Some(c) = &mut self.ctl else { return };
        let act = c.read_ctl();
        if let Some((h, w)) = act.resize {
            match self.pty {
                Some(pty) => resize_pty(pty, h, w),
                None => crate::debug!("resize {h}x{w} without a terminal ignored"),
            }
        }
        if act.reopen_logs {
            self.logs.reopen();
        }
        if act.healthcheck {
            match &mut self.health {
                Some(h) => h.request(),
                None => crate::warn!("healthcheck requested, but the container has none"),
            }
        }
    }

    fn on_winsz(&mut self) {
        let Some(c) = &mut self.ctl else { return };
        if let (Some((h, w)), Some(pty)) = (c.read_winsz(), self.pty) {
            resize_pty(pty, h, w);
        }
    }

    /// After the loop: read what the container left in its pipes (stdout,
    /// then stderr). Bounded: a grandchild that keeps writing must not keep
    /// us alive.
    pub fn drain(&mut self) {
        let deadline = Instant::now() + crate::attach::SHUTDOWN_FLUSH;
        for i in 0..2 {
            for _ in 0..DRAIN_READS {
                if let Some(a) = &mut self.attach {
                    a.wait_for_room(deadline);
                }
                if !matches!(self.pump(i), Pumped::Data(_) | Pumped::Congested) {
                    break;
                }
            }
        }
    }
}
