//! sd-notify relay (`--sdnotify-socket`, conmon-interface §10.3): a datagram
//! socket at `<bundle>/notify/notify.sock` for the container; allowed lines
//! are forwarded to the host's notify socket.

use crate::attach::bind_unix;
use crate::diag::Fatal;
use nix::sys::socket::{
    recv, sendto, socket, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr,
};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
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
    socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Fatal::from_nix("Failed to create notify socket", e))
}

impl NotifyRelay {
    pub fn new(host_path: &str, bundle: &Path) -> Result<NotifyRelay, Fatal> {
        let host = dgram_socket()?;
        let container = dgram_socket()?;
        let path = bundle.join("notify").join("notify.sock");
        let _ = std::fs::remove_file(&path);
        bind_unix(&container, path.as_os_str().as_bytes())?;
        // The container's processes run as any user.
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777));
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
            let n = match recv(self.container.as_raw_fd(), &mut self.buf, MsgFlags::empty()) {
                Ok(n) if n > 0 => n,
                _ => return,
            };
            filter(&self.buf[..n], &mut self.out);
            if self.out.is_empty() {
                continue;
            }
            // The path was truncated to fit (107 bytes).
            let sent = UnixAddr::new(self.host_path.as_slice()).and_then(|addr| {
                sendto(
                    self.host.as_raw_fd(),
                    &self.out,
                    &addr,
                    MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
                )
            });
            if let Err(e) = sent {
                crate::warn_errno!(e as i32, "Failed to send notification to host");
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
