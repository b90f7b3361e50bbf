//! The `ctl` and `winsz` FIFO line grammar.
//!
//! `ctl` carries `TYPE HEIGHT WIDTH\n` (1 = resize, 2 = reopen logs), `winsz`
//! carries `HEIGHT WIDTH\n`. Lines are parsed like C `sscanf("%d %d %d")`:
//! leading whitespace, optional sign, decimal digits; trailing text after the
//! last integer is ignored (`1 2 2 3` is a 2x2 resize, `1 0x10 0x20` is rejected).

use std::fmt;

/// ctl message type for a terminal resize.
pub const WIN_RESIZE_EVENT: i64 = 1;
/// ctl message type for a log reopen.
pub const REOPEN_LOGS_EVENT: i64 = 2;
/// ctl message type asking for a healthcheck now (vigil extension; conmon
/// rejects it with "Invalid control message type").
pub const HEALTHCHECK_EVENT: i64 = 10;
/// Largest accepted height/width.
pub const MAX_WINDOW_DIM: i64 = 1000;
/// Bytes read from a FIFO at most per call; lines longer than this are dropped.
pub const LINE_MAX: usize = 199;

/// A valid `ctl` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtlMessage {
    Resize {
        height: u16,
        width: u16,
    },
    ReopenLogs,
    /// Run the container's healthcheck now (vigil extension).
    HealthCheck,
}

/// Why a line was rejected; `Display` gives conmon's warning text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtlError {
    Format,
    Type(i64),
    WindowSize(i64, i64),
    WinszFormat,
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtlError::Format => f.write_str("Invalid control message format"),
            CtlError::Type(t) => write!(f, "Invalid control message type: {t}"),
            CtlError::WindowSize(h, w) => {
                write!(
                    f,
                    "Invalid window size: {h}x{w} (must be between 0 and 1000)"
                )
            }
            CtlError::WinszFormat => f.write_str("Failed to parse window size"),
        }
    }
}

impl std::error::Error for CtlError {}

/// Parse up to `N` integers the way `sscanf("%d %d ...")` does; returns how
/// many matched. Values are saturated to i64 (any huge value is out of range anyway).
pub fn scan_ints<const N: usize>(line: &[u8]) -> ([i64; N], usize) {
    let mut vals = [0i64; N];
    let mut i = 0;
    for (n, slot) in vals.iter_mut().enumerate() {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut neg = false;
        if i < line.len() && (line[i] == b'-' || line[i] == b'+') {
            neg = line[i] == b'-';
            i += 1;
        }
        let start = i;
        let mut v: i64 = 0;
        while i < line.len() && line[i].is_ascii_digit() {
            v = v
                .saturating_mul(10)
                .saturating_add(i64::from(line[i] - b'0'));
            i += 1;
        }
        if i == start {
            return (vals, n);
        }
        *slot = if neg { -v } else { v };
    }
    (vals, N)
}

fn check_dims(h: i64, w: i64) -> Result<(u16, u16), CtlError> {
    if !(0..=MAX_WINDOW_DIM).contains(&h) || !(0..=MAX_WINDOW_DIM).contains(&w) {
        return Err(CtlError::WindowSize(h, w));
    }
    Ok((h as u16, w as u16))
}

/// Parse one `ctl` line (without its newline). The size range applies to type 2 too.
pub fn parse_ctl(line: &[u8]) -> Result<CtlMessage, CtlError> {
    let ([ty, h, w], n) = scan_ints::<3>(line);
    if n < 3 {
        return Err(CtlError::Format);
    }
    if ty != WIN_RESIZE_EVENT && ty != REOPEN_LOGS_EVENT && ty != HEALTHCHECK_EVENT {
        return Err(CtlError::Type(ty));
    }
    let (height, width) = check_dims(h, w)?;
    Ok(match ty {
        WIN_RESIZE_EVENT => CtlMessage::Resize { height, width },
        REOPEN_LOGS_EVENT => CtlMessage::ReopenLogs,
        _ => CtlMessage::HealthCheck,
    })
}

/// Parse one `winsz` line: `(height, width)`.
pub fn parse_winsz(line: &[u8]) -> Result<(u16, u16), CtlError> {
    let ([h, w], n) = scan_ints::<2>(line);
    if n < 2 {
        return Err(CtlError::WinszFormat);
    }
    check_dims(h, w)
}

/// Encode a `ctl` line as Podman and CRI-O write it.
pub fn encode_ctl(msg: CtlMessage) -> String {
    match msg {
        CtlMessage::Resize { height, width } => format!("{WIN_RESIZE_EVENT} {height} {width}\n"),
        CtlMessage::ReopenLogs => format!("{REOPEN_LOGS_EVENT} 0 0\n"),
        CtlMessage::HealthCheck => format!("{HEALTHCHECK_EVENT} 0 0\n"),
    }
}

