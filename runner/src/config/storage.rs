//! `storage.conf`: how container root file systems are stored and mounted.
//!
//! One file is used, not a merge (as containers/storage does): the user's
//! (`$XDG_CONFIG_HOME/containers/storage.conf`, else `~/.config/...`) if it
//! exists, else `/etc/containers/storage.conf`, else
//! `/usr/share/containers/storage.conf`; `CONTAINERS_STORAGE_CONF=FILE`
//! replaces them all.
//!
//! What vigil uses: `[storage] driver` (`overlay`: an overlay mount, falling
//! back to a copy; `vfs`: always a copy), `graphroot` and `runroot` (vigil's
//! store and state directories unless `--root`/`--runroot`; for a rootless
//! user only from the user's own file, as in Podman), `rootless_storage_path`,
//! and `[storage.options.overlay] mount_program` (e.g. fuse-overlayfs: the
//! overlay is mounted by that program instead of the kernel) with `mountopt`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{read_layer, search_path, user_dir, ConfigError};

/// The variable that replaces the file.
pub const OVERRIDE_VAR: &str = "CONTAINERS_STORAGE_CONF";
/// The file name looked for in each directory.
pub const FILE_NAME: &str = "storage.conf";

/// How a container's root file system is made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Driver {
    /// An overlay of the image layers (kernel or `mount_program`).
    #[default]
    Overlay,
    /// A private copy of the image (slow, works everywhere).
    Vfs,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Overlay => "overlay",
            Driver::Vfs => "vfs",
        }
    }
}

/// The effective `storage.conf`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageConf {
    pub driver: Driver,
    /// Store directory (`--root` wins).
    pub graphroot: Option<PathBuf>,
    /// State directory (`--runroot` wins).
    pub runroot: Option<PathBuf>,
    /// Mounts the overlay instead of the kernel (fuse-overlayfs).
    pub mount_program: Option<PathBuf>,
    /// Extra overlay mount options (`mountopt`, comma-separated).
    pub mount_options: Vec<String>,
    /// The file these came from, if any.
    pub file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
struct Layer {
    #[serde(default)]
    storage: StorageLayer,
}

#[derive(Debug, Default, Deserialize)]
struct StorageLayer {
    driver: Option<String>,
    graphroot: Option<PathBuf>,
    runroot: Option<PathBuf>,
    rootless_storage_path: Option<PathBuf>,
    #[serde(default)]
    options: OptionsLayer,
}

#[derive(Debug, Default, Deserialize)]
struct OptionsLayer {
    /// The pre-4.x place of the overlay options.
    mount_program: Option<PathBuf>,
    mountopt: Option<String>,
    #[serde(default)]
    overlay: OverlayLayer,
}

#[derive(Debug, Default, Deserialize)]
struct OverlayLayer {
    mount_program: Option<PathBuf>,
    mountopt: Option<String>,
}

/// containers/storage keys vigil accepts without using them.
const QUIET: &[&str] = &[
    "storage.options",
    "storage.transient_store",
    "storage.imagestore",
    "storage.driver_priority",
];

impl StorageConf {
    /// The file chosen as described in the module comment. `rootless`: the
    /// store paths of a system file are not the user's and are ignored.
    pub fn load<E, W>(env: &E, rootless: bool, warn: &mut W) -> Result<StorageConf, ConfigError>
    where
        E: Fn(&str) -> Option<OsString>,
        W: FnMut(String),
    {
        let candidates = search_path(FILE_NAME, OVERRIDE_VAR, env);
        let Some(file) = candidates.iter().rev().find(|f| f.is_file()) else {
            return Ok(StorageConf::default());
        };
        let own = env(OVERRIDE_VAR).is_some_and(|v| !v.is_empty())
            || user_dir(env).is_some_and(|d| file.starts_with(d));
        Self::load_file(file, !rootless || own, warn)
    }

