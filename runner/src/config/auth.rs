//! Registry credentials: containers-auth.json(5).
//!
//! Where: `--authfile` > `REGISTRY_AUTH_FILE` > `$XDG_RUNTIME_DIR/containers/auth.json`
//! (root without `XDG_RUNTIME_DIR`: `/run/containers/0/auth.json`). When
//! neither flag nor variable names a file, reading falls back to
//! `$HOME/.config/containers/auth.json`, Docker's `$HOME/.docker/config.json`
//! and the legacy `$HOME/.dockercfg`; the first file with a matching key wins.
//! login/logout only ever write the primary file (mode 0600, parent 0700,
//! atomic rename, unknown keys kept).
//!
//! A file's `credHelpers` (registry host -> helper) wins over its `auths`
//! for that host, and its `credsStore` serves the hosts neither names
//! ([`super::cred_helper`]); login and logout then store and erase through
//! the helper of the primary file instead of writing it.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::cred_helper::{self, HelperError};
use super::{absolute_var, home, ConfigError, Env};

/// A user name and password (or token). Never printed: `Debug` hides the
/// secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// `--creds USER[:PASS]` (the password may contain `:`).
    pub fn parse_creds(s: &str) -> Option<Credentials> {
        let (user, pass) = s.split_once(':')?;
        (!user.is_empty()).then(|| Credentials {
            username: user.to_string(),
            password: pass.to_string(),
        })
    }

    /// The `auth` field: base64 of `user:password`.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password))
    }

    fn decode(auth: &str) -> Option<Credentials> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        Credentials::parse_creds(&text)
    }
}

/// The auth files for one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFiles {
    /// What login/logout write, and what is read first.
    pub primary: PathBuf,
    /// Read after the primary file, in order (empty with an explicit file).
    pub fallbacks: Vec<PathBuf>,
}

impl AuthFiles {
    /// The files for `--authfile` (if given), the environment and `uid`.
    pub fn locate(authfile: Option<&Path>, env: &dyn Env, uid: u32) -> AuthFiles {
        if let Some(file) = authfile {
            return AuthFiles {
                primary: file.to_path_buf(),
                fallbacks: Vec::new(),
            };
        }
        if let Some(file) = env.var("REGISTRY_AUTH_FILE").filter(|f| !f.is_empty()) {
            return AuthFiles {
                primary: PathBuf::from(file),
                fallbacks: Vec::new(),
            };
        }
        let runtime = absolute_var(env, "XDG_RUNTIME_DIR")
            .unwrap_or_else(|| PathBuf::from(format!("/run/user/{uid}")));
        let primary = if uid == 0 && absolute_var(env, "XDG_RUNTIME_DIR").is_none() {
            PathBuf::from("/run/containers/0/auth.json")
        } else {
            runtime.join("containers/auth.json")
        };
        let fallbacks = home(env)
            .map(|h| {
                vec![
                    h.join(".config/containers/auth.json"),
                    h.join(".docker/config.json"),
                    h.join(".dockercfg"),
                ]
            })
            .unwrap_or_default();
        AuthFiles { primary, fallbacks }
    }

    /// Credentials for `name` (`host[:port]/path/repo`, or just a host):
    /// keys tried most specific first, files in order.
    pub fn lookup(&self, name: &str) -> Result<Option<Credentials>, ConfigError> {
        for file in std::iter::once(&self.primary).chain(&self.fallbacks) {
            let Some(doc) = read(file)? else { continue };
            let host = registry_host(name);
            let helper_err = |e: HelperError| ConfigError {
                file: file.clone(),
                reason: e.0,
            };
            if let Some(helper) = named_helper(&doc, "credHelpers", &host) {
                // The file hands this registry to its helper; its `auths`
                // entry (if any) is not used, as in containers/image.
                match cred_helper::get(&helper, &host).map_err(helper_err)? {
                    Some(creds) => return Ok(Some(creds)),
                    None => continue,
                }
            }
            let legacy = file.file_name().is_some_and(|n| n == ".dockercfg");
            let auths = if legacy {
                doc.as_object()
            } else {
                doc.get("auths").and_then(|a| a.as_object())
            };
            let store = doc
                .get("credsStore")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            let Some(auths) = auths else {
                if let Some(store) = store {
                    if let Some(creds) = cred_helper::get(store, &host).map_err(helper_err)? {
                        return Ok(Some(creds));
                    }
                }
                continue;
            };
            let normalized: Vec<(String, &Value)> =
                auths.iter().map(|(k, v)| (normalize_key(k), v)).collect();
            for key in candidate_keys(name) {
                if let Some((_, entry)) = normalized.iter().find(|(k, _)| *k == key) {
                    if let Some(creds) = entry
                        .get("auth")
                        .and_then(|a| a.as_str())
                        .and_then(Credentials::decode)
                    {
                        return Ok(Some(creds));
                    }
                }
            }
            if let Some(store) = store {
                if let Some(creds) = cred_helper::get(store, &host).map_err(helper_err)? {
                    return Ok(Some(creds));
                }
            }
        }
        Ok(None)
    }

