//! Batching of small container writes into one wake-up, one read and one log
//! write (issue #16).
//!
//! Real containers write a line, or a 4 KiB stdio buffer, per `write()`. Woken
//! for each of them, the monitor would spend more on going to sleep and waking
//! up than on the bytes. So after a read that found the writer *slower* than
//! us, the stream is *parked*: taken out of the poll set for at most
//! [`Pacing::delay`], while the writer fills the pipe, then read in one go.
//!
//! Bounds: the first read after an idle period is logged at once (a lone
//! line has no added delay); while a writer keeps writing, a byte waits at
//! most `delay` (plus scheduling) in the pipe before it is read and logged. A
//! writer fast enough to fill half the pipe within `delay` is never parked
//! (it would block on a full pipe): those streams are read back to back, as
//! before. Interactive paths are never parked: a terminal (the pty master is
//! not a pipe) and any stream while an attach client is connected (attach
//! sessions, `podman exec` sessions someone watches).

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

/// Default longest time a byte waits in the pipe while a writer keeps
/// writing (`--log-coalesce-ms`).
pub const DEFAULT_DELAY: Duration = Duration::from_millis(2);

/// What to do with a stream after a read that returned data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Read again on the next turn of the loop.
    ReadAgain,
    /// Leave it until this instant (out of the poll set).
    ParkUntil(Instant),
}

/// Per-stream pacing state.
#[derive(Debug)]
pub struct Pacing {
    /// 0: never park.
    delay: Duration,
    /// Kernel buffer of the pipe; None for anything else (a pty): never park.
    capacity: Option<usize>,
    /// The last read that returned data.
    last_read: Instant,
    /// In the poll set (false while parked).
    pub registered: bool,
    /// Parked until then.
    pub parked_until: Option<Instant>,
    /// Read it again on the next turn (data may be left).
    pub hot: bool,
}

impl Pacing {
    pub fn new(fd: BorrowedFd<'_>, delay: Duration) -> Pacing {
        Pacing {
            delay,
            capacity: pipe_capacity(fd),
            last_read: Instant::now(),
            registered: true,
            parked_until: None,
            hot: false,
        }
    }

    /// `n` bytes were read at `now`; `interactive`: someone is watching
    /// (attach client), so no delay may be added.
    pub fn after_data(&mut self, n: usize, now: Instant, interactive: bool) -> Next {
        let elapsed = now.saturating_duration_since(self.last_read);
        self.last_read = now;
        let park = !interactive
            && self
                .capacity
                .is_some_and(|cap| slow_writer(n, elapsed, cap, self.delay));
        if park {
            Next::ParkUntil(now + self.delay)
        } else {
            Next::ReadAgain
        }
    }

    /// Nothing to read: the stream waits in the poll set again. (The writer's
    /// rate is still measured from the last read that returned data: from an
    /// empty read, the next write alone would look like a burst at memory
    /// speed, e.g. a pipeline's 8 KiB writes.)
    pub fn note_empty(&mut self) {
        self.parked_until = None;
        self.hot = false;
    }

    /// Parked and its time has come.
    pub fn due(&self, now: Instant) -> bool {
        self.parked_until.is_some_and(|t| t <= now)
    }
}

/// The writer filled `n` bytes in `elapsed`: would it fill less than half of
/// a `capacity`-byte pipe in `delay`? (Then parking cannot block it.)
pub fn slow_writer(n: usize, elapsed: Duration, capacity: usize, delay: Duration) -> bool {
    if delay.is_zero() || n >= capacity / 2 {
        return false;
    }
    // n / elapsed * delay < capacity / 2, in integers (nanoseconds fit u128).
    (n as u128) * delay.as_nanos() * 2 < (capacity as u128) * elapsed.as_nanos()
}

/// The pipe's kernel buffer size, or None if `fd` is not a pipe.
fn pipe_capacity(fd: BorrowedFd<'_>) -> Option<usize> {
    // On a non-pipe this fails (EBADF).
    let n = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETPIPE_SZ).ok()?;
    usize::try_from(n).ok().filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;
    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn line_writer_is_parked() {
        // 100 bytes since the last read 1 ms ago: 200 bytes per 2 ms.
        assert!(slow_writer(100, MS, MIB, 2 * MS));
        // 200 KiB in 1 ms: 400 KiB in 2 ms, under half the pipe.
        assert!(slow_writer(200 << 10, MS, MIB, 2 * MS));
    }

    #[test]
    fn fast_writer_is_read_back_to_back() {
        // 300 KiB in 1 ms would fill 600 KiB of the pipe in 2 ms.
        assert!(!slow_writer(300 << 10, MS, MIB, 2 * MS));
        // Half the pipe or more: never.
        assert!(!slow_writer(MIB / 2, Duration::from_secs(1), MIB, 2 * MS));
        // No time elapsed: as fast as can be.
        assert!(!slow_writer(1, Duration::ZERO, MIB, 2 * MS));
    }

    #[test]
    fn small_pipe_or_no_delay_never_parks() {
        // An unprivileged 64 KiB pipe fills in 2 ms at 16 MiB/s.
        assert!(!slow_writer(40 << 10, MS, 64 << 10, 2 * MS));
        assert!(!slow_writer(1, Duration::from_secs(1), MIB, Duration::ZERO));
    }

    #[test]
    fn interactive_streams_and_ptys_are_never_parked() {
        let now = Instant::now();
        let mut p = Pacing {
            delay: 2 * MS,
            capacity: Some(MIB),
            last_read: now - Duration::from_secs(1),
            registered: true,
            parked_until: None,
            hot: false,
        };
        assert_eq!(p.after_data(100, now, true), Next::ReadAgain);
        p.last_read = now - Duration::from_secs(1);
        assert_eq!(p.after_data(100, now, false), Next::ParkUntil(now + 2 * MS));
        p.capacity = None;
        p.last_read = now - Duration::from_secs(1);
        assert_eq!(p.after_data(100, now, false), Next::ReadAgain);
    }
}
