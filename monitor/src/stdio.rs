//! The container's stdio: pipes created before the runtime runs, and the
//! read side the event loop drains into the log sinks.

use crate::diag::Fatal;
use crate::fds;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use vigil::proto::attach::Stream;

/// Kernel pipe buffer we ask for on output pipes: fewer wake-ups when the
/// container writes fast (the kernel may cap it; failure is harmless).
const PIPE_SIZE: libc::c_int = 1024 * 1024;

/// Bytes read from a container stream per `read`: the whole pipe (see
/// [`PIPE_SIZE`]). When a fast writer keeps the pipe full, every read wakes
/// it, the single largest kernel cost on the log path (perf: ~11 % of the
/// monitor's CPU in the pipe's wake-up at 64 KiB reads), so fewer, larger
/// reads cut that cost; a slow writer's reads return what is there. k8s-file records
/// stay at most [`crate::logging::k8s_file::MAX_RECORD`] whatever this is.
pub const READ_SIZE: usize = 1024 * 1024;

/// Pipes for a non-terminal container. The `child_*` ends go to the runtime.
pub struct StdioPipes {
    pub stdin_write: Option<OwnedFd>,
    pub child_stdin: Option<OwnedFd>,
    pub stdout_read: Option<OwnedFd>,
    pub child_stdout: Option<OwnedFd>,
    pub stderr_read: OwnedFd,
    pub child_stderr: OwnedFd,
}

impl StdioPipes {
    /// `stdin`: create a stdin pipe; `stdout`: create a stdout pipe (not with a terminal).
    pub fn create(stdin: bool, stdout: bool) -> Result<StdioPipes, Fatal> {
        let mk = |what: &str| {
            fds::pipe()
                .map_err(|e| Fatal::from_io(format!("Failed to create !terminal {what} pipe"), &e))
        };
        let (stdin_write, child_stdin) = if stdin {
            let (r, w) = mk("stdin")?;
            fds::set_nonblocking(&w, true)
                .map_err(|e| Fatal::from_io("Failed to set stdin non-blocking", &e))?;
            (Some(w), Some(r))
        } else {
            (None, None)
        };
        let (stdout_read, child_stdout) = if stdout {
            let (r, w) = mk("stdout")?;
            grow(&r);
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        let (stderr_read, child_stderr) = mk("stderr")?;
        grow(&stderr_read);
        Ok(StdioPipes {
            stdin_write,
            child_stdin,
            stdout_read,
            child_stdout,
            stderr_read,
            child_stderr,
        })
    }
}

fn grow(fd: &OwnedFd) {
    // Failure only means a smaller buffer.
    let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
}

/// Result of reading a container stream.
pub enum ReadOutcome {
    /// Bytes were read into the buffer.
    Data(usize),
    /// Nothing available now.
    WouldBlock,
    /// End of stream (EOF, or EIO from a terminal whose slave closed).
    Eof,
}

/// One output stream of the container (a pipe read end or the pty master).
pub struct OutputStream {
    pub fd: OwnedFd,
    pub stream: Stream,
}

impl OutputStream {
    pub fn new(fd: OwnedFd, stream: Stream) -> Result<OutputStream, Fatal> {
        fds::set_nonblocking(&fd, true)
            .map_err(|e| Fatal::from_io("Failed to set fd non-blocking", &e))?;
        Ok(OutputStream { fd, stream })
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn read(&self, buf: &mut [u8]) -> ReadOutcome {
        match fds::read(&self.fd, buf) {
            Ok(0) => ReadOutcome::Eof,
            Ok(n) => ReadOutcome::Data(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => ReadOutcome::WouldBlock,
            Err(e) if e.raw_os_error() == Some(libc::EIO) => ReadOutcome::Eof,
            Err(e) => {
                crate::warn!(
                    "stdio_input read failed: {}",
                    crate::diag::strerror(e.raw_os_error().unwrap_or(0))
                );
                ReadOutcome::Eof
            }
        }
    }
}
