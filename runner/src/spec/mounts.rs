//! The mounts of a container: Podman's default file systems, tmpfs, the
//! `--init` binary and bind mounts (`-v` and the per-container /etc files),
//! in the order the runtime must mount them.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount, MountBuilder};
use serde::{Deserialize, Serialize};

use super::process::{init_binary, INIT_PATH};
use super::{err, SpecOptions};
use crate::error::RunnerError;

/// A bind mount (`-v` or one of the per-container `/etc` files).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub options: Vec<String>,
}

pub(super) fn mount(
    dest: &str,
    typ: &str,
    source: &str,
    options: &[&str],
) -> Result<Mount, RunnerError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(err)
}

/// How the default mounts differ for a rootless container (runner-notes §3.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MountRules {
    /// `/sys` cannot be a fresh sysfs (no network namespace of the
    /// container's own in a user namespace): bind the host's, read-only, and
    /// bind `/sys/fs/cgroup` the same way (Podman's `canMountSys`).
    pub bind_sys: bool,
    /// gid 5 (tty) is not mapped in the container: no `gid=5` for devpts.
    pub no_tty_gid: bool,
}

/// Podman's default mounts (runner-notes §3.2), then `binds`.
pub fn mounts(binds: &[BindMount]) -> Result<Vec<Mount>, RunnerError> {
    mounts_with(binds, MountRules::default())
}

/// [`mounts`] with the rootless differences of `rules`.
pub fn mounts_with(binds: &[BindMount], rules: MountRules) -> Result<Vec<Mount>, RunnerError> {
    let devpts: &[&str] = if rules.no_tty_gid {
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
        ]
    } else {
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]
    };
    let sys = if rules.bind_sys {
        mount(
            "/sys",
            "bind",
            "/sys",
            &["rbind", "nosuid", "noexec", "nodev", "ro"],
        )?
    } else {
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?
    };
    let cgroup = if rules.bind_sys {
        mount(
            "/sys/fs/cgroup",
            "bind",
            "/sys/fs/cgroup",
            &["rprivate", "nosuid", "noexec", "nodev", "ro", "rbind"],
        )?
    } else {
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["rprivate", "nosuid", "noexec", "nodev", "relatime", "ro"],
        )?
    };
    let mut all = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "noexec", "strictatime", "mode=755", "size=65536k"],
        )?,
        sys,
        mount("/dev/pts", "devpts", "devpts", devpts)?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        cgroup,
    ];
    all.extend(bind_mounts(binds)?);
    Ok(all)
}

fn bind_mounts(binds: &[BindMount]) -> Result<Vec<Mount>, RunnerError> {
    binds
        .iter()
        .map(|b| {
            let source = b.source.to_string_lossy();
            let opts: Vec<&str> = b.options.iter().map(String::as_str).collect();
            mount(&b.destination, "bind", &source, &opts)
        })
        .collect()
}

/// Directories a `--read-only` container keeps writable with tmpfs (with
/// `--read-only-tmpfs`; /dev and /dev/shm are tmpfs anyway).
pub const READ_ONLY_TMPFS: [&str; 3] = ["/tmp", "/run", "/var/tmp"];

