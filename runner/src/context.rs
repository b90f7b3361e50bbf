//! What every command gets: the engine-wide settings, resolved. The CLI
//! builds [`Settings`] from its global flags; the layers below the CLI read
//! them only through a [`Context`], never from the command line.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::config::containers::ContainersConf;
use crate::config::storage::StorageConf;
use crate::error::RunnerError;
use crate::paths::{find_executable, Paths};

/// Name of the monitor binary built by this workspace.
pub const MONITOR_NAME: &str = "conmon";

/// Podman's log levels, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
    Panic,
}

/// The engine-wide settings, as the user chose them (global flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Store directory; `None`: the default for the user.
    pub root: Option<PathBuf>,
    /// State directory; `None`: the default for the user.
    pub runroot: Option<PathBuf>,
    /// OCI runtime: a name to look up on PATH, or a path; `None`:
    /// containers.conf's runtime, else runc.
    pub runtime: Option<PathBuf>,
    /// Monitor binary; `None`: containers.conf's `conmon_path`, else
    /// `conmon` next to vigil, else on PATH.
    pub conmon: Option<PathBuf>,
    pub log_level: LogLevel,
    /// `--syslog`: diagnostics to syslog as well (this process's and the
    /// monitor's).
    pub syslog: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            root: None,
            runroot: None,
            runtime: None,
            conmon: None,
            log_level: LogLevel::Warn,
            syslog: false,
        }
    }
}

/// Resolved settings. Executables are looked up only when a command
/// needs them, so `vigil ps` works on a host without runc.
#[derive(Debug, Clone)]
pub struct Context {
    pub paths: Paths,
    /// `--runtime`, else containers.conf's runtime, else `runc`: a name to
    /// look up on PATH, or a path (`[engine.runtimes]` names are resolved).
    pub runtime: PathBuf,
    /// `--conmon` as given, else containers.conf's first existing `conmon_path`.
    pub conmon: Option<PathBuf>,
    /// containers.conf, merged.
    pub containers_conf: ContainersConf,
    /// storage.conf.
    pub storage_conf: StorageConf,
    pub log_level: LogLevel,
    /// `--syslog`.
    pub syslog: bool,
    /// `PATH` at start-up, for executable lookup.
    pub search_path: Option<OsString>,
}

impl Context {
    /// The global options that make another `vigil` act on this store and
    /// runtime (the monitor's exit command, the port forwarder, `top`'s
    /// ps(1) fallback).
    pub fn vigil_global_args(&self) -> Vec<OsString> {
        let p = &self.paths;
        let mut args: Vec<OsString> = vec![
            "--root".into(),
            p.store.clone().into(),
            "--runroot".into(),
            p.state.clone().into(),
            "--runtime".into(),
            self.runtime.clone().into(),
        ];
        if let Some(conmon) = &self.conmon {
            args.extend(["--conmon".into(), conmon.clone().into()]);
        }
        if self.syslog {
            args.push("--syslog".into());
        }
        args
    }

    /// Resolves `settings` for the user `uid`, reading variables through `env`.
    pub fn new<E>(settings: &Settings, uid: u32, env: E) -> Result<Self, RunnerError>
    where
        E: Fn(&str) -> Option<OsString>,
    {
        let search_path = env("PATH");
        let config_error = |e: crate::config::ConfigError| RunnerError::Engine(e.to_string());
        let mut warn = crate::config::print_warning;
        let containers_conf = ContainersConf::load(&env, &mut warn).map_err(config_error)?;
        let storage_conf = StorageConf::load(&env, uid != 0, &mut warn).map_err(config_error)?;
        let root = match (&settings.root, &storage_conf.graphroot) {
            (Some(dir), _) => Some(dir.clone()),
            (None, Some(graphroot)) => {
                refuse_foreign_store(graphroot, storage_conf.file.as_deref())?;
                Some(graphroot.clone())
            }
            (None, None) => None,
        };
        let runroot = settings.runroot.clone().or(storage_conf.runroot.clone());
        let paths = Paths::resolve(uid, env, root, runroot)?;
        Ok(Context {
            paths,
            runtime: containers_conf.runtime_for(settings.runtime.as_deref()),
            conmon: settings.conmon.clone().or_else(|| containers_conf.conmon()),
            containers_conf,
            storage_conf,
            log_level: settings.log_level,
            syslog: settings.syslog,
            search_path,
        })
    }

