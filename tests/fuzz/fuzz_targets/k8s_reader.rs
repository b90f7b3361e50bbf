//! k8s-file (CRI) log records: `parse_record`, `Reassembler` and `read_lines`
//! on arbitrary bytes, and the writer/reader roundtrip.
//!
//! Input, first byte selects:
//! - even: arbitrary log file bytes for `read_lines` and every line for
//!   `parse_record`/`Reassembler` (no panic; a parsed record's parts are
//!   sub-slices of the line and re-serialise to it).
//! - odd: container output. The rest is cut into chunks (a chunk ends after
//!   each `0xff 0xfe` marker pair; the byte after the marker picks the
//!   stream), each chunk goes through `pieces()` + `append_record()` as the
//!   monitor writes it, and `read_lines()` must give back exactly the bytes
//!   of each stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil::logfmt::k8s::{
    append_record, parse_record, pieces, read_lines, record_tag, Reassembler,
};
use vigil::proto::attach::Stream;

const TS: &[u8] = b"2025-06-01T11:47:57.769671123+00:00";

fn reader(data: &[u8]) {
    // read_lines: no panic, and every line it returns came from the input.
    if let Ok(lines) = read_lines(data) {
        let total: usize = lines.iter().map(|l| l.bytes.len()).sum();
        assert!(total <= data.len() + lines.len(), "more output than input");
    }
    let mut asm = Reassembler::default();
    for line in data.split(|&b| b == b'\n') {
        let Ok(rec) = parse_record(line) else {
            continue;
        };
        // Re-serialise: `ts stream tag content` is the line itself.
        let mut again = Vec::new();
        again.extend_from_slice(rec.timestamp);
        again.extend_from_slice(record_tag(rec.stream, rec.partial));
        again.extend_from_slice(rec.content);
        assert_eq!(again, line, "record does not re-serialise to its line");
        // The timestamp is a valid record prefix: a canonical record with it parses.
        let mut canon = rec.timestamp.to_vec();
        canon.extend_from_slice(b" stdout F x");
        assert!(parse_record(&canon).is_ok());
        if let Some(done) = asm.push(&rec) {
            assert_eq!(done.bytes.last(), Some(&b'\n'));
            assert_eq!(done.stream, rec.stream);
        }
    }
    let _ = asm.finish();
}

fn roundtrip(data: &[u8]) {
    let mut log = Vec::new();
    let mut want_out = Vec::new();
    let mut want_err = Vec::new();
    let mut stream = Stream::Stdout;
    let mut rest = data;
    loop {
        let (chunk, next) = match rest.windows(2).position(|w| w == [0xff, 0xfe]) {
            Some(i) => (&rest[..i], Some(&rest[i + 2..])),
            None => (rest, None),
        };
        let want = if stream == Stream::Stdout {
            &mut want_out
        } else {
            &mut want_err
        };
        want.extend_from_slice(chunk);
        for piece in pieces(chunk) {
            assert!(!piece.bytes.is_empty());
            assert_eq!(piece.partial, piece.bytes.last() != Some(&b'\n'));
            assert_eq!(
                piece.bytes.iter().filter(|&&b| b == b'\n').count(),
                usize::from(!piece.partial)
            );
            append_record(&mut log, TS, stream, piece);
        }
        let Some(next) = next else { break };
        let (sel, next) = match next.split_first() {
            Some((&sel, next)) => (sel, next),
            None => (0, next),
        };
        stream = if sel & 1 == 0 {
            Stream::Stdout
        } else {
            Stream::Stderr
        };
        rest = next;
    }
    let lines = read_lines(&log[..]).expect("the monitor's own records parse");
    let mut got_out = Vec::new();
    let mut got_err = Vec::new();
    for line in &lines {
        assert_eq!(line.timestamp.as_bytes(), TS);
        match line.stream {
            Stream::Stdout => got_out.extend_from_slice(&line.bytes),
            Stream::Stderr => got_err.extend_from_slice(&line.bytes),
        }
    }
    assert_eq!(got_out, want_out, "stdout not reconstructed");
    assert_eq!(got_err, want_err, "stderr not reconstructed");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    if body.len() > 256 * 1024 {
        return;
    }
    if mode & 1 == 0 {
        reader(body);
    } else {
        roundtrip(body);
    }
});
