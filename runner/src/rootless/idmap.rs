//! Subordinate IDs (`/etc/subuid`, `/etc/subgid`) and ID mappings, computed
//! as Podman does (runner-notes §4.1, §4.3).
//!
//! Everything here is pure: callers pass file contents and IDs, so the rules
//! are unit-tested with fake files.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `/etc/subuid`.
pub const SUBUID_FILE: &str = "/etc/subuid";
/// `/etc/subgid`.
pub const SUBGID_FILE: &str = "/etc/subgid";
/// Kernel limit on the lines of one `uid_map`/`gid_map` (Linux ≥ 4.15).
pub const MAX_MAP_LINES: usize = 340;

/// A range of subordinate IDs granted to a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IdRange {
    pub start: u32,
    pub count: u32,
}

impl IdRange {
    /// One past the last ID (as u64: a range may end at 2^32).
    pub fn end(&self) -> u64 {
        u64::from(self.start) + u64::from(self.count)
    }

    pub fn contains(&self, id: u32) -> bool {
        id >= self.start && u64::from(id) < self.end()
    }
}

/// One line of a `uid_map`: `size` IDs starting at `container` inside map to
/// `host` outside (`host` is in the IDs of the namespace that writes the map).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IdMapping {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// A whole mapping (lines of a `uid_map` or `gid_map`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdMap(pub Vec<IdMapping>);

impl IdMap {
    /// The outside ID of container ID `id`, if mapped.
    pub fn to_host(&self, id: u32) -> Option<u32> {
        self.0.iter().find_map(|m| {
            let off = id.checked_sub(m.container)?;
            (off < m.size).then(|| m.host + off)
        })
    }

    /// The container ID of outside ID `id`, if mapped.
    pub fn to_container(&self, id: u32) -> Option<u32> {
        self.0.iter().find_map(|m| {
            let off = id.checked_sub(m.host)?;
            (off < m.size).then(|| m.container + off)
        })
    }

    /// Number of IDs mapped.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|m| u64::from(m.size)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Arguments for `newuidmap PID ...`: `inside outside count` triples.
    pub fn helper_args(&self) -> Vec<String> {
        self.0
            .iter()
            .flat_map(|m| [m.container, m.host, m.size])
            .map(|n| n.to_string())
            .collect()
    }

    /// Parses the contents of `/proc/PID/uid_map`.
    pub fn parse_proc(text: &str) -> Option<IdMap> {
        let mut out = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<u32> = line
                .split_whitespace()
                .map(|w| w.parse().ok())
                .collect::<Option<_>>()?;
            match f.as_slice() {
                [container, host, size] => out.push(IdMapping {
                    container: *container,
                    host: *host,
                    size: *size,
                }),
                _ => return None,
            }
        }
        Some(IdMap(out))
    }

    /// The same mapping with every range cut where its outside IDs cross from
    /// one range of `parent` (the map of the namespace the outside IDs belong
    /// to) into the next: the kernel wants each line of a nested map to fall
    /// within one line of its parent's. Outside IDs `parent` lacks are kept
    /// as they are (the kernel refuses them with a clear EPERM).
    pub fn split_along(&self, parent: &IdMap) -> IdMap {
        let mut cuts: Vec<u64> = parent
            .0
            .iter()
            .flat_map(|p| {
                [
                    u64::from(p.container),
                    u64::from(p.container) + u64::from(p.size),
                ]
            })
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut out = Vec::new();
        for m in &self.0 {
            let (mut host, mut container) = (u64::from(m.host), u64::from(m.container));
            let end = host + u64::from(m.size);
            while host < end {
                let next = cuts
                    .iter()
                    .copied()
                    .find(|c| *c > host)
                    .unwrap_or(end)
                    .min(end);
                out.push(IdMapping {
                    container: container as u32,
                    host: host as u32,
                    size: (next - host) as u32,
                });
                container += next - host;
                host = next;
            }
        }
        IdMap(out)
    }

    /// Checks a mapping the kernel would accept: non-empty sizes, no
    /// overflow, no overlap inside or outside, at most [`MAX_MAP_LINES`].
    pub fn validate(&self, what: &str) -> Result<(), String> {
        if self.0.is_empty() {
            return Err(format!("{what}: empty mapping"));
        }
        if self.0.len() > MAX_MAP_LINES {
            return Err(format!(
                "{what}: {} ranges, the kernel accepts at most {MAX_MAP_LINES}",
                self.0.len()
            ));
        }
        for (i, m) in self.0.iter().enumerate() {
            let end = |start: u32| u64::from(start) + u64::from(m.size);
            if m.size == 0 {
                return Err(format!("{what}: range {} has size 0", show(m)));
            }
            if end(m.container) > 1 << 32 || end(m.host) > 1 << 32 {
                return Err(format!("{what}: range {} overflows the ID space", show(m)));
            }
            for other in &self.0[..i] {
                let overlaps = |a: u32, b: u32| {
                    u64::from(a) < u64::from(b) + u64::from(other.size)
                        && u64::from(b) < u64::from(a) + u64::from(m.size)
                };
                if overlaps(m.container, other.container) {
                    return Err(format!(
                        "{what}: container IDs of {} and {} overlap",
                        show(other),
                        show(m)
                    ));
                }
                if overlaps(m.host, other.host) {
                    return Err(format!(
                        "{what}: host IDs of {} and {} overlap",
                        show(other),
                        show(m)
                    ));
                }
            }
        }
        Ok(())
    }
}

