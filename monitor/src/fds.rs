//! File descriptor helpers: the fds inherited at start-up, `_OCI_*` pipe fds
//! from the environment, and small wrappers around fcntl/pipe2.

use crate::diag::Fatal;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Open /dev/null on any of fds 0-2 that is closed, so that no file the
/// monitor opens lands there (what Rust's runtime does before `main`, which
/// the monitor's C entry point skips).
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
    // SAFETY: plain fcntl on an fd number; errors are reported.
    let r = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we just opened.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: plain fcntl calls on an fd number; errors are reported.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags == -1 {
            return Err(io::Error::last_os_error());
        }
        let new = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        if new != flags && libc::fcntl(fd, libc::F_SETFL, new) == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `pipe2(O_CLOEXEC)`: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds is a valid 2-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned two fresh fds that nobody else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
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

/// Take ownership of an fd number that nothing else in this process owns.
///
/// # Safety
/// `fd` must be open and not owned by any other object.
pub unsafe fn own(fd: RawFd) -> OwnedFd {
    OwnedFd::from_raw_fd(fd)
}

/// `read` that retries on EINTR.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Write all of `buf`, retrying on EINTR and waiting (poll) on EAGAIN.
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf = &buf[n as usize..];
            continue;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EAGAIN) | Some(libc::ENOBUFS) => wait_writable(fd),
            _ => return Err(e),
        }
    }
    Ok(())
}

fn wait_writable(fd: RawFd) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, 100) };
}

/// Close an fd number we do not own as an object (inherited fds).
pub fn close_raw(fd: RawFd) {
    // SAFETY: only called for inherited fds that no OwnedFd wraps.
    unsafe { libc::close(fd) };
}

/// `dup2` that keeps the target inheritable.
pub fn dup2(src: &impl AsRawFd, dst: RawFd) -> io::Result<()> {
    // SAFETY: plain dup2 on fd numbers.
    if unsafe { libc::dup2(src.as_raw_fd(), dst) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
