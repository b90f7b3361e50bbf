//! The journald driver: one journal entry per line over journald's native
//! datagram protocol (`/run/systemd/journal/socket`), with conmon's fields
//! and line assembly (conmon-interface §7.6).
//!
//! Lines shorter than 8 KiB are sent whole even when split across reads; a
//! longer line goes out in ~8 KiB pieces marked `CONTAINER_PARTIAL_MESSAGE=true`.
//! A `<N>` prefix (N = 0..7) at the start of a fresh line sets PRIORITY.

use super::lines::LineJoiner;
use crate::cli::Options;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use vigil::proto::attach::Stream;

const JOURNAL_SOCKET: &[u8] = b"/run/systemd/journal/socket";
/// Per-stream partial-line buffer (conmon's STDIO_BUF_SIZE - 1 usable bytes).
const PARTIAL_MAX: usize = 8192;

pub struct JournaldLog {
    /// `KEY=value` fields after MESSAGE/PRIORITY that never change.
    cid_full: Vec<u8>,
    cid_short: Vec<u8>,
    tag: Option<Vec<u8>>,
    name: Option<Vec<u8>>,
    identifier: Vec<u8>,
    labels: Vec<Vec<u8>>,
    partial_flag: bool,
    streams: [LineJoiner<PARTIAL_MAX>; 2],
    sink: Sender,
}

/// The socket side, separate from the line state so both can be borrowed.
struct Sender {
    sock: OwnedFd,
    failing: bool,
    scratch: Vec<u8>,
    /// Reused for every entry: no allocation per line.
    iov: IoList,
}

/// A reusable list of iovecs; the slices it points at must outlive the send.
struct IoList(Vec<libc::iovec>);

impl IoList {
    fn clear(&mut self) {
        self.0.clear();
    }
    fn push(&mut self, s: &[u8]) {
        self.0.push(libc::iovec {
            iov_base: s.as_ptr() as *mut libc::c_void,
            iov_len: s.len(),
        });
    }
    fn extend_from_slice(&mut self, parts: &[&[u8]]) {
        for p in parts {
            self.push(p);
        }
    }
}

impl JournaldLog {
    pub fn new(opts: &Options, cid: &str) -> std::io::Result<JournaldLog> {
        // SAFETY: new socket fd we own.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fresh fd.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        // Let big entries through without the memfd path where possible.
        let size: libc::c_int = 8 * 1024 * 1024;
        // SAFETY: setsockopt with a valid int.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&size as *const libc::c_int).cast(),
                4,
            );
        }
        let short: String = cid.chars().take(12).collect();
        let field = |k: &str, v: &str| format!("{k}={v}").into_bytes();
        let identifier = opts
            .log_tag
            .clone()
            .or_else(|| opts.name.clone())
            .unwrap_or_else(|| short.clone());
        Ok(JournaldLog {
            cid_full: field("CONTAINER_ID_FULL", cid),
            cid_short: field("CONTAINER_ID", &short),
            tag: opts.log_tag.as_deref().map(|t| field("CONTAINER_TAG", t)),
            name: opts.name.as_deref().map(|n| field("CONTAINER_NAME", n)),
            identifier: field("SYSLOG_IDENTIFIER", &identifier),
            labels: opts
                .log_labels
                .iter()
                .map(|l| l.clone().into_bytes())
                .collect(),
            partial_flag: !opts.no_container_partial_message,
            streams: [LineJoiner::new(), LineJoiner::new()],
            sink: Sender {
                sock,
                failing: false,
                scratch: Vec::with_capacity(PARTIAL_MAX + 64),
                iov: IoList(Vec::with_capacity(32)),
            },
        })
    }

    /// Log one chunk.
    pub fn write_chunk(&mut self, stream: Stream, chunk: &[u8]) {
        let (fields, joiner, sink) = self.split(stream);
        joiner.feed(chunk, |head, tail, partial, fresh| {
            sink.entry(&fields, stream, head, tail, partial, fresh)
        });
    }

    /// At exit (after draining): send what is still buffered, as partial entries.
    pub fn flush(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let (fields, joiner, sink) = self.split(stream);
            joiner.flush(|head, tail, partial, fresh| {
                sink.entry(&fields, stream, head, tail, partial, fresh)
            });
        }
    }

    fn split(&mut self, stream: Stream) -> (Fields<'_>, &mut LineJoiner<PARTIAL_MAX>, &mut Sender) {
        let i = match stream {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        };
        let fields = Fields {
            cid_full: &self.cid_full,
            cid_short: &self.cid_short,
            tag: self.tag.as_deref(),
            name: self.name.as_deref(),
            identifier: &self.identifier,
            labels: &self.labels,
            partial_flag: self.partial_flag,
        };
        (fields, &mut self.streams[i], &mut self.sink)
    }
}

