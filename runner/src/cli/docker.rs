//! vigil invoked as `docker` (a symlink named `docker`): like Podman's
//! podman-docker shim, a banner on stderr unless
//! `/etc/containers/nodocker` exists, then vigil itself, unchanged.

use std::path::Path;

/// The file whose existence quiets the banner (Podman's).
pub const NODOCKER: &str = "/etc/containers/nodocker";

/// The banner, if `argv0` names `docker` and it is not silenced.
pub fn banner(argv0: &str, nodocker: &Path) -> Option<&'static str> {
    let invoked_as = Path::new(argv0).file_name()?.to_str()?;
    (invoked_as == "docker" && !nodocker.exists())
        .then_some("Emulate Docker CLI using vigil. Create /etc/containers/nodocker to quiet msg.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_as_docker() {
        let none = Path::new("/nonexistent/nodocker");
        assert!(banner("/usr/local/bin/docker", none).is_some());
        assert!(banner("vigil", none).is_none());
        assert!(banner("docker", Path::new("/")).is_none(), "silenced");
    }
}
