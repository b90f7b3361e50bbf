//! [`Attach`]: a client of the monitor's attach socket (`<bundle>/attach`,
//! SOCK_SEQPACKET; shared/spec/conmon-interface.md §5).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Instant;

use super::error::{Error, Result};
use super::sys;
use crate::proto::attach::{decode_frame, Stream, MAX_INPUT, MAX_PAYLOAD};

/// Name of the attach socket in the bundle (with `--full-attach`).
pub const ATTACH_SOCKET: &str = "attach";

/// A connection to the attach socket: framed output in, raw stdin out.
///
/// ```no_run
/// use vigil::client::Attach;
/// use vigil::proto::attach::Stream;
///
/// let mut attach = Attach::connect("/run/ctr/bundle".as_ref())?;
/// attach.write_stdin(b"hello\n")?;
/// attach.close_stdin()?;
/// while let Some((stream, bytes)) = attach.recv()? {
///     match stream {
///         Stream::Stdout => print!("{}", String::from_utf8_lossy(bytes)),
///         Stream::Stderr => eprint!("{}", String::from_utf8_lossy(bytes)),
///     }
/// }
/// # Ok::<(), vigil::client::Error>(())
/// ```
pub struct Attach {
    sock: OwnedFd,
    buf: Box<[u8; MAX_PAYLOAD + 1]>,
}

/// The input half of a [`split`](Attach::split) connection.
pub struct AttachWriter {
    sock: OwnedFd,
}

impl Attach {
    /// Connect to `<bundle>/attach` (through `/proc/self/fd`, so long bundle paths work).
    pub fn connect(bundle: &Path) -> Result<Attach> {
        let sock = sys::connect_seqpacket_in(bundle, ATTACH_SOCKET).map_err(|e| {
            Error::io(
                format!("connecting to {}/{ATTACH_SOCKET}", bundle.display()),
                e,
            )
        })?;
        Ok(Attach {
            sock,
            buf: Box::new([0; MAX_PAYLOAD + 1]),
        })
    }

    /// The next output chunk; `None` once the monitor closed the connection
    /// (the container exited). Packets with an unknown stream id are skipped.
    pub fn recv(&mut self) -> Result<Option<(Stream, &[u8])>> {
        self.recv_until(None)
    }

    /// Like [`recv`](Self::recv) with a deadline: [`Error::Timeout`] when it passes.
    pub fn recv_until(&mut self, deadline: Option<Instant>) -> Result<Option<(Stream, &[u8])>> {
        let fd = self.sock.as_raw_fd();
        let (stream, n) = loop {
            if !sys::wait_readable(&self.sock, deadline)
                .map_err(|e| Error::io("waiting on the attach socket", e))?
            {
                return Err(Error::Timeout("attach output".into()));
            }
            let n = match sys::recv(fd, &mut self.buf[..]) {
                Ok(n) => n,
                Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => 0,
                Err(e) => return Err(Error::io("reading the attach socket", e)),
            };
            if n == 0 {
                return Ok(None);
            }
            if let Some((stream, _)) = decode_frame(&self.buf[..n]) {
                break (stream, n);
            }
        };
        Ok(Some((stream, &self.buf[1..n])))
    }

    /// Send bytes to the container's stdin (split into packets the monitor reads whole).
    pub fn write_stdin(&self, bytes: &[u8]) -> Result<()> {
        write_packets(&self.sock, bytes)
    }

    /// End of input: `shutdown(SHUT_WR)`. Output keeps flowing; the monitor
    /// closes the container's stdin unless it runs with `--leave-stdin-open`.
    pub fn close_stdin(&self) -> Result<()> {
        sys::shutdown_write(self.sock.as_raw_fd()).map_err(|e| Error::io("closing attach input", e))
    }

    /// Split into this reader and a writer usable from another thread.
    pub fn split(self) -> Result<(Attach, AttachWriter)> {
        let dup = self
            .sock
            .try_clone()
            .map_err(|e| Error::io("duplicating the attach socket", e))?;
        Ok((self, AttachWriter { sock: dup }))
    }
}

impl AttachWriter {
    /// Send bytes to the container's stdin.
    pub fn write_stdin(&self, bytes: &[u8]) -> Result<()> {
        write_packets(&self.sock, bytes)
    }

    /// End of input (`shutdown(SHUT_WR)` on the shared socket).
    pub fn close_stdin(&self) -> Result<()> {
        sys::shutdown_write(self.sock.as_raw_fd()).map_err(|e| Error::io("closing attach input", e))
    }
}

fn write_packets(sock: &OwnedFd, bytes: &[u8]) -> Result<()> {
    for chunk in bytes.chunks(MAX_INPUT) {
        let n = sys::send(sock.as_raw_fd(), chunk)
            .map_err(|e| Error::io("writing to the attach socket", e))?;
        if n != chunk.len() {
            return Err(Error::io(
                "writing to the attach socket",
                io::Error::from(io::ErrorKind::WriteZero),
            ));
        }
    }
    Ok(())
}