/// The fixed fields of every entry.
struct Fields<'a> {
    cid_full: &'a [u8],
    cid_short: &'a [u8],
    tag: Option<&'a [u8]>,
    name: Option<&'a [u8]>,
    identifier: &'a [u8],
    labels: &'a [Vec<u8>],
    partial_flag: bool,
}

impl Sender {
    /// Send `head + tail` as one entry, fields in conmon's order.
    fn entry(
        &mut self,
        f: &Fields<'_>,
        stream: Stream,
        head: &[u8],
        tail: &[u8],
        partial: bool,
        fresh: bool,
    ) -> bool {
        let (mut msg_head, mut msg_tail) = (head, tail);
        let mut priority = match stream {
            Stream::Stdout => b'6',
            Stream::Stderr => b'3',
        };
        if fresh {
            let first: &mut &[u8] = if msg_head.is_empty() {
                &mut msg_tail
            } else {
                &mut msg_head
            };
            if first.len() >= 3
                && first[0] == b'<'
                && (b'0'..=b'7').contains(&first[1])
                && first[2] == b'>'
            {
                priority = first[1];
                *first = &first[3..];
            }
        }
        let len_le = ((msg_head.len() + msg_tail.len()) as u64).to_le_bytes();
        let prio = [
            b'P', b'R', b'I', b'O', b'R', b'I', b'T', b'Y', b'=', priority,
        ];
        let iov = &mut self.iov;
        iov.clear();
        // MESSAGE in the binary-safe form: name, newline, 64-bit LE length, data.
        iov.extend_from_slice(&[b"MESSAGE\n", &len_le, msg_head, msg_tail, b"\n"]);
        iov.extend_from_slice(&[f.cid_full, b"\n", &prio, b"\n", f.cid_short, b"\n"]);
        if let Some(t) = f.tag {
            iov.extend_from_slice(&[t, b"\n"]);
        }
        if let Some(n) = f.name {
            iov.extend_from_slice(&[n, b"\n"]);
        }
        iov.extend_from_slice(&[f.identifier, b"\n"]);
        if partial && f.partial_flag {
            iov.push(b"CONTAINER_PARTIAL_MESSAGE=true\n");
        }
        for l in f.labels {
            iov.extend_from_slice(&[l, b"\n"]);
        }
        match send(&self.sock, &self.iov, &mut self.scratch) {
            Ok(()) => {
                self.failing = false;
                true
            }
            Err(e) => {
                if !self.failing {
                    self.failing = true;
                    crate::warn!(
                        "sd_journal_sendv: {}",
                        crate::diag::strerror(e.raw_os_error().unwrap_or(0))
                    );
                    crate::warn!("write_journald failed");
                }
                false
            }
        }
    }
}

fn journal_addr() -> libc::sockaddr_un {
    // SAFETY: all-zero sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(JOURNAL_SOCKET) {
        *d = *s as libc::c_char;
    }
    addr
}

/// Send one entry; too big for a datagram -> sealed memfd passed with SCM_RIGHTS.
fn send(sock: &OwnedFd, list: &IoList, scratch: &mut Vec<u8>) -> std::io::Result<()> {
    let iov = &list.0;
    let mut addr = journal_addr();
    // SAFETY: all-zero msghdr is valid; pointers below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut addr as *mut libc::sockaddr_un).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = iov.len();
    loop {
        // SAFETY: msg is fully initialised.
        let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EMSGSIZE) | Some(libc::ENOBUFS) => return send_memfd(sock, list, scratch),
            _ => return Err(e),
        }
    }
}

fn send_memfd(sock: &OwnedFd, list: &IoList, scratch: &mut Vec<u8>) -> std::io::Result<()> {
    scratch.clear();
    for v in &list.0 {
        // SAFETY: each iovec points at a live slice (see IoList).
        scratch.extend_from_slice(unsafe {
            std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len)
        });
    }
    // SAFETY: memfd_create with a constant name.
    let fd = unsafe {
        libc::memfd_create(
            b"journal\0".as_ptr().cast(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh fd.
    let mfd = unsafe { OwnedFd::from_raw_fd(fd) };
    crate::fds::write_all(fd, scratch)?;
    // SAFETY: sealing our memfd.
    unsafe {
        libc::fcntl(
            fd,
            libc::F_ADD_SEALS,
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL,
        );
    }
    let mut addr = journal_addr();
    let mut cbuf = [0u64; 4];
    // SAFETY: building a SCM_RIGHTS message with one fd in our buffers.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = (&mut addr as *mut libc::sockaddr_un).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(4) as _;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut libc::c_int, mfd.as_raw_fd());
        if libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
