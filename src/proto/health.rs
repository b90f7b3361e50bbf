//! Healthchecks (a vigil extension; Podman never asks conmon for them): the
//! health log the monitor keeps in the container's state directory, in the
//! format Podman 4.x writes to `healthcheck.log` (`{"Status":…,"FailingStreak":…,
//! "Log":[{"Start","End","ExitCode","Output"}]}`), the rules that turn one check's
//! result into a status, the command a Docker `Healthcheck.Test` array stands
//! for, and the times in Go's `RFC3339Nano`.
//!
//! The monitor encodes (it is the only writer); engines decode, to show
//! `State.Health` or the result of a check they asked for.

use std::fmt;

/// Name of the health log in the container's state directory (Podman's name).
pub const LOG_FILE: &str = "healthcheck.log";
/// Written next to the log by the monitor before it stops a container whose
/// check failed with `--health-on-failure restart`: the engine's exit command
/// starts it again when it finds this file.
pub const RESTART_MARKER: &str = "healthcheck.restart";
/// Entries kept in the log (Podman's `MaxHealthCheckNumberLogs`).
pub const MAX_LOG_ENTRIES: usize = 5;
/// Bytes of a check's output kept (Podman's `MaxHealthCheckLogLength`).
pub const MAX_OUTPUT: usize = 500;
/// `ExitCode` of a check killed at its timeout (Podman records -1).
pub const TIMED_OUT_EXIT_CODE: i32 = -1;

/// `Status` values.
pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

/// What the monitor does when a check leaves the container unhealthy
/// (Podman 4.6's `--health-on-failure`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnFailure {
    #[default]
    None,
    /// SIGKILL the container.
    Kill,
    /// Stop it (stop signal, SIGKILL after the stop timeout) and leave
    /// [`RESTART_MARKER`] for the engine, which starts it again.
    Restart,
    /// Stop it (stop signal, SIGKILL after the stop timeout).
    Stop,
}

impl OnFailure {
    pub fn parse(s: &str) -> Option<OnFailure> {
        Some(match s {
            "none" => OnFailure::None,
            "kill" => OnFailure::Kill,
            "restart" => OnFailure::Restart,
            "stop" => OnFailure::Stop,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::None => "none",
            OnFailure::Kill => "kill",
            OnFailure::Restart => "restart",
            OnFailure::Stop => "stop",
        }
    }
}

/// One check, as logged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// RFC3339Nano local time (see [`format_time`]).
    pub start: String,
    pub end: String,
    /// 0 healthy, 1 failed (any non-zero status, or the runtime could not
    /// run the command), -1 killed at the timeout.
    pub exit_code: i32,
    /// stdout and stderr, one trailing newline removed, at most [`MAX_OUTPUT`] bytes.
    pub output: String,
}

/// The whole health log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthLog {
    /// `starting`, `healthy`, `unhealthy` (empty: never set).
    pub status: String,
    pub failing_streak: u32,
    /// Oldest first, at most [`MAX_LOG_ENTRIES`].
    pub log: Vec<Entry>,
}

/// Why a health log could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid health log: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

impl HealthLog {
    /// Add one result with Podman's rules: success makes the container
    /// healthy and resets the streak; a failure outside the start period
    /// adds to the streak, and `retries` failures in a row make it unhealthy.
    /// A failure inside the start period is logged and counts for nothing.
    pub fn record(&mut self, entry: Entry, in_start_period: bool, retries: u32) {
        if entry.exit_code == 0 {
            self.status = HEALTHY.into();
            self.failing_streak = 0;
        } else {
            if self.status.is_empty() {
                self.status = HEALTHY.into();
            }
            if !in_start_period {
                self.failing_streak += 1;
                if self.failing_streak >= retries {
                    self.status = UNHEALTHY.into();
                }
            }
        }
        self.log.push(entry);
        if self.log.len() > MAX_LOG_ENTRIES {
            let extra = self.log.len() - MAX_LOG_ENTRIES;
            self.log.drain(..extra);
        }
    }

