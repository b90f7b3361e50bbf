//! The monitor's own diagnostics: `[conmon:e]: ...` lines on stderr (until
//! stderr becomes /dev/null) and, with `--syslog`, the same text via syslog(3).
//!
//! The configuration is set once at start-up and never changes afterwards.

use std::ffi::CString;
use std::io::Write;
use std::sync::OnceLock;

/// conmon's verbosity levels, least to most verbose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    /// Parse `--log-level` (case-insensitive).
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.to_ascii_lowercase().as_str() {
            "error" | "fatal" | "panic" => Level::Error,
            "warn" | "warning" => Level::Warn,
            "info" => Level::Info,
            "debug" => Level::Debug,
            "trace" => Level::Trace,
            _ => return None,
        })
    }
}

struct Config {
    level: Level,
    syslog: bool,
    /// `<cid>` or `<cid>: <tag>`, cut to 20 bytes (conmon's syslog prefix).
    syslog_id: String,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

/// Fix the diagnostics configuration (first call wins).
pub fn init(level: Level, syslog: bool, cid: &str, tag: Option<&str>) {
    let mut id = match tag {
        Some(t) => format!("{cid}: {t}"),
        None => cid.to_string(),
    };
    if id.len() > 20 {
        let mut cut = 20;
        while !id.is_char_boundary(cut) {
            cut -= 1;
        }
        id.truncate(cut);
    }
    let _ = CONFIG.set(Config {
        level,
        syslog,
        syslog_id: id,
    });
}

fn config() -> (Level, bool, &'static str) {
    match CONFIG.get() {
        Some(c) => (c.level, c.syslog, c.syslog_id.as_str()),
        None => (Level::Warn, false, ""),
    }
}

/// The C library's text for an errno value.
pub fn strerror(errno: i32) -> String {
    std::io::Error::from_raw_os_error(errno)
        .to_string()
        .split(" (os error")
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Emit one diagnostic. `errno` appends ` <strerror>` (`: <strerror>` in syslog).
pub fn emit(kind: Kind, text: &str, errno: Option<i32>) {
    let (level, syslog, id) = config();
    if kind != Kind::Fatal && kind.level() > level {
        return;
    }
    let err = errno.map(strerror);
    let mut line = format!("[conmon:{}]: {}", kind.letter(), text);
    if let Some(e) = &err {
        line.push(' ');
        line.push_str(e);
    }
    line.push('\n');
    let _ = std::io::stderr().write_all(line.as_bytes());
    if syslog {
        let mut msg = format!(
            "conmon {} <{}>: {}",
            id,
            kind.syslog_tag(errno.is_some()),
            text
        );
        if let Some(e) = &err {
            msg.push_str(": ");
            msg.push_str(e);
        }
        msg.push('\n');
        let prio = if kind == Kind::Fatal {
            libc::LOG_ERR
        } else {
            libc::LOG_INFO
        };
        if let Ok(c) = CString::new(msg.replace('\0', " ")) {
            // SAFETY: "%s" with one valid NUL-terminated string argument.
            unsafe { libc::syslog(prio, b"%s\0".as_ptr().cast(), c.as_ptr()) };
        }
    }
}

/// What kind of message this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Fatal,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Kind {
    fn level(self) -> Level {
        match self {
            Kind::Fatal => Level::Error,
            Kind::Warn => Level::Warn,
            Kind::Info => Level::Info,
            Kind::Debug => Level::Debug,
            Kind::Trace => Level::Trace,
        }
    }

    fn letter(self) -> char {
        match self {
            Kind::Fatal => 'e',
            Kind::Warn => 'w',
            Kind::Info => 'i',
            Kind::Debug | Kind::Trace => 'd',
        }
    }

    fn syslog_tag(self, with_errno: bool) -> &'static str {
        match (self, with_errno) {
            (Kind::Fatal, _) => "error",
            (Kind::Warn, false) => "nwarn",
            (Kind::Warn, true) => "pwarnf",
            (Kind::Info, _) => "ninfo",
            (Kind::Debug, _) => "ndebug",
            (Kind::Trace, _) => "ntrace",
        }
    }
}

/// Is `level` enabled? Lets callers skip formatting.
pub fn enabled(level: Level) -> bool {
    config().0 >= level
}

#[macro_export]
macro_rules! warn {
    ($($a:tt)*) => { $crate::diag::emit($crate::diag::Kind::Warn, &format!($($a)*), None) };
}
#[macro_export]
macro_rules! warn_errno {
    ($errno:expr, $($a:tt)*) => { $crate::diag::emit($crate::diag::Kind::Warn, &format!($($a)*), Some($errno)) };
}
#[macro_export]
macro_rules! info {
    ($($a:tt)*) => { if $crate::diag::enabled($crate::diag::Level::Info) { $crate::diag::emit($crate::diag::Kind::Info, &format!($($a)*), None) } };
}
#[macro_export]
macro_rules! debug {
    ($($a:tt)*) => { if $crate::diag::enabled($crate::diag::Level::Debug) { $crate::diag::emit($crate::diag::Kind::Debug, &format!($($a)*), None) } };
}
#[macro_export]
macro_rules! trace {
    ($($a:tt)*) => { if $crate::diag::enabled($crate::diag::Level::Trace) { $crate::diag::emit($crate::diag::Kind::Trace, &format!($($a)*), None) } };
}

/// A fatal error: printed as `[conmon:e]: text[ strerror]`, then exit status 1.
#[derive(Debug)]
pub struct Fatal {
    pub text: String,
    pub errno: Option<i32>,
}

impl Fatal {
    pub fn new(text: impl Into<String>) -> Fatal {
        Fatal {
            text: text.into(),
            errno: None,
        }
    }

    /// With the current `errno` appended.
    pub fn errno(text: impl Into<String>) -> Fatal {
        Fatal {
            text: text.into(),
            errno: Some(last_errno()),
        }
    }

    pub fn from_nix(text: impl Into<String>, e: nix::errno::Errno) -> Fatal {
        Fatal {
            text: text.into(),
            errno: Some(e as i32),
        }
    }

    pub fn from_io(text: impl Into<String>, e: &std::io::Error) -> Fatal {
        Fatal {
            text: text.into(),
            errno: Some(e.raw_os_error().unwrap_or(libc::EIO)),
        }
    }

    pub fn report(&self) {
        emit(Kind::Fatal, &self.text, self.errno);
    }
}

/// The calling thread's errno.
pub fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}