    /// The helper of the primary file for a login `key` that is a registry
    /// host (`credHelpers`, else `credsStore`).
    fn primary_helper(&self, key: &str) -> Result<Option<String>, ConfigError> {
        if key.contains('/') {
            return Ok(None);
        }
        let Some(doc) = read(&self.primary)? else {
            return Ok(None);
        };
        Ok(named_helper(&doc, "credHelpers", key).or_else(|| {
            doc.get("credsStore")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        }))
    }

    fn helper_error(&self, e: HelperError) -> ConfigError {
        ConfigError {
            file: self.primary.clone(),
            reason: e.0,
        }
    }

    /// Stores credentials for `key` in the primary file.
    pub fn store(&self, key: &str, creds: &Credentials) -> Result<(), ConfigError> {
        if let Some(helper) = self.primary_helper(key)? {
            return cred_helper::store(&helper, key, creds).map_err(|e| self.helper_error(e));
        }
        let mut doc = read(&self.primary)?.unwrap_or_else(|| Value::Object(Map::new()));
        let auths = auths_mut(&mut doc, &self.primary)?;
        let entry = auths
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        match entry.as_object_mut() {
            Some(obj) => {
                obj.insert("auth".into(), Value::String(creds.encode()));
            }
            None => {
                *entry = serde_json::json!({ "auth": creds.encode() });
            }
        }
        write(&self.primary, &doc)
    }

    /// Removes `key` from the primary file; false if it was not there.
    pub fn remove(&self, key: &str) -> Result<bool, ConfigError> {
        if let Some(helper) = self.primary_helper(key)? {
            return cred_helper::erase(&helper, key).map_err(|e| self.helper_error(e));
        }
        let Some(mut doc) = read(&self.primary)? else {
            return Ok(false);
        };
        let auths = auths_mut(&mut doc, &self.primary)?;
        let found = auths.remove(key).is_some()
            || match auths.keys().find(|k| normalize_key(k) == key).cloned() {
                Some(k) => auths.remove(&k).is_some(),
                None => false,
            };
        if found {
            write(&self.primary, &doc)?;
        }
        Ok(found)
    }

