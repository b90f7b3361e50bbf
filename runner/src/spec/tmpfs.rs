//! `--tmpfs DEST[:OPTIONS]` with Podman 4.3.1's default options.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;
use serde::{Deserialize, Serialize};

use super::mounts::mount;
use crate::error::RunnerError;

/// A `--tmpfs` mount, parsed: what the container record keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpfsMount {
    /// The destination, cleaned (`/a/./b/` is `/a/b`).
    pub destination: String,
    /// The given options, then Podman's defaults.
    pub options: Vec<String>,
}

impl TmpfsMount {
    /// The mount for the runtime spec.
    pub fn mount(&self) -> Result<Mount, RunnerError> {
        let opts: Vec<&str> = self.options.iter().map(String::as_str).collect();
        mount(&self.destination, "tmpfs", "tmpfs", &opts)
    }
}

/// Parse `--tmpfs DEST[:OPTIONS]` into a tmpfs mount with Podman 4.3.1's
/// options: the given ones, then `rw`, `rprivate`, `nosuid`, `nodev` and
/// `tmpcopyup` unless the user chose otherwise (observed `config.json`).
pub fn parse_tmpfs(value: &str) -> Result<TmpfsMount, RunnerError> {
    let (dest, opts) = value.split_once(':').unwrap_or((value, ""));
    let bad = |why: String| RunnerError::Engine(format!("invalid --tmpfs {value:?}: {why}"));
    if !dest.starts_with('/') {
        return Err(bad("the destination must be an absolute path".into()));
    }
    let dest = Path::new(dest)
        .components()
        .collect::<PathBuf>()
        .to_string_lossy()
        .into_owned();
    if dest.split('/').any(|c| c == "..") {
        return Err(bad("the destination must not contain \"..\"".into()));
    }
    let mut options: Vec<String> = Vec::new();
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let key = o.split_once('=').map_or(o, |(k, _)| k);
        let valid = match key {
            "size" | "mode" | "uid" | "gid" | "nr_inodes" | "nr_blocks" => {
                o.contains('=') && !o.ends_with('=')
            }
            _ => !tmpfs_option_group(o).is_empty() && !o.contains('='),
        };
        if !valid {
            return Err(bad(format!("unknown mount option {o:?}")));
        }
        if !options.iter().any(|x| x == o) {
            options.push(o.to_string());
        }
    }
    for (group, default) in [
        ("rw", "rw"),
        ("propagation", "rprivate"),
        ("suid", "nosuid"),
        ("dev", "nodev"),
        ("copyup", "tmpcopyup"),
    ] {
        if !options.iter().any(|o| tmpfs_option_group(o) == group) {
            options.push(default.into());
        }
    }
    Ok(TmpfsMount {
        destination: dest,
        options,
    })
}

/// Which choice a flag-like tmpfs option makes ("" for none or a key=value).
fn tmpfs_option_group(o: &str) -> &'static str {
    match o {
        "rw" | "ro" => "rw",
        "exec" | "noexec" => "exec",
        "suid" | "nosuid" => "suid",
        "dev" | "nodev" => "dev",
        "atime" | "noatime" | "relatime" | "strictatime" | "nodiratime" => "atime",
        "sync" | "async" | "dirsync" => "sync",
        "tmpcopyup" | "notmpcopyup" => "copyup",
        "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
        | "runbindable" => "propagation",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SpecFlags;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn tmpfs_options_follow_podman() {
        let opts = |v: &str| parse_tmpfs(v).map(|m| m.options);
        assert_eq!(
            opts("/scratch").unwrap(),
            ["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"]
        );
        assert_eq!(
            opts("/s:size=1m,mode=700,exec,ro,notmpcopyup").unwrap(),
            [
                "size=1m",
                "mode=700",
                "exec",
                "ro",
                "notmpcopyup",
                "rprivate",
                "nosuid",
                "nodev"
            ]
        );
        assert_eq!(parse_tmpfs("/a/./b/").unwrap().destination, "/a/b");
        for bad in [
            "scratch", "/x:bogus", "/x:size", "/x:size=", "/x:rw=1", "/a/../b", "",
        ] {
            let e = parse_tmpfs(bad).unwrap_err();
            assert!(e.to_string().contains("invalid --tmpfs"), "{bad}: {e}");
        }
        let dup = SpecFlags {
            tmpfs: strings(&["/x", "/x/:size=1m"]),
            ..Default::default()
        };
        assert!(dup.parse(&[]).is_err());
    }
}
