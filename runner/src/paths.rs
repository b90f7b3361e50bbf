//! Where vigil keeps things: the store (images, container layers) and the
//! runtime state (container state, sockets, exit files), plus executable lookup.
//!
//! Everything here takes the uid and the environment as parameters, so the
//! rules are testable; `main` passes the real ones.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::RunnerError;

/// Store directory when running as root.
pub const ROOT_STORE_DIR: &str = "/var/lib/vigil";
/// State directory when running as root.
pub const ROOT_STATE_DIR: &str = "/run/vigil";

/// The two directory trees vigil owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Persistent store: images, layers, container root filesystems (`--root`).
    pub store: PathBuf,
    /// Volatile state: container state, sockets, exit files (`--runroot`).
    pub state: PathBuf,
}

impl Paths {
    /// The default paths for `uid`, reading variables through `env`.
    pub fn defaults<E>(uid: u32, env: E) -> Result<Self, RunnerError>
    where
        E: Fn(&str) -> Option<OsString>,
    {
        Self::resolve(uid, env, None, None)
    }

    /// Explicit paths (`--root`, `--runroot`) where given, defaults otherwise.
    /// A default is only computed, and can only fail, when it is needed.
    pub fn resolve<E>(
        uid: u32,
        env: E,
        store: Option<PathBuf>,
        state: Option<PathBuf>,
    ) -> Result<Self, RunnerError>
    where
        E: Fn(&str) -> Option<OsString>,
    {
        let store = match store {
            Some(dir) => dir,
            None => default_store_dir(uid, &env)?,
        };
        let state = state.unwrap_or_else(|| default_state_dir(uid, &env));
        Ok(Paths { store, state })
    }
}

/// `/var/lib/vigil` for root; otherwise `$XDG_DATA_HOME/vigil`, falling back to
/// `$HOME/.local/share/vigil`.
pub fn default_store_dir<E>(uid: u32, env: &E) -> Result<PathBuf, RunnerError>
where
    E: Fn(&str) -> Option<OsString>,
{
    if uid == 0 {
        return Ok(PathBuf::from(ROOT_STORE_DIR));
    }
    if let Some(data_home) = absolute_var(env, "XDG_DATA_HOME") {
        return Ok(data_home.join("vigil"));
    }
    match absolute_var(env, "HOME") {
        Some(home) => Ok(home.join(".local/share/vigil")),
        None => Err(RunnerError::Engine(
            "cannot choose a store directory: neither XDG_DATA_HOME nor HOME is set \
             to an absolute path (use --root)"
                .into(),
        )),
    }
}

/// `/run/vigil` for root; otherwise `$XDG_RUNTIME_DIR/vigil`, falling back to
/// `/tmp/vigil-<uid>`.
pub fn default_state_dir<E>(uid: u32, env: &E) -> PathBuf
where
    E: Fn(&str) -> Option<OsString>,
{
    if uid == 0 {
        return PathBuf::from(ROOT_STATE_DIR);
    }
    match absolute_var(env, "XDG_RUNTIME_DIR") {
        Some(runtime_dir) => runtime_dir.join("vigil"),
        None => PathBuf::from(format!("/tmp/vigil-{uid}")),
    }
}

/// A variable holding an absolute path. The XDG base directory spec says empty
/// and relative values are to be ignored; the same rule is applied to `HOME`.
fn absolute_var<E>(env: &E, name: &str) -> Option<PathBuf>
where
    E: Fn(&str) -> Option<OsString>,
{
    env(name)
        .map(PathBuf::from)
        .filter(|path| path.is_absolute())
}

