//! k8s-file (CRI) log records:
//! `<timestamp> <stdout|stderr> <F|P> <content>\n`.
//!
//! The monitor cuts every chunk it reads at each `\n`: a piece ending in `\n`
//! is a full (`F`) record, a trailing piece without one is a partial (`P`)
//! record to which the newline is appended. Readers join `P` pieces until an
//! `F` piece ends the line.

use crate::proto::attach::Stream;
use std::io::{self, BufRead};

/// Bytes a record adds around its content when the timestamp is 35 bytes
/// long: conmon accounts `len + 45` per record (+1 for `P`, whose newline is added).
pub const RECORD_OVERHEAD: u64 = 45;

/// One piece of a chunk: its bytes (with the `\n` for full lines) and whether it is partial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece<'a> {
    pub bytes: &'a [u8],
    pub partial: bool,
}

impl Piece<'_> {
    /// conmon's size accounting of this piece's record.
    pub fn accounted_len(&self) -> u64 {
        self.bytes.len() as u64 + RECORD_OVERHEAD + u64::from(self.partial)
    }
}

/// Iterator over the pieces of a chunk.
pub struct Pieces<'a> {
    rest: &'a [u8],
}

/// Cut a chunk into record pieces.
pub fn pieces(chunk: &[u8]) -> Pieces<'_> {
    Pieces { rest: chunk }
}

impl<'a> Iterator for Pieces<'a> {
    type Item = Piece<'a>;

    fn next(&mut self) -> Option<Piece<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let (bytes, partial) = match memchr_nl(self.rest) {
            Some(i) => (&self.rest[..=i], false),
            None => (self.rest, true),
        };
        self.rest = &self.rest[bytes.len()..];
        Some(Piece { bytes, partial })
    }
}

#[inline]
fn memchr_nl(s: &[u8]) -> Option<usize> {
    // SIMD search: this is the monitor's hottest loop on short lines.
    memchr::memchr(b'\n', s)
}

/// The bytes between a record's timestamp and its content: ` stdout F ` etc.
#[inline]
pub fn record_tag(stream: Stream, partial: bool) -> &'static [u8] {
    match (stream, partial) {
        (Stream::Stdout, false) => b" stdout F ",
        (Stream::Stdout, true) => b" stdout P ",
        (Stream::Stderr, false) => b" stderr F ",
        (Stream::Stderr, true) => b" stderr P ",
    }
}

/// Append the record for `piece` to `out`: `ts stream F|P bytes[\n]`.
#[inline]
pub fn append_record(out: &mut Vec<u8>, timestamp: &[u8], stream: Stream, piece: Piece<'_>) {
    out.extend_from_slice(timestamp);
    out.extend_from_slice(record_tag(stream, piece.partial));
    out.extend_from_slice(piece.bytes);
    if piece.partial {
        out.push(b'\n');
    }
}

/// A parsed record line (without the record's terminating newline).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub timestamp: &'a [u8],
    pub stream: Stream,
    pub partial: bool,
    /// The content; for `F` records the line's own `\n` is the record terminator.
    pub content: &'a [u8],
}

/// Why a record line is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordError(pub &'static str);

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed k8s-file record: {}", self.0)
    }
}

impl std::error::Error for RecordError {}

/// Parse one record line (trailing `\n` optional).
pub fn parse_record(line: &[u8]) -> Result<Record<'_>, RecordError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let sp = line
        .iter()
        .position(|&b| b == b' ')
        .ok_or(RecordError("no timestamp"))?;
    let timestamp = &line[..sp];
    if !valid_timestamp(timestamp) {
        return Err(RecordError("bad timestamp"));
    }
    let rest = &line[sp + 1..];
    let (stream, rest) = if let Some(r) = rest.strip_prefix(b"stdout ") {
        (Stream::Stdout, r)
    } else if let Some(r) = rest.strip_prefix(b"stderr ") {
        (Stream::Stderr, r)
    } else {
        return Err(RecordError("bad stream"));
    };
    let (partial, content) = match rest {
        [b'F', b' ', c @ ..] => (false, c),
        [b'P', b' ', c @ ..] => (true, c),
        _ => return Err(RecordError("bad tag")),
    };
    Ok(Record {
        timestamp,
        stream,
        partial,
        content,
    })
}