/// The default mounts, then tmpfs (`--read-only` ones, `--tmpfs`) and the
/// binds, shallowest destination first. A `--tmpfs` on a default mount's
/// destination replaces it. With
/// `--read-only` the per-container /etc files (plain `bind`, where volumes
/// are `rbind`) are read-only too, like Podman's.
pub(super) fn all_mounts(opts: &SpecOptions, rules: MountRules) -> Result<Vec<Mount>, RunnerError> {
    let f = &opts.flags;
    let user_tmpfs = opts
        .tmpfs
        .iter()
        .map(|t| t.mount())
        .collect::<Result<Vec<_>, _>>()?;
    let taken = |dest: &str| {
        user_tmpfs
            .iter()
            .any(|m| m.destination() == Path::new(dest))
            || opts.binds.iter().any(|b| b.destination == dest)
    };
    let mut all = mounts_with(&[], rules)?;
    all.retain(|m| {
        !user_tmpfs
            .iter()
            .any(|t| t.destination() == m.destination())
    });
    let mut extra = Vec::new();
    if f.read_only && f.read_only_tmpfs {
        for dest in READ_ONLY_TMPFS.iter().filter(|d| !taken(d)) {
            extra.push(mount(
                dest,
                "tmpfs",
                "tmpfs",
                &["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"],
            )?);
        }
    }
    extra.extend(user_tmpfs);
    if f.init {
        let init = init_binary()?;
        extra.push(mount(
            INIT_PATH,
            "bind",
            &init.to_string_lossy(),
            &["bind", "rprivate", "ro"],
        )?);
    }
    let binds: Vec<BindMount> = opts
        .binds
        .iter()
        .cloned()
        .map(|mut b| {
            if f.read_only && b.options.first().is_some_and(|o| o == "bind") {
                b.options
                    .extend(["ro", "nosuid", "noexec", "nodev"].map(String::from));
            }
            b
        })
        .collect();
    extra.extend(bind_mounts(&binds)?);
    // Parents before children, so that no mount hides a deeper one (Podman
    // sorts its mounts the same way); stable, so equal depths keep their order.
    extra.sort_by_key(|m| m.destination().components().count());
    all.extend(extra);
    Ok(all)
}

/// Parse `-v SRC:DEST[:OPTIONS]` (bind mounts of absolute host paths only).
pub fn parse_volume(spec: &str) -> Result<BindMount, RunnerError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dest, opts) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => {
            return Err(RunnerError::Engine(format!(
                "invalid volume {spec:?}: expected SRC:DEST[:OPTIONS]"
            )))
        }
    };
    if !src.starts_with('/') {
        return Err(RunnerError::Engine(format!(
            "invalid volume {spec:?}: named volumes are not supported, use an absolute host path"
        )));
    }
    if !dest.starts_with('/') {
        return Err(RunnerError::Engine(format!(
            "invalid volume {spec:?}: the destination must be absolute"
        )));
    }
    let given: Vec<&str> = opts.split(',').filter(|o| !o.is_empty()).collect();
    // One choice per group, as Podman insists.
    for (group, what) in [
        (&["ro", "rw"][..], "'rw' or 'ro'"),
        (&["z", "Z"][..], "'z', 'Z', or 'O'"),
    ] {
        let chosen: Vec<&str> = given
            .iter()
            .copied()
            .filter(|o| group.contains(o))
            .collect();
        if chosen.len() > 1 {
            return Err(RunnerError::Engine(format!(
                "invalid options {:?} in volume {spec:?}, can only specify 1 {what} option",
                chosen.join(", ")
            )));
        }
    }
    let mut options = vec!["rbind".to_string()];
    for o in given {
        match o {
            "ro" | "rw" | "nosuid" | "nodev" | "noexec" | "suid" | "dev" | "exec" => {
                options.push(o.into())
            }
            "z" | "Z" => {}
            "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave" => {
                options.push(o.into())
            }
            _ => {
                return Err(RunnerError::Engine(format!(
                    "invalid volume option {o:?} in {spec:?}"
                )))
            }
        }
    }
    if !options
        .iter()
        .any(|o| o.ends_with("private") || o.ends_with("shared") || o.ends_with("slave"))
    {
        options.push("rprivate".into());
    }
    Ok(BindMount {
        source: src.into(),
        destination: dest.into(),
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_parse() {
        let v = parse_volume("/src:/dst:ro,Z").unwrap();
        assert_eq!(v.options, ["rbind", "ro", "rprivate"]);
        assert!(parse_volume("named:/dst").is_err());
        assert!(parse_volume("/a").is_err());
        assert!(parse_volume("/a:/b:bogus").is_err());
        let e = parse_volume("/a:/b:ro,rw").unwrap_err().to_string();
        assert!(e.contains("can only specify 1 'rw' or 'ro' option"), "{e}");
        assert!(parse_volume("/a:/b:z,Z").is_err());
    }
}
