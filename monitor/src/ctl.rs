//! The `ctl` and `winsz` FIFOs in the bundle (conmon-interface §4.3-4.4).
//!
//! Both are opened read/non-blocking plus a dummy write end, so the reader
//! never sees EOF when an engine closes its side. Each FIFO has its own
//! 200-byte line buffer. A resize is applied to the pty directly (conmon
//! loops it through `winsz`, which can block when nothing reads it); a resize
//! that arrives before the pty is kept and applied when it arrives.

use crate::diag::Fatal;
use nix::errno::Errno;
use nix::sys::stat::Mode;
use nix::unistd::{mkfifo, unlink};
use std::ffi::CString;
use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use vigil::proto::ctl::{parse_ctl, parse_winsz, CtlMessage, LineBuffer, Overflow};

/// One FIFO: its read end, the dummy write end, its line buffer.
pub struct Fifo {
    read: OwnedFd,
    _write: OwnedFd,
    lines: LineBuffer,
}

impl Fifo {
    fn create(path: &Path, what: &str) -> Result<Fifo, Fatal> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| Fatal::new("invalid fifo path"))?;
        let mode = Mode::from_bits_truncate(0o660);
        if mkfifo(c.as_c_str(), mode) == Err(Errno::EEXIST) {
            let _ = unlink(c.as_c_str());
            let _ = mkfifo(c.as_c_str(), mode);
        }
        // O_NOFOLLOW: never follow a symlink planted where the FIFO should be.
        let open = |write: bool| {
            let mut o = OpenOptions::new();
            o.custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOFOLLOW);
            if write {
                o.write(true);
            } else {
                o.read(true);
            }
            o.open(path).map(OwnedFd::from)
        };
        let read = open(false)
            .map_err(|e| Fatal::from_io(format!("Failed to open {what} fifo read half"), &e))?;
        let write = open(true)
            .map_err(|e| Fatal::from_io(format!("Failed to open {what} fifo write half"), &e))?;
        Ok(Fifo {
            read,
            _write: write,
            lines: LineBuffer::default(),
        })
    }

    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Read everything available, calling `on_line` per complete line.
    fn drain(&mut self, mut on_line: impl FnMut(&[u8])) {
        loop {
            let space = self.lines.space();
            let n = match nix::unistd::read(&self.read, space) {
                Ok(n) if n > 0 => n,
                _ => return,
            };
            if self.lines.commit(n, &mut on_line) == Overflow::NoNewline {
                crate::warn!("Could not find newline in entire buffer");
            }
        }
    }
}

/// What a `ctl` read asks the monitor to do.
#[derive(Debug, Default)]
pub struct CtlActions {
    pub resize: Option<(u16, u16)>,
    pub reopen_logs: bool,
    /// Run a healthcheck now (vigil extension).
    pub healthcheck: bool,
}

pub struct CtlFifos {
    pub ctl: Fifo,
    pub winsz: Fifo,
}

impl CtlFifos {
    pub fn create(bundle: &Path) -> Result<CtlFifos, Fatal> {
        let ctl = Fifo::create(&bundle.join("ctl"), "terminal control")?;
        let winsz = Fifo::create(&bundle.join("winsz"), "window resize control")?;
        Ok(CtlFifos { ctl, winsz })
    }

    /// Handle readable `ctl`.
    pub fn read_ctl(&mut self) -> CtlActions {
        let mut act = CtlActions::default();
        self.ctl.drain(|line| match parse_ctl(line) {
            Ok(CtlMessage::Resize { height, width }) => act.resize = Some((height, width)),
            Ok(CtlMessage::ReopenLogs) => act.reopen_logs = true,
            Ok(CtlMessage::HealthCheck) => act.healthcheck = true,
            Err(e) => crate::warn!("{e}"),
        });
        act
    }

    /// Handle readable `winsz`: the last valid size.
    pub fn read_winsz(&mut self) -> Option<(u16, u16)> {
        let mut size = None;
        self.winsz.drain(|line| match parse_winsz(line) {
            Ok(s) => size = Some(s),
            Err(e) => crate::warn!("{e}"),
        });
        size
    }
}

/// Set the pty size (rows = height, cols = width).
pub fn resize_pty(master: RawFd, height: u16, width: u16) {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ with a valid winsize.
    if unsafe { libc::ioctl(master, libc::TIOCSWINSZ, &ws) } != 0 {
        crate::warn_errno!(
            crate::diag::last_errno(),
            "Failed to set process pty terminal size:"
        );
    }
}
