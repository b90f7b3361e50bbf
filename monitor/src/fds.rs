//! File descriptor helpers: the fds inherited at start-up, `_OCI_*` pipe fds
//! from the environment, and small wrappers around fcntl/pipe2.

use crate::diag::Fatal;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Open /dev/null on any of fds 0-2 that is closed, so that no file the
/// monitor opens lands there (what Rust's runtime does before `main`, which
/// the monitor's C entry point skips). Only that entry point calls it, and
/// it is not built for unit tests.
#[cfg(not(test))]
pub fn sanitize_standard_fds() {
    let mut pfds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: three valid pollfds; zero timeout.
    let polled = unsafe { libc::poll(pfds.as_mut_ptr(), 3, 0) } != -1;
    for p in pfds {
        let closed = if polled {
            p.revents & libc::POLLNVAL != 0
        } else {
            !is_open(p.fd)
        };
        if closed {
            // The lowest free fd, i.e. this one; inherited across exec like the original.
            let opened = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map(std::os::fd::IntoRawFd::into_raw_fd);
            if opened.ok() != Some(p.fd) || clear_cloexec(p.fd).is_err() {
                // As Rust's runtime: without its standard fds the process cannot go on.
                std::process::abort();
            }
        }
    }
}

/// fds >= 3 open when the monitor started, in ascending order. They are handed
/// to the runtime untouched (Podman's `--preserve-fds`, port reservations) and
/// closed only at shutdown.
pub fn inherited_fds() -> Vec<RawFd> {
    let mut fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|&fd| fd >= 3)
            .collect(),
        Err(_) => Vec::new(),
    };
    // The directory's own fd was in the listing and is closed now.
    fds.retain(|&fd| is_open(fd));
    fds.sort_unstable();
    fds
}

pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD on any integer is harmless.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

pub fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain fcntl on an fd number (an inherited fd named by the
    // environment, not owned by any object here); errors are reported.
    let r = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(test))]
fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd number we just opened (see sanitize_standard_fds).
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn set_nonblocking(fd: impl AsFd, on: bool) -> io::Result<()> {
    let fd = fd.as_fd();
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    let new = if on {
        flags | OFlag::O_NONBLOCK
    } else {
        flags & !OFlag::O_NONBLOCK
    };
    if new != flags {
        fcntl(fd, FcntlArg::F_SETFL(new))?;
    }
    Ok(())
}

/// `pipe2(O_CLOEXEC)`: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(OFlag::O_CLOEXEC)?)
}

/// Read an fd number from `var` as conmon does: the whole value must be a
/// base-10 integer (empty means 0), then the fd is made close-on-exec.
/// Returns `None` when the variable is unset.
pub fn fd_from_env(var: &str) -> Result<Option<RawFd>, Fatal> {
    let Ok(val) = std::env::var(var) else {
        return Ok(None);
    };
    let fd: RawFd = if val.is_empty() {
        0
    } else {
        val.parse().map_err(|_| Fatal {
            text: format!("unable to parse {var}"),
            errno: Some(libc::EINVAL),
        })?
    };
    set_cloexec(fd).map_err(|e| Fatal::from_io(format!("unable to make {var} CLOEXEC"), &e))?;
    Ok(Some(fd))
}

/// Take ownership of an fd number handed to us by the engine (`_OCI_*`).
/// Only for fds from [`fd_from_env`], each taken at most once.
pub fn own_inherited(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` came from fd_from_env: set_cloexec succeeded on it, so it
    // is open; it was inherited at exec and no object in this process wraps
    // it (the caller takes each variable's fd once).
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `read` that retries on EINTR.
pub fn read(fd: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    let fd = fd.as_fd();
    loop {
        match nix::unistd::read(fd, buf) {
            Ok(n) => return Ok(n),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Write all of `buf`, retrying on EINTR and waiting (poll) on EAGAIN.
pub fn write_all(fd: impl AsFd, mut buf: &[u8]) -> io::Result<()> {
    let fd = fd.as_fd();
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN | Errno::ENOBUFS) => wait_writable(fd, 100),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Wait up to `ms` for `fd` to take more (or to fail).
pub fn wait_writable(fd: BorrowedFd<'_>, ms: u16) {
    let mut p = [PollFd::new(fd, PollFlags::POLLOUT)];
    let _ = poll(&mut p, PollTimeout::from(ms));
}

/// Wait up to `ms` for `fd` to become readable.
pub fn wait_readable(fd: BorrowedFd<'_>, ms: u16) -> bool {
    let mut p = [PollFd::new(fd, PollFlags::POLLIN)];
    matches!(poll(&mut p, PollTimeout::from(ms)), Ok(n) if n > 0)
}

/// Close an fd number we do not own as an object (inherited fds).
pub fn close_raw(fd: RawFd) {
    // SAFETY: only called for inherited fds that no OwnedFd wraps.
    unsafe { libc::close(fd) };
}

/// Standard fds, for [`dup2`].
#[derive(Clone, Copy)]
pub enum Std {
    In,
    Out,
    Err,
}

/// `dup2` onto a standard fd (which stays inheritable).
pub fn dup2(src: impl AsFd, dst: Std) -> io::Result<()> {
    let r = match dst {
        Std::In => nix::unistd::dup2_stdin(src),
        Std::Out => nix::unistd::dup2_stdout(src),
        Std::Err => nix::unistd::dup2_stderr(src),
    };
    Ok(r?)
}
