//! The runner's diagnostics, through the `log` facade: warnings, errors and
//! debug lines below the CLI are `log::warn!`, `log::error!`, `log::debug!`,
//! and [`init`] installs the one [`log::Log`] that shows them.
//!
//! `--log-level` picks what is shown (Podman's levels; `fatal` and `panic`
//! show errors only). Lines go to stderr in Podman's (logrus') text form,
//! `WARN[0003] message`: the level's four letters and the whole seconds since
//! vigil started. With `--syslog` every line shown also goes to the local
//! syslog (`/dev/log`) through the syslog crate, as RFC 3164 records from
//! `vigil[PID]`, facility user; as with Podman, a syslog that cannot be
//! reached is only a debug message.

use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use log::{Level, LevelFilter, Log, Metadata, Record};
use syslog::{Facility, Formatter3164, LoggerBackend};

use crate::context::LogLevel;

type Syslog = syslog::Logger<LoggerBackend, Formatter3164>;

/// Shows records up to `level` on stderr and, if connected, in syslog.
pub struct Logger {
    level: LevelFilter,
    start: Instant,
    syslog: Option<Mutex<Syslog>>,
}

/// The `log` filter for a `--log-level`.
pub fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Trace => LevelFilter::Trace,
        LogLevel::Debug => LevelFilter::Debug,
        LogLevel::Info => LevelFilter::Info,
        LogLevel::Warn => LevelFilter::Warn,
        LogLevel::Error | LogLevel::Fatal | LogLevel::Panic => LevelFilter::Error,
    }
}

/// logrus' four-letter level names.
fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "ERRO",
        Level::Warn => "WARN",
        Level::Info => "INFO",
        Level::Debug => "DEBU",
        Level::Trace => "TRAC",
    }
}

impl Logger {
    pub fn new(level: LogLevel, start: Instant) -> Logger {
        Logger {
            level: level_filter(level),
            start,
            syslog: None,
        }
    }

    /// Also send what is shown to the local syslog. The error says why it
    /// cannot be reached.
    pub fn connect_syslog(&mut self) -> Result<(), String> {
        let formatter = Formatter3164 {
            facility: Facility::LOG_USER,
            hostname: None,
            process: "vigil".into(),
            pid: std::process::id(),
        };
        let logger = syslog::unix(formatter).map_err(|e| e.to_string())?;
        self.syslog = Some(Mutex::new(logger));
        Ok(())
    }

    /// The stderr line of a record.
    pub fn line(&self, record: &Record<'_>) -> String {
        format!(
            "{}[{:04}] {}\n",
            level_name(record.level()),
            self.start.elapsed().as_secs(),
            record.args()
        )
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // One write per line, so lines of two threads do not mix.
        let _ = std::io::stderr().write_all(self.line(record).as_bytes());
        if let Some(syslog) = &self.syslog {
            let Ok(mut syslog) = syslog.lock() else {
                return;
            };
            let text = record.args().to_string();
            let _ = match record.level() {
                Level::Error => syslog.err(text),
                Level::Warn => syslog.warning(text),
                Level::Info => syslog.info(text),
                Level::Debug | Level::Trace => syslog.debug(text),
            };
        }
    }

    fn flush(&self) {}
}

/// Installs the logger for `--log-level` and `--syslog` (first call wins).
pub fn init(level: LogLevel, syslog: bool) {
    let mut logger = Logger::new(level, Instant::now());
    let unreachable = if syslog {
        logger.connect_syslog().err()
    } else {
        None
    };
    let filter = logger.level;
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(filter);
    }
    if let Some(why) = unreachable {
        log::debug!("Failed to initialize syslog hook: {why}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_podman() {
        assert_eq!(level_filter(LogLevel::Warn), LevelFilter::Warn);
        assert_eq!(level_filter(LogLevel::Fatal), LevelFilter::Error);
        assert_eq!(level_filter(LogLevel::Panic), LevelFilter::Error);
        assert_eq!(level_filter(LogLevel::Trace), LevelFilter::Trace);
    }

    #[test]
    fn lines_are_logrus_text() {
        let logger = Logger::new(LogLevel::Debug, Instant::now());
        let args = format_args!("missing {:?} build argument", "X");
        let record = Record::builder().level(Level::Warn).args(args).build();
        assert_eq!(
            logger.line(&record),
            "WARN[0000] missing \"X\" build argument\n"
        );
        let record = Record::builder()
            .level(Level::Debug)
            .args(format_args!("x"))
            .build();
        assert_eq!(logger.line(&record), "DEBU[0000] x\n");
        assert!(logger.enabled(&Metadata::builder().level(Level::Debug).build()));
        assert!(!logger.enabled(&Metadata::builder().level(Level::Trace).build()));
    }
}