    /// Removes every credential from the primary file: as Podman 4.3.1,
    /// the helper of each `credHelpers` entry forgets its registry and the
    /// `auths` and `credHelpers` maps are emptied. A `credsStore` helper
    /// (Docker's key, which Podman does not read) forgets every server it
    /// lists, since vigil's logins stored there; the key itself stays, like
    /// every key vigil does not own.
    pub fn remove_all(&self) -> Result<(), ConfigError> {
        let mut doc = read(&self.primary)?.unwrap_or_else(|| Value::Object(Map::new()));
        let helpers: Vec<(String, String)> = doc
            .get("credHelpers")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(host, helper)| {
                        Some((normalize_key(host), helper.as_str()?.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (host, helper) in helpers {
            cred_helper::erase(&helper, &host).map_err(|e| self.helper_error(e))?;
        }
        let store = doc
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        if let Some(store) = store {
            let servers = cred_helper::list(&store).map_err(|e| self.helper_error(e))?;
            for server in servers {
                cred_helper::erase(&store, &server).map_err(|e| self.helper_error(e))?;
            }
        }
        auths_mut(&mut doc, &self.primary)?.clear();
        if let Some(obj) = doc.as_object_mut() {
            obj.remove("credHelpers");
        }
        write(&self.primary, &doc)
    }
}

/// `https://index.docker.io/v1/` -> `docker.io`; `http://h/v2/` -> `h`.
pub fn normalize_key(key: &str) -> String {
    let mut k = key;
    for scheme in ["https://", "http://"] {
        if let Some(rest) = k.strip_prefix(scheme) {
            k = rest;
            for api in ["/v1/", "/v2/", "/v1", "/v2"] {
                if let Some(rest) = k.strip_suffix(api) {
                    k = rest;
                    break;
                }
            }
        }
    }
    let k = k.trim_end_matches('/');
    match k {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

/// `credHelpers` (or another map of host -> helper) entry for `host`.
fn named_helper(doc: &Value, map: &str, host: &str) -> Option<String> {
    doc.get(map)?
        .as_object()?
        .iter()
        .find(|(k, _)| normalize_key(k) == host)
        .and_then(|(_, v)| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The registry host of `host[:port]/repo[:tag]` (or of a bare host).
fn registry_host(name: &str) -> String {
    normalize_key(name.split('/').next().unwrap_or(name))
}

/// `host/a/b/repo` -> [`host/a/b/repo`, `host/a/b`, `host/a`, `host`].
fn candidate_keys(name: &str) -> Vec<String> {
    // A `:` in the host part is a port; after the first `/` it starts a tag.
    let repo = match name.split_once('/') {
        Some((host, rest)) => format!("{host}/{}", rest.split([':', '@']).next().unwrap_or(rest)),
        None => name.to_string(),
    };
    let mut keys = Vec::new();
    let mut current = repo.as_str();
    loop {
        keys.push(current.to_string());
        match current.rfind('/') {
            Some(i) => current = &current[..i],
            None => break,
        }
    }
    keys
}

fn read(file: &Path) -> Result<Option<Value>, ConfigError> {
    match fs::read(file) {
        Ok(bytes) if bytes.iter().all(|b| b.is_ascii_whitespace()) => Ok(None),
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ConfigError {
                file: file.to_path_buf(),
                reason: format!("parsing auth file: {e}"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError {
            file: file.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

fn auths_mut<'a>(
    doc: &'a mut Value,
    file: &Path,
) -> Result<&'a mut Map<String, Value>, ConfigError> {
    let bad = || ConfigError {
        file: file.to_path_buf(),
        reason: "auth file is not a JSON object with an \"auths\" object".into(),
    };
    let obj = doc.as_object_mut().ok_or_else(bad)?;
    let auths = obj
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    auths.as_object_mut().ok_or_else(bad)
}

/// Tab-indented JSON, no trailing newline (Podman's bytes), written to a
/// 0600 temporary file and renamed.
fn write(file: &Path, doc: &Value) -> Result<(), ConfigError> {
    let fail = |reason: String| ConfigError {
        file: file.to_path_buf(),
        reason,
    };
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(doc, &mut ser).map_err(|e| fail(e.to_string()))?;
    let dir = file.parent().unwrap_or(Path::new("."));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "auth.json".into());
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        f.write_all(&out)?;
        f.sync_all()?;
        fs::rename(&temp, file)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&temp);
        return Err(fail(e.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keys_most_specific_first() {
        assert_eq!(
            candidate_keys("127.0.0.1:5443/tests/busybox:1"),
            [
                "127.0.0.1:5443/tests/busybox",
                "127.0.0.1:5443/tests",
                "127.0.0.1:5443"
            ]
        );
        assert_eq!(candidate_keys("127.0.0.1:5443"), ["127.0.0.1:5443"]);
        assert_eq!(normalize_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(
            normalize_key("https://127.0.0.1:5443/v2/"),
            "127.0.0.1:5443"
        );
    }

    #[test]
    fn store_lookup_remove_and_file_mode() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/auth.json");
        let f2 = file.clone();
        let env = move |n: &str| (n == "REGISTRY_AUTH_FILE").then(|| f2.clone().into());
        let files = AuthFiles::locate(None, &env, 1000);
        assert_eq!(files.primary, file);
        let creds = Credentials::parse_creds("alice:s3c:ret").unwrap();
        files.store("127.0.0.1:5443/tests", &creds).unwrap();
        let text = fs::read_to_string(&file).unwrap();
        assert_eq!(
            text,
            "{\n\t\"auths\": {\n\t\t\"127.0.0.1:5443/tests\": {\n\t\t\t\"auth\": \"YWxpY2U6czNjOnJldA==\"\n\t\t}\n\t}\n}"
        );
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            files.lookup("127.0.0.1:5443/tests/busybox:1").unwrap(),
            Some(creds)
        );
        assert_eq!(files.lookup("127.0.0.1:5443/other/bb").unwrap(), None);
        assert!(!format!("{:?}", files.lookup("127.0.0.1:5443/tests/x").unwrap()).contains("s3c"));
        assert!(files.remove("127.0.0.1:5443/tests").unwrap());
        assert!(!files.remove("127.0.0.1:5443/tests").unwrap());
        files.remove_all().unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "{\n\t\"auths\": {}\n}");
    }

    #[test]
    fn docker_config_is_a_fallback() {
        let home = tempfile::tempdir().unwrap();
        fs::create_dir(home.path().join(".docker")).unwrap();
        fs::write(
            home.path().join(".docker/config.json"),
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"Ym9iOnB3"}}}"#,
        )
        .unwrap();
        let h = home.path().to_path_buf();
        let env = move |n: &str| match n {
            "HOME" => Some(h.clone().into()),
            "XDG_RUNTIME_DIR" => Some("/nonexistent-run".into()),
            _ => None,
        };
        let files = AuthFiles::locate(None, &env, 1000);
        let c = files.lookup("docker.io/library/busybox").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("bob", "pw"));
    }
}
