//! SIGINT/SIGTERM during a long operation (`vigil build`, `vigil pull`):
//! noted by flags the operation checks, so it stops at a safe point and
//! cleans up (build containers killed and removed, mounts undone, partial
//! downloads deleted) instead of dying halfway. Nothing is tagged or stored.
//!
//! The handlers of [`Interrupt::install`] stay installed for the rest of
//! the process (signal-hook cannot put the default action back), so only
//! commands whose process ends with the operation install them (the others
//! use [`Interrupt::during`]); a second signal during the cleanup does
//! not cut it short either. At the end, [`Interrupt::exit_as_signalled`]
//! ends vigil by the signal that arrived, as Podman (killed by it) ends.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};

/// Which signal arrived (0: none), and a stop flag that the signal sets
/// and the operation itself may set too (a failed download cancels the
/// others). Clones share both.
#[derive(Clone, Debug, Default)]
pub struct Interrupt {
    signal: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Interrupt {
    /// Installs the handlers for SIGINT and SIGTERM.
    pub fn install() -> Interrupt {
        let it = Interrupt::default();
        for sig in [SIGINT, SIGTERM] {
            // Both fail only for a forbidden signal (SIGKILL, SIGSTOP, ...).
            let _ = signal_hook::flag::register_usize(sig, Arc::clone(&it.signal), sig as usize);
            let _ = signal_hook::flag::register(sig, Arc::clone(&it.stop));
        }
        it
    }

    /// Runs `op` with SIGINT and SIGTERM noted in the returned flags instead
    /// of acting, and leaves the signals' dispositions as they were: for an
    /// operation (the pull of `vigil run`) that a longer-running part of the
    /// same process follows, whose signals must behave as before.
    ///
    /// The two signals are blocked in this thread (and so in the threads
    /// `op` starts) and read by a watcher thread from a signalfd; the
    /// previous mask comes back afterwards. A signal arriving between the
    /// watcher's end and that is delivered then, as if `op` had finished
    /// first. Call [`Interrupt::exit_as_signalled`] after `during` returned
    /// (inside `op` the signal it raises would stay blocked).
    ///
    /// The watcher also waits on a pipe that closes when `op` returns, so
    /// it ends at once: an earlier watcher polled with a 100 ms timeout
    /// and every `vigil run` waited up to that long to join it.
    pub fn during<T>(op: impl FnOnce(&Interrupt) -> T) -> T {
        use nix::sys::signal::{SigSet, SigmaskHow, Signal};
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        set.add(Signal::SIGTERM);
        let mut old = SigSet::empty();
        // Fails only for an invalid `how`.
        let _ =
            nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old));
        let it = Interrupt::default();
        let watcher = watch_signals(&set, &it);
        let result = op(&it);
        // Closing the pipe's write end wakes the watcher, which then ends.
        if let Some((handle, wake)) = watcher {
            drop(wake);
            let _ = handle.join();
        }
        let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
        result
    }

    /// Has a signal asked the operation to stop?
    pub fn requested(&self) -> bool {
        self.signal.load(Ordering::SeqCst) != 0
    }

    /// The stop flag: set by a signal, or by [`Interrupt::stop`].
    pub fn stop_flag(&self) -> &AtomicBool {
        &self.stop
    }

    /// Ask the operation to stop (not a signal: `requested` stays false).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// After the cleanup: if a signal arrived, end the process by it (its
    /// default action), so the caller sees what killing Podman shows (a
    /// shell's 130 for SIGINT). Returns when no signal arrived.
    pub fn exit_as_signalled(&self) {
        let sig = self.signal.load(Ordering::SeqCst);
        if sig != 0 {
            // Fails only for a signal whose default is not to terminate,
            // which SIGINT and SIGTERM are not; then exit as a shell would.
            let _ = signal_hook::low_level::emulate_default_handler(sig as i32);
            std::process::exit(128 + sig as i32);
        }
    }
}

/// Start the thread of [`Interrupt::during`]: it reads the blocked signals
/// from a signalfd into `it`'s flags until the pipe it also polls is closed.
/// Returns its handle and the write end of that pipe (drop it to end the
/// thread); None when the signalfd or the pipe cannot be made (no fds left):
/// the signals then stay blocked until `op` returns and act afterwards, with
/// their usual effect.
fn watch_signals(
    set: &nix::sys::signal::SigSet,
    it: &Interrupt,
) -> Option<(std::thread::JoinHandle<()>, std::os::fd::OwnedFd)> {
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let made = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .and_then(|fd| Ok((fd, nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)));
    let (sigfd, (wake_r, wake_w)) = match made {
        Ok(m) => m,
        Err(e) => {
            log::warn!("watching for SIGINT/SIGTERM: {e}; they act once the operation ends");
            return None;
        }
    };
    let it = it.clone();
    let handle = std::thread::spawn(move || {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        loop {
            let (signalled, woken) = {
                let mut fds = [
                    PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
                    PollFd::new(wake_r.as_fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => return,
                }
                let ready = |f: &PollFd<'_>| !f.revents().unwrap_or(PollFlags::empty()).is_empty();
                (ready(&fds[0]), ready(&fds[1]))
            };
            if signalled {
                while let Ok(Some(info)) = sigfd.read_signal() {
                    it.signal.store(info.ssi_signo as usize, Ordering::SeqCst);
                    it.stop.store(true, Ordering::SeqCst);
                }
            }
            if woken {
                return;
            }
        }
    });
    Some((handle, wake_w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_without_a_signal_is_not_a_request() {
        let it = Interrupt::default();
        it.stop();
        assert!(it.stop_flag().load(Ordering::SeqCst));
        assert!(!it.requested());
        it.exit_as_signalled(); // returns: no signal arrived
    }
}
