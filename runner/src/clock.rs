//! Times as vigil writes them: Unix nanoseconds now, and RFC 3339 in UTC
//! (container records and `inspect` with nanoseconds; image configs, whose
//! `created` Podman writes in whole seconds for `commit`, `import` and
//! `build --timestamp`). One civil-date conversion for all of them.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix nanoseconds.
pub fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// RFC 3339 in UTC with nanoseconds (`2025-06-01T11:47:57.769671123Z`).
pub fn format_rfc3339(nanos: i128) -> String {
    let frac = nanos.rem_euclid(1_000_000_000);
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    let whole = rfc3339_seconds(secs);
    format!("{}.{frac:09}Z", whole.trim_end_matches('Z'))
}

/// RFC 3339 in UTC, whole seconds (`2001-02-03T04:05:06Z`).
pub fn rfc3339_seconds(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let tod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    )
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_rfc3339(1_748_778_477_769_671_123),
            "2025-06-01T11:47:57.769671123Z"
        );
        assert_eq!(rfc3339_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_seconds(981_173_106), "2001-02-03T04:05:06Z");
        assert_eq!(rfc3339_seconds(-1), "1969-12-31T23:59:59Z");
    }
}
