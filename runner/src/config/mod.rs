//! The containers configuration files vigil reads (registries.conf,
//! auth.json, containers.conf, storage.conf), and the small pieces their
//! loaders share: where files are looked for, and how a TOML file is parsed
//! into a typed layer (an error names the file and line; an unknown key is
//! warned about and ignored).
//!
//! Each file format owns a module; this one only has the search-order and
//! error helpers.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

pub mod alias_cache;
pub mod auth;
pub mod containers;
pub mod cred_helper;
pub mod registries;
pub mod storage;

/// The system directories, in the order Podman reads them (later wins).
pub const SYSTEM_DIRS: [&str; 2] = ["/usr/share/containers", "/etc/containers"];

/// A configuration file that could not be used: which file, and why (the
/// TOML/JSON parser's message carries the line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// How configuration loaders read the environment (a closure in tests,
/// `std::env::var_os` in the binary).
pub trait Env {
    fn var(&self, name: &str) -> Option<OsString>;
}

impl<F: Fn(&str) -> Option<OsString>> Env for F {
    fn var(&self, name: &str) -> Option<OsString> {
        self(name)
    }
}

/// The process environment.
pub fn process_env() -> impl Env {
    |name: &str| std::env::var_os(name)
}

/// An environment variable as an absolute path, if it is one.
pub fn absolute_var(env: &dyn Env, name: &str) -> Option<PathBuf> {
    let value = PathBuf::from(env.var(name)?);
    value.is_absolute().then_some(value)
}

/// `$HOME`, if set to an absolute path.
pub fn home(env: &dyn Env) -> Option<PathBuf> {
    absolute_var(env, "HOME")
}

/// The `*.conf` files of a drop-in directory, in lexical order of name
/// (a missing directory has none).
pub fn drop_ins(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf") && p.is_file())
        .collect();
    files.sort();
    files
}

/// The user's configuration directory: `$XDG_CONFIG_HOME/containers`, else
/// `$HOME/.config/containers` (absolute values only, as the XDG spec says).
pub fn user_dir<E>(env: &E) -> Option<PathBuf>
where
    E: Fn(&str) -> Option<OsString>,
{
    let absolute = |name: &str| env(name).map(PathBuf::from).filter(|p| p.is_absolute());
    absolute("XDG_CONFIG_HOME")
        .map(|d| d.join("containers"))
        .or_else(|| absolute("HOME").map(|h| h.join(".config/containers")))
}

/// Where `name` (`containers.conf`, `storage.conf`) is looked for, lowest
/// precedence first: the system directories, then the user's. `override_var`
/// (`CONTAINERS_CONF`...) set to a file replaces the whole list, as in Podman.
pub fn search_path<E>(name: &str, override_var: &str, env: &E) -> Vec<PathBuf>
where
    E: Fn(&str) -> Option<OsString>,
{
    if let Some(file) = env(override_var).filter(|v| !v.is_empty()) {
        return vec![PathBuf::from(file)];
    }
    let mut files: Vec<PathBuf> = SYSTEM_DIRS
        .iter()
        .map(|d| Path::new(d).join(name))
        .collect();
    files.extend(user_dir(env).map(|d| d.join(name)));
    files
}

/// Reads `file` into `T`; `None` if it does not exist. Keys `T` does not
/// know are ignored; those not in `quiet` either (a `section.key` path, or a
/// section whose keys are all accepted) are reported through `warn`.
pub fn read_layer<T, W>(file: &Path, quiet: &[&str], warn: &mut W) -> Result<Option<T>, ConfigError>
where
    T: serde::de::DeserializeOwned,
    W: FnMut(String),
{
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ConfigError {
                file: file.to_path_buf(),
                reason: e.to_string(),
            })
        }
    };
    parse_layer(file, &text, quiet, warn).map(Some)
}

/// [`read_layer`] on text already read.
pub fn parse_layer<T, W>(
    file: &Path,
    text: &str,
    quiet: &[&str],
    warn: &mut W,
) -> Result<T, ConfigError>
where
    T: serde::de::DeserializeOwned,
    W: FnMut(String),
{
    let parse_error = |e: toml::de::Error| ConfigError {
        file: file.to_path_buf(),
        reason: match e.span() {
            Some(span) => format!("line {}: {}", line_of(text, span.start), e.message().trim()),
            None => e.message().trim().to_string(),
        },
    };
    let de = toml::Deserializer::parse(text).map_err(parse_error)?;
    let mut unknown = Vec::new();
    let value = serde_ignored::deserialize(de, |path| unknown.push(path.to_string()))
        .map_err(parse_error)?;
    let is_quiet = |key: &str| {
        quiet.iter().any(|q| {
            key == *q
                || key
                    .strip_prefix(q)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    };
    for key in unknown.into_iter().filter(|k| !is_quiet(k)) {
        warn(format!("{}: unknown key {key:?} ignored", file.display()));
    }
    Ok(value)
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Shows a configuration warning the way vigil shows its warnings.
pub fn print_warning(message: String) {
    log::warn!("{message}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Debug, Default, serde::Deserialize)]
    struct Demo {
        #[serde(default)]
        section: DemoSection,
    }

    #[derive(Debug, Default, serde::Deserialize)]
    struct DemoSection {
        name: Option<String>,
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn search_order_and_override() {
        let env = env_of(&[("HOME", "/home/ann")]);
        assert_eq!(
            search_path("containers.conf", "CONTAINERS_CONF", &env),
            [
                "/usr/share/containers/containers.conf",
                "/etc/containers/containers.conf",
                "/home/ann/.config/containers/containers.conf"
            ]
            .map(PathBuf::from)
        );
        let env = env_of(&[("HOME", "/home/ann"), ("XDG_CONFIG_HOME", "/cfg")]);
        assert_eq!(
            search_path("storage.conf", "CONTAINERS_STORAGE_CONF", &env)[2],
            Path::new("/cfg/containers/storage.conf")
        );
        let env = env_of(&[("HOME", "/h"), ("CONTAINERS_CONF", "/x.conf")]);
        assert_eq!(
            search_path("containers.conf", "CONTAINERS_CONF", &env),
            [PathBuf::from("/x.conf")]
        );
    }

    #[test]
    fn errors_name_file_and_line_and_unknown_keys_warn() {
        let f = Path::new("/c.conf");
        let mut warnings = Vec::new();
        let d: Demo = parse_layer(
            f,
            "[section]\nname = \"x\"\nbogus = 1\nquiet = 2\n",
            &["section.quiet"],
            &mut |w| warnings.push(w),
        )
        .unwrap();
        assert_eq!(d.section.name.as_deref(), Some("x"));
        assert_eq!(warnings, ["/c.conf: unknown key \"section.bogus\" ignored"]);

        let e = parse_layer::<Demo, _>(f, "[section]\n\nname = \n", &[], &mut |_| {}).unwrap_err();
        assert!(e.to_string().starts_with("/c.conf: line 3: "), "{e}");
        let e = parse_layer::<Demo, _>(f, "[section]\nname = 5\n", &[], &mut |_| {}).unwrap_err();
        assert!(e.to_string().starts_with("/c.conf: line 2: "), "{e}");
        assert!(e.to_string().contains("string"), "{e}");
    }
}
