//! The k8s-file hot loop: the full lines of a chunk become records in one
//! pass over the bytes (issue #16).
//!
//! With short lines the monitor's own CPU went to per-line overhead: one
//! `memchr` call to find each newline, then three `memcpy` calls (timestamp,
//! tag, content) to assemble the record, ~200 instructions for a 100-byte
//! line (callgrind), a third of the monitor's samples in `perf`. Here each
//! record's prefix (timestamp and tag, the same for the whole chunk) is
//! stored as one fixed 64-byte block, and the content is copied 64 bytes at a
//! time while the same 64 bytes are searched for the newline (SSE2 compares on
//! x86_64), with one bounds check per 64 bytes. Stores may run
//! past a record's end into the output buffer's spare room: the next record
//! overwrites those bytes, and nothing past the filled length is ever written
//! to the file.
//!
//! Only what is common is done here: full lines (ending in `\n`) no longer
//! than the record limit. Everything else (a trailing line without its
//! newline, a line to be cut into `P` records) is left to the caller's
//! general path, which writes byte-for-byte the same records.

/// A record's prefix is stored as one block of this size.
pub const PREFIX_BLOCK: usize = 64;
/// Content is searched and copied this many bytes at a time near the ends
/// of the input and output...
const BLOCK: usize = 16;
/// ...and this many elsewhere...
const WIDE: usize = 64;
/// ...until a line is this long: the rest of it is searched with `memchr`
/// and copied with `memcpy`, faster per byte on long lines.
const LONG_LINE: usize = 4 * WIDE;

/// `<timestamp> <stream> F ` of one chunk, padded to a whole block.
pub struct Prefix {
    block: [u8; PREFIX_BLOCK],
    len: usize,
}

impl Prefix {
    /// None if the prefix does not fit a block (a timestamp is at most 48
    /// bytes and a tag 10, so it always does).
    pub fn new(timestamp: &[u8], tag: &[u8]) -> Option<Prefix> {
        let len = timestamp.len() + tag.len();
        if len > PREFIX_BLOCK {
            return None;
        }
        let mut block = [0u8; PREFIX_BLOCK];
        block[..timestamp.len()].copy_from_slice(timestamp);
        block[timestamp.len()..len].copy_from_slice(tag);
        Some(Prefix { block, len })
    }
}

/// Why [`format_full_lines`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Every byte of the input was formatted.
    End,
    /// The output has no room for the next record: write it out, go on.
    OutOfRoom,
    /// The next line has no newline in the input, or is longer than the
    /// record limit: the general path takes that piece.
    Slow,
}

/// What one call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Formatted {
    /// Input bytes turned into records (whole lines).
    pub consumed: usize,
    /// Output bytes that are records.
    pub written: usize,
    /// Records written.
    pub records: usize,
    pub stop: Stop,
}

/// Write a record `prefix + line` into `out` for each full line at the start
/// of `input` whose length (with its `\n`) is at most `max_content`. `out`
/// may be written past `written` (up to its end) with bytes of no meaning.
pub fn format_full_lines(
    input: &[u8],
    out: &mut [u8],
    prefix: &Prefix,
    max_content: usize,
) -> Formatted {
    let mut i = 0;
    let mut o = 0;
    let mut records = 0;
    let stop = 'records: loop {
        if i == input.len() {
            break Stop::End;
        }
        let (line_start, record_start) = (i, o);
        let Some(dst) = out.get_mut(o..o + PREFIX_BLOCK) else {
            break Stop::OutOfRoom;
        };
        dst.copy_from_slice(&prefix.block);
        o += prefix.len;
        // Within this record o - i is fixed, so one bound covers both sides:
        // a wide step at i is in bounds iff i + WIDE <= room.
        let room = input.len().min(out.len() - (o - i));
        let line_limit = line_start.saturating_add(max_content);
        loop {
            if i + WIDE <= room {
                let mask = copy_wide(input, i, out, o);
                if mask != 0 {
                    let take = mask.trailing_zeros() as usize + 1;
                    if i + take > line_limit {
                        (i, o) = (line_start, record_start);
                        break 'records Stop::Slow;
                    }
                    i += take;
                    o += take;
                    records += 1;
                    continue 'records;
                }
                i += WIDE;
                o += WIDE;
                // Without a newline yet, the line is at least one byte longer.
                if i + 1 > line_limit {
                    // To be cut into records of at most max_content bytes.
                    (i, o) = (line_start, record_start);
                    break 'records Stop::Slow;
                }
                if i - line_start >= LONG_LINE {
                    // A long line: a vectorised search and one copy beat
                    // 64-byte steps.
                    let end = input.len().min(line_limit);
                    let Some(k) = memchr::memchr(b'\n', &input[i..end]) else {
                        // No newline within the input or the limit.
                        (i, o) = (line_start, record_start);
                        break 'records Stop::Slow;
                    };
                    let Some(dst) = out.get_mut(o..o + k + 1) else {
                        (i, o) = (line_start, record_start);
                        break 'records Stop::OutOfRoom;
                    };
                    dst.copy_from_slice(&input[i..i + k + 1]);
                    i += k + 1;
                    o += k + 1;
                    records += 1;
                    continue 'records;
                }
                continue;
            }
            // Near the end of either side: 16 bytes at a time.
            let avail = input.len() - i;
            let n = avail.min(BLOCK);
            let mut block = [0u8; BLOCK];
            block[..n].copy_from_slice(&input[i..i + n]);
            // Past the input's end nothing counts.
            let mask = u64::from(newline_mask(&block)) & ((1u64 << n) - 1);
            let Some(dst) = out.get_mut(o..o + BLOCK) else {
                (i, o) = (line_start, record_start);
                break 'records Stop::OutOfRoom;
            };
            dst.copy_from_slice(&block);
            if mask == 0 && avail <= BLOCK {
                // A line without its newline: a partial record.
                (i, o) = (line_start, record_start);
                break 'records Stop::Slow;
            }
            let take = if mask != 0 {
                mask.trailing_zeros() as usize + 1
            } else {
                BLOCK
            };
            if i + take + usize::from(mask == 0) > line_limit {
                (i, o) = (line_start, record_start);
                break 'records Stop::Slow;
            }
            i += take;
            o += take;
            if mask != 0 {
                records += 1;
                continue 'records;
            }
        }
    };
    Formatted {
        consumed: i,
        written: o,
        records,
        stop,
    }
}

