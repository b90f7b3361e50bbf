//! Messages on the sync pipe (`_OCI_SYNCPIPE`) and attach pipe (`_OCI_ATTACHPIPE`).
//!
//! Each message is one JSON line written with one `write`:
//! `{"<key>": <int>}\n` or `{"<key>": <int>, "message": "<escaped>"}\n`, with
//! exactly conmon 2.2.1's spacing and escaping (engines compare bytes in tests).

use std::fmt;

/// The JSON key of a message; chosen by API version and mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncKey {
    /// `--api-version` given (Podman): `data`.
    Data,
    /// Legacy API, create/restore (CRI-O): `pid`.
    Pid,
    /// Legacy API, exec (CRI-O exec-sync): `exit_code`.
    ExitCode,
}

impl SyncKey {
    /// The key for a monitor started with/without `--api-version`, in exec mode or not.
    pub fn for_mode(api_version_1: bool, exec: bool) -> SyncKey {
        match (api_version_1, exec) {
            (true, _) => SyncKey::Data,
            (false, true) => SyncKey::ExitCode,
            (false, false) => SyncKey::Pid,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SyncKey::Data => "data",
            SyncKey::Pid => "pid",
            SyncKey::ExitCode => "exit_code",
        }
    }

    fn from_str(s: &str) -> Option<SyncKey> {
        match s {
            "data" => Some(SyncKey::Data),
            "pid" => Some(SyncKey::Pid),
            "exit_code" => Some(SyncKey::ExitCode),
            _ => None,
        }
    }
}

/// Message text the monitor sends when an exec session hit `--timeout`.
pub const TIMED_OUT_MESSAGE: &str = "command timed out";

/// Encode one message, newline included, into `out` (cleared first).
///
/// `message` is only emitted when non-empty, like conmon.
pub fn encode(key: SyncKey, value: i64, message: Option<&[u8]>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(key.as_str().as_bytes());
    out.extend_from_slice(b"\": ");
    out.extend_from_slice(value.to_string().as_bytes());
    if let Some(msg) = message.filter(|m| !m.is_empty()) {
        out.extend_from_slice(b", \"message\": \"");
        escape_into(msg, out);
        out.push(b'"');
    }
    out.extend_from_slice(b"}\n");
}

/// conmon 2.2.x string escaping: `\\ \" \/ \n \r \t \b \f`, other control bytes
/// and DEL as `\u00xx`, bytes >= 0x80 raw (no UTF-8 validation).
pub fn escape_into(s: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in s {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x00..=0x1f | 0x7f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
            }
            _ => out.push(b),
        }
    }
}

/// A decoded sync/attach-pipe message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncMessage {
    pub key: SyncKey,
    pub value: i64,
    /// The `message` member, unescaped (lossy for invalid UTF-8).
    pub message: Option<String>,
}

impl SyncMessage {
    /// A negative value means failure; `message` then carries the reason.
    pub fn is_error(&self) -> bool {
        self.value < 0
    }
}

/// Why a line could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid monitor message: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Decode one message line (trailing newline optional). Accepts any JSON
/// whitespace and member order, so it also reads conmon 2.1.6's output.
pub fn decode(line: &[u8]) -> Result<SyncMessage, DecodeError> {
    let mut p = Parser { s: line, i: 0 };
    p.ws();
    p.expect(b'{')?;
    let mut key = None;
    let mut value = None;
    let mut message = None;
    loop {
        p.ws();
        if p.peek() == Some(b'}') {
            p.i += 1;
            break;
        }
        let name = p.string()?;
        p.ws();
        p.expect(b':')?;
        p.ws();
        if name == "message" {
            message = Some(p.string()?);
        } else if let Some(k) = SyncKey::from_str(&name) {
            key = Some(k);
            value = Some(p.int()?);
        } else {
            return Err(DecodeError("unknown member"));
        }
        p.ws();
        match p.peek() {
            Some(b',') => p.i += 1,
            Some(b'}') => {}
            _ => return Err(DecodeError("expected ',' or '}'")),
        }
    }
    p.ws();
    if p.i != p.s.len() {
        return Err(DecodeError("trailing bytes"));
    }
    match (key, value) {
        (Some(key), Some(value)) => Ok(SyncMessage {
            key,
            value,
            message,
        }),
        _ => Err(DecodeError("no data/pid/exit_code member")),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), DecodeError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(DecodeError("unexpected byte"))
        }
    }

    fn int(&mut self) -> Result<i64, DecodeError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or(DecodeError("bad integer"))
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            let b = self.peek().ok_or(DecodeError("unterminated string"))?;
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let e = self.peek().ok_or(DecodeError("unterminated escape"))?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = self
                                .s
                                .get(self.i..self.i + 4)
                                .ok_or(DecodeError("short \\u"))?;
                            self.i += 4;
                            let cp = std::str::from_utf8(hex)
                                .ok()
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .ok_or(DecodeError("bad \\u"))?;
                            let c = char::from_u32(cp).unwrap_or('\u{fffd}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(DecodeError("bad escape")),
                    }
                }
                _ => out.push(b),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(key: SyncKey, v: i64, m: Option<&str>) -> String {
        let mut out = Vec::new();
        encode(key, v, m.map(str::as_bytes), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn encodes_exact_bytes() {
        assert_eq!(enc(SyncKey::Data, 27049, None), "{\"data\": 27049}\n");
        assert_eq!(enc(SyncKey::Pid, -1, Some("")), "{\"pid\": -1}\n");
        assert_eq!(
            enc(SyncKey::ExitCode, -1, Some(TIMED_OUT_MESSAGE)),
            "{\"exit_code\": -1, \"message\": \"command timed out\"}\n"
        );
        assert_eq!(
            enc(SyncKey::Data, -1, Some("a\"b\\c/d\ne\r\t\x08\x0c\x01\x7f\u{e9}")),
            "{\"data\": -1, \"message\": \"a\\\"b\\\\c\\/d\\ne\\r\\t\\b\\f\\u0001\\u007f\u{e9}\"}\n"
        );
    }

    #[test]
    fn keys_per_mode() {
        assert_eq!(SyncKey::for_mode(true, true), SyncKey::Data);
        assert_eq!(SyncKey::for_mode(false, true), SyncKey::ExitCode);
        assert_eq!(SyncKey::for_mode(false, false), SyncKey::Pid);
    }

    #[test]
    fn decode_roundtrip() {
        let text = "x\"/\\\n\u{1}é";
        let line = enc(SyncKey::Data, -1, Some(text));
        let m = decode(line.as_bytes()).unwrap();
        assert_eq!(m.key, SyncKey::Data);
        assert_eq!(m.value, -1);
        assert_eq!(m.message.as_deref(), Some(text));
        assert!(m.is_error());
        let m = decode(b"{\"pid\":42}").unwrap();
        assert_eq!((m.key, m.value, m.message), (SyncKey::Pid, 42, None));
    }

    #[test]
    fn decode_rejects_garbage() {
        for bad in [
            &b""[..],
            b"{",
            b"{}",
            b"{\"data\": }",
            b"{\"data\": 1} x",
            b"{\"x\": 1}",
            b"{\"message\": \"\\u12\"}",
        ] {
            assert!(decode(bad).is_err(), "{:?}", bad);
        }
    }
}
