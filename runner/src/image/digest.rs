//! Content digests: parsing (validated before any path is built from one),
//! hashing readers and chain IDs.
//!
//! Only `sha256` is accepted for content vigil opens; the grammar check follows
//! the OCI image spec (`algorithm ":" encoded`, lower-case hex of the exact
//! length), so a digest can never contain `/`, `..` or upper-case letters.

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

/// Why a digest string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestError {
    /// Not of the form `algorithm:encoded`.
    Malformed(String),
    /// A well-formed digest with an algorithm vigil does not verify.
    UnsupportedAlgorithm(String),
    /// `sha256:` followed by something other than 64 lower-case hex digits.
    BadEncoding(String),
}

impl fmt::Display for DigestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigestError::Malformed(d) => write!(f, "malformed digest {d:?}"),
            DigestError::UnsupportedAlgorithm(d) => {
                write!(
                    f,
                    "unsupported digest algorithm in {d:?} (only sha256 is supported)"
                )
            }
            DigestError::BadEncoding(d) => write!(
                f,
                "invalid sha256 digest {d:?}: expected 64 lower-case hex digits"
            ),
        }
    }
}

impl std::error::Error for DigestError {}

/// A validated `sha256:<64 lower-case hex>` digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parses and validates `s`.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let Some((alg, encoded)) = s.split_once(':') else {
            return Err(DigestError::Malformed(s.to_string()));
        };
        let alg_ok = !alg.is_empty()
            && alg
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
        if !alg_ok || encoded.is_empty() {
            return Err(DigestError::Malformed(s.to_string()));
        }
        if alg != "sha256" {
            return Err(DigestError::UnsupportedAlgorithm(s.to_string()));
        }
        Digest::from_hex(encoded).ok_or_else(|| DigestError::BadEncoding(s.to_string()))
    }

    /// A digest from its 64 lower-case hex digits (`None` if invalid).
    pub fn from_hex(hex: &str) -> Option<Digest> {
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| Digest {
            hex: hex.to_string(),
        })
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest {
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// The 64 hex digits, safe to use as a file name.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, as `podman images` shows IDs.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// The chain ID of a layer on top of `parent` (OCI image spec `config.md`):
    /// the diff ID itself for the base layer, else `sha256(parent + " " + diff_id)`.
    pub fn chain(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
        match parent {
            None => diff_id.clone(),
            Some(parent) => Digest::of(format!("{parent} {diff_id}").as_bytes()),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

/// A reader that hashes and counts everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Reads and hashes everything left, returning how many bytes that was.
    pub fn drain(&mut self) -> io::Result<u64> {
        io::copy(self, &mut io::sink())
    }

    /// The digest and byte count of everything read.
    pub fn finish(self) -> (Digest, u64) {
        let hex = hex::encode(self.hasher.finalize());
        (Digest { hex }, self.count)
    }

    /// The wrapped reader.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_valid_sha256() {
        let d = Digest::parse(&format!("sha256:{EMPTY}")).unwrap();
        assert_eq!(d.hex(), EMPTY);
        assert_eq!(d.to_string(), format!("sha256:{EMPTY}"));
        assert_eq!(d, Digest::of(b""));
        assert_eq!(d.short(), "e3b0c44298fc");
    }

    #[test]
    fn refuses_hostile_or_invalid_digests() {
        let upper = format!("sha256:{}", EMPTY.to_uppercase());
        let short = format!("sha256:{}", &EMPTY[1..]);
        let dots = format!("sha256:../../{}", &EMPTY[6..]);
        for bad in [
            upper.as_str(),
            short.as_str(),
            dots.as_str(),
            "sha256:",
            ":abc",
            "nocolon",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            Digest::parse(&format!("sha512:{EMPTY}{EMPTY}")),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            Digest::parse("md5:../x"),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn hashing_reader_counts_and_hashes() {
        let mut r = HashingReader::new(&b"hello"[..]);
        let mut first = [0u8; 2];
        r.read_exact(&mut first).unwrap();
        assert_eq!(r.drain().unwrap(), 3);
        let (d, n) = r.finish();
        assert_eq!(n, 5);
        assert_eq!(d, Digest::of(b"hello"));
    }

    #[test]
    fn chain_ids() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        assert_eq!(Digest::chain(None, &a), a);
        assert_eq!(
            Digest::chain(Some(&a), &b),
            Digest::of(format!("{a} {b}").as_bytes())
        );
    }
}