/// Copy `input[i..i + 64]` to `out[o..o + 64]`; bit k of the result is set
/// if byte k is `\n`. The caller checked both ranges.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn copy_wide(input: &[u8], i: usize, out: &mut [u8], o: usize) -> u64 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8, _mm_storeu_si128,
    };
    debug_assert!(i + WIDE <= input.len() && o + WIDE <= out.len());
    // SAFETY: the caller guarantees i + 64 <= input.len() and o + 64 <=
    // out.len(), so every unaligned 16-byte load and store below stays inside
    // its slice; SSE2 is part of the x86_64 baseline. (Slice indexing here
    // would repeat those checks on the hottest path of the monitor.)
    unsafe {
        let src = input.as_ptr().add(i);
        let dst = out.as_mut_ptr().add(o);
        let nl = _mm_set1_epi8(b'\n' as i8);
        let mut mask = 0u64;
        for k in 0..WIDE / BLOCK {
            let v = _mm_loadu_si128(src.add(k * BLOCK).cast());
            _mm_storeu_si128(dst.add(k * BLOCK).cast(), v);
            let m = _mm_movemask_epi8(_mm_cmpeq_epi8(v, nl)) as u32;
            mask |= u64::from(m) << (k * BLOCK);
        }
        mask
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn copy_wide(input: &[u8], i: usize, out: &mut [u8], o: usize) -> u64 {
    let src = &input[i..i + WIDE];
    out[o..o + WIDE].copy_from_slice(src);
    src.iter()
        .enumerate()
        .fold(0, |m, (k, &b)| m | (u64::from(b == b'\n') << k))
}

/// Bit k set: byte k of the block is `\n`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn newline_mask(block: &[u8; BLOCK]) -> u32 {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    // SAFETY: SSE2 is part of the x86_64 baseline; the unaligned load reads
    // exactly the 16 bytes of `block`.
    unsafe {
        let v = _mm_loadu_si128(block.as_ptr().cast());
        _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8))) as u32
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn newline_mask(block: &[u8; BLOCK]) -> u32 {
    block
        .iter()
        .enumerate()
        .fold(0, |m, (k, &b)| m | (u32::from(b == b'\n') << k))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &[u8] = b"2026-12-03T13:00:00.123456789+00:00";
    const TAG: &[u8] = b" stdout F ";

    /// The records of the full lines, the plain way.
    fn reference(input: &[u8], max_content: usize) -> (Vec<u8>, usize) {
        let mut out = Vec::new();
        let mut consumed = 0;
        for line in input.split_inclusive(|&b| b == b'\n') {
            if !line.ends_with(b"\n") || line.len() > max_content {
                break;
            }
            out.extend_from_slice(TS);
            out.extend_from_slice(TAG);
            out.extend_from_slice(line);
            consumed += line.len();
        }
        (out, consumed)
    }

    fn check(input: &[u8], max_content: usize) {
        let prefix = Prefix::new(TS, TAG).unwrap();
        let mut out = vec![0xAAu8; input.len() * 50 + 200];
        let f = format_full_lines(input, &mut out, &prefix, max_content);
        let (want, consumed) = reference(input, max_content);
        assert_eq!(f.consumed, consumed, "input {input:?}");
        assert_eq!(&out[..f.written], &want[..], "input {input:?}");
        assert_eq!(
            f.records,
            input[..consumed].iter().filter(|&&b| b == b'\n').count()
        );
        let expect = if consumed == input.len() {
            Stop::End
        } else {
            Stop::Slow
        };
        assert_eq!(f.stop, expect, "input {input:?}");
    }

    #[test]
    fn lines_of_every_length_around_the_block_size() {
        for len in (0..70).chain(250..270).chain([1000, 5000]) {
            let mut line = vec![b'x'; len];
            line.push(b'\n');
            let input: Vec<u8> = line.iter().cycle().take(line.len() * 7).copied().collect();
            check(&input, 64 * 1024);
            // With a trailing piece of every length.
            for tail in 0..20 {
                let mut t = input.clone();
                t.extend(std::iter::repeat_n(b'y', tail));
                check(&t, 64 * 1024);
            }
        }
    }

    #[test]
    fn empty_lines_and_mixed_lengths() {
        check(b"\n\n\n", 100);
        check(b"a\n\nbb\n\n\nccc", 100);
        let mut v = Vec::new();
        let mut seed = 12345u32;
        for _ in 0..2000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let len = (seed >> 16) as usize % 300;
            v.extend(std::iter::repeat_n(b'a' + (len % 26) as u8, len));
            v.push(b'\n');
        }
        check(&v, 64 * 1024);
    }

    #[test]
    fn long_lines_are_left_to_the_general_path() {
        let mut v = b"short\n".to_vec();
        v.extend(std::iter::repeat_n(b'L', 40));
        v.push(b'\n');
        v.extend_from_slice(b"after\n");
        // 41 bytes with the newline: over a 40-byte limit, at it, under it.
        for max in [40, 41, 42, 16, 17, 6, 5] {
            check(&v, max);
        }
        // Past LONG_LINE: the memchr search honours the limit too.
        let mut v = b"short\n".to_vec();
        v.extend(std::iter::repeat_n(b'L', 999));
        v.extend_from_slice(b"\nafter\n");
        for max in [255, 256, 257, 320, 999, 1000, 1001, 1 << 16] {
            check(&v, max);
        }
    }

    #[test]
    fn stops_when_out_of_room_and_resumes() {
        let input: Vec<u8> = b"0123456789abcdefghij\n".repeat(100);
        let prefix = Prefix::new(TS, TAG).unwrap();
        let mut all = Vec::new();
        let mut rest = &input[..];
        let mut out = vec![0u8; 500];
        let mut rounds = 0;
        loop {
            let f = format_full_lines(rest, &mut out, &prefix, 1 << 16);
            all.extend_from_slice(&out[..f.written]);
            rest = &rest[f.consumed..];
            rounds += 1;
            if f.stop == Stop::End {
                break;
            }
            assert_eq!(f.stop, Stop::OutOfRoom);
            assert!(f.records > 0);
        }
        assert!(rounds > 10);
        assert_eq!(all, reference(&input, 1 << 16).0);
    }

    /// `cargo test --release -p vigil-monitor --bins -- --ignored --nocapture formatter_speed`
    #[test]
    #[ignore]
    fn formatter_speed() {
        let line = [&[b'x'; 99][..], b"\n"].concat();
        let input = line.repeat(2000); // a 200 KB chunk
        let prefix = Prefix::new(TS, TAG).unwrap();
        let mut out = vec![0u8; 448 * 1024];
        let rounds = 2000;
        let t = std::time::Instant::now();
        let mut total = 0;
        for _ in 0..rounds {
            let f = format_full_lines(std::hint::black_box(&input), &mut out, &prefix, 1 << 16);
            total += f.written;
        }
        let fast = t.elapsed();
        let t = std::time::Instant::now();
        let mut v: Vec<u8> = Vec::with_capacity(448 * 1024);
        for _ in 0..rounds {
            v.clear();
            for p in vigil::logfmt::k8s::pieces(std::hint::black_box(&input)) {
                v.extend_from_slice(TS);
                v.extend_from_slice(TAG);
                v.extend_from_slice(p.bytes);
            }
            total += v.len();
        }
        let plain = t.elapsed();
        let lines = (rounds * 2000) as f64;
        eprintln!(
            "ns per 100-byte line: one pass {:.2}, memchr + copies {:.2} ({total})",
            fast.as_nanos() as f64 / lines,
            plain.as_nanos() as f64 / lines
        );
    }
}
