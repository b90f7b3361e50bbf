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
pub fn find_helper(dirs: &[PathBuf], name: &str, package: &str, why: &str) -> Result<PathBuf, NetworkError> {
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

/// The PATH netavark gets. netavark starts aardvark-dns through
/// `systemd-run` whenever `/run/systemd/system` exists and `systemd-run` is
/// on its PATH, and ignores the result: where that directory exists but
/// systemd is not PID 1 (containers, CI), no DNS server would run
/// (runner-network §6). There, directories holding `systemd-run` are left
/// out, so aardvark-dns is started directly. The sbin directories are
/// always there for iptables.
pub fn netavark_path(search: Option<&OsString>) -> OsString {
    let base = search.cloned().unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&base).collect();
    for sbin in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
        if !dirs.iter().any(|d| d == Path::new(sbin)) {
            dirs.push(sbin.into());
        }
    }
    if !systemd_is_init() {
        dirs.retain(|d| !d.join("systemd-run").exists());
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
        let e = find_helper(&[PathBuf::from("/nonexistent")], "netavark", "netavark", "bridge networks").unwrap_err();
        assert_eq!(
            e.to_string(),
            "could not find \"netavark\" in one of [/nonexistent]: install the netavark package (bridge networks)"
        );
        let p = netavark_path(Some(&"/usr/bin".into()));
        assert!(std::env::split_paths(&p).any(|d| d == Path::new("/usr/sbin")));
    }
}
