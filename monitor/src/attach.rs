//! The attach socket (conmon-interface §5): a SOCK_SEQPACKET listener in the
//! bundle; output is broadcast to every client as `[stream id][payload]`
//! packets, client input goes raw to the container's stdin.
//!
//! Slow clients: packets a client cannot take at once are queued for it (only
//! then is memory used). While some client has more than [`HIGH_WATER`]
//! queued, the monitor stops reading the container's output, so a slow reader
//! (a terminal, a pipe into `less`) slows the container down instead of
//! losing output, as with conmon. A client that takes nothing at all for
//! [`STUCK_AFTER`] while over the mark is dropped with a warning in the
//! monitor's log, and reading resumes: a stuck client cannot hold up the
//! container or its logs for longer than that.

use crate::diag::Fatal;
use crate::fds;
use crate::pagebuf::PageBuf;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::socket::{
    accept4, bind, listen, recv, sendmsg, shutdown, socket, AddressFamily, Backlog, MsgFlags,
    Shutdown, SockFlag, SockType, UnixAddr,
};
use nix::sys::stat::{fchmod, Mode};
use std::collections::VecDeque;
use std::ffi::CString;
use std::io;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use vigil::proto::attach::{Stream, MAX_INPUT, MAX_PAYLOAD};

/// Output queued for one client above which container output is paused.
pub const HIGH_WATER: usize = 1024 * 1024;
/// A client over [`HIGH_WATER`] that takes nothing for this long is dropped.
pub const STUCK_AFTER: std::time::Duration = std::time::Duration::from_secs(5);
/// How long shutdown waits, in total, for clients to take queued output.
pub const SHUTDOWN_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// Where the socket lives, and the symlink to remove at exit.
pub struct AttachPaths {
    /// `<parent>/attach`, unlinked at normal exit.
    pub socket: PathBuf,
    /// `<socket-dir>/<cuuid>` (untruncated), removed at exit.
    pub symlink: Option<PathBuf>,
}

/// Work out the socket's parent per §5.1; creates the `<cuuid>` symlink.
fn prepare_parent(
    bundle: &Path,
    socket_dir: &Path,
    cuuid: &str,
    full_attach: bool,
) -> Result<(PathBuf, Option<PathBuf>), Fatal> {
    if full_attach {
        return Ok((bundle.to_path_buf(), None));
    }
    let link = socket_dir.join(cuuid);
    let mut base = link.as_os_str().as_bytes().to_vec();
    // sun_path holds 108 bytes; conmon drops the last byte of a 107-byte base.
    if base.len() == 107 {
        base.pop();
    }
    let base = PathBuf::from(std::ffi::OsStr::from_bytes(&base));
    if let Err(e) = std::fs::remove_file(&base) {
        if e.kind() != io::ErrorKind::NotFound {
            return Err(Fatal::from_io(
                format!(
                    "Failed to remove existing symlink for socket directory {}",
                    base.display()
                ),
                &e,
            ));
        }
    }
    std::os::unix::fs::symlink(bundle, &base)
        .map_err(|e| Fatal::from_io("Failed to create symlink for notify socket", &e))?;
    Ok((base, Some(link)))
}

struct Client {
    fd: OwnedFd,
    /// Output packets waiting for the client (only when it is slow).
    queue: VecDeque<Box<[u8]>>,
    queued: usize,
    /// When the client last took a packet (or started having a queue).
    last_progress: std::time::Instant,
    /// Input read but not yet taken by the container's stdin.
    pending_input: Vec<u8>,
    read_closed: bool,
}

/// What the event loop must change after a client event.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClientUpdate {
    /// The client went away: deregister it.
    pub closed: bool,
    /// The client ended its input: close the container's stdin if configured.
    pub input_ended: bool,
    /// Input is waiting for the container's stdin to become writable.
    pub input_blocked: bool,
}

pub struct AttachServer {
    listener: OwnedFd,
    clients: Vec<Option<Client>>,
    pub paths: AttachPaths,
    input_buf: PageBuf,
}

