//! The short-name alias cache (containers-registries.conf(5)): the choices
//! made at the short-name selector, `[aliases]` in
//! `/var/cache/containers/short-name-aliases.conf` for root and
//! `$XDG_CACHE_HOME` (else `$HOME/.cache`)`/containers/short-name-aliases.conf`
//! for other users. registries.conf's own `[aliases]` win over it.
//! `VIGIL_SHORT_NAME_ALIASES_CONF` names another file (a vigil extension
//! for tests and sandboxes, like `VIGIL_REGISTRIES_CONF_DIR`).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{absolute_var, home, ConfigError, Env};

/// Root's cache file.
pub const ROOT_FILE: &str = "/var/cache/containers/short-name-aliases.conf";

#[derive(Debug, Default, Deserialize)]
struct RawCache {
    #[serde(default)]
    aliases: BTreeMap<String, String>,
}

/// Where the cache is for this environment and user.
pub fn path(env: &dyn Env, uid: u32) -> Option<PathBuf> {
    if let Some(file) = absolute_var(env, "VIGIL_SHORT_NAME_ALIASES_CONF") {
        return Some(file);
    }
    if uid == 0 {
        return Some(PathBuf::from(ROOT_FILE));
    }
    absolute_var(env, "XDG_CACHE_HOME")
        .or_else(|| home(env).map(|h| h.join(".cache")))
        .map(|cache| cache.join("containers/short-name-aliases.conf"))
}

fn err(file: &Path, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        file: file.to_path_buf(),
        reason: reason.into(),
    }
}

/// The cached aliases (none when the file does not exist).
pub fn load(file: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(err(file, e.to_string())),
    };
    let raw: RawCache = toml::from_str(&text).map_err(|e| err(file, e.to_string()))?;
    Ok(raw.aliases)
}

/// Records `name = value` (value without tag or digest), keeping the other
/// entries; written to a temporary file and renamed.
pub fn record(file: &Path, name: &str, value: &str) -> Result<(), ConfigError> {
    let mut aliases = load(file)?;
    aliases.insert(name.to_string(), value.to_string());
    let mut text = String::from("[aliases]\n");
    for (k, v) in &aliases {
        text.push_str(&format!("  {} = {}\n", toml_key(k), toml_string(v)));
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| err(dir, e.to_string()))?;
    let temp = dir.join(format!(
        ".short-name-aliases.conf.tmp-{}",
        std::process::id()
    ));
    let written = (|| {
        let mut f = fs::File::create(&temp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&temp, file)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(err(file, e.to_string()));
    }
    Ok(())
}

/// A bare key when TOML allows one, else a quoted one.
fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        k.to_string()
    } else {
        toml_string(k)
    }
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keeps_other_entries_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/short-name-aliases.conf");
        assert!(load(&file).unwrap().is_empty());
        record(&file, "shortie", "127.0.0.1:5000/shortie").unwrap();
        record(&file, "a/b", "127.0.0.1:5000/a/b").unwrap();
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "[aliases]\n  \"a/b\" = \"127.0.0.1:5000/a/b\"\n  shortie = \"127.0.0.1:5000/shortie\"\n"
        );
        let back = load(&file).unwrap();
        assert_eq!(back["shortie"], "127.0.0.1:5000/shortie");
        assert_eq!(back["a/b"], "127.0.0.1:5000/a/b");
        let env = |n: &str| (n == "HOME").then(|| "/home/u".into());
        assert_eq!(
            path(&env, 1000).unwrap(),
            PathBuf::from("/home/u/.cache/containers/short-name-aliases.conf")
        );
        assert_eq!(path(&env, 0).unwrap(), PathBuf::from(ROOT_FILE));
    }
}
