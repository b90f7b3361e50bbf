//! [`Ctl`]: the monitor's `ctl` FIFO (terminal resize, log reopen;
//! shared/spec/conmon-interface.md §4.3).

use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::error::{Error, Result};
use super::sys;
use crate::proto::ctl::{encode_ctl, CtlMessage};

/// Name of the control FIFO in the bundle.
pub const CTL_FIFO: &str = "ctl";

/// The write end of `<bundle>/ctl`, opened `O_WRONLY|O_NONBLOCK` like Podman.
///
/// ```no_run
/// use vigil::client::Ctl;
/// let ctl = Ctl::open("/run/ctr/bundle".as_ref())?;
/// ctl.resize(24, 80)?;
/// ctl.reopen_logs()?;
/// # Ok::<(), vigil::client::Error>(())
/// ```
pub struct Ctl {
    fd: OwnedFd,
}

impl Ctl {
    /// Open `<bundle>/ctl`; fails with ENXIO when no monitor is reading it.
    pub fn open(bundle: &Path) -> Result<Ctl> {
        let path = bundle.join(CTL_FIFO);
        let context = || format!("opening {}", path.display());
        // Non-blocking: opening a FIFO nobody reads fails (ENXIO) instead of hanging.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| Error::io(context(), e))?;
        Ok(Ctl {
            fd: OwnedFd::from(file),
        })
    }

    /// Set the container's terminal size (rows, columns; 0..=1000 each).
    pub fn resize(&self, height: u16, width: u16) -> Result<()> {
        self.send(CtlMessage::Resize { height, width })
    }

    /// Ask the monitor to reopen (truncate or rotate) the k8s log file.
    pub fn reopen_logs(&self) -> Result<()> {
        self.send(CtlMessage::ReopenLogs)
    }

    /// Ask the monitor to run the container's healthcheck now (vigil
    /// extension); the result appears in the health log
    /// ([`proto::health`](crate::proto::health)).
    pub fn request_healthcheck(&self) -> Result<()> {
        self.send(CtlMessage::HealthCheck)
    }

    /// Send one message as a single write (atomic: far below `PIPE_BUF`).
    pub fn send(&self, msg: CtlMessage) -> Result<()> {
        let line = encode_ctl(msg);
        let n =
            sys::write(&self.fd, line.as_bytes()).map_err(|e| Error::io("writing to ctl", e))?;
        if n != line.len() {
            return Err(Error::io(
                "writing to ctl",
                std::io::Error::from(std::io::ErrorKind::WriteZero),
            ));
        }
        Ok(())
    }
}