impl AttachServer {
    /// Create and bind the listener (before the runtime runs).
    pub fn bind(
        bundle: &Path,
        socket_dir: &Path,
        cuuid: &str,
        full_attach: bool,
    ) -> Result<AttachServer, Fatal> {
        let (parent, symlink) = prepare_parent(bundle, socket_dir, cuuid, full_attach)?;
        let cparent = CString::new(parent.as_os_str().as_bytes())
            .map_err(|_| Fatal::new("invalid socket path"))?;
        let dirfd = nix::fcntl::open(
            cparent.as_c_str(),
            OFlag::O_PATH | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            Fatal::from_nix(
                format!("failed to open socket path parent dir {}", parent.display()),
                e,
            )
        })?;
        let socket_path = parent.join("attach");
        if let Err(e) = std::fs::remove_file(&socket_path) {
            if e.kind() != io::ErrorKind::NotFound {
                return Err(Fatal::from_io(
                    format!(
                        "Failed to remove existing socket: {}",
                        socket_path.display()
                    ),
                    &e,
                ));
            }
        }
        let short = format!("/proc/self/fd/{}/attach", dirfd.as_raw_fd());
        let listener = bind_seqpacket(&short, &socket_path)?;
        if let Err(e) = listen(&listener, Backlog::new(10).unwrap_or(Backlog::MAXCONN)) {
            return Err(Fatal::from_nix(
                format!(
                    "Failed to listen on attach socket: {}/attach",
                    parent.display()
                ),
                e,
            ));
        }
        Ok(AttachServer {
            listener,
            clients: Vec::new(),
            paths: AttachPaths {
                socket: socket_path,
                symlink,
            },
            input_buf: PageBuf::new(MAX_INPUT)
                .map_err(|e| Fatal::from_io("Failed to allocate the attach buffer", &e))?,
        })
    }

    pub fn listener_fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }

    /// Accept one pending client; returns its slot and fd.
    pub fn accept(&mut self) -> Option<(usize, RawFd)> {
        let fd = match accept4(
            &self.listener,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        ) {
            Ok(fd) => fd,
            Err(e) => {
                if e != Errno::EAGAIN && e != Errno::EINTR {
                    crate::warn_errno!(
                        e as i32,
                        "Failed to accept client connection on attach socket"
                    );
                }
                return None;
            }
        };
        let raw = fd.as_raw_fd();
        let client = Client {
            fd,
            queue: VecDeque::new(),
            queued: 0,
            last_progress: std::time::Instant::now(),
            pending_input: Vec::new(),
            read_closed: false,
        };
        let slot = match self.clients.iter().position(Option::is_none) {
            Some(i) => {
                self.clients[i] = Some(client);
                i
            }
            None => {
                self.clients.push(Some(client));
                self.clients.len() - 1
            }
        };
        Some((slot, raw))
    }

    /// Send a chunk of container output to every client, in packets of at
    /// most [`MAX_PAYLOAD`] bytes; what a client cannot take now is queued.
    /// Slots of clients that failed are pushed to `dropped`.
    pub fn broadcast(&mut self, stream: Stream, chunk: &[u8], dropped: &mut Vec<usize>) {
        let id = [stream.id()];
        for slot in (0..self.clients.len()).rev() {
            let Some(c) = self.clients[slot].as_mut() else {
                continue;
            };
            let mut failed = false;
            for payload in chunk.chunks(MAX_PAYLOAD) {
                if c.queue.is_empty() {
                    match send_packet(c.fd.as_raw_fd(), &id, payload) {
                        Ok(true) => continue,
                        Ok(false) => c.last_progress = std::time::Instant::now(),
                        Err(_) => {
                            crate::warn!("Failed to write to remote console socket");
                            failed = true;
                            break;
                        }
                    }
                }
                let mut pkt = Vec::with_capacity(payload.len() + 1);
                pkt.push(id[0]);
                pkt.extend_from_slice(payload);
                c.queued += pkt.len();
                c.queue.push_back(pkt.into_boxed_slice());
            }
            if failed {
                self.clients[slot] = None;
                dropped.push(slot);
            }
        }
    }

    /// Anyone attached (output must also go to a client).
    pub fn has_clients(&self) -> bool {
        self.clients.iter().any(Option::is_some)
    }

    /// Some client has more than [`HIGH_WATER`] queued: stop reading output.
    pub fn congested(&self) -> bool {
        self.clients.iter().flatten().any(|c| c.queued > HIGH_WATER)
    }

    /// Drop congested clients that took nothing for [`STUCK_AFTER`].
    pub fn drop_stuck(&mut self) {
        for slot in self.clients.iter_mut() {
            if let Some(c) = slot {
                if c.queued > HIGH_WATER && c.last_progress.elapsed() >= STUCK_AFTER {
                    crate::warn!(
                        "Attach client took no output for {} s with {} bytes queued: dropping it",
                        STUCK_AFTER.as_secs(),
                        c.queued
                    );
                    *slot = None;
                }
            }
        }
    }

    /// Block until no client is congested, flushing queues, but not past
    /// `deadline`; clients still congested then are dropped.
    pub fn wait_for_room(&mut self, deadline: std::time::Instant) {
        while self.congested() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                for slot in self.clients.iter_mut() {
                    if slot.as_ref().is_some_and(|c| c.queued > HIGH_WATER) {
                        crate::warn!("Attach client too slow at exit: dropping it");
                        *slot = None;
                    }
                }
                return;
            }
            for slot in 0..self.clients.len() {
                let Some(c) = self.clients[slot]
                    .as_ref()
                    .filter(|c| c.queued > HIGH_WATER)
                else {
                    continue;
                };
                fds::wait_writable(c.fd.as_fd(), left.as_millis().min(100) as u16);
                self.flush_client(slot);
            }
        }
    }

    /// The client can take more output; returns false if it was dropped,
    /// and whether its queue is now empty.
    pub fn flush_client(&mut self, slot: usize) -> (bool, bool) {
        let Some(c) = self.clients.get_mut(slot).and_then(Option::as_mut) else {
            return (false, true);
        };
        while let Some(pkt) = c.queue.front() {
            match send_packet(c.fd.as_raw_fd(), &pkt[..1], &pkt[1..]) {
                Ok(true) => {
                    c.queued -= pkt.len();
                    c.queue.pop_front();
                    c.last_progress = std::time::Instant::now();
                }
                Ok(false) => return (true, false),
                Err(_) => {
                    crate::warn!("Failed to write to remote console socket");
                    self.clients[slot] = None;
                    return (false, true);
                }
            }
        }
        (true, true)
    }

    /// Read input from a client into `stdin` (None: no stdin target).
    pub fn read_client(&mut self, slot: usize, stdin: Option<BorrowedFd<'_>>) -> ClientUpdate {
        let mut up = ClientUpdate::default();
        let Some(c) = self.clients.get_mut(slot).and_then(Option::as_mut) else {
            up.closed = true;
            return up;
        };
        loop {
            if !c.pending_input.is_empty() {
                // Back-pressure: nothing more is read until the container took this.
                match stdin {
                    Some(fd) if write_some(fd, &mut c.pending_input) => continue,
                    _ => {
                        up.input_blocked = true;
                        return up;
                    }
                }
            }
            if c.read_closed {
                return up;
            }
            let space = self.input_buf.space();
            match nix::unistd::read(&c.fd, &mut space[..MAX_INPUT]) {
                Ok(n) if n > 0 => {
                    c.pending_input.extend_from_slice(&space[..n]);
                    continue;
                }
                Err(Errno::EAGAIN | Errno::EINTR) => return up,
                _ => {}
            }
            // EOF (half-close) or error: stop reading, keep sending output.
            let _ = shutdown(c.fd.as_raw_fd(), Shutdown::Read);
            c.read_closed = true;
            up.input_ended = true;
            return up;
        }
    }

    /// Idle: return the input buffer's pages.
    pub fn release_memory(&mut self) {
        self.input_buf.release();
    }

    /// The client hung up completely.
    pub fn drop_client(&mut self, slot: usize) {
        if let Some(s) = self.clients.get_mut(slot) {
            *s = None;
        }
    }

    /// Slots with input waiting for the container's stdin.
    pub fn blocked_input(&self) -> Vec<usize> {
        self.clients
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                c.as_ref()
                    .filter(|c| !c.pending_input.is_empty())
                    .map(|_| i)
            })
            .collect()
    }

    /// Flush queued output at shutdown, waiting for slow readers up to
    /// [`SHUTDOWN_FLUSH`] in total, then close every client and the listener.
    pub fn close_all(&mut self) {
        let deadline = std::time::Instant::now() + SHUTDOWN_FLUSH;
        for c in self.clients.iter_mut().flatten() {
            discard_unread_input(c.fd.as_raw_fd());
            'client: while let Some(pkt) = c.queue.front() {
                loop {
                    match send_packet(c.fd.as_raw_fd(), &pkt[..1], &pkt[1..]) {
                        Ok(true) => break,
                        Ok(false) => {
                            let left =
                                deadline.saturating_duration_since(std::time::Instant::now());
                            if left.is_zero() {
                                crate::warn!(
                                    "Attach client did not take its last {} bytes of output",
                                    c.queued
                                );
                                break 'client;
                            }
                            fds::wait_writable(c.fd.as_fd(), left.as_millis().min(1000) as u16);
                        }
                        Err(_) => break 'client,
                    }
                }
                c.queued -= pkt.len();
                c.queue.pop_front();
            }
        }
        self.clients.clear();
    }

    /// Remove the socket file and the `<cuuid>` symlink.
    pub fn remove_paths(paths: &AttachPaths) {
        if let Err(e) = std::fs::remove_file(&paths.socket) {
            if e.kind() != io::ErrorKind::NotFound {
                crate::diag::emit(
                    crate::diag::Kind::Fatal,
                    "Failed to remove symlink for attach socket directory",
                    e.raw_os_error(),
                );
            }
        }
        if let Some(link) = &paths.symlink {
            let _ = std::fs::remove_file(link);
        }
    }
}

