//! Signals: SIGCHLD/SIGUSR1 (child checks) and SIGTERM/SIGINT/SIGQUIT
//! (forwarded to the container) are blocked and read from a signalfd in the
//! event loop.
//!
//! Why a signalfd (through nix) and not signal-hook: the monitor is one
//! thread and one `mio::Poll`; a signalfd is just another readable fd there,
//! needs no handler, no self-pipe and no thread, and the blocked mask is
//! exactly what the runtime child must not inherit (it gets the old one).

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd as NixSignalFd};
use std::os::fd::{AsRawFd, RawFd};

/// Signals forwarded to the container.
pub const FORWARDED: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT];

/// SIGPIPE ignored; SIGTERM exits at once (no cleanup) until the runtime is forked.
pub fn install_startup_handlers() {
    extern "C" fn on_term(_: libc::c_int) {
        crate::daemon::exit_now(1);
    }
    // SAFETY: installing plain handlers; on_term only calls _exit, which is
    // async-signal-safe.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(
            libc::SIGTERM,
            on_term as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

fn monitored_set() -> SigSet {
    [
        Signal::SIGCHLD,
        Signal::SIGUSR1,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGQUIT,
    ]
    .into_iter()
    .collect()
}

/// Block the monitored signals; returns the previous mask (for children).
pub fn block() -> SigSet {
    let mut old = SigSet::empty();
    let _ = nix::sys::signal::sigprocmask(
        SigmaskHow::SIG_BLOCK,
        Some(&monitored_set()),
        Some(&mut old),
    );
    old
}

/// A non-blocking signalfd for the monitored signals.
pub struct SignalFd {
    fd: NixSignalFd,
}

impl SignalFd {
    pub fn new() -> std::io::Result<SignalFd> {
        let fd = NixSignalFd::with_flags(
            &monitored_set(),
            SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
        )?;
        Ok(SignalFd { fd })
    }

    /// Next pending signal number, if any.
    pub fn next(&self) -> Option<libc::c_int> {
        match self.fd.read_signal() {
            Ok(Some(info)) => Some(info.ssi_signo as libc::c_int),
            _ => None,
        }
    }
}

impl AsRawFd for SignalFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
