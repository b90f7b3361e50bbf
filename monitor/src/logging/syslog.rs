//! The syslog driver (a vigil extension; no conmon has one): one RFC 5424
//! record per line, container name as APP-NAME, stream as MSGID and severity
//! (stdout = info, stderr = err), facility user.
//!
//! `-l syslog:` (local `/dev/log`), `-l syslog:unix:PATH`,
//! `-l syslog:udp:HOST:PORT`, `-l syslog:tcp:HOST:PORT` (RFC 6587 octet
//! counting). A line longer than [`LINE_MAX`] is sent in pieces, so that each
//! whole record stays within 8 KiB, rsyslog's default `maxMessageSize`; a
//! record the destination does not take within a second is dropped and counted.

use super::lines::LineJoiner;
use crate::diag::Fatal;
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;
use vigil::logfmt::timestamp::{TimestampCache, MAX_LEN};
use vigil::proto::attach::Stream;

/// Message bytes per record: 8 KiB minus room for the RFC 5424 header.
pub const LINE_MAX: usize = 8192 - 256;
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// Where records go, as given after `syslog:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTarget {
    Local,
    Unix(String),
    Udp(String),
    Tcp(String),
}

impl SyslogTarget {
    /// Parse the text after `syslog:` (empty = local).
    pub fn parse(rest: &str) -> Result<SyslogTarget, Fatal> {
        let bad = || {
            Fatal::new(format!("Invalid syslog destination '{rest}': use syslog:, syslog:unix:PATH, syslog:udp:HOST:PORT or syslog:tcp:HOST:PORT"))
        };
        if rest.is_empty() {
            return Ok(SyslogTarget::Local);
        }
        let (kind, addr) = rest.split_once(':').ok_or_else(bad)?;
        if addr.is_empty() {
            return Err(bad());
        }
        match kind {
            "unix" => Ok(SyslogTarget::Unix(addr.to_string())),
            "udp" | "tcp" => {
                let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
                if host.is_empty() || port.parse::<u16>().is_err() {
                    return Err(bad());
                }
                Ok(if kind == "udp" {
                    SyslogTarget::Udp(addr.to_string())
                } else {
                    SyslogTarget::Tcp(addr.to_string())
                })
            }
            _ => Err(bad()),
        }
    }
}

enum Transport {
    Unix(UnixDatagram, String),
    Udp(UdpSocket),
    Tcp(Option<TcpStream>, String),
}

pub struct SyslogLog {
    streams: [LineJoiner<LINE_MAX>; 2],
    out: Out,
}

/// Everything but the line state, so both can be borrowed at once.
struct Out {
    transport: Transport,
    /// `HOSTNAME APP-NAME - ` (with a trailing space), fixed for the container.
    header: Vec<u8>,
    ts: TimestampCache,
    record: Vec<u8>,
    dropped: u64,
    failing: bool,
}

impl SyslogLog {
    pub fn new(target: &SyslogTarget, app_name: &str) -> Result<SyslogLog, Fatal> {
        let io_err = |what: &str, e: std::io::Error| {
            Fatal::from_io(format!("Failed to set up syslog {what}"), &e)
        };
        let transport = match target {
            SyslogTarget::Local => Transport::Unix(
                UnixDatagram::unbound().map_err(|e| io_err("socket", e))?,
                "/dev/log".into(),
            ),
            SyslogTarget::Unix(p) => Transport::Unix(
                UnixDatagram::unbound().map_err(|e| io_err("socket", e))?,
                p.clone(),
            ),
            SyslogTarget::Udp(addr) => {
                let dest = addr
                    .to_socket_addrs()
                    .map_err(|e| io_err("address", e))?
                    .next()
                    .ok_or_else(|| Fatal::new(format!("Cannot resolve {addr}")))?;
                let bind = if dest.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let s = UdpSocket::bind(bind).map_err(|e| io_err("socket", e))?;
                s.connect(dest).map_err(|e| io_err("connect", e))?;
                Transport::Udp(s)
            }
            SyslogTarget::Tcp(addr) => Transport::Tcp(None, addr.clone()),
        };
        if let Transport::Unix(s, _) = &transport {
            let _ = s.set_write_timeout(Some(SEND_TIMEOUT));
        }
        let host = hostname();
        let app: String = app_name
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(48)
            .collect();
        let app = if app.is_empty() { "-".to_string() } else { app };
        let header = format!("{host} {app} {} ", std::process::id()).into_bytes();
        Ok(SyslogLog {
            streams: [LineJoiner::new(), LineJoiner::new()],
            out: Out {
                transport,
                header,
                ts: TimestampCache::new(),
                record: Vec::with_capacity(LINE_MAX + 256),
                dropped: 0,
                failing: false,
            },
        })
    }

