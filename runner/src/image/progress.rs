//! Progress lines on stderr, shown only once an import has taken more than a
//! second (so quick loads stay quiet).

use std::io::{self, IsTerminal, Read, Write};
use std::time::{Duration, Instant};

const QUIET_FOR: Duration = Duration::from_secs(1);
const TTY_EVERY: Duration = Duration::from_millis(250);

/// Tracks one import.
pub struct Progress {
    enabled: bool,
    tty: bool,
    start: Instant,
    last: Option<Instant>,
    label: String,
    bytes: u64,
}

/// `1.23 MB`-style sizes (decimal units, three significant digits, as podman).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let int_digits = if value < 10.0 {
        1
    } else if value < 100.0 {
        2
    } else {
        3
    };
    let text = format!("{value:.prec$}", prec = 3usize.saturating_sub(int_digits));
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text} {}", UNITS[unit])
}

impl Progress {
    /// A tracker; `enabled = false` prints nothing.
    pub fn new(enabled: bool) -> Progress {
        Progress {
            enabled,
            tty: io::stderr().is_terminal(),
            start: Instant::now(),
            last: None,
            label: String::new(),
            bytes: 0,
        }
    }

    /// Starts a step (`Copying blob 2/5 sha256:…`).
    pub fn begin(&mut self, label: String) {
        self.label = label;
        self.bytes = 0;
    }

    /// Counts bytes read for the current step.
    pub fn add(&mut self, n: u64) {
        self.bytes += n;
        if !self.enabled || !self.tty || self.start.elapsed() < QUIET_FOR {
            return;
        }
        let due = match self.last {
            Some(t) => t.elapsed() >= TTY_EVERY,
            None => true,
        };
        if due {
            self.last = Some(Instant::now());
            let _ = write!(
                io::stderr(),
                "\r{} {}\x1b[K",
                self.label,
                human_size(self.bytes)
            );
        }
    }

    /// Ends the current step.
    pub fn end(&mut self) {
        if !self.enabled || self.start.elapsed() < QUIET_FOR {
            return;
        }
        let line = format!("{} {} done", self.label, human_size(self.bytes));
        let _ = if self.tty {
            writeln!(io::stderr(), "\r{line}\x1b[K")
        } else {
            writeln!(io::stderr(), "{line}")
        };
    }
}

/// A reader that reports what passes through it to a [`Progress`].
pub struct ProgressReader<'p, R> {
    inner: R,
    progress: &'p mut Progress,
}

impl<'p, R: Read> ProgressReader<'p, R> {
    pub fn new(inner: R, progress: &'p mut Progress) -> Self {
        ProgressReader { inner, progress }
    }
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_like_podman() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1000), "1 kB");
        assert_eq!(human_size(1_940_000), "1.94 MB");
        assert_eq!(human_size(12_345_678), "12.3 MB");
        assert_eq!(human_size(123_456_789), "123 MB");
    }
}
