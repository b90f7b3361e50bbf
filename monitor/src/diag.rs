//! The monitor's own diagnostics: `[conmon:e]: ...` lines on stderr (until
//! stderr becomes /dev/null) and, with `--syslog`, the same text via syslog(3),
//! behind the `log` facade (the `warn!`/`info!`/... macros below make `log`
//! records through [`emit`], errno as a key-value; [`Diagnostics`] is the
//! `log::Log` that writes them).
//!
//! `--syslog` stays on the C library's syslog(3), as conmon calls it: records
//! tagged `conmon:` (the syslog crate always writes `process[pid]:`, and it
//! made the binary 16 % larger; docs/performance.md).
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

/// The `log` target of the monitor's own diagnostics.
const TARGET: &str = "conmon";

/// The monitor's diagnostics sink behind the `log` facade: `[conmon:X]: ...`
/// on stderr (until stderr becomes /dev/null) and, with `--syslog`, conmon's
/// syslog line. Stateless: it reads the configuration fixed by [`init`].
struct Diagnostics;

static DIAGNOSTICS: Diagnostics = Diagnostics;

impl log::Log for Diagnostics {
    fn enabled(&self, meta: &log::Metadata<'_>) -> bool {
        // Fatal errors (log::Level::Error) are never filtered.
        meta.level() == log::Level::Error || Kind::from_log(meta.level()).level() <= config().0
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let kind = Kind::from_log(record.level());
        let errno = record
            .key_values()
            .get(log::kv::Key::from_str("errno"))
            .and_then(|v| v.to_i64())
            .map(|e| e as i32);
        let text = record.args().to_string();
        write_line(kind, &text, errno);
    }

    fn flush(&self) {}
}

/// Install [`Diagnostics`] as the `log` logger (idempotent).
fn install() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        if log::set_logger(&DIAGNOSTICS).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
    });
}

/// Emit one diagnostic through the `log` facade. `errno` appends
/// ` <strerror>` (`: <strerror>` in syslog).
///
/// Never inlined: the record building would otherwise be copied into each
/// of the ~40 callers (+35 KiB of text, measured; see docs/performance.md).
#[inline(never)]
pub fn emit(kind: Kind, text: &str, errno: Option<i32>) {
    install();
    let errno_kv = errno.map(|e| [("errno", e)]);
    let kvs: &[(&str, i32)] = errno_kv.as_ref().map_or(&[], |kv| &kv[..]);
    log::logger().log(
        &log::Record::builder()
            .level(kind.log_level())
            .target(TARGET)
            .args(format_args!("{text}"))
            .key_values(&kvs)
            .build(),
    );
}

/// The two destinations, in conmon's formats.
fn write_line(kind: Kind, text: &str, errno: Option<i32>) {
    let (_, syslog, id) = config();
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
            unsafe { libc::syslog(prio, c"%s".as_ptr(), c.as_ptr()) };
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
    fn log_level(self) -> log::Level {
        match self {
            Kind::Fatal => log::Level::Error,
            Kind::Warn => log::Level::Warn,
            Kind::Info => log::Level::Info,
            Kind::Debug => log::Level::Debug,
            Kind::Trace => log::Level::Trace,
        }
    }

    fn from_log(level: log::Level) -> Kind {
        match level {
            log::Level::Error => Kind::Fatal,
            log::Level::Warn => Kind::Warn,
            log::Level::Info => Kind::Info,
            log::Level::Debug => Kind::Debug,
            log::Level::Trace => Kind::Trace,
        }
    }

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
