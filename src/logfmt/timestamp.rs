//! Local-time timestamps as conmon writes them in k8s-file records:
//! `YYYY-MM-DDTHH:MM:SS.NNNNNNNNN+HH:MM` (never `Z`; offset seconds dropped).
//!
//! Formatting a timestamp per chunk must be cheap: the date/time part and the
//! UTC offset are recomputed only when the second changes.

/// Longest formatted timestamp we produce (a 4-digit year gives 35 bytes).
pub const MAX_LEN: usize = 48;

/// Caches the per-second part of the timestamp.
pub struct TimestampCache {
    sec: i64,
    /// `YYYY-MM-DDTHH:MM:SS.` for `sec`.
    head: [u8; 32],
    head_len: usize,
    /// `+HH:MM` for `sec`.
    offset: [u8; 6],
}

impl Default for TimestampCache {
    fn default() -> Self {
        Self::new()
    }
}

impl TimestampCache {
    /// Create a cache; reads the time zone (`TZ`) once.
    pub fn new() -> Self {
        // SAFETY: tzset has no preconditions; it only initialises libc's zone state.
        unsafe { tzset() };
        TimestampCache {
            sec: i64::MIN,
            head: [0; 32],
            head_len: 0,
            offset: *b"+00:00",
        }
    }

    /// The current `CLOCK_REALTIME`.
    pub fn now() -> (i64, u32) {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid out-pointer; CLOCK_REALTIME always exists.
        unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
        // time_t is i64 here but not on every target.
        #[allow(clippy::unnecessary_cast)]
        let sec = ts.tv_sec as i64;
        (sec, ts.tv_nsec as u32)
    }

    /// Format `sec.nsec` into `out`, returning the length written.
    pub fn format(&mut self, sec: i64, nsec: u32, out: &mut [u8; MAX_LEN]) -> usize {
        if sec != self.sec {
            self.refresh(sec);
        }
        let mut n = self.head_len;
        out[..n].copy_from_slice(&self.head[..n]);
        let mut ns = nsec.min(999_999_999);
        for i in (0..9).rev() {
            out[n + i] = b'0' + (ns % 10) as u8;
            ns /= 10;
        }
        n += 9;
        out[n..n + 6].copy_from_slice(&self.offset);
        n + 6
    }

    /// Format the current time.
    pub fn format_now(&mut self, out: &mut [u8; MAX_LEN]) -> usize {
        let (s, ns) = Self::now();
        self.format(s, ns, out)
    }

    fn refresh(&mut self, sec: i64) {
        // SAFETY: an all-zero tm is a valid value to be overwritten by localtime_r.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        let t: libc::time_t = sec as libc::time_t;
        // SAFETY: both pointers are valid for the duration of the call.
        let ok = !unsafe { libc::localtime_r(&t, &mut tm) }.is_null();
        if !ok {
            tm = unsafe { std::mem::zeroed() };
            tm.tm_mday = 1;
            tm.tm_year = 70;
        }
        let mut w = Writer {
            buf: &mut self.head,
            len: 0,
        };
        w.int(i64::from(tm.tm_year) + 1900, 4);
        w.byte(b'-');
        w.int(i64::from(tm.tm_mon) + 1, 2);
        w.byte(b'-');
        w.int(i64::from(tm.tm_mday), 2);
        w.byte(b'T');
        w.int(i64::from(tm.tm_hour), 2);
        w.byte(b':');
        w.int(i64::from(tm.tm_min), 2);
        w.byte(b':');
        w.int(i64::from(tm.tm_sec), 2);
        w.byte(b'.');
        self.head_len = w.len;
        let off = tm.tm_gmtoff as i64;
        let (sign, abs) = if off < 0 { (b'-', -off) } else { (b'+', off) };
        let (hh, mm) = ((abs / 3600) % 100, (abs / 60) % 60);
        self.offset = [
            sign,
            b'0' + (hh / 10) as u8,
            b'0' + (hh % 10) as u8,
            b':',
            b'0' + (mm / 10) as u8,
            b'0' + (mm % 10) as u8,
        ];
        self.sec = sec;
    }
}

extern "C" {
    fn tzset();
}

struct Writer<'a> {
    buf: &'a mut [u8; 32],
    len: usize,
}

impl Writer<'_> {
    fn byte(&mut self, b: u8) {
        if self.len < self.buf.len() {
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    /// Decimal with at least `width` digits, like `%0Nd` (a sign if negative).
    fn int(&mut self, v: i64, width: usize) {
        if v < 0 {
            self.byte(b'-');
        }
        let mut digits = [0u8; 20];
        let mut n = 0;
        let mut a = v.unsigned_abs();
        loop {
            digits[n] = b'0' + (a % 10) as u8;
            n += 1;
            a /= 10;
            if a == 0 {
                break;
            }
        }
        for _ in n..width {
            self.byte(b'0');
        }
        for i in (0..n).rev() {
            self.byte(digits[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_and_offsets() {
        std::env::set_var("TZ", "UTC");
        let mut c = TimestampCache::new();
        let mut out = [0u8; MAX_LEN];
        let n = c.format(1_748_778_477, 769_671_123, &mut out);
        assert_eq!(&out[..n], b"2025-06-01T11:47:57.769671123+00:00");
        let n = c.format(1_748_778_477, 5, &mut out);
        assert_eq!(&out[..n], b"2025-06-01T11:47:57.000000005+00:00");
        let n = c.format(0, 0, &mut out);
        assert_eq!(&out[..n], b"1970-01-01T00:00:00.000000000+00:00");
    }
}