/// Line assembly for a FIFO: fixed 200-byte buffer, reads of at most
/// [`LINE_MAX`] bytes, incomplete tails carried over.
///
/// Unlike conmon, a line that overflows the buffer is discarded up to and
/// including its newline (conmon would parse its tail as a fresh line), and a
/// rejected line does not discard the lines after it in the same read.
pub struct LineBuffer {
    buf: [u8; LINE_MAX + 1],
    len: usize,
    skipping: bool,
}

/// What [`LineBuffer::commit`] found besides complete lines.
#[derive(Debug, PartialEq, Eq)]
pub enum Overflow {
    None,
    /// `LINE_MAX` bytes without a newline were dropped.
    NoNewline,
}

impl Default for LineBuffer {
    fn default() -> Self {
        LineBuffer {
            buf: [0; LINE_MAX + 1],
            len: 0,
            skipping: false,
        }
    }
}

impl LineBuffer {
    /// Free space to read into (never empty).
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.buf[self.len..LINE_MAX]
    }

    /// Account for `n` bytes read into [`space`](Self::space), calling `on_line`
    /// for each complete line (newline stripped).
    pub fn commit(&mut self, n: usize, mut on_line: impl FnMut(&[u8])) -> Overflow {
        self.len += n;
        let mut start = 0;
        while let Some(pos) = self.buf[start..self.len].iter().position(|&b| b == b'\n') {
            let end = start + pos;
            if self.skipping {
                self.skipping = false;
            } else {
                on_line(&self.buf[start..end]);
            }
            start = end + 1;
        }
        self.buf.copy_within(start..self.len, 0);
        self.len -= start;
        if self.len >= LINE_MAX {
            self.len = 0;
            self.skipping = true;
            return Overflow::NoNewline;
        }
        Overflow::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctl_accepts_like_sscanf() {
        let ok = |s: &str, h, w| {
            assert_eq!(
                parse_ctl(s.as_bytes()),
                Ok(CtlMessage::Resize {
                    height: h,
                    width: w
                }),
                "{s}"
            )
        };
        ok("1 2 2", 2, 2);
        ok("1 2 2 3", 2, 2);
        ok("1 0010 0020", 10, 20);
        ok("1 1000 1000", 1000, 1000);
        ok("  1\t+3 4junk", 3, 4);
        assert_eq!(parse_ctl(b"2 0 0"), Ok(CtlMessage::ReopenLogs));
        assert_eq!(parse_ctl(b"2 1 1"), Ok(CtlMessage::ReopenLogs));
    }

    #[test]
    fn ctl_rejects() {
        for s in ["1", "1 2", "foo", "1 10.5 20.3", "1 0x10 0x20", "999", ""] {
            assert_eq!(parse_ctl(s.as_bytes()), Err(CtlError::Format), "{s}");
        }
        assert_eq!(parse_ctl(b"999 2 2"), Err(CtlError::Type(999)));
        assert_eq!(parse_ctl(b"1 -1 -1"), Err(CtlError::WindowSize(-1, -1)));
        assert_eq!(
            parse_ctl(b"1 1001 1000"),
            Err(CtlError::WindowSize(1001, 1000))
        );
        assert_eq!(parse_ctl(b"2 5000 0"), Err(CtlError::WindowSize(5000, 0)));
        assert_eq!(
            CtlError::WindowSize(1, 1001).to_string(),
            "Invalid window size: 1x1001 (must be between 0 and 1000)"
        );
        assert_eq!(
            parse_ctl(b"1 99999999999999999999999 1"),
            Err(CtlError::WindowSize(i64::MAX, 1))
        );
    }

    #[test]
    fn winsz_lines() {
        assert_eq!(parse_winsz(b"24 80"), Ok((24, 80)));
        assert_eq!(parse_winsz(b"24"), Err(CtlError::WinszFormat));
    }

    fn feed(lb: &mut LineBuffer, data: &[u8], lines: &mut Vec<Vec<u8>>) -> Vec<Overflow> {
        let mut res = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let space = lb.space();
            let n = space.len().min(rest.len());
            space[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            res.push(lb.commit(n, |l| lines.push(l.to_vec())));
        }
        res
    }

    #[test]
    fn line_buffer_assembles_and_drops_long_lines() {
        let mut lb = LineBuffer::default();
        let mut lines = Vec::new();
        feed(&mut lb, b"1 2", &mut lines);
        feed(&mut lb, b" 2\n2 0 0\n1 3", &mut lines);
        assert_eq!(lines, vec![b"1 2 2".to_vec(), b"2 0 0".to_vec()]);
        lines.clear();
        let mut long = b"4 4\n1 2 2".to_vec();
        long.extend(std::iter::repeat_n(b'#', 65535));
        long.extend_from_slice(b"\n1 5 5\n");
        let ov = feed(&mut lb, &long, &mut lines);
        assert!(ov.contains(&Overflow::NoNewline));
        assert_eq!(lines, vec![b"1 34 4".to_vec(), b"1 5 5".to_vec()]);
    }
}
