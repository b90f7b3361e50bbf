//! Becoming the long-lived monitor: oom_score_adj, the start pipe, the single
//! fork whose parent writes the conmon pidfile, setsid, subreaper, and moving
//! our stdio to /dev/null.

use crate::diag::Fatal;
use crate::fds;
use nix::unistd::ForkResult;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

const OOM_SCORE_ADJ: &str = "/proc/self/oom_score_adj";

/// Save our oom_score_adj and make the monitor the last thing the OOM killer
/// picks. Returns the saved value for the runtime and exit-command children.
pub fn protect_from_oom() -> Vec<u8> {
    let mut saved = Vec::new();
    if let Ok(mut f) = File::open(OOM_SCORE_ADJ) {
        let _ = f.read_to_end(&mut saved);
    }
    while saved.last().is_some_and(|b| b.is_ascii_whitespace()) {
        saved.pop();
    }
    let res = std::fs::OpenOptions::new()
        .write(true)
        .open(OOM_SCORE_ADJ)
        .and_then(|mut f| f.write_all(b"-1000"));
    if let Err(e) = res {
        crate::debug!(
            "failed to write to {}: {}",
            OOM_SCORE_ADJ,
            crate::diag::strerror(e.raw_os_error().unwrap_or(0))
        );
    }
    saved
}

/// Write a saved oom_score_adj back (in a freshly forked child: raw syscalls only).
pub fn restore_oom_score_adj(saved: &[u8]) {
    if saved.is_empty() {
        return;
    }
    // SAFETY: a NUL-terminated constant path; the buffer is valid; raw
    // syscalls are async-signal-safe after fork.
    unsafe {
        let fd = libc::open(
            b"/proc/self/oom_score_adj\0".as_ptr().cast(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        );
        if fd >= 0 {
            libc::write(fd, saved.as_ptr().cast(), saved.len());
            libc::close(fd);
        }
    }
}

/// One blocking read on the start pipe (content ignored, EOF fine). Not
/// inlined: its 8 KiB buffer would otherwise stay in the caller's frame, which
/// lives (and is resident) as long as the monitor.
#[inline(never)]
pub fn read_start_pipe(fd: &OwnedFd) -> Result<(), Fatal> {
    let mut buf = [0u8; 8192];
    fds::read(fd, &mut buf).map_err(|e| Fatal::from_io("start-pipe read failed", &e))?;
    Ok(())
}

/// Fork; the parent writes the conmon pidfile and exits 0, the child returns.
pub fn daemonize(conmon_pidfile: Option<&str>) -> Result<(), Fatal> {
    // SAFETY: the monitor is single-threaded here (no thread has been
    // started), so the child may run any code after fork.
    let pid = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => return Ok(()),
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return Err(Fatal::from_nix("Failed to fork the create command", e)),
    };
    {
        if let Some(path) = conmon_pidfile {
            if let Err(e) =
                vigil::proto::exit::write_atomic(Path::new(path), pid.to_string().as_bytes())
            {
                let errno = e.raw_os_error().unwrap_or(libc::EIO);
                crate::diag::emit(
                    crate::diag::Kind::Fatal,
                    &format!("Failed to write conmon pidfile: Failed to create file \u{201c}{path}\u{201d}: {}", crate::diag::strerror(errno)),
                    Some(errno),
                );
                exit_now(1);
            }
        }
        // The parent's job is done; the child owns all state.
        exit_now(0);
    }
}

/// `_exit`: leave without running exit handlers or flushing anything the
/// other process of a fork still owns.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}

/// /dev/null opened for reading and writing (kept for the monitor's lifetime).
pub struct DevNull {
    pub read: OwnedFd,
    pub write: OwnedFd,
}

impl DevNull {
    pub fn open() -> Result<DevNull, Fatal> {
        let open = |write: bool| {
            std::fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .open("/dev/null")
                .map(OwnedFd::from)
                .map_err(|e| Fatal::from_io("Failed to open /dev/null", &e))
        };
        Ok(DevNull {
            read: open(false)?,
            write: open(true)?,
        })
    }

    /// Point our fds 0, 1, 2 at /dev/null: the engine's stdio must not be held.
    pub fn redirect_stdio(&self) -> Result<(), Fatal> {
        fds::dup2(&self.read, fds::Std::In)
            .map_err(|e| Fatal::from_io("Failed to dup over stdin", &e))?;
        fds::dup2(&self.write, fds::Std::Out)
            .map_err(|e| Fatal::from_io("Failed to dup over stdout", &e))?;
        fds::dup2(&self.write, fds::Std::Err)
            .map_err(|e| Fatal::from_io("Failed to dup over stderr", &e))?;
        Ok(())
    }
}

/// New session, and become the subreaper of the container's processes.
pub fn become_session_and_subreaper() -> Result<(), Fatal> {
    // Already a session leader (--sync without daemonizing): nothing to do.
    let _ = nix::unistd::setsid();
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| Fatal::from_nix("Failed to set as subreaper", e))
}