/// Finds an executable the way a shell does: a name containing `/` is taken as
/// a path, anything else is searched for in `search_path` (a `PATH` value).
/// Empty `PATH` entries (the current directory) are skipped.
pub fn find_executable(name: &Path, search_path: Option<&OsStr>) -> Option<PathBuf> {
    if name.as_os_str().is_empty() {
        return None;
    }
    if name.as_os_str().as_bytes().contains(&b'/') {
        return is_executable(name).then(|| name.to_path_buf());
    }
    std::env::split_paths(search_path?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::fs;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn root_uses_system_directories_whatever_the_environment() {
        let env = env_of(&[
            ("HOME", "/root"),
            ("XDG_DATA_HOME", "/root/.data"),
            ("XDG_RUNTIME_DIR", "/run/user/0"),
        ]);
        let paths = Paths::defaults(0, env).unwrap();
        assert_eq!(paths.store, Path::new("/var/lib/vigil"));
        assert_eq!(paths.state, Path::new("/run/vigil"));
    }

    #[test]
    fn rootless_uses_xdg_directories() {
        let env = env_of(&[
            ("HOME", "/home/ann"),
            ("XDG_DATA_HOME", "/data/ann"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
        ]);
        let paths = Paths::defaults(1000, env).unwrap();
        assert_eq!(paths.store, Path::new("/data/ann/vigil"));
        assert_eq!(paths.state, Path::new("/run/user/1000/vigil"));
    }

    #[test]
    fn rootless_falls_back_to_home_and_tmp() {
        let paths = Paths::defaults(1000, env_of(&[("HOME", "/home/ann")])).unwrap();
        assert_eq!(paths.store, Path::new("/home/ann/.local/share/vigil"));
        assert_eq!(paths.state, Path::new("/tmp/vigil-1000"));
    }

    #[test]
    fn empty_or_relative_xdg_values_are_ignored() {
        let env = env_of(&[
            ("HOME", "/home/ann"),
            ("XDG_DATA_HOME", ""),
            ("XDG_RUNTIME_DIR", "relative/dir"),
        ]);
        let paths = Paths::defaults(1000, env).unwrap();
        assert_eq!(paths.store, Path::new("/home/ann/.local/share/vigil"));
        assert_eq!(paths.state, Path::new("/tmp/vigil-1000"));
    }

    #[test]
    fn rootless_without_home_needs_an_explicit_store() {
        let err = Paths::defaults(1000, env_of(&[])).unwrap_err();
        assert_eq!(err.exit_code(), 125);
        assert!(err.to_string().contains("--root"), "{err}");

        let paths =
            Paths::resolve(1000, env_of(&[]), Some(PathBuf::from("/srv/store")), None).unwrap();
        assert_eq!(paths.store, Path::new("/srv/store"));
        assert_eq!(paths.state, Path::new("/tmp/vigil-1000"));
    }

    #[test]
    fn explicit_directories_win() {
        let paths = Paths::resolve(
            0,
            env_of(&[]),
            Some(PathBuf::from("/s")),
            Some(PathBuf::from("/r")),
        )
        .unwrap();
        assert_eq!(paths.store, Path::new("/s"));
        assert_eq!(paths.state, Path::new("/r"));
    }

    #[test]
    fn executables_are_found_on_the_search_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).unwrap();
        let runc = bin.join("runc");
        fs::write(&runc, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&runc, fs::Permissions::from_mode(0o755)).unwrap();
        let plain = bin.join("plain");
        fs::write(&plain, "").unwrap();
        fs::set_permissions(&plain, fs::Permissions::from_mode(0o644)).unwrap();

        let search = std::env::join_paths([dir.path().join("missing"), bin.clone()]).unwrap();
        assert_eq!(
            find_executable(Path::new("runc"), Some(&search)),
            Some(runc.clone())
        );
        assert_eq!(find_executable(Path::new("plain"), Some(&search)), None);
        assert_eq!(find_executable(Path::new("crun"), Some(&search)), None);
        assert_eq!(find_executable(Path::new("runc"), None), None);
        // A path is used as given, without searching.
        assert_eq!(find_executable(&runc, None), Some(runc));
        assert_eq!(find_executable(&plain, Some(&search)), None);
    }
}
