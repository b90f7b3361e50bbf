//! The health log (`proto::health`): arbitrary bytes as a health log file
//! (the monitor reads the previous one at start; engines read it back).
//!
//! Invariants: decoding never panics and is bounded (deep nesting is an
//! error, not a stack overflow); whatever decodes re-encodes to bytes that
//! decode to the same log; recording results keeps at most five entries and
//! Podman's status rules; `log_output` keeps at most 500 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil::proto::health::{log_output, Entry, HealthLog, MAX_LOG_ENTRIES, MAX_OUTPUT, UNHEALTHY};

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    if let Ok(log) = HealthLog::decode(data) {
        let enc = log.encode();
        let again = HealthLog::decode(&enc).expect("our own encoding decodes");
        assert_eq!(again, log);
        let mut log = log;
        let retries = u32::from(data.first().copied().unwrap_or(1)).max(1);
        for (i, b) in data.iter().take(8).enumerate() {
            let before = log.failing_streak;
            let code = i32::from(b % 3) - 1;
            log.record(
                Entry {
                    exit_code: code,
                    output: log_output(&data[..data.len().min(600)]),
                    ..Default::default()
                },
                i % 2 == 0,
                retries,
            );
            assert!(log.log.len() <= MAX_LOG_ENTRIES);
            if code == 0 {
                assert_eq!(log.failing_streak, 0);
            } else if i % 2 == 1 {
                assert_eq!(log.failing_streak, before + 1);
                if log.failing_streak >= retries {
                    assert_eq!(log.status, UNHEALTHY);
                }
            }
        }
        let _ = HealthLog::decode(&log.encode()).expect("round trip after records");
    }
    // Cut at 500 bytes; each invalid byte becomes U+FFFD (3 bytes), as in Go.
    assert!(log_output(data).len() <= 3 * MAX_OUTPUT);
});