    pub fn write_chunk(&mut self, stream: Stream, chunk: &[u8]) {
        let out = &mut self.out;
        self.streams[(stream == Stream::Stderr) as usize]
            .feed(chunk, |head, tail, _, _| out.send(stream, head, tail));
    }

    pub fn flush(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let out = &mut self.out;
            self.streams[(stream == Stream::Stderr) as usize]
                .flush(|head, tail, _, _| out.send(stream, head, tail));
        }
        if self.out.dropped > 0 {
            crate::warn!(
                "syslog: {} records could not be delivered",
                self.out.dropped
            );
        }
    }
}

impl Out {
    fn send(&mut self, stream: Stream, head: &[u8], tail: &[u8]) -> bool {
        let (pri, msgid): (&[u8], &[u8]) = match stream {
            Stream::Stdout => (b"<14>1 ", b"stdout - "),
            Stream::Stderr => (b"<11>1 ", b"stderr - "),
        };
        let tail = tail.strip_suffix(b"\n").unwrap_or(tail);
        let mut tsbuf = [0u8; MAX_LEN];
        let n = self.ts.format_now(&mut tsbuf);
        // RFC 5424 allows at most 6 fractional digits: drop the last 3 of 9.
        let ts = [&tsbuf[..n - 9], &tsbuf[n - 6..n]];
        let r = &mut self.record;
        r.clear();
        r.extend_from_slice(pri);
        r.extend_from_slice(ts[0]);
        r.extend_from_slice(ts[1]);
        r.push(b' ');
        r.extend_from_slice(&self.header);
        r.extend_from_slice(msgid);
        r.extend_from_slice(head);
        r.extend_from_slice(tail);
        let ok = match &mut self.transport {
            Transport::Unix(s, path) => s.send_to(r, path.as_str()).is_ok(),
            Transport::Udp(s) => s.send(r).is_ok(),
            Transport::Tcp(conn, addr) => send_tcp(conn, addr, r),
        };
        if !ok {
            self.dropped += 1;
            if !self.failing {
                crate::warn!("syslog: failed to deliver a record; dropping until the destination accepts again");
            }
        }
        self.failing = !ok;
        ok
    }
}

fn send_tcp(conn: &mut Option<TcpStream>, addr: &str, record: &[u8]) -> bool {
    for _ in 0..2 {
        if conn.is_none() {
            let Some(dest) = addr.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
                return false;
            };
            match TcpStream::connect_timeout(&dest, SEND_TIMEOUT) {
                Ok(s) => {
                    let _ = s.set_write_timeout(Some(SEND_TIMEOUT));
                    let _ = s.set_nodelay(true);
                    *conn = Some(s);
                }
                Err(_) => return false,
            }
        }
        if let Some(s) = conn {
            let mut frame_len = [0u8; 24];
            let mut w = &mut frame_len[..];
            let _ = write!(w, "{} ", record.len());
            let used = 24 - w.len();
            if s.write_all(&frame_len[..used])
                .and_then(|_| s.write_all(record))
                .is_ok()
            {
                return true;
            }
            *conn = None;
        }
    }
    false
}

fn hostname() -> String {
    let Ok(name) = nix::unistd::gethostname() else {
        return "-".into();
    };
    let h: String = name
        .to_string_lossy()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if h.is_empty() {
        "-".into()
    } else {
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        assert_eq!(SyslogTarget::parse("").unwrap(), SyslogTarget::Local);
        assert_eq!(
            SyslogTarget::parse("unix:/dev/log").unwrap(),
            SyslogTarget::Unix("/dev/log".into())
        );
        assert_eq!(
            SyslogTarget::parse("udp:127.0.0.1:514").unwrap(),
            SyslogTarget::Udp("127.0.0.1:514".into())
        );
        assert_eq!(
            SyslogTarget::parse("tcp:[::1]:601").unwrap(),
            SyslogTarget::Tcp("[::1]:601".into())
        );
        for bad in ["udp:", "udp:host", "tcp:host:x", "ftp:x:1", "unix:"] {
            assert!(SyslogTarget::parse(bad).is_err(), "{bad}");
        }
    }
}
