//! Points in time as the `--since`/`--until` options and filters of
//! `logs` and `ps` take them.

use vigil::client::parse_rfc3339_nanos;

/// A point in time as `--since`/`--until` take it: RFC 3339, Unix seconds
/// (`1700000000.5`), or a duration before `now` (`10m`, `1h30m`, `45s`,
/// `500ms`). Unix nanoseconds; `None` for anything else.
pub fn parse_time(value: &str, now: i128) -> Option<i128> {
    if let Some(t) = parse_rfc3339_nanos(value) {
        return Some(t);
    }
    if let Some((secs, frac)) = value.split_once('.').or(Some((value, ""))) {
        if !secs.is_empty()
            && secs.bytes().all(|b| b.is_ascii_digit())
            && frac.bytes().all(|b| b.is_ascii_digit())
            && frac.len() <= 9
        {
            let s: i128 = secs.parse().ok()?;
            let f: i128 = if frac.is_empty() {
                0
            } else {
                format!("{frac:0<9}").parse().ok()?
            };
            return Some(s * 1_000_000_000 + f);
        }
    }
    let mut total: i128 = 0;
    let mut rest = value;
    while !rest.is_empty() {
        let digits = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let num: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += (num * unit) as i128;
    }
    if total == 0 && value != "0s" {
        return None;
    }
    Some(now - total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_forms() {
        let now = 1_000 * 1_000_000_000i128;
        assert_eq!(
            parse_time("1970-01-01T00:00:10Z", now).unwrap_or(0),
            10_000_000_000
        );
        assert_eq!(parse_time("100", now).unwrap_or(0), 100_000_000_000);
        assert_eq!(parse_time("100.5", now).unwrap_or(0), 100_500_000_000);
        assert_eq!(parse_time("10s", now).unwrap_or(0), now - 10_000_000_000);
        assert_eq!(parse_time("1m30s", now).unwrap_or(0), now - 90_000_000_000);
        assert!(parse_time("yesterday", now).is_none());
        assert!(parse_time("10x", now).is_none());
    }
}
