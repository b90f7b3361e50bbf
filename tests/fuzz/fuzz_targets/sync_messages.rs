//! Sync/attach pipe JSON lines: `decode` on arbitrary bytes, and
//! `encode` → `decode` roundtrips.
//!
//! Input, first byte selects:
//! - even: the rest is a line for `decode` (no panic; a decoded message
//!   re-encodes to a line that decodes to the same message).
//! - odd: the next byte picks the key, the next 8 the value, the rest is the
//!   message: if it is valid UTF-8, `decode(encode(..))` gives it back
//!   exactly; otherwise `decode` gives it back lossily converted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil::proto::sync::{decode, encode, SyncKey};

fn key_of(b: u8) -> SyncKey {
    match b % 3 {
        0 => SyncKey::Data,
        1 => SyncKey::Pid,
        _ => SyncKey::ExitCode,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    if body.len() > 256 * 1024 {
        return;
    }
    let mut out = Vec::new();
    if mode & 1 == 0 {
        if let Ok(msg) = decode(body) {
            let _ = msg.is_error();
            encode(
                msg.key,
                msg.value,
                msg.message.as_deref().map(str::as_bytes),
                &mut out,
            );
            let again = decode(&out).expect("a re-encoded message decodes");
            assert_eq!(again.key, msg.key);
            assert_eq!(again.value, msg.value);
            // An empty message is not emitted (conmon), so it comes back as None.
            let norm = |m: Option<String>| m.filter(|s| !s.is_empty());
            assert_eq!(norm(again.message), norm(msg.message));
        } else {
            let _ = decode(body).unwrap_err().to_string();
        }
        return;
    }
    if body.len() < 9 {
        return;
    }
    let key = key_of(body[0]);
    let value = i64::from_le_bytes(body[1..9].try_into().unwrap());
    let message = &body[9..];
    encode(key, value, Some(message), &mut out);
    assert_eq!(out.last(), Some(&b'\n'));
    assert_eq!(
        out.iter().filter(|&&b| b == b'\n').count(),
        1,
        "one line per message"
    );
    let msg = decode(&out).unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&out)));
    assert_eq!(msg.key, key);
    assert_eq!(msg.value, value);
    let expected = if message.is_empty() {
        None
    } else {
        Some(String::from_utf8_lossy(message).into_owned())
    };
    assert_eq!(msg.message, expected);
    if std::str::from_utf8(message).is_ok() {
        // Valid UTF-8 comes back byte for byte.
        assert_eq!(msg.message.as_deref().unwrap_or("").as_bytes(), message);
    }
});