fn show(m: &IdMapping) -> String {
    format!("{}:{}:{}", m.container, m.host, m.size)
}

/// Why the subordinate IDs of a user cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubidError {
    /// A line that is not `NAME:START:COUNT` (1-based line number).
    Malformed {
        file: String,
        line: usize,
        text: String,
        reason: String,
    },
    /// No range for the user (`gid`: in the subgid file).
    NoEntry {
        file: String,
        user: String,
        gid: bool,
    },
    /// A range contains the user's own ID (Podman refuses this too).
    ContainsOwnId {
        file: String,
        user: String,
        id: u32,
        range: IdRange,
    },
    /// More ranges than a `uid_map` may hold, or more IDs than exist.
    TooMany { file: String, reason: String },
}

impl fmt::Display for SubidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubidError::Malformed {
                file,
                line,
                text,
                reason,
            } => write!(
                f,
                "{file} is malformed: line {line} {text:?}: {reason} (expected NAME:START:COUNT, \
                 e.g. \"alice:100000:65536\"); ask your administrator to fix it"
            ),
            SubidError::NoEntry { file, user, gid } => {
                let flag = if *gid {
                    "--add-subgids"
                } else {
                    "--add-subuids"
                };
                write!(
                    f,
                    "no subordinate IDs for user {user:?} in {file}: rootless containers need a \
                     range; as root, add a range with `usermod {flag} 100000-165535 {user}` \
                     (pick a range no other user has)"
                )
            }
            SubidError::ContainsOwnId {
                file,
                user,
                id,
                range,
            } => write!(
                f,
                "{file}: the range {}:{} of user {user:?} contains the user's own ID {id}; \
                 subordinate IDs must not include it",
                range.start, range.count
            ),
            SubidError::TooMany { file, reason } => write!(f, "{file}: {reason}"),
        }
    }
}

impl std::error::Error for SubidError {}

