//! Finding the helper programs (netavark, aardvark-dns, slirp4netns,
//! iptables), with errors that name the package to install.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::error::NetworkError;

/// Podman's default `helper_binaries_dir` (containers.conf `[engine]`).
pub const HELPER_DIRS: &[&str] = &[
    "/usr/local/libexec/podman",
    "/usr/local/lib/podman",
    "/usr/libexec/podman",
    "/usr/lib/podman",
];

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `name` in the helper directories, else an error naming the package.
pub fn find_helper(
    dirs: &[PathBuf],
    name: &str,
    package: &str,
    why: &str,
) -> Result<PathBuf, NetworkError> {
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| executable(p))
        .ok_or_else(|| {
            let list: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            NetworkError::Config(format!(
                "could not find {name:?} in one of [{}]: install the {package} package ({why})",
                list.join(" ")
            ))
        })
}

/// `name` on `path` (a PATH value).
pub fn find_on_path(path: &OsString, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|d| d.join(name))
        .find(|p| executable(p))
}

/// The PATH netavark gets (vigil's own; netavark runs iptables from it).
/// netavark starts aardvark-dns through `systemd-run` whenever
/// `/run/systemd/system` exists and `systemd-run` is on its PATH, and
/// ignores the result: where that directory exists but systemd is not PID 1
/// (containers, CI), no DNS server would run (runner-network §6). There,
/// directories holding `systemd-run` are left out (their iptables, if any,
/// is linked from a private directory), so aardvark-dns starts directly.
/// `in_rootless_netns`: also on a systemd host, as Podman hides
/// `/run/systemd` from netavark in its rootless netns (aardvark-dns must
/// start inside that namespace, not in a scope systemd starts elsewhere).
pub fn netavark_path(
    search: Option<&OsString>,
    private_bin: &Path,
    in_rootless_netns: bool,
) -> OsString {
    let base = search
        .cloned()
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    if !Path::new("/run/systemd/system").exists() || (systemd_is_init() && !in_rootless_netns) {
        return base;
    }
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&base).collect();
    let hidden: Vec<PathBuf> = dirs
        .iter()
        .filter(|d| d.join("systemd-run").exists())
        .cloned()
        .collect();
    dirs.retain(|d| !hidden.contains(d));
    for d in &hidden {
        for tool in ["iptables", "ip6tables", "nft"] {
            let target = d.join(tool);
            if target.exists()
                && find_on_path(&std::env::join_paths(&dirs).unwrap_or_default(), tool).is_none()
            {
                let _ = std::fs::create_dir_all(private_bin);
                let _ = std::os::unix::fs::symlink(&target, private_bin.join(tool));
            }
        }
    }
    if private_bin.is_dir() {
        dirs.push(private_bin.to_path_buf());
    }
    std::env::join_paths(dirs).unwrap_or(base)
}

/// PID 1 is systemd (then `systemd-run` works and keeps aardvark-dns in a
/// scope of its own).
pub fn systemd_is_init() -> bool {
    std::fs::read_to_string("/proc/1/comm").is_ok_and(|c| c.trim() == "systemd")
        && Path::new("/run/systemd/system").is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_helpers_name_their_package() {
        let e = find_helper(
            &[PathBuf::from("/nonexistent")],
            "netavark",
            "netavark",
            "bridge networks",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "could not find \"netavark\" in one of [/nonexistent]: install the netavark package (bridge networks)"
        );
        if !Path::new("/run/systemd/system").exists() {
            let p = netavark_path(Some(&"/usr/bin".into()), Path::new("/nonexistent"), false);
            assert_eq!(p, "/usr/bin");
        }
    }
}
