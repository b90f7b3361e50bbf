//! `--log-rate-limit BYTES_PER_SEC[:BURST_BYTES]` (vigil extension): a token
//! bucket in front of the log drivers. Output over the budget is dropped from
//! the logs only; attach clients still get it and the container never waits.
//! While dropping, one marker record per second (and one at exit) says how
//! many bytes were dropped.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub bytes_per_sec: u64,
    pub burst: u64,
}

impl RateLimit {
    /// Parse `BYTES_PER_SEC[:BURST_BYTES]`; the burst defaults to one second's worth.
    pub fn parse(s: &str) -> Option<RateLimit> {
        let (rate, burst) = match s.split_once(':') {
            Some((r, b)) => (r.parse().ok()?, b.parse().ok()?),
            None => {
                let r: u64 = s.parse().ok()?;
                (r, r)
            }
        };
        (rate > 0 && burst > 0).then_some(RateLimit {
            bytes_per_sec: rate,
            burst,
        })
    }
}

pub struct RateLimiter {
    limit: RateLimit,
    tokens: f64,
    last_refill: Instant,
    dropped: u64,
    last_marker: Instant,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        let now = Instant::now();
        RateLimiter {
            limit,
            tokens: limit.burst as f64,
            last_refill: now,
            dropped: 0,
            last_marker: now,
        }
    }

    /// How many of `len` bytes may be logged now; the rest counts as dropped.
    pub fn admit(&mut self, len: usize) -> usize {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last_refill).as_secs_f64();
        self.last_refill = now;
        self.tokens =
            (self.tokens + elapsed * self.limit.bytes_per_sec as f64).min(self.limit.burst as f64);
        let allowed = (self.tokens.max(0.0) as usize).min(len);
        self.tokens -= allowed as f64;
        self.dropped += (len - allowed) as u64;
        allowed
    }

    /// The marker line to log now, if bytes were dropped and a second passed
    /// since the last marker (or `force`, at exit).
    pub fn marker(&mut self, force: bool, out: &mut Vec<u8>) -> bool {
        if self.dropped == 0 || (!force && self.last_marker.elapsed() < Duration::from_secs(1)) {
            return false;
        }
        out.clear();
        out.extend_from_slice(
            format!(
                "vigil: log rate limit {} B/s exceeded: {} bytes dropped\n",
                self.limit.bytes_per_sec, self.dropped
            )
            .as_bytes(),
        );
        self.dropped = 0;
        self.last_marker = Instant::now();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            RateLimit::parse("100"),
            Some(RateLimit {
                bytes_per_sec: 100,
                burst: 100
            })
        );
        assert_eq!(
            RateLimit::parse("100:5000"),
            Some(RateLimit {
                bytes_per_sec: 100,
                burst: 5000
            })
        );
        for bad in ["", "0", "x", "1:", ":1", "1:0", "-5"] {
            assert_eq!(RateLimit::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn drops_over_budget_and_reports() {
        let mut r = RateLimiter::new(RateLimit {
            bytes_per_sec: 1,
            burst: 10,
        });
        assert_eq!(r.admit(4), 4);
        assert_eq!(r.admit(10), 6);
        assert_eq!(r.admit(5), 0);
        let mut out = Vec::new();
        assert!(r.marker(true, &mut out));
        assert_eq!(
            out,
            b"vigil: log rate limit 1 B/s exceeded: 9 bytes dropped\n"
        );
        assert!(!r.marker(true, &mut out));
    }
}
