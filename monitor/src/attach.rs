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
use crate::pagebuf::PageBuf;
use std::collections::VecDeque;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
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
        // SAFETY: valid path; returns a new fd we own.
        let dirfd = unsafe { libc::open(cparent.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if dirfd < 0 {
            return Err(Fatal::errno(format!(
                "failed to open socket path parent dir {}",
                parent.display()
            )));
        }
        // SAFETY: fresh fd.
        let dirfd = unsafe { OwnedFd::from_raw_fd(dirfd) };
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
        // SAFETY: listening on our own socket.
        if unsafe { libc::listen(listener.as_raw_fd(), 10) } != 0 {
            return Err(Fatal::errno(format!(
                "Failed to listen on attach socket: {}/attach",
                parent.display()
            )));
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
        // SAFETY: accept4 on our listener; returns a new fd we own.
        let fd = unsafe {
            libc::accept4(
                self.listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        };
        if fd < 0 {
            let e = crate::diag::last_errno();
            if e != libc::EAGAIN && e != libc::EINTR {
                crate::warn_errno!(e, "Failed to accept client connection on attach socket");
            }
            return None;
        }
        // SAFETY: fresh fd from accept4.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
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
                let Some(fd) = self.clients[slot]
                    .as_ref()
                    .filter(|c| c.queued > HIGH_WATER)
                    .map(|c| c.fd.as_raw_fd())
                else {
                    continue;
                };
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut p, 1, left.as_millis().min(100) as libc::c_int) };
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
    pub fn read_client(&mut self, slot: usize, stdin: Option<RawFd>) -> ClientUpdate {
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
            // SAFETY: reading into our own buffer.
            let n = unsafe { libc::read(c.fd.as_raw_fd(), space.as_mut_ptr().cast(), MAX_INPUT) };
            if n > 0 {
                c.pending_input.extend_from_slice(&space[..n as usize]);
                continue;
            }
            let errno = crate::diag::last_errno();
            if n < 0 && (errno == libc::EAGAIN || errno == libc::EINTR) {
                return up;
            }
            // EOF (half-close) or error: stop reading, keep sending output.
            // SAFETY: shutdown on our own socket.
            unsafe { libc::shutdown(c.fd.as_raw_fd(), libc::SHUT_RD) };
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
                            let mut p = libc::pollfd {
                                fd: c.fd.as_raw_fd(),
                                events: libc::POLLOUT,
                                revents: 0,
                            };
                            // SAFETY: one valid pollfd.
                            unsafe {
                                libc::poll(&mut p, 1, left.as_millis().min(1000) as libc::c_int)
                            };
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
    // SAFETY: new socket fd we own.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(Fatal::errno(format!(
            "Failed to create socket {}",
            real_path.display()
        )));
    }
    // SAFETY: fresh fd.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: fchmod on our socket.
    if unsafe { libc::fchmod(fd, 0o700) } != 0 {
        return Err(Fatal::errno("Failed to change console-socket permissions"));
    }
    bind_unix(&sock, bind_path.as_bytes())?;
    let creal = CString::new(real_path.as_os_str().as_bytes())
        .map_err(|_| Fatal::new("invalid socket path"))?;
    // SAFETY: valid path.
    if unsafe { libc::chmod(creal.as_ptr(), 0o700) } != 0 {
        return Err(Fatal::errno(format!(
            "Failed to change socket permissions {}",
            real_path.display()
        )));
    }
    Ok(sock)
}

/// `bind` to a filesystem path (truncated to 107 bytes like conmon).
pub fn bind_unix(sock: &OwnedFd, path: &[u8]) -> Result<(), Fatal> {
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let n = path.len().min(addr.sun_path.len() - 1);
    for (d, s) in addr.sun_path.iter_mut().zip(&path[..n]) {
        *d = *s as libc::c_char;
    }
    // SAFETY: addr is a valid sockaddr_un of the given size.
    let r = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(Fatal::errno("Failed to bind to console-socket"));
    }
    Ok(())
}

/// Stop taking input from a client and throw away what it sent that nobody
/// read. Closing an AF_UNIX socket with unread data makes the peer's next
/// read fail with ECONNRESET *before* the output still queued for it, so a
/// client that pushed stdin the container never read would lose the
/// container's last words. After `shutdown(SHUT_RD)` its further sends fail
/// (EPIPE), so the queue can only shrink.
fn discard_unread_input(fd: RawFd) {
    // SAFETY: shutdown on a socket we own.
    unsafe { libc::shutdown(fd, libc::SHUT_RD) };
    let mut byte = 0u8;
    // Bounded: the queue is bounded by the peer's send buffer anyway.
    for _ in 0..65536 {
        // SAFETY: one-byte buffer on our stack; a longer packet is dropped whole.
        let n = unsafe {
            libc::recv(
                fd,
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        if n <= 0 {
            break;
        }
    }
}

/// Send one packet `head ++ payload` without blocking. Ok(false): would block.
fn send_packet(fd: RawFd, head: &[u8], payload: &[u8]) -> io::Result<bool> {
    let iov = [
        libc::iovec {
            iov_base: head.as_ptr() as *mut libc::c_void,
            iov_len: head.len(),
        },
        libc::iovec {
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: payload.len(),
        },
    ];
    // SAFETY: an all-zero msghdr is valid; we point it at our iovecs.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = 2;
    loop {
        // SAFETY: msg and iov are valid for the call.
        let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(true);
        }
        match crate::diag::last_errno() {
            libc::EINTR => continue,
            libc::EAGAIN | libc::ENOBUFS => return Ok(false),
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// Write as much of `buf` as `fd` takes; removes written bytes. True if progress was made.
pub fn write_some(fd: RawFd, buf: &mut Vec<u8>) -> bool {
    // SAFETY: buf is valid for its length.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if n > 0 {
        buf.drain(..n as usize);
        return true;
    }
    false
}