    /// One file; `use_paths`: take its graphroot/runroot.
    pub fn load_file<W: FnMut(String)>(
        file: &Path,
        use_paths: bool,
        warn: &mut W,
    ) -> Result<StorageConf, ConfigError> {
        let Some(layer) = read_layer::<Layer, W>(file, QUIET, warn)? else {
            return Ok(StorageConf::default());
        };
        let invalid = |message: String| ConfigError {
            file: file.to_path_buf(),
            reason: message,
        };
        let s = layer.storage;
        let driver = match s.driver.as_deref() {
            None | Some("") | Some("overlay") | Some("overlay2") => Driver::Overlay,
            Some("vfs") => Driver::Vfs,
            Some(other) => {
                return Err(invalid(format!(
                    "storage.driver {other:?} is not supported by vigil (overlay or vfs)"
                )))
            }
        };
        let absolute = |what: &str, p: Option<PathBuf>| match p {
            Some(p) if p.as_os_str().is_empty() => Ok(None),
            Some(p) if !p.is_absolute() => Err(invalid(format!(
                "{what} {} is not an absolute path",
                p.display()
            ))),
            other => Ok(other),
        };
        let graphroot = absolute("storage.graphroot", s.graphroot)?;
        let rootless_path = absolute("storage.rootless_storage_path", s.rootless_storage_path)?;
        let runroot = absolute("storage.runroot", s.runroot)?;
        let o = s.options;
        let mount_program = absolute("mount_program", o.overlay.mount_program.or(o.mount_program))?;
        let mount_options = o
            .overlay
            .mountopt
            .or(o.mountopt)
            .map(|m| {
                m.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        Ok(StorageConf {
            driver,
            graphroot: if use_paths { graphroot } else { rootless_path },
            runroot: if use_paths { runroot } else { None },
            mount_program,
            mount_options,
            file: Some(file.to_path_buf()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::fs;

    fn env_of(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn the_users_file_or_the_override_is_used() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("containers");
        fs::create_dir_all(&cfg).unwrap();
        fs::write(
            cfg.join("storage.conf"),
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"/g\"\nrunroot = \"/r\"\n\
             [storage.options.overlay]\nmount_program = \"/usr/bin/fuse-overlayfs\"\n\
             mountopt = \"nodev,metacopy=on\"\n[storage.options]\nadditionalimagestores = []\n",
        )
        .unwrap();
        let env = env_of(&[("XDG_CONFIG_HOME", d.path().display().to_string())]);
        let mut warnings = Vec::new();
        let conf = StorageConf::load(&env, true, &mut |w| warnings.push(w)).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(conf.driver, Driver::Vfs);
        assert_eq!(conf.graphroot.as_deref(), Some(Path::new("/g")));
        assert_eq!(conf.runroot.as_deref(), Some(Path::new("/r")));
        assert_eq!(
            conf.mount_program.as_deref(),
            Some(Path::new("/usr/bin/fuse-overlayfs"))
        );
        assert_eq!(conf.mount_options, ["nodev", "metacopy=on"]);

        let other = d.path().join("other.conf");
        fs::write(&other, "[storage]\ndriver = \"overlay\"\n").unwrap();
        let env = env_of(&[
            ("XDG_CONFIG_HOME", d.path().display().to_string()),
            ("CONTAINERS_STORAGE_CONF", other.display().to_string()),
        ]);
        let conf = StorageConf::load(&env, true, &mut |_| {}).unwrap();
        assert_eq!((conf.driver, conf.graphroot), (Driver::Overlay, None));
        assert_eq!(conf.file, Some(other));
    }

    #[test]
    fn a_system_files_paths_are_not_a_rootless_users() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("storage.conf");
        fs::write(
            &f,
            "[storage]\ngraphroot = \"/var/lib/x\"\nrunroot = \"/run/x\"\n\
             rootless_storage_path = \"/home/x\"\n",
        )
        .unwrap();
        let conf = StorageConf::load_file(&f, false, &mut |_| {}).unwrap();
        assert_eq!(conf.graphroot.as_deref(), Some(Path::new("/home/x")));
        assert_eq!(conf.runroot, None);
    }

    #[test]
    fn bad_values_are_errors_naming_the_file() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("storage.conf");
        for (text, want) in [
            ("[storage]\ndriver = \"btrfs\"\n", "btrfs"),
            ("[storage]\ngraphroot = \"rel\"\n", "absolute"),
            ("[storage]\ndriver = [\n", "line 2:"),
        ] {
            fs::write(&f, text).unwrap();
            let e = StorageConf::load_file(&f, true, &mut |_| {}).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.starts_with(&f.display().to_string()) && msg.contains(want),
                "{msg}"
            );
        }
    }
}