/// The ranges of `user` (matched by name or by numeric `id`, as
/// containers/storage does) in the contents `text` of `file` (the subgid file
/// if `gid`), sorted by start, duplicates and overlaps merged. Any malformed
/// line is an error naming it.
pub fn parse_subid(
    text: &str,
    file: &str,
    gid: bool,
    user: &str,
    id: u32,
) -> Result<Vec<IdRange>, SubidError> {
    let id_text = id.to_string();
    let mut ranges = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let malformed = |reason: &str| SubidError::Malformed {
            file: file.to_string(),
            line: index + 1,
            text: raw.to_string(),
            reason: reason.to_string(),
        };
        let fields: Vec<&str> = line.split(':').collect();
        let [name, start, count] = fields.as_slice() else {
            return Err(malformed("not three fields separated by ':'"));
        };
        if name.is_empty() {
            return Err(malformed("empty user name"));
        }
        let start: u32 = start
            .parse()
            .map_err(|_| malformed("the start is not a number"))?;
        let count: u32 = count
            .parse()
            .map_err(|_| malformed("the count is not a number"))?;
        if count == 0 {
            return Err(malformed("the count is 0"));
        }
        let range = IdRange { start, count };
        if range.end() > 1 << 32 {
            return Err(malformed("the range goes past the largest ID"));
        }
        if *name == user || *name == id_text {
            if range.contains(id) {
                return Err(SubidError::ContainsOwnId {
                    file: file.to_string(),
                    user: user.to_string(),
                    id,
                    range,
                });
            }
            ranges.push(range);
        }
    }
    if ranges.is_empty() {
        return Err(SubidError::NoEntry {
            file: file.to_string(),
            user: user.to_string(),
            gid,
        });
    }
    ranges.sort();
    let mut merged: Vec<IdRange> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if u64::from(r.start) <= last.end() => {
                let end = last.end().max(r.end());
                last.count = (end - u64::from(last.start)) as u32;
            }
            _ => merged.push(r),
        }
    }
    if merged.len() + 1 > MAX_MAP_LINES {
        return Err(SubidError::TooMany {
            file: file.to_string(),
            reason: format!(
                "user {user:?} has {} ranges; a user namespace takes at most {}",
                merged.len(),
                MAX_MAP_LINES - 1
            ),
        });
    }
    let total: u64 = merged.iter().map(|r| u64::from(r.count)).sum();
    if total >= u64::from(u32::MAX) {
        return Err(SubidError::TooMany {
            file: file.to_string(),
            reason: format!("user {user:?} has more subordinate IDs than a namespace holds"),
        });
    }
    Ok(merged)
}

/// Podman's rootless mapping: container 0 is the user's own `id`, then the
/// ranges (sorted) are stacked from container ID 1.
pub fn rootless_mapping(id: u32, ranges: &[IdRange]) -> IdMap {
    let mut map = vec![IdMapping {
        container: 0,
        host: id,
        size: 1,
    }];
    let mut next = 1u32;
    for r in ranges {
        map.push(IdMapping {
            container: next,
            host: r.start,
            size: r.count,
        });
        next += r.count;
    }
    IdMap(map)
}

/// `--userns=keep-id` inside a namespace of `available` IDs (0..available,
/// ID 0 being the user): the user (namespace ID 0) appears as `id` in the
/// container, container IDs below `id` come from namespace IDs 1..=id, and
/// the IDs above `id` map to themselves (runner-notes §4.3).
pub fn keep_id_mapping(id: u32, available: u64) -> Result<IdMap, String> {
    if id == 0 {
        // Already root inside: keep-id is the identity.
        return Ok(IdMap(vec![IdMapping {
            container: 0,
            host: 0,
            size: available.min(u64::from(u32::MAX)) as u32,
        }]));
    }
    if u64::from(id) >= available {
        return Err(format!(
            "--userns=keep-id: ID {id} needs at least {} IDs in the rootless user namespace, \
             which has {available}: add a larger subordinate range in /etc/subuid and /etc/subgid",
            u64::from(id) + 1
        ));
    }
    let mut map = vec![
        IdMapping {
            container: 0,
            host: 1,
            size: id,
        },
        IdMapping {
            container: id,
            host: 0,
            size: 1,
        },
    ];
    let rest = available - u64::from(id) - 1;
    if rest > 0 {
        map.push(IdMapping {
            container: id + 1,
            host: id + 1,
            size: rest as u32,
        });
    }
    Ok(IdMap(map))
}