/// Bind a SEQPACKET socket at `bind_path` (a short /proc alias of `real_path`), mode 0700.
fn bind_seqpacket(bind_path: &str, real_path: &Path) -> Result<OwnedFd, Fatal> {
    let sock = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| {
        Fatal::from_nix(
            format!("Failed to create socket {}", real_path.display()),
            e,
        )
    })?;
    let private = Mode::from_bits_truncate(0o700);
    fchmod(&sock, private)
        .map_err(|e| Fatal::from_nix("Failed to change console-socket permissions", e))?;
    bind_unix(&sock, bind_path.as_bytes())?;
    std::fs::set_permissions(real_path, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
        Fatal::from_io(
            format!(
                "Failed to change socket permissions {}",
                real_path.display()
            ),
            &e,
        )
    })?;
    Ok(sock)
}

/// `bind` to a filesystem path (truncated to 107 bytes like conmon).
pub fn bind_unix(sock: &OwnedFd, path: &[u8]) -> Result<(), Fatal> {
    let path = &path[..path.len().min(107)];
    UnixAddr::new(path)
        .and_then(|addr| bind(sock.as_raw_fd(), &addr))
        .map_err(|e| Fatal::from_nix("Failed to bind to console-socket", e))
}

/// Stop taking input from a client and throw away what it sent that nobody
/// read. Closing an AF_UNIX socket with unread data makes the peer's next
/// read fail with ECONNRESET *before* the output still queued for it, so a
/// client that pushed stdin the container never read would lose the
/// container's last words. After `shutdown(SHUT_RD)` its further sends fail
/// (EPIPE), so the queue can only shrink.
fn discard_unread_input(fd: RawFd) {
    let _ = shutdown(fd, Shutdown::Read);
    let mut byte = [0u8; 1];
    // Bounded: the queue is bounded by the peer's send buffer anyway.
    for _ in 0..65536 {
        // One byte: a longer packet is dropped whole (MSG_TRUNC).
        match recv(fd, &mut byte, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

/// Send one packet `head ++ payload` without blocking. Ok(false): would block.
fn send_packet(fd: RawFd, head: &[u8], payload: &[u8]) -> io::Result<bool> {
    let iov = [IoSlice::new(head), IoSlice::new(payload)];
    loop {
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        match sendmsg::<UnixAddr>(fd, &iov, &[], flags, None) {
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN | Errno::ENOBUFS) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Write as much of `buf` as `fd` takes; removes written bytes. True if progress was made.
pub fn write_some(fd: BorrowedFd<'_>, buf: &mut Vec<u8>) -> bool {
    match nix::unistd::write(fd, buf) {
        Ok(n) if n > 0 => {
            buf.drain(..n);
            true
        }
        _ => false,
    }
}