    /// The log as Go's `json.Marshal` writes it (no newline; `Log` is `null` when empty).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.log.len() * 160);
        out.extend_from_slice(b"{\"Status\":");
        json_string(&mut out, &self.status);
        out.extend_from_slice(b",\"FailingStreak\":");
        out.extend_from_slice(self.failing_streak.to_string().as_bytes());
        out.extend_from_slice(b",\"Log\":");
        if self.log.is_empty() {
            out.extend_from_slice(b"null");
        } else {
            out.push(b'[');
            for (i, e) in self.log.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"Start\":");
                json_string(&mut out, &e.start);
                out.extend_from_slice(b",\"End\":");
                json_string(&mut out, &e.end);
                out.extend_from_slice(b",\"ExitCode\":");
                out.extend_from_slice(e.exit_code.to_string().as_bytes());
                out.extend_from_slice(b",\"Output\":");
                json_string(&mut out, &e.output);
                out.push(b'}');
            }
            out.push(b']');
        }
        out.push(b'}');
        out
    }

    /// Read a log written by [`encode`](Self::encode) or by Podman (unknown
    /// keys are ignored, missing ones are empty).
    pub fn decode(bytes: &[u8]) -> Result<HealthLog, DecodeError> {
        let mut p = json::Parser::new(bytes);
        let value = p.document()?;
        let json::Value::Object(fields) = value else {
            return Err(DecodeError("not a JSON object".into()));
        };
        let mut log = HealthLog::default();
        for (k, v) in fields {
            match (k.as_str(), v) {
                ("Status", json::Value::String(s)) => log.status = s,
                ("FailingStreak", json::Value::Number(n)) => {
                    log.failing_streak = u32::try_from(n).unwrap_or(0)
                }
                ("Log", json::Value::Array(items)) => {
                    for item in items {
                        let json::Value::Object(f) = item else {
                            return Err(DecodeError("a Log entry is not an object".into()));
                        };
                        let mut e = Entry::default();
                        for (k, v) in f {
                            match (k.as_str(), v) {
                                ("Start", json::Value::String(s)) => e.start = s,
                                ("End", json::Value::String(s)) => e.end = s,
                                ("ExitCode", json::Value::Number(n)) => {
                                    e.exit_code = i32::try_from(n).unwrap_or(-1)
                                }
                                ("Output", json::Value::String(s)) => e.output = s,
                                _ => {}
                            }
                        }
                        log.log.push(e);
                    }
                }
                _ => {}
            }
        }
        Ok(log)
    }
}

/// What a check's captured output becomes in the log: one trailing newline
/// removed, then cut to [`MAX_OUTPUT`] bytes (Podman's order), invalid UTF-8
/// replaced. `captured` holds at most `MAX_OUTPUT + 1` bytes of a longer output.
pub fn log_output(captured: &[u8]) -> String {
    let trimmed = captured.strip_suffix(b"\n").unwrap_or(captured);
    String::from_utf8_lossy(&trimmed[..trimmed.len().min(MAX_OUTPUT)]).into_owned()
}

/// The argv a Docker `Healthcheck.Test` runs, as Podman 4.x decides:
/// `["CMD", args…]` runs args, `["CMD-SHELL", words…]` runs
/// `/bin/sh -c "<words joined by spaces>"`, `["NONE"]` or empty means no
/// check, and anything else is run as it is.
pub fn command_argv(test: &[String]) -> Option<Vec<String>> {
    let argv = match test.first().map(String::as_str) {
        None | Some("") | Some("NONE") => return None,
        Some("CMD") => test[1..].to_vec(),
        Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")],
        Some(_) => test.to_vec(),
    };
    match argv.first() {
        Some(a) if !a.is_empty() => Some(argv),
        _ => None,
    }
}