/// Parses `--uidmap`/`--gidmap` values (`CONTAINER:HOST:SIZE`, several allowed).
pub fn parse_mapping_flags(values: &[String], flag: &str) -> Result<IdMap, String> {
    let mut map = Vec::new();
    for v in values {
        for part in v.split(',').filter(|p| !p.is_empty()) {
            let nums: Option<Vec<u32>> = part.split(':').map(|n| n.trim().parse().ok()).collect();
            match nums.as_deref() {
                Some([container, host, size]) => map.push(IdMapping {
                    container: *container,
                    host: *host,
                    size: *size,
                }),
                _ => {
                    return Err(format!(
                        "invalid {flag} {part:?}: expected CONTAINER_ID:HOST_ID:SIZE with numbers"
                    ))
                }
            }
        }
    }
    let map = IdMap(map);
    map.validate(flag)?;
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "/etc/subuid";

    #[test]
    fn several_ranges_sorted_and_stacked() {
        let text = "# comment\n\nann:300000:1000\nbob:100000:65536\nann:100000:65536\n";
        let ranges = parse_subid(text, FILE, false, "ann", 1000).unwrap();
        assert_eq!(
            ranges,
            [
                IdRange {
                    start: 100000,
                    count: 65536
                },
                IdRange {
                    start: 300000,
                    count: 1000
                }
            ]
        );
        let map = rootless_mapping(1000, &ranges);
        // runner-notes §4.1's example.
        assert_eq!(
            map.helper_args().join(" "),
            "0 1000 1 1 100000 65536 65537 300000 1000"
        );
        assert_eq!(map.to_host(0), Some(1000));
        assert_eq!(map.to_host(1000), Some(100999));
        assert_eq!(map.to_host(65537), Some(300000));
        assert_eq!(map.to_host(66537), None);
        assert_eq!(map.to_container(100999), Some(1000));
        assert_eq!(map.len(), 66537);
        map.validate("uid map").unwrap();
    }

    #[test]
    fn users_match_by_name_or_uid_and_duplicates_merge() {
        let text = "1000:200000:10\nann:200000:10\nann:200010:5\nann:200012:10\n";
        let ranges = parse_subid(text, FILE, false, "ann", 1000).unwrap();
        assert_eq!(
            ranges,
            [IdRange {
                start: 200000,
                count: 22
            }]
        );
    }

    #[test]
    fn malformed_lines_are_named() {
        for (text, line, reason) in [
            ("ann:1:2\nbogus line\n", 2, "three fields"),
            ("ann:x:10\n", 1, "start is not a number"),
            ("\n\nann:10:-1\n", 3, "count is not a number"),
            ("ann:10:0\n", 1, "count is 0"),
            (":10:10\n", 1, "empty user name"),
            ("ann:4294967295:2\n", 1, "past the largest ID"),
        ] {
            let err = parse_subid(text, FILE, false, "ann", 1000).unwrap_err();
            match &err {
                SubidError::Malformed { line: l, .. } => assert_eq!(*l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
            let msg = err.to_string();
            assert!(msg.contains(&format!("line {line}")), "{msg}");
            assert!(msg.contains(reason), "{msg}");
            assert!(msg.contains("/etc/subuid is malformed"), "{msg}");
        }
    }

    #[test]
    fn a_missing_user_gets_the_usermod_hint() {
        let err = parse_subid("bob:100000:65536\n", FILE, false, "ann", 1000).unwrap_err();
        assert_eq!(
            err,
            SubidError::NoEntry {
                file: FILE.into(),
                user: "ann".into(),
                gid: false
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains("add a range with `usermod --add-subuids 100000-165535 ann`"),
            "{msg}"
        );
        let msg = parse_subid("", SUBGID_FILE, true, "ann", 1000)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("usermod --add-subgids 100000-165535 ann"),
            "{msg}"
        );
    }

    #[test]
    fn a_range_holding_the_own_id_is_refused() {
        let err = parse_subid("ann:900:200\n", FILE, false, "ann", 1000).unwrap_err();
        assert!(
            matches!(err, SubidError::ContainsOwnId { id: 1000, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn too_many_ranges_are_refused() {
        let text: String = (0..400)
            .map(|i| format!("ann:{}:1\n", 100000 + 2 * i))
            .collect();
        let err = parse_subid(&text, FILE, false, "ann", 1000).unwrap_err();
        assert!(matches!(err, SubidError::TooMany { .. }), "{err:?}");
    }

    #[test]
    fn keep_id_keeps_the_user() {
        let map = keep_id_mapping(1000, 65537).unwrap();
        assert_eq!(
            map.0,
            [
                IdMapping {
                    container: 0,
                    host: 1,
                    size: 1000
                },
                IdMapping {
                    container: 1000,
                    host: 0,
                    size: 1
                },
                IdMapping {
                    container: 1001,
                    host: 1001,
                    size: 64536
                },
            ]
        );
        map.validate("keep-id").unwrap();
        assert_eq!(map.to_host(1000), Some(0));
        assert_eq!(map.to_host(0), Some(1));
        assert_eq!(map.to_host(999), Some(1000));
        assert_eq!(map.to_host(1001), Some(1001));
        assert_eq!(map.len(), 65537);
        assert!(keep_id_mapping(70000, 65537).unwrap_err().contains("70001"));
        assert_eq!(
            keep_id_mapping(0, 10).unwrap().0,
            [IdMapping {
                container: 0,
                host: 0,
                size: 10
            }]
        );
        // Exactly enough IDs: nothing above the user.
        assert_eq!(keep_id_mapping(5, 6).unwrap().0.len(), 2);
    }

    #[test]
    fn nested_maps_are_cut_along_the_parent_ranges() {
        let parent = rootless_mapping(
            1001,
            &[
                IdRange {
                    start: 100000,
                    count: 65536,
                },
                IdRange {
                    start: 200000,
                    count: 65536,
                },
            ],
        );
        let keep = keep_id_mapping(1001, parent.len()).unwrap();
        let split = keep.split_along(&parent);
        assert_eq!(
            split.0,
            [
                IdMapping {
                    container: 0,
                    host: 1,
                    size: 1001
                },
                IdMapping {
                    container: 1001,
                    host: 0,
                    size: 1
                },
                IdMapping {
                    container: 1002,
                    host: 1002,
                    size: 64535
                },
                IdMapping {
                    container: 65537,
                    host: 65537,
                    size: 65536
                },
            ]
        );
        split.validate("split").unwrap();
        assert_eq!(split.len(), keep.len());
        for id in [0, 1000, 1001, 1002, 65536, 65537, 131072] {
            assert_eq!(split.to_host(id), keep.to_host(id));
        }
        // Already inside one parent range: unchanged.
        let one = IdMap(vec![IdMapping {
            container: 0,
            host: 5,
            size: 10,
        }]);
        assert_eq!(one.split_along(&parent), one);
    }

    #[test]
    fn mapping_flags_parse_and_validate() {
        let map = parse_mapping_flags(
            &["0:1:1000".into(), "1000:0:1,1001:1001:10".into()],
            "--uidmap",
        )
        .unwrap();
        assert_eq!(map.0.len(), 3);
        assert!(parse_mapping_flags(&["0:1".into()], "--uidmap")
            .unwrap_err()
            .contains("CONTAINER_ID:HOST_ID:SIZE"));
        assert!(parse_mapping_flags(&["a:1:2".into()], "--uidmap").is_err());
        assert!(parse_mapping_flags(&["0:1:0".into()], "--uidmap")
            .unwrap_err()
            .contains("size 0"));
        assert!(
            parse_mapping_flags(&["0:1:10".into(), "5:100:10".into()], "--uidmap")
                .unwrap_err()
                .contains("container IDs")
        );
        assert!(
            parse_mapping_flags(&["0:1:10".into(), "50:5:10".into()], "--uidmap")
                .unwrap_err()
                .contains("host IDs")
        );
        assert!(parse_mapping_flags(&[], "--uidmap").is_err());
    }

    #[test]
    fn proc_maps_parse() {
        let map = IdMap::parse_proc(
            "         0       1000          1\n         1     100000      65536\n",
        )
        .unwrap();
        assert_eq!(map.len(), 65537);
        assert_eq!(map.to_container(100000), Some(1));
        assert!(IdMap::parse_proc("0 0\n").is_none());
    }
}
