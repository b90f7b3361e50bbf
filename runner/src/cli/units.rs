//! Numbers as Go and go-units print them, for Podman's columns.

/// Go's `time.Duration.String()`: `1h2m3.5s`, `45.01s`, `74.318146ms`, `0s`.
pub fn go_duration(nanos: u128) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    let frac = |value: u128, unit: u128, digits: usize| -> String {
        let whole = value / unit;
        let rest = value % unit;
        let text = format!("{whole}.{rest:0digits$}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    if nanos < 1_000_000 {
        return format!("{}µs", frac(nanos, 1_000, 3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", frac(nanos, 1_000_000, 6));
    }
    let secs = nanos / 1_000_000_000;
    let sub = nanos % 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let seconds = frac(s * 1_000_000_000 + sub, 1_000_000_000, 9);
    match (h, m) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

/// go-units' `HumanSizeWithPrecision(size, 4)`: SI units, four significant
/// digits, no space (`348.2kB`, `67.11MB`, `0B`).
pub fn human_size4(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    // %.4g
    let digits = if value < 10.0 {
        3
    } else if value < 100.0 {
        2
    } else if value < 1000.0 {
        1
    } else {
        0
    };
    let text = format!("{value:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(74_318_146), "74.318146ms");
        assert_eq!(go_duration(2_661_462_882), "2.661462882s");
        assert_eq!(go_duration(938_599_711_321), "15m38.599711321s");
        assert_eq!(go_duration(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(go_duration(65_000_000_000), "1m5s");
        assert_eq!(human_size4(348_200), "348.2kB");
        assert_eq!(human_size4(67_108_864), "67.11MB");
        assert_eq!(human_size4(0), "0B");
        assert_eq!(human_size4(2_131_000), "2.131MB");
    }
}
