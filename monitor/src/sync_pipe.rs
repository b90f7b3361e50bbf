//! The parent pipes: `_OCI_SYNCPIPE` (pid, errors, exec status) and
//! `_OCI_ATTACHPIPE` (exec attach readiness). One JSON line per message.

use std::os::fd::{AsRawFd, OwnedFd};
use vigil::proto::sync::{encode, SyncKey};

pub struct SyncPipe {
    fd: Option<OwnedFd>,
    key: SyncKey,
    buf: Vec<u8>,
}

impl SyncPipe {
    pub fn new(fd: Option<OwnedFd>, key: SyncKey) -> SyncPipe {
        SyncPipe {
            fd,
            key,
            buf: Vec::with_capacity(256),
        }
    }

    pub fn raw_fd(&self) -> Option<i32> {
        self.fd.as_ref().map(|f| f.as_raw_fd())
    }

    /// Send `{"<key>": value[, "message": msg]}`. A reader that went away
    /// (EPIPE) silently disables the pipe, as in conmon >= 2.1.8.
    pub fn send(&mut self, value: i64, message: Option<&[u8]>) {
        let Some(fd) = &self.fd else { return };
        encode(self.key, value, message, &mut self.buf);
        match crate::fds::write_all(fd, &self.buf) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => self.fd = None,
            Err(e) => {
                crate::warn_errno!(
                    e.raw_os_error().unwrap_or(libc::EIO),
                    "Unable to send container stderr message to parent"
                );
                self.fd = None;
            }
        }
    }
}
