//! Joining container output into lines for line-oriented drivers (journald,
//! syslog): a line split across reads is kept in a fixed per-stream buffer
//! until its newline arrives, up to a bound; longer lines go out in pieces.

use vigil::logfmt::k8s::pieces;

/// Per-stream partial-line state with a fixed buffer of `N` bytes.
pub struct LineJoiner<const N: usize> {
    buf: Box<[u8; N]>,
    len: usize,
    /// The next entry starts a fresh line (the previous one ended with `\n`).
    pub at_line_start: bool,
}

impl<const N: usize> LineJoiner<N> {
    // Not inlined: `Box::new([0; N])` may build the array on the stack first,
    // and that space would stay in a long-lived caller's frame.
    #[inline(never)]
    pub fn new() -> Self {
        LineJoiner {
            buf: Box::new([0; N]),
            len: 0,
            at_line_start: true,
        }
    }

    /// Cut `chunk` into entries of at most `N` bytes. `emit(buffered, line,
    /// partial, fresh)` gets the buffered start of the line and the new bytes
    /// (ending in `\n` unless partial); it returns whether the entry was delivered.
    pub fn feed(&mut self, chunk: &[u8], mut emit: impl FnMut(&[u8], &[u8], bool, bool) -> bool) {
        for piece in pieces(chunk) {
            let mut rest = piece.bytes;
            loop {
                let room = N - self.len;
                if !piece.partial && rest.len() <= room {
                    self.deliver(rest, false, &mut emit);
                    break;
                }
                if piece.partial && rest.len() < room {
                    self.buf[self.len..self.len + rest.len()].copy_from_slice(rest);
                    self.len += rest.len();
                    break;
                }
                // Too long for one entry: send N bytes as a partial entry.
                let (now, later) = rest.split_at(room);
                self.deliver(now, true, &mut emit);
                rest = later;
                if rest.is_empty() {
                    break;
                }
            }
        }
    }

    /// Emit what is buffered as a partial entry (at exit).
    pub fn flush(&mut self, mut emit: impl FnMut(&[u8], &[u8], bool, bool) -> bool) {
        if self.len > 0 {
            self.deliver(b"", true, &mut emit);
        }
    }

    fn deliver(
        &mut self,
        line: &[u8],
        partial: bool,
        emit: &mut impl FnMut(&[u8], &[u8], bool, bool) -> bool,
    ) {
        // Delivered or not, the buffer is reset: it must stay bounded.
        let _ = emit(&self.buf[..self.len], line, partial, self.at_line_start);
        self.len = 0;
        self.at_line_start = !partial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> Vec<(Vec<u8>, bool)> {
        let mut j = LineJoiner::<8>::new();
        let mut out = Vec::new();
        for c in chunks {
            j.feed(c, |h, t, p, _| {
                out.push(([h, t].concat(), p));
                true
            });
        }
        j.flush(|h, t, p, _| {
            out.push(([h, t].concat(), p));
            true
        });
        out
    }

    #[test]
    fn joins_short_lines_and_cuts_long_ones() {
        assert_eq!(
            run(&[b"ab", b"c\nd"]),
            vec![(b"abc\n".to_vec(), false), (b"d".to_vec(), true)]
        );
        assert_eq!(
            run(&[b"0123456789"]),
            vec![(b"01234567".to_vec(), true), (b"89".to_vec(), true)]
        );
        assert_eq!(
            run(&[b"0123", b"4567", b"\n"]),
            vec![(b"01234567".to_vec(), true), (b"\n".to_vec(), false)]
        );
        assert_eq!(
            run(&[b"0123456789abcdefgh\nx\n"]),
            vec![
                (b"01234567".to_vec(), true),
                (b"89abcdef".to_vec(), true),
                (b"gh\n".to_vec(), false),
                (b"x\n".to_vec(), false)
            ]
        );
        assert_eq!(
            run(&[b"012345678"]),
            vec![(b"01234567".to_vec(), true), (b"8".to_vec(), true)]
        );
    }
}
