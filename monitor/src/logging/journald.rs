//! The journald driver: one journal entry per line over journald's native
//! datagram protocol (`/run/systemd/journal/socket`), with conmon's fields
//! and line assembly (conmon-interface §7.6).
//!
//! Lines shorter than 8 KiB are sent whole even when split across reads; a
//! longer line goes out in ~8 KiB pieces marked `CONTAINER_PARTIAL_MESSAGE=true`.
//! A `<N>` prefix (N = 0..7) at the start of a fresh line sets PRIORITY.

use super::lines::LineJoiner;
use crate::cli::Options;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::socket::{
    sendmsg, setsockopt, socket, sockopt, AddressFamily, ControlMessage, MsgFlags, SockFlag,
    SockType, UnixAddr,
};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
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
}

/// The slices of one entry, on the stack: no allocation per line (a heap
/// list only for entries with more labels than fit).
struct IoList<'a> {
    fixed: [IoSlice<'a>; IOV_FIXED],
    len: usize,
    more: Vec<IoSlice<'a>>,
}

/// Slices of an entry without labels: MESSAGE (5), ids and priority (6),
/// tag, name (4), identifier (2), partial flag (1).
const IOV_FIXED: usize = 32;

impl<'a> IoList<'a> {
    fn new() -> IoList<'a> {
        IoList {
            fixed: [IoSlice::new(&[]); IOV_FIXED],
            len: 0,
            more: Vec::new(),
        }
    }
    fn push(&mut self, s: &'a [u8]) {
        if self.len < IOV_FIXED && self.more.is_empty() {
            self.fixed[self.len] = IoSlice::new(s);
            self.len += 1;
        } else {
            if self.more.is_empty() {
                self.more.extend_from_slice(&self.fixed[..self.len]);
            }
            self.more.push(IoSlice::new(s));
        }
    }
    fn extend_from_slice(&mut self, parts: &[&'a [u8]]) {
        for p in parts {
            self.push(p);
        }
    }
    fn slices(&self) -> &[IoSlice<'a>] {
        if self.more.is_empty() {
            &self.fixed[..self.len]
        } else {
            &self.more
        }
    }
}

impl JournaldLog {
    pub fn new(opts: &Options, cid: &str) -> std::io::Result<JournaldLog> {
        let sock = socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        // Let big entries through without the memfd path where possible.
        let _ = setsockopt(&sock, sockopt::SndBuf, &(8 * 1024 * 1024));
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
        let mut iov = IoList::new();
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
        match send(&self.sock, iov.slices(), &mut self.scratch) {
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

fn journal_addr() -> std::io::Result<UnixAddr> {
    Ok(UnixAddr::new(JOURNAL_SOCKET)?)
}

/// Send one entry; too big for a datagram -> sealed memfd passed with SCM_RIGHTS.
fn send(sock: &OwnedFd, iov: &[IoSlice<'_>], scratch: &mut Vec<u8>) -> std::io::Result<()> {
    let addr = journal_addr()?;
    loop {
        match sendmsg(
            sock.as_raw_fd(),
            iov,
            &[],
            MsgFlags::MSG_NOSIGNAL,
            Some(&addr),
        ) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(Errno::EMSGSIZE | Errno::ENOBUFS) => return send_memfd(sock, iov, scratch),
            Err(e) => return Err(e.into()),
        }
    }
}

fn send_memfd(sock: &OwnedFd, iov: &[IoSlice<'_>], scratch: &mut Vec<u8>) -> std::io::Result<()> {
    scratch.clear();
    for v in iov {
        scratch.extend_from_slice(v);
    }
    let mfd = memfd_create(
        "journal",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )?;
    crate::fds::write_all(&mfd, scratch)?;
    let seals = SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE
        | SealFlag::F_SEAL_SEAL;
    let _ = fcntl(&mfd, FcntlArg::F_ADD_SEALS(seals));
    let addr = journal_addr()?;
    let fds = [mfd.as_raw_fd()];
    sendmsg(
        sock.as_raw_fd(),
        &[],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        Some(&addr),
    )?;
    Ok(())
}