    /// The OCI runtime executable.
    pub fn runtime_path(&self) -> Result<PathBuf, RunnerError> {
        find_executable(&self.runtime, self.search_path.as_deref()).ok_or_else(|| {
            RunnerError::Engine(format!(
                "OCI runtime {:?} not found or not executable",
                self.runtime
            ))
        })
    }

    /// The monitor executable: `--conmon`, else `conmon` next to the running
    /// `vigil` (as in a cargo build or an install), else `conmon` on PATH.
    pub fn monitor_path(&self) -> Result<PathBuf, RunnerError> {
        if let Some(conmon) = &self.conmon {
            return find_executable(conmon, self.search_path.as_deref()).ok_or_else(|| {
                RunnerError::Engine(format!("monitor {conmon:?} not found or not executable"))
            });
        }
        let sibling = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.join(MONITOR_NAME)))
            .and_then(|path| find_executable(&path, None));
        sibling
            .or_else(|| find_executable(MONITOR_NAME.as_ref(), self.search_path.as_deref()))
            .ok_or_else(|| {
                RunnerError::Engine(format!(
                    "monitor {MONITOR_NAME:?} not found next to vigil or on PATH (use --conmon)"
                ))
            })
    }
}

/// vigil keeps a store of its own layout: a storage.conf `graphroot` that
/// holds Podman's containers/storage store (its `storage.lock`) is refused,
/// never written into.
fn refuse_foreign_store(
    graphroot: &std::path::Path,
    file: Option<&std::path::Path>,
) -> Result<(), RunnerError> {
    if graphroot.join("storage.lock").exists() {
        return Err(RunnerError::Engine(format!(
            "{}: graphroot {} holds a containers/storage (Podman) store; vigil keeps its own \
             store: set another graphroot or use --root",
            file.map_or_else(|| "storage.conf".into(), |f| f.display().to_string()),
            graphroot.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn executable(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn resolves_paths_and_finds_the_runtime_on_path() {
        let bin = tempfile::tempdir().unwrap();
        let runc = executable(bin.path(), "runc");
        let search = bin.path().as_os_str().to_owned();
        let env = move |name: &str| match name {
            "PATH" => Some(search.clone()),
            "HOME" => Some("/home/ann".into()),
            _ => None,
        };

        let ctx = Context::new(
            &Settings {
                runroot: Some("/r".into()),
                ..Settings::default()
            },
            1000,
            &env,
        )
        .unwrap();
        assert_eq!(ctx.paths.store, Path::new("/home/ann/.local/share/vigil"));
        assert_eq!(ctx.paths.state, Path::new("/r"));
        assert_eq!(ctx.log_level, LogLevel::Warn);
        assert_eq!(ctx.runtime_path().unwrap(), runc);

        let ctx = Context::new(
            &Settings {
                runtime: Some("crun".into()),
                ..Settings::default()
            },
            1000,
            &env,
        )
        .unwrap();
        let err = ctx.runtime_path().unwrap_err();
        assert_eq!(err.exit_code(), 125);
        assert!(err.to_string().contains("crun"), "{err}");
    }

    #[test]
    fn explicit_monitor_path_is_used() {
        let bin = tempfile::tempdir().unwrap();
        let conmon = executable(bin.path(), "my-conmon");
        let settings = Settings {
            conmon: Some(conmon.clone()),
            ..Settings::default()
        };
        let ctx = Context::new(&settings, 0, |_: &str| None).unwrap();
        assert_eq!(ctx.monitor_path().unwrap(), conmon);

        let missing = bin.path().join("missing");
        let settings = Settings {
            conmon: Some(missing),
            ..Settings::default()
        };
        let ctx = Context::new(&settings, 0, |_: &str| None).unwrap();
        assert_eq!(ctx.monitor_path().unwrap_err().exit_code(), 125);
    }
}
