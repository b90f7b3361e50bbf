//! sd-notify relay (`--sdnotify-socket`, conmon-interface §10.3): a datagram
//! socket at `<bundle>/notify/notify.sock` for the container; allowed lines
//! are forwarded to the host's notify socket.

use crate::attach::bind_unix;
use crate::diag::Fatal;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub struct NotifyRelay {
    container: OwnedFd,
    host: OwnedFd,
    host_path: Vec<u8>,
    buf: Box<[u8]>,
    out: Vec<u8>,
}

/// Lines the relay passes on (everything else, e.g. MAINPID, is dropped).
pub fn allowed(line: &[u8]) -> bool {
    const EXACT: [&[u8]; 5] = [
        b"READY=1",
        b"RELOADING=1",
        b"STOPPING=1",
        b"WATCHDOG=1",
        b"WATCHDOG=trigger",
    ];
    const PREFIX: [&[u8]; 4] = [b"STATUS=", b"ERRNO=", b"BUSERROR=", b"MONOTONIC_USEC="];
    EXACT.contains(&line) || PREFIX.iter().any(|p| line.starts_with(p))
}

/// Filter one datagram into `out` (lines joined with `\n`, no trailing newline).
pub fn filter(datagram: &[u8], out: &mut Vec<u8>) {
    out.clear();
    for line in datagram
        .split(|&b| b == b'\n' || b == b'\r')
        .filter(|l| allowed(l))
    {
        if !out.is_empty() {
            out.push(b'\n');
        }
        out.extend_from_slice(line);
    }
}

fn dgram_socket() -> Result<OwnedFd, Fatal> {
    // SAFETY: new socket fd we own.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(Fatal::errno("Failed to create notify socket"));
    }
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl NotifyRelay {
    pub fn new(host_path: &str, bundle: &Path) -> Result<NotifyRelay, Fatal> {
        let host = dgram_socket()?;
        let container = dgram_socket()?;
        let path = bundle.join("notify").join("notify.sock");
        let _ = std::fs::remove_file(&path);
        bind_unix(&container, path.as_os_str().as_bytes())?;
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| Fatal::new("invalid notify socket path"))?;
        // SAFETY: valid path; the container's processes run as any user.
        unsafe { libc::chmod(c.as_ptr(), 0o777) };
        let mut host_path = host_path.as_bytes().to_vec();
        host_path.truncate(107);
        Ok(NotifyRelay {
            container,
            host,
            host_path,
            buf: vec![0u8; 32768].into_boxed_slice(),
            out: Vec::with_capacity(512),
        })
    }

    pub fn fd(&self) -> RawFd {
        self.container.as_raw_fd()
    }

    /// Relay every pending datagram.
    pub fn on_readable(&mut self) {
        loop {
            // SAFETY: receiving into our buffer.
            let n = unsafe {
                libc::recv(
                    self.container.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            if n <= 0 {
                return;
            }
            filter(&self.buf[..n as usize], &mut self.out);
            if self.out.is_empty() {
                continue;
            }
            // SAFETY: all-zero sockaddr_un is valid; path fits (truncated to 107).
            let sent = unsafe {
                let mut addr: libc::sockaddr_un = std::mem::zeroed();
                addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
                for (d, s) in addr.sun_path.iter_mut().zip(&self.host_path) {
                    *d = *s as libc::c_char;
                }
                libc::sendto(
                    self.host.as_raw_fd(),
                    self.out.as_ptr().cast(),
                    self.out.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    (&addr as *const libc::sockaddr_un).cast(),
                    std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
                )
            };
            if sent < 0 {
                crate::warn_errno!(
                    crate::diag::last_errno(),
                    "Failed to send notification to host"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::filter;

    #[test]
    fn filters_like_conmon() {
        let mut out = Vec::new();
        filter(
            b"FOO=1\nREADY=1\nSTATUS=hi there\nMAINPID=5\r\nWATCHDOG=1",
            &mut out,
        );
        assert_eq!(out, b"READY=1\nSTATUS=hi there\nWATCHDOG=1");
        filter(b"MAINPID=3\nREADY=10", &mut out);
        assert!(out.is_empty());
    }
}
