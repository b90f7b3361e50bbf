//! Tar entries as the unpacker sees them: cleaned in-root paths, one kind,
//! metadata with PAX overrides applied, and raw xattrs.

use std::io::Read;

use tar::EntryType;

use super::UnpackError;
use crate::fsroot::{clean, InPath};

/// What an entry creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink(Vec<u8>),
    /// A hard link to another in-root path (already cleaned).
    Hardlink(InPath),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

/// Attributes applied to a created inode.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// Permission bits including setuid, setgid and sticky (12 bits).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub mtime_nsec: u32,
    /// `SCHILY.xattr.*` records: name and raw bytes.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// One tar entry, ready to apply.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The cleaned path (empty = the root itself).
    pub path: InPath,
    /// The name as found in the archive, for messages.
    pub raw_name: String,
    pub kind: Kind,
    pub meta: Meta,
}

/// Converts a tar entry. `Ok(None)` for entries that create nothing (PAX
/// global headers).
pub fn convert<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Option<Entry>, UnpackError> {
    let raw = entry.path_bytes().into_owned();
    let raw_name = String::from_utf8_lossy(&raw).into_owned();
    let header = entry.header();
    let bad = |what: &str| UnpackError::BadEntry {
        name: raw_name.clone(),
        reason: what.to_string(),
    };
    let kind = match header.entry_type() {
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => Kind::File,
        EntryType::Directory => Kind::Dir,
        EntryType::Symlink => {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| bad("symlink without a target"))?;
            if target.is_empty() {
                return Err(bad("symlink with an empty target"));
            }
            Kind::Symlink(target.into_owned())
        }
        EntryType::Link => {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| bad("hard link without a target"))?;
            Kind::Hardlink(clean(&target))
        }
        EntryType::Char | EntryType::Block => {
            let major = header
                .device_major()
                .ok()
                .flatten()
                .ok_or_else(|| bad("bad device major number"))?;
            let minor = header
                .device_minor()
                .ok()
                .flatten()
                .ok_or_else(|| bad("bad device minor number"))?;
            if header.entry_type() == EntryType::Char {
                Kind::Char(major, minor)
            } else {
                Kind::Block(major, minor)
            }
        }
        EntryType::Fifo => Kind::Fifo,
        EntryType::XGlobalHeader => return Ok(None),
        other => {
            return Err(bad(&format!(
                "unsupported tar entry type {:?}",
                other.as_byte() as char
            )))
        }
    };
    let mode = header.mode().map_err(|_| bad("bad mode field"))? & 0o7777;
    let uid = to_id(header.uid().map_err(|_| bad("bad uid field"))?)
        .ok_or_else(|| bad("uid out of range"))?;
    let gid = to_id(header.gid().map_err(|_| bad("bad gid field"))?)
        .ok_or_else(|| bad("gid out of range"))?;
    let mut mtime =
        i64::try_from(header.mtime().map_err(|_| bad("bad mtime field"))?).unwrap_or(i64::MAX);
    let mut mtime_nsec = 0;
    let mut xattrs = Vec::new();
    if let Some(pax) = entry.pax_extensions().map_err(|_| bad("bad PAX header"))? {
        for ext in pax {
            let ext = ext.map_err(|_| bad("bad PAX record"))?;
            let key = ext.key_bytes();
            if key == b"mtime" {
                let (sec, nsec) =
                    parse_pax_time(ext.value_bytes()).ok_or_else(|| bad("bad PAX mtime"))?;
                mtime = sec;
                mtime_nsec = nsec;
            } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                if !name.is_empty() {
                    xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
                }
            }
        }
    }
    Ok(Some(Entry {
        path: clean(&raw),
        raw_name,
        kind,
        meta: Meta {
            mode,
            uid,
            gid,
            mtime,
            mtime_nsec,
            xattrs,
        },
    }))
}

/// A uid or gid that `chown` can take: `u32::MAX` means "unchanged" to the
/// kernel, so it is refused along with anything wider.
fn to_id(value: u64) -> Option<u32> {
    u32::try_from(value).ok().filter(|&id| id != u32::MAX)
}

/// Parses a PAX time: `[-]seconds[.fraction]`.
pub fn parse_pax_time(value: &[u8]) -> Option<(i64, u32)> {
    let text = std::str::from_utf8(value).ok()?;
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let sec: i64 = int.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let nsec: u32 = digits.parse().ok()?;
    if int.starts_with('-') && nsec > 0 {
        // -1.5 means 1.5 s before the epoch: floor to -2 s + 0.5 s.
        return Some((sec - 1, 1_000_000_000 - nsec));
    }
    Some((sec, nsec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time(b"1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(
            parse_pax_time(b"1700000000.25"),
            Some((1_700_000_000, 250_000_000))
        );
        assert_eq!(parse_pax_time(b"-1.5"), Some((-2, 500_000_000)));
        assert_eq!(parse_pax_time(b"-0.5"), Some((-1, 500_000_000)));
        assert_eq!(parse_pax_time(b"abc"), None);
        assert_eq!(parse_pax_time(b"1.x"), None);
    }

    #[test]
    fn ids() {
        assert_eq!(to_id(0), Some(0));
        assert_eq!(to_id(4_294_967_295), None);
        assert_eq!(to_id(1 << 40), None);
    }
}
