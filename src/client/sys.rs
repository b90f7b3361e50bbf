//! Thin wrappers over the few syscalls the client needs (nix underneath).

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    connect, socket, socketpair, AddressFamily, MsgFlags, Shutdown, SockFlag, SockType, UnixAddr,
};
use nix::sys::stat::Mode;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// Retry `f` while it fails with EINTR.
fn retry<T>(mut f: impl FnMut() -> nix::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(Errno::EINTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// A connected `AF_UNIX`/`SOCK_SEQPACKET` pair, both ends close-on-exec.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?)
}

/// Duplicate `fd` (a descriptor number the caller passes through to the
/// monitor) to the lowest free number >= `min`, close-on-exec.
pub fn dup_at_least(fd: RawFd, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: `fd` is a descriptor the caller asked us to hand to the monitor,
    // open for the duration of this call; F_DUPFD_CLOEXEC returns a fresh
    // descriptor that nothing else owns.
    unsafe {
        let new = fcntl(BorrowedFd::borrow_raw(fd), FcntlArg::F_DUPFD_CLOEXEC(min))?;
        Ok(OwnedFd::from_raw_fd(new))
    }
}

/// Wait until `fd` is readable (or hung up) or the deadline passes; `Ok(false)` on timeout.
pub fn wait_readable(fd: impl AsFd, deadline: Option<Instant>) -> io::Result<bool> {
    let fd = fd.as_fd();
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so we never spin with a zero timeout before the deadline.
                let ms = left.as_millis().min(i32::MAX as u128 - 1) as i32
                    + i32::from(left.subsec_nanos() % 1_000_000 != 0);
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut pfd = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut pfd, timeout) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(n) if n > 0 => return Ok(true),
            Ok(_) => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
    }
}

/// One `recv` (a whole packet on SEQPACKET); 0 means end of stream.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    retry(|| nix::sys::socket::recv(fd, buf, MsgFlags::empty()))
}

/// One `send` without SIGPIPE (a whole packet on SEQPACKET).
pub fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    retry(|| nix::sys::socket::send(fd, buf, MsgFlags::MSG_NOSIGNAL))
}

/// `write` on any fd, retrying EINTR.
pub fn write(fd: impl AsFd, buf: &[u8]) -> io::Result<usize> {
    let fd = fd.as_fd();
    retry(|| nix::unistd::write(fd, buf))
}

/// Shut down the writing side.
pub fn shutdown_write(fd: RawFd) -> io::Result<()> {
    Ok(nix::sys::socket::shutdown(fd, Shutdown::Write)?)
}

/// Connect a `SOCK_SEQPACKET` socket to `<dir>/<name>` through
/// `/proc/self/fd/<dirfd>/<name>`, so long directory paths work (Podman does the same).
pub fn connect_seqpacket_in(dir: &Path, name: &str) -> io::Result<OwnedFd> {
    let dirfd = nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_DIRECTORY,
        Mode::empty(),
    )?;
    let path = format!("/proc/self/fd/{}/{}", dirfd.as_raw_fd(), name);
    let sock = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    if path.len() >= 108 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path too long",
        ));
    }
    let addr = UnixAddr::new(path.as_str())?;
    retry(|| connect(sock.as_raw_fd(), &addr))?;
    Ok(sock)
}

/// Read whatever is available on a non-blocking-capable fd within `wait`.
pub fn read_available(fd: impl AsFd, wait: Duration) -> Vec<u8> {
    let fd = fd.as_fd();
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < 64 * 1024 {
        match wait_readable(fd, Some(deadline)) {
            Ok(true) => {}
            _ => break,
        }
        match nix::unistd::read(fd, &mut buf) {
            Ok(n) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    out
}

/// True if a process with this pid exists (zombies included).
pub fn pid_exists(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // Signal 0 only checks for existence.
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(e) => e == Errno::EPERM,
    }
}
