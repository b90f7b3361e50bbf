//! Capabilities: the names vigil knows, `--cap-add`/`--cap-drop` parsing
//! and Podman's merge rules.

use std::collections::HashSet;

use oci_spec::runtime::{Capability, LinuxCapabilities, LinuxCapabilitiesBuilder};

use super::{err, SpecOptions};
use crate::error::RunnerError;

/// containers.conf `default_capabilities`.
pub const DEFAULT_CAPABILITIES: [Capability; 11] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::NetBindService,
    Capability::Setfcap,
    Capability::Setgid,
    Capability::Setpcap,
    Capability::Setuid,
    Capability::SysChroot,
];

/// Every capability vigil knows, as the spec spells them, in the kernel's
/// order: the index is the capability's bit in `/proc/<pid>/status` masks.
pub const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Normalise `--cap-add`/`--cap-drop` values: comma-separated lists,
/// case-insensitive, `CAP_` optional, `ALL` kept as `ALL`. Unknown names
/// are an error.
pub fn parse_capabilities(values: &[String]) -> Result<Vec<String>, RunnerError> {
    let mut out: Vec<String> = Vec::new();
    for v in values.iter().flat_map(|v| v.split(',')) {
        let upper = v.trim().to_ascii_uppercase();
        let name = if upper == "ALL" {
            upper
        } else {
            let full = if upper.starts_with("CAP_") {
                upper
            } else {
                format!("CAP_{upper}")
            };
            if !ALL_CAPABILITIES.contains(&full.as_str()) {
                return Err(RunnerError::Engine(format!(
                    "unknown capability {v:?} (expected a name such as CAP_CHOWN or NET_RAW, or ALL)"
                )));
            }
            full
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

fn capability(name: &str) -> Result<Capability, RunnerError> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map_err(|_| RunnerError::Engine(format!("unknown capability {name:?}")))
}

fn capability_name(c: &Capability) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// What `ALL` means: every capability in `bounding` (a `CapBnd` mask, like
/// Podman's `BoundingSet()`), or every one vigil knows without a mask.
pub fn all_capabilities(bounding: Option<u64>) -> Vec<String> {
    let mask = bounding.unwrap_or(u64::MAX);
    ALL_CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1u64 << bit) != 0)
        .map(|(_, s)| s.to_string())
        .collect()
}

/// vigil's own capability bounding set (`CapBnd` of /proc/self/status).
pub fn bounding_set() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Podman's `MergeCapabilities`: `base` minus `drop` plus `add` (both
/// normalised); `--cap-add ALL` starts from `all` (see [`all_capabilities`]),
/// `--cap-drop ALL` keeps only `add`; a capability both added and dropped is
/// an error.
pub fn merge_capabilities(
    base: &[Capability],
    add: &[String],
    drop: &[String],
    all: &[String],
) -> Result<Vec<String>, RunnerError> {
    let add = parse_capabilities(add)?;
    let drop = parse_capabilities(drop)?;
    let has_all = |v: &[String]| v.iter().any(|c| c == "ALL");
    if has_all(&drop) {
        if has_all(&add) {
            return Err(RunnerError::Engine(
                "adding all caps and removing all caps not allowed".into(),
            ));
        }
        let mut caps = add;
        caps.sort();
        return Ok(caps);
    }
    let (base, add): (Vec<String>, Vec<String>) = if has_all(&add) {
        (all.to_vec(), Vec::new())
    } else {
        (base.iter().map(capability_name).collect(), add)
    };
    if let Some(c) = add.iter().find(|c| drop.contains(c)) {
        return Err(RunnerError::Engine(format!(
            "capability {c:?} cannot be dropped and added"
        )));
    }
    let mut caps: Vec<String> = base.into_iter().filter(|c| !drop.contains(c)).collect();
    for c in add {
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    caps.sort();
    Ok(caps)
}

/// The process's capability sets: the merged set bounds everything; root
/// gets all of it, another user only what `--cap-add` names (and vigil has),
/// in every set so that it survives the exec (Podman's security_linux.go).
pub fn process_capabilities(opts: &SpecOptions) -> Result<LinuxCapabilities, RunnerError> {
    let set = |names: Vec<String>| {
        names
            .iter()
            .map(|n| capability(n))
            .collect::<Result<HashSet<Capability>, _>>()
    };
    let f = &opts.flags;
    let all = all_capabilities(bounding_set());
    let caps = set(merge_capabilities(
        &DEFAULT_CAPABILITIES,
        &f.cap_add,
        &f.cap_drop,
        &all,
    )?)?;
    let (given, ambient) = if opts.user.uid == 0 {
        (caps.clone(), HashSet::new())
    } else {
        let added: Vec<String> = merge_capabilities(&[], &f.cap_add, &[], &all)?
            .into_iter()
            .filter(|c| all.contains(c))
            .collect();
        let added = set(added)?;
        (added.clone(), added)
    };
    LinuxCapabilitiesBuilder::default()
        .bounding(caps)
        .effective(given.clone())
        .permitted(given)
        .inheritable(ambient.clone())
        .ambient(ambient)
        .build()
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn capabilities_parse_and_merge_like_podman() {
        assert_eq!(
            parse_capabilities(&strings(&["sys_admin,CAP_NET_RAW", "Chown", "all"])).unwrap(),
            ["CAP_SYS_ADMIN", "CAP_NET_RAW", "CAP_CHOWN", "ALL"]
        );
        let e = parse_capabilities(&strings(&["CHOWN,BOGUS"])).unwrap_err();
        assert!(
            e.to_string().contains("unknown capability \"BOGUS\""),
            "{e}"
        );
        assert_eq!(e.exit_code(), 125);
        assert!(parse_capabilities(&strings(&["CAP_"])).is_err());

        let merged = |add: &[&str], drop: &[&str]| {
            let all = all_capabilities(None);
            merge_capabilities(&DEFAULT_CAPABILITIES, &strings(add), &strings(drop), &all)
        };
        let m = merged(&["sys_admin"], &["chown", "CAP_KILL"]).unwrap();
        assert_eq!(m.len(), 10);
        assert!(m.contains(&"CAP_SYS_ADMIN".into()));
        assert!(!m.contains(&"CAP_CHOWN".into()) && !m.contains(&"CAP_KILL".into()));
        assert_eq!(merged(&[], &[]).unwrap().len(), 11);
        assert_eq!(merged(&["ALL"], &[]).unwrap().len(), ALL_CAPABILITIES.len());
        assert_eq!(merged(&["all"], &["chown"]).unwrap().len(), 40);
        assert_eq!(merged(&["net_raw"], &["ALL"]).unwrap(), ["CAP_NET_RAW"]);
        assert!(merged(&[], &["ALL"]).unwrap().is_empty());
        assert!(merged(&["ALL"], &["ALL"]).is_err());
        assert!(merged(&["chown"], &["CAP_CHOWN"]).is_err());
        // Every name vigil knows is one oci-spec knows.
        for c in ALL_CAPABILITIES {
            capability(c).unwrap();
        }
        // ALL is what the bounding set has (bit = kernel number).
        assert_eq!(ALL_CAPABILITIES[21], "CAP_SYS_ADMIN");
        assert_eq!(ALL_CAPABILITIES[40], "CAP_CHECKPOINT_RESTORE");
        assert_eq!(
            all_capabilities(Some((1 << 0) | (1 << 21) | (1 << 63))),
            ["CAP_CHOWN", "CAP_SYS_ADMIN"]
        );
        assert_eq!(all_capabilities(Some(0x1ff_feff_ffff)).len(), 40);
        assert!(bounding_set().is_some());
    }
}