fn valid_timestamp(ts: &[u8]) -> bool {
    // YYYY-MM-DDTHH:MM:SS.NNNNNNNNN then +HH:MM / -HH:MM / Z (accepted for other writers).
    let shape = b"dddd-dd-ddTdd:dd:dd.";
    if ts.len() < shape.len() + 2 {
        return false;
    }
    let year_extra = ts
        .iter()
        .position(|&b| b == b'-')
        .unwrap_or(0)
        .saturating_sub(4);
    if ts.len() < shape.len() + year_extra + 2 {
        return false;
    }
    let (head, tail) = ts.split_at(shape.len() + year_extra);
    let head_ok = head[year_extra..].iter().zip(shape).all(|(&c, &s)| {
        if s == b'd' {
            c.is_ascii_digit()
        } else {
            c == s
        }
    }) && head[..year_extra].iter().all(u8::is_ascii_digit);
    let frac = tail.iter().take_while(|b| b.is_ascii_digit()).count();
    let zone = &tail[frac..];
    head_ok
        && frac > 0
        && (zone == b"Z"
            || (zone.len() == 6
                && (zone[0] == b'+' || zone[0] == b'-')
                && zone[1].is_ascii_digit()
                && zone[2].is_ascii_digit()
                && zone[3] == b':'
                && zone[4].is_ascii_digit()
                && zone[5].is_ascii_digit()))
}

/// A logical line rebuilt from `P`/`F` records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// Timestamp of the record that completed (or last extended) the line.
    pub timestamp: String,
    pub stream: Stream,
    /// The bytes, with `\n` if the line was completed by an `F` record.
    pub bytes: Vec<u8>,
}

/// Joins `P` pieces per stream until `F` completes a line.
#[derive(Default)]
pub struct Reassembler {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Reassembler {
    /// Feed one record; returns a completed line when it is an `F` record.
    pub fn push(&mut self, rec: &Record<'_>) -> Option<LogLine> {
        let buf = match rec.stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        buf.extend_from_slice(rec.content);
        if rec.partial {
            return None;
        }
        buf.push(b'\n');
        Some(LogLine {
            timestamp: String::from_utf8_lossy(rec.timestamp).into_owned(),
            stream: rec.stream,
            bytes: std::mem::take(buf),
        })
    }

    /// Pending partial data at end of log, per stream.
    pub fn finish(self) -> [(Stream, Vec<u8>); 2] {
        [(Stream::Stdout, self.stdout), (Stream::Stderr, self.stderr)]
    }
}

/// Read all records of a log (e.g. a file), reassembled into lines; a trailing
/// partial line is returned without `\n`. Malformed records are an error.
pub fn read_lines(reader: impl BufRead) -> io::Result<Vec<LogLine>> {
    let mut out = Vec::new();
    let mut asm = Reassembler::default();
    let mut last_ts = String::new();
    for line in reader.split(b'\n') {
        let line = line?;
        let rec = parse_record(&line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        last_ts = String::from_utf8_lossy(rec.timestamp).into_owned();
        out.extend(asm.push(&rec));
    }
    for (stream, bytes) in asm.finish() {
        if !bytes.is_empty() {
            out.push(LogLine {
                timestamp: last_ts.clone(),
                stream,
                bytes,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_pieces() {
        let p: Vec<_> = pieces(b"hello\n\npartial").collect();
        assert_eq!(
            p,
            vec![
                Piece {
                    bytes: b"hello\n",
                    partial: false
                },
                Piece {
                    bytes: b"\n",
                    partial: false
                },
                Piece {
                    bytes: b"partial",
                    partial: true
                },
            ]
        );
        assert_eq!(p[0].accounted_len(), 51);
        assert_eq!(p[2].accounted_len(), 53);
        assert_eq!(pieces(b"").count(), 0);
    }

    #[test]
    fn writes_and_parses_records() {
        let ts = b"2025-06-01T11:47:57.769671123+00:00";
        let mut out = Vec::new();
        for p in pieces(b"hello\n\npartial") {
            append_record(&mut out, ts, Stream::Stdout, p);
        }
        let text = String::from_utf8(out.clone()).unwrap();
        assert_eq!(
            text,
            "2025-06-01T11:47:57.769671123+00:00 stdout F hello\n\
             2025-06-01T11:47:57.769671123+00:00 stdout F \n\
             2025-06-01T11:47:57.769671123+00:00 stdout P partial\n"
        );
        let lines = read_lines(&out[..]).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].bytes, b"hello\n");
        assert_eq!(lines[1].bytes, b"\n");
        assert_eq!(lines[2].bytes, b"partial");
        let r = parse_record(b"2025-06-01T11:47:57.7-05:30 stderr P x y").unwrap();
        assert_eq!(
            (r.stream, r.partial, r.content),
            (Stream::Stderr, true, &b"x y"[..])
        );
    }

    #[test]
    fn rejects_bad_records() {
        for bad in [
            &b""[..],
            b"x stdout F a",
            b"2025-06-01T11:47:57.1+00:00 stdin F a",
            b"2025-06-01T11:47:57.1+00:00 stdout F",
            b"2025-06-01T11:47:57.1+00:00 stdout X a",
            b"2025-06-01T11:47:57+00:00 stdout F a",
            // Found by fuzzing: a long year must not make the check slice past the end.
            b"0000000000000000000000- stdout F x",
        ] {
            assert!(
                parse_record(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
