//! Layer compression, detected from the stream's first bytes (magic numbers),
//! never trusted from media types alone.

use std::io::{self, Cursor, Read};

use flate2::read::MultiGzDecoder;

/// A compression format of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip, possibly several concatenated members.
    Gzip,
    /// zstd, possibly several (and skippable) frames.
    Zstd,
}

impl Compression {
    /// Detects the format from the first bytes of a stream.
    pub fn sniff(prefix: &[u8]) -> Compression {
        if prefix.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if prefix.len() >= 4
            && prefix[0] & 0xf0 == 0x50
            && prefix[1..4] == [0x2a, 0x4d, 0x18]
        {
            // A zstd skippable frame (0x184D2A50..5F little-endian) first, as in
            // zstd:chunked layers.
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// Peeks at `reader` and returns the detected compression and a reader of the
/// decompressed stream.
pub fn decompress<'a, R: Read + 'a>(
    mut reader: R,
) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut prefix = Vec::with_capacity(4);
    (&mut reader).take(4).read_to_end(&mut prefix)?;
    let kind = Compression::sniff(&prefix);
    let whole = Cursor::new(prefix).chain(reader);
    let out: Box<dyn Read + 'a> = match kind {
        Compression::None => Box::new(whole),
        Compression::Gzip => Box::new(MultiGzDecoder::new(whole)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(whole)?),
    };
    Ok((kind, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn read_all(input: Vec<u8>) -> (Compression, Vec<u8>) {
        let (kind, mut r) = decompress(Cursor::new(input)).unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        (kind, out)
    }

    #[test]
    fn plain_and_short_streams_pass_through() {
        assert_eq!(
            read_all(b"hello world".to_vec()),
            (Compression::None, b"hello world".to_vec())
        );
        assert_eq!(read_all(b"h".to_vec()), (Compression::None, b"h".to_vec()));
        assert_eq!(read_all(Vec::new()), (Compression::None, Vec::new()));
    }

    #[test]
    fn multi_member_gzip_is_read_to_the_end() {
        let mut data = gzip(b"first ");
        data.extend(gzip(b"second"));
        assert_eq!(
            read_all(data),
            (Compression::Gzip, b"first second".to_vec())
        );
    }

    #[test]
    fn zstd_with_skippable_frames() {
        let mut data = vec![0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3];
        data.extend(zstd::encode_all(&b"abc"[..], 1).unwrap());
        data.extend(zstd::encode_all(&b"def"[..], 1).unwrap());
        assert_eq!(read_all(data), (Compression::Zstd, b"abcdef".to_vec()));
    }
}
