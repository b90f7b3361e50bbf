//! The `ctl`/`winsz` FIFO line grammar: arbitrary bytes, cut into arbitrary
//! reads, go through `LineBuffer` and every line through `parse_ctl` and
//! `parse_winsz`.
//!
//! Invariants: lines are at most `LINE_MAX` (199) bytes and contain no `\n`;
//! `LineBuffer` delivers exactly the complete lines of at most 198 bytes,
//! whatever the read sizes (a reference splitter is the oracle); accepted
//! sizes are within 0..=1000; accepted lines re-encode to lines that parse
//! to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil::proto::ctl::{
    encode_ctl, parse_ctl, parse_winsz, CtlMessage, LineBuffer, Overflow, LINE_MAX, MAX_WINDOW_DIM,
};

fn check_line(line: &[u8]) {
    assert!(line.len() <= LINE_MAX, "line of {} bytes", line.len());
    assert!(!line.contains(&b'\n'));
    match parse_ctl(line) {
        Ok(msg) => {
            if let CtlMessage::Resize { height, width } = msg {
                assert!(i64::from(height) <= MAX_WINDOW_DIM && i64::from(width) <= MAX_WINDOW_DIM);
            }
            let enc = encode_ctl(msg);
            let enc = enc
                .strip_suffix('\n')
                .expect("encoded line ends in a newline");
            assert_eq!(parse_ctl(enc.as_bytes()), Ok(msg), "{enc:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    match parse_winsz(line) {
        Ok((h, w)) => assert!(i64::from(h) <= MAX_WINDOW_DIM && i64::from(w) <= MAX_WINDOW_DIM),
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// The lines `LineBuffer` must deliver: complete lines shorter than `LINE_MAX`.
fn reference_lines(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
        if pos < LINE_MAX {
            out.push(&rest[..pos]);
        }
        rest = &rest[pos + 1..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    // First byte: read-size pattern seed; the rest is the FIFO's content.
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    if body.len() > 256 * 1024 {
        return;
    }
    let mut lb = LineBuffer::default();
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut rest = body;
    let mut step = 0usize;
    while !rest.is_empty() {
        let space = lb.space();
        assert!(!space.is_empty() && space.len() <= LINE_MAX);
        // Read sizes vary with the seed: 1..=space, like short FIFO reads.
        let want = if seed == 0 {
            space.len()
        } else {
            1 + (seed as usize * 31 + step * 7) % space.len()
        };
        let n = want.min(rest.len());
        space[..n].copy_from_slice(&rest[..n]);
        rest = &rest[n..];
        let ov = lb.commit(n, |l| {
            check_line(l);
            lines.push(l.to_vec());
        });
        assert!(ov == Overflow::None || ov == Overflow::NoNewline);
        step += 1;
    }
    let expected = reference_lines(body);
    assert_eq!(lines.len(), expected.len(), "line count");
    for (got, want) in lines.iter().zip(&expected) {
        assert_eq!(got.as_slice(), *want);
    }
    // Whole input as one line too (parsers take any bytes).
    let _ = parse_ctl(body);
    let _ = parse_winsz(body);
});