/// `sec.nsec` in local time as Go's `time.RFC3339Nano` prints it:
/// `2026-12-03T09:42:09.26646662Z` (fraction without trailing zeros, none at
/// all when zero; `Z` for a zero offset, else `+HH:MM`).
pub fn format_time(sec: i64, nsec: u32) -> String {
    // SAFETY: an all-zero tm is a valid value to be overwritten by localtime_r.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let t = sec as libc::time_t;
    // SAFETY: both pointers are valid for the call.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        // SAFETY: as above, with gmtime_r.
        unsafe { libc::gmtime_r(&t, &mut tm) };
    }
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        i64::from(tm.tm_year) + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    );
    if nsec > 0 {
        let frac = format!("{:09}", nsec.min(999_999_999));
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    #[allow(clippy::unnecessary_cast)]
    let off = tm.tm_gmtoff as i64;
    if off == 0 {
        s.push('Z');
    } else {
        let (sign, abs) = if off < 0 { ('-', -off) } else { ('+', off) };
        s.push_str(&format!("{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60));
    }
    s
}

/// A JSON string as Go's encoder writes it (HTML-safe: `<`, `>`, `&`
/// escaped; U+2028 and U+2029 escaped).
fn json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Just enough JSON to read a health log: bounded nesting, numbers as i64.
mod json {
    use super::DecodeError;

    pub enum Value {
        Null,
        Bool,
        Number(i64),
        String(String),
        Array(Vec<Value>),
        Object(Vec<(String, Value)>),
    }

    const MAX_DEPTH: usize = 16;

    pub struct Parser<'a> {
        b: &'a [u8],
        i: usize,
    }

    fn err<T>(what: &str, at: usize) -> Result<T, DecodeError> {
        Err(DecodeError(format!("{what} at byte {at}")))
    }

    impl<'a> Parser<'a> {
        pub fn new(b: &'a [u8]) -> Parser<'a> {
            Parser { b, i: 0 }
        }

        pub fn document(&mut self) -> Result<Value, DecodeError> {
            let v = self.value(0)?;
            self.ws();
            if self.i != self.b.len() {
                return err("trailing data", self.i);
            }
            Ok(v)
        }

        fn ws(&mut self) {
            while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            }
        }

        fn eat(&mut self, lit: &[u8]) -> bool {
            if self.b[self.i..].starts_with(lit) {
                self.i += lit.len();
                true
            } else {
                false
            }
        }

        fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
            if depth > MAX_DEPTH {
                return err("nested too deeply", self.i);
            }
            self.ws();
            match self.b.get(self.i) {
                None => err("unexpected end", self.i),
                Some(b'{') => {
                    self.i += 1;
                    let mut fields = Vec::new();
                    self.ws();
                    if self.eat(b"}") {
                        return Ok(Value::Object(fields));
                    }
                    loop {
                        self.ws();
                        let k = self.string()?;
                        self.ws();
                        if !self.eat(b":") {
                            return err("expected ':'", self.i);
                        }
                        let v = self.value(depth + 1)?;
                        fields.push((k, v));
                        self.ws();
                        if self.eat(b",") {
                            continue;
                        }
                        if self.eat(b"}") {
                            return Ok(Value::Object(fields));
                        }
                        return err("expected ',' or '}'", self.i);
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    let mut items = Vec::new();
                    self.ws();
                    if self.eat(b"]") {
                        return Ok(Value::Array(items));
                    }
                    loop {
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        if self.eat(b",") {
                            continue;
                        }
                        if self.eat(b"]") {
                            return Ok(Value::Array(items));
                        }
                        return err("expected ',' or ']'", self.i);
                    }
                }
                Some(b'"') => Ok(Value::String(self.string()?)),
                Some(b't') if self.eat(b"true") => Ok(Value::Bool),
                Some(b'f') if self.eat(b"false") => Ok(Value::Bool),
                Some(b'n') if self.eat(b"null") => Ok(Value::Null),
                Some(b'-' | b'0'..=b'9') => self.number(),
                Some(_) => err("unexpected character", self.i),
            }
        }

        fn number(&mut self) -> Result<Value, DecodeError> {
            let start = self.i;
            if self.b[self.i] == b'-' {
                self.i += 1;
            }
            while self.i < self.b.len()
                && matches!(
                    self.b[self.i],
                    b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'
                )
            {
                self.i += 1;
            }
            let text = std::str::from_utf8(&self.b[start..self.i]).unwrap_or("");
            match text.parse::<i64>() {
                Ok(n) => Ok(Value::Number(n)),
                Err(_) => match text.parse::<f64>() {
                    Ok(f) => Ok(Value::Number(f as i64)),
                    Err(_) => err("bad number", start),
                },
            }
        }

        fn hex4(&mut self) -> Result<u32, DecodeError> {
            let h = self
                .b
                .get(self.i..self.i + 4)
                .ok_or(DecodeError("short \\u escape".into()))?;
            let s = std::str::from_utf8(h).map_err(|_| DecodeError("bad \\u escape".into()))?;
            let v = u32::from_str_radix(s, 16).map_err(|_| DecodeError("bad \\u escape".into()))?;
            self.i += 4;
            Ok(v)
        }

        fn string(&mut self) -> Result<String, DecodeError> {
            if !self.eat(b"\"") {
                return err("expected a string", self.i);
            }
            let mut out: Vec<u8> = Vec::new();
            loop {
                let Some(&c) = self.b.get(self.i) else {
                    return err("unterminated string", self.i);
                };
                self.i += 1;
                match c {
                    b'"' => return Ok(String::from_utf8_lossy(&out).into_owned()),
                    b'\\' => {
                        let Some(&e) = self.b.get(self.i) else {
                            return err("unterminated escape", self.i);
                        };
                        self.i += 1;
                        let ch = match e {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'u' => {
                                let hi = self.hex4()?;
                                let cp = if (0xd800..0xdc00).contains(&hi) && self.eat(b"\\u") {
                                    let lo = self.hex4()?;
                                    if (0xdc00..0xe000).contains(&lo) {
                                        0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                                    } else {
                                        0xfffd
                                    }
                                } else {
                                    hi
                                };
                                char::from_u32(cp).unwrap_or('\u{fffd}')
                            }
                            _ => return err("bad escape", self.i - 1),
                        };
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    c => out.push(c),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(code: i32) -> Entry {
        Entry {
            start: "2026-12-03T09:42:09.266466626Z".into(),
            end: "2026-12-03T09:42:09.533445591Z".into(),
            exit_code: code,
            output: "hello".into(),
        }
    }

    #[test]
    fn encodes_like_podman() {
        let mut log = HealthLog {
            status: STARTING.into(),
            ..Default::default()
        };
        assert_eq!(
            log.encode(),
            br#"{"Status":"starting","FailingStreak":0,"Log":null}"#
        );
        log.record(entry(0), false, 3);
        assert_eq!(
            String::from_utf8(log.encode()).unwrap(),
            r#"{"Status":"healthy","FailingStreak":0,"Log":[{"Start":"2026-12-03T09:42:09.266466626Z","End":"2026-12-03T09:42:09.533445591Z","ExitCode":0,"Output":"hello"}]}"#
        );
        let mut e = entry(1);
        e.output = "a\n<b>&\"\\\u{1}\t".into();
        let mut l = HealthLog::default();
        l.record(e, false, 3);
        let text = String::from_utf8(l.encode()).unwrap();
        assert!(
            text.contains(r#""Output":"a\n\u003cb\u003e\u0026\"\\\u0001\t""#),
            "{text}"
        );
        assert_eq!(HealthLog::decode(text.as_bytes()).unwrap(), l);
    }

    #[test]
    fn status_rules() {
        let mut log = HealthLog {
            status: STARTING.into(),
            ..Default::default()
        };
        log.record(entry(1), true, 2);
        assert_eq!((log.status.as_str(), log.failing_streak), (STARTING, 0));
        log.record(entry(1), false, 2);
        assert_eq!((log.status.as_str(), log.failing_streak), (STARTING, 1));
        log.record(entry(1), false, 2);
        assert_eq!((log.status.as_str(), log.failing_streak), (UNHEALTHY, 2));
        log.record(entry(0), false, 2);
        assert_eq!((log.status.as_str(), log.failing_streak), (HEALTHY, 0));
        for _ in 0..7 {
            log.record(entry(1), false, 2);
        }
        assert_eq!(log.log.len(), MAX_LOG_ENTRIES);
        assert_eq!(log.failing_streak, 7);
        // A log never given a status becomes healthy on its first failure (Podman).
        let mut fresh = HealthLog::default();
        fresh.record(entry(1), false, 3);
        assert_eq!(fresh.status, HEALTHY);
    }

    #[test]
    fn decodes_podman_file_and_rejects_garbage() {
        let podman = br#"{"Status":"unhealthy","FailingStreak":3,"Log":[{"Start":"2026-12-03T09:42:14.191420827Z","End":"2026-12-03T09:42:14.510457024Z","ExitCode":1,"Output":"line1\nnonlline2"}]}"#;
        let log = HealthLog::decode(podman).unwrap();
        assert_eq!(log.status, UNHEALTHY);
        assert_eq!(log.failing_streak, 3);
        assert_eq!(log.log[0].output, "line1\nnonlline2");
        assert_eq!(log.encode(), podman.to_vec());
        for bad in [
            &b""[..],
            b"[",
            b"{\"Status\":",
            b"{\"Log\":[1]}",
            b"{} x",
            b"\"s\"",
        ] {
            assert!(HealthLog::decode(bad).is_err(), "{bad:?}");
        }
        let deep = "[".repeat(100);
        assert!(HealthLog::decode(deep.as_bytes()).is_err());
    }

    #[test]
    fn output_trimmed_then_cut() {
        assert_eq!(log_output(b"hello\n"), "hello");
        assert_eq!(log_output(b"a\n\n"), "a\n");
        let long = vec![b'y'; MAX_OUTPUT + 1];
        assert_eq!(log_output(&long).len(), MAX_OUTPUT);
    }

    #[test]
    fn test_arrays() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            command_argv(&v(&["CMD", "true", "x"])),
            Some(v(&["true", "x"]))
        );
        assert_eq!(
            command_argv(&v(&["CMD-SHELL", "echo a", "b"])),
            Some(v(&["/bin/sh", "-c", "echo a b"]))
        );
        assert_eq!(command_argv(&v(&["NONE"])), None);
        assert_eq!(command_argv(&v(&[])), None);
        assert_eq!(command_argv(&v(&["CMD"])), None);
        assert_eq!(command_argv(&v(&["/bin/x"])), Some(v(&["/bin/x"])));
        assert_eq!(OnFailure::parse("restart"), Some(OnFailure::Restart));
        assert_eq!(OnFailure::parse("bogus"), None);
    }

    #[test]
    fn times() {
        std::env::set_var("TZ", "UTC");
        assert_eq!(
            format_time(1_796_290_929, 266_466_620),
            "2026-12-03T09:42:09.26646662Z"
        );
        assert_eq!(format_time(0, 0), "1970-01-01T00:00:00Z");
    }
}
