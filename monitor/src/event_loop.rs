//! The monitoring phase: one `mio::Poll` over the container's output, the
//! signalfd and the timeout, until the container exits (conmon-interface §2.8).
//!
//! Data path: `read(pipe) -> buf -> log sinks (k8s-file: records, one write)`.

use crate::logging::LogSinks;
use crate::signals::{SignalFd, FORWARDED};
use crate::stdio::{OutputStream, ReadOutcome, READ_SIZE};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const SIGNAL: Token = Token(0);
const STDOUT: Token = Token(1);
const STDERR: Token = Token(2);

/// Reads per stream per wake-up before other sources get a turn.
const READ_BUDGET: usize = 16;
/// Reads per stream when draining at exit (256 x 64 KiB = 16 MiB).
const DRAIN_READS: usize = 256;

/// The container's processes as the monitor knows them.
pub struct Children {
    pub runtime_pid: libc::pid_t,
    /// Set once the runtime reported it.
    pub container_pid: libc::pid_t,
    /// Wait status of the container process, once reaped.
    pub container_status: Option<i32>,
    /// The container exited but only a kill probe noticed (status 0).
    pub probed_exit: bool,
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
                    crate::debug!("container {} exited with status {}", pid, crate::exit::status_of(st));
                    self.container_status = Some(st);
                }
                continue;
            }
            if pid < 0 && crate::diag::last_errno() == libc::ECHILD && self.container_pid > 0 && self.container_status.is_none() {
                // SAFETY: signal 0 only probes.
                let alive = unsafe { libc::kill(self.container_pid, 0) } == 0 || crate::diag::last_errno() != libc::ESRCH;
                if alive {
                    crate::info!("Container process {} is still alive but not a direct child", self.container_pid);
                } else {
                    crate::info!("Container process {} has exited (detected via kill probe)", self.container_pid);
                    self.container_status = Some(0);
                    self.probed_exit = true;
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
        // SAFETY: kill with valid signal numbers.
        unsafe {
            if self.container_pid > 0 {
                libc::kill(self.container_pid, sig);
            } else if self.runtime_pid > 0 && libc::kill(self.runtime_pid, sig) != 0 && self.container_pid > 0 {
                libc::kill(self.container_pid, sig);
            }
        }
    }
}

/// Why the loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum LoopEnd {
    ContainerExited,
    TimedOut,
}

pub struct EventLoop {
    poll: Poll,
    pub signals: SignalFd,
    pub streams: [Option<OutputStream>; 2],
    pub logs: LogSinks,
    buf: Box<[u8]>,
}

impl EventLoop {
    pub fn new(signals: SignalFd, stdout: Option<OutputStream>, stderr: Option<OutputStream>, logs: LogSinks) -> std::io::Result<EventLoop> {
        let poll = Poll::new()?;
        poll.registry().register(&mut SourceFd(&signals.as_raw_fd()), SIGNAL, Interest::READABLE)?;
        for (s, tok) in [(&stdout, STDOUT), (&stderr, STDERR)] {
            if let Some(s) = s {
                poll.registry().register(&mut SourceFd(&s.raw()), tok, Interest::READABLE)?;
            }
        }
        Ok(EventLoop { poll, signals, streams: [stdout, stderr], logs, buf: vec![0u8; READ_SIZE].into_boxed_slice() })
    }

    /// Run until the container exits or `deadline` passes.
    pub fn run(&mut self, children: &mut Children, deadline: Option<Instant>) -> LoopEnd {
        let mut events = Events::with_capacity(64);
        // Streams that still had data when their read budget ran out.
        let mut hot = [false; 2];
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
            let timeout = if hot.iter().any(|&h| h) {
                Some(Duration::ZERO)
            } else {
                deadline.map(|d| d.saturating_duration_since(now))
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    crate::warn!("poll failed: {e}");
                }
                continue;
            }
            let mut signalled = false;
            for ev in events.iter() {
                match ev.token() {
                    SIGNAL => signalled = true,
                    STDOUT => hot[0] = true,
                    STDERR => hot[1] = true,
                    _ => {}
                }
            }
            for (i, h) in hot.iter_mut().enumerate() {
                if *h {
                    *h = self.pump(i, READ_BUDGET);
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

    /// Read stream `i` up to `budget` times; true if it may have more data.
    fn pump(&mut self, i: usize, budget: usize) -> bool {
        for _ in 0..budget {
            let Some(s) = &self.streams[i] else { return false };
            match s.read(&mut self.buf) {
                ReadOutcome::Data(n) => {
                    let stream = s.stream;
                    self.logs.write(stream, &self.buf[..n]);
                }
                ReadOutcome::WouldBlock => return false,
                ReadOutcome::Eof => {
                    if let Some(s) = self.streams[i].take() {
                        let _ = self.poll.registry().deregister(&mut SourceFd(&s.raw()));
                    }
                    return false;
                }
            }
        }
        true
    }

    /// After the loop: read what the container left in its pipes (stdout, then stderr).
    pub fn drain(&mut self) {
        // Bounded: a grandchild that keeps writing must not keep us alive.
        // The pipe held at most a few MiB when the container exited.
        for i in 0..2 {
            self.pump(i, DRAIN_READS);
        }
    }
}
