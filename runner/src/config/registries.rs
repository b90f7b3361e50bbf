//! registries.conf (containers-registries.conf(5)), v2 and v1 formats, read
//! in Podman's order: the main file (`CONTAINERS_REGISTRIES_CONF`, else
//! `$HOME/.config/containers/registries.conf` if it exists, else
//! `/etc/containers/registries.conf`), then the drop-ins of
//! `/etc/containers/registries.conf.d/` and
//! `$HOME/.config/containers/registries.conf.d/` (`*.conf`, by name).
//!
//! `VIGIL_REGISTRIES_CONF_DIR` (a vigil extension, for tests and
//! sandboxes) replaces the system drop-in directory.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{drop_ins, home, ConfigError, Env};

/// The system file and drop-in directory.
pub const SYSTEM_FILE: &str = "/etc/containers/registries.conf";
pub const SYSTEM_DROP_IN_DIR: &str = "/etc/containers/registries.conf.d";

/// `short-name-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShortNameMode {
    #[default]
    Enforcing,
    Permissive,
    Disabled,
}

/// `pull-from-mirror` of a mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullFromMirror {
    #[default]
    All,
    DigestOnly,
    TagOnly,
}

/// A `[[registry.mirror]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub location: String,
    pub insecure: bool,
    pub pull_from_mirror: PullFromMirror,
}

/// A `[[registry]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    /// What names it applies to (`example.com/foo`, `*.example.com`).
    pub prefix: String,
    /// Where those names are fetched from (the prefix is replaced by it).
    pub location: String,
    pub insecure: bool,
    pub blocked: bool,
    pub mirror_by_digest_only: bool,
    pub mirrors: Vec<Mirror>,
    /// The file that defined it, for messages.
    pub file: PathBuf,
}

/// One place to try for a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSource {
    /// The rewritten name (`127.0.0.1:5000/mirror/busybox:1`).
    pub name: String,
    pub insecure: bool,
    pub is_mirror: bool,
}

/// The merged configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registries {
    pub unqualified_search: Vec<String>,
    /// The file that set `unqualified-search-registries` (for messages).
    pub search_file: Option<PathBuf>,
    pub short_name_mode: ShortNameMode,
    pub registries: Vec<RegistryEntry>,
    /// Alias -> (value, file that set it).
    pub aliases: BTreeMap<String, (String, PathBuf)>,
    /// Every file read, in order.
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawFile {
    unqualified_search_registries: Option<Vec<String>>,
    short_name_mode: Option<String>,
    #[serde(default)]
    registry: Vec<RawRegistry>,
    aliases: Option<BTreeMap<String, String>>,
    credential_helpers: Option<Vec<String>>,
    registries: Option<RawV1>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawRegistry {
    prefix: Option<String>,
    location: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    mirror: Vec<RawMirror>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawMirror {
    location: String,
    #[serde(default)]
    insecure: bool,
    pull_from_mirror: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawV1 {
    search: Option<RawV1List>,
    insecure: Option<RawV1List>,
    block: Option<RawV1List>,
}

#[derive(Debug, Default, Deserialize)]
struct RawV1List {
    #[serde(default)]
    registries: Vec<String>,
}

/// The files to read, in order, for this environment.
pub fn files(env: &dyn Env) -> Vec<PathBuf> {
    let home = home(env);
    let main = match env.var("CONTAINERS_REGISTRIES_CONF") {
        Some(file) if !file.is_empty() => PathBuf::from(file),
        _ => match &home {
            Some(h) if h.join(".config/containers/registries.conf").is_file() => {
                h.join(".config/containers/registries.conf")
            }
            _ => PathBuf::from(SYSTEM_FILE),
        },
    };
    let system_dir = env
        .var("VIGIL_REGISTRIES_CONF_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SYSTEM_DROP_IN_DIR));
    let mut files = vec![main];
    files.extend(drop_ins(&system_dir));
    if let Some(h) = &home {
        files.extend(drop_ins(&h.join(".config/containers/registries.conf.d")));
    }
    files
}

/// Reads and merges the configuration for this environment. Missing files
/// are skipped; a file that does not parse is an error.
pub fn load(env: &dyn Env) -> Result<Registries, ConfigError> {
    let mut merged = Registries::default();
    for file in files(env) {
        let text = match fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(ConfigError {
                    file,
                    reason: e.to_string(),
                })
            }
        };
        merged.merge_text(&text, &file)?;
    }
    Ok(merged)
}

fn err(file: &Path, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        file: file.to_path_buf(),
        reason: reason.into(),
    }
}

/// Checks a `host[:port][/path]` location or prefix.
fn valid_location(s: &str) -> bool {
    !s.is_empty()
        && !s.contains("://")
        && !s.ends_with('/')
        && s.bytes().all(|b| b.is_ascii_graphic())
}

impl Registries {
    /// Merges one file's text: scalars and lists replace, registries with
    /// the same prefix replace, aliases merge key by key.
    pub fn merge_text(&mut self, text: &str, file: &Path) -> Result<(), ConfigError> {
        let raw: RawFile = toml::from_str(text)
            .map_err(|e| err(file, format!("loading registries configuration: {e}")))?;
        self.files.push(file.to_path_buf());
        let v2 = raw.unqualified_search_registries.is_some()
            || raw.short_name_mode.is_some()
            || !raw.registry.is_empty()
            || raw.aliases.is_some()
            || raw.credential_helpers.is_some();
        let mut entries = Vec::new();
        if let Some(v1) = raw.registries {
            if v2 {
                return Err(err(file, "mixing sysregistry v1/v2 is not supported"));
            }
            if let Some(search) = v1.search {
                self.unqualified_search = search.registries;
                self.search_file = Some(file.to_path_buf());
            }
            let mut v1_entry = |location: &str, insecure: bool, blocked: bool| {
                if let Some(e) = entries
                    .iter_mut()
                    .find(|e: &&mut RegistryEntry| e.prefix == location)
                {
                    e.insecure |= insecure;
                    e.blocked |= blocked;
                } else {
                    entries.push(RegistryEntry {
                        prefix: location.to_string(),
                        location: location.to_string(),
                        insecure,
                        blocked,
                        mirror_by_digest_only: false,
                        mirrors: Vec::new(),
                        file: file.to_path_buf(),
                    });
                }
            };
            for r in v1.insecure.map(|l| l.registries).unwrap_or_default() {
                v1_entry(&r, true, false);
            }
            for r in v1.block.map(|l| l.registries).unwrap_or_default() {
                v1_entry(&r, false, true);
            }
        }
        if let Some(search) = raw.unqualified_search_registries {
            self.unqualified_search = search;
            self.search_file = Some(file.to_path_buf());
        }
        if let Some(mode) = raw.short_name_mode {
            self.short_name_mode = match mode.as_str() {
                "enforcing" => ShortNameMode::Enforcing,
                "permissive" => ShortNameMode::Permissive,
                "disabled" => ShortNameMode::Disabled,
                other => return Err(err(file, format!("invalid short-name-mode {other:?}"))),
            };
        }
        for r in raw.registry {
            let (prefix, location) = match (r.prefix, r.location) {
                (Some(p), Some(l)) => (p, l),
                (None, Some(l)) => (l.clone(), l),
                (Some(p), None) if p.starts_with("*.") => (p, String::new()),
                (Some(p), None) => (p.clone(), p),
                (None, None) => return Err(err(file, "[[registry]] without prefix or location")),
            };
            let wildcard = prefix.starts_with("*.");
            if (wildcard && prefix[2..].contains('/')) || !valid_location(&prefix) {
                return Err(err(file, format!("invalid registry prefix {prefix:?}")));
            }
            if !location.is_empty() && !valid_location(&location) {
                return Err(err(file, format!("invalid registry location {location:?}")));
            }
            let mut mirrors = Vec::new();
            for m in r.mirror {
                if !valid_location(&m.location) {
                    return Err(err(
                        file,
                        format!("invalid mirror location {:?}", m.location),
                    ));
                }
                let pull_from_mirror = match m.pull_from_mirror.as_deref() {
                    None | Some("") | Some("all") => PullFromMirror::All,
                    Some("digest-only") => PullFromMirror::DigestOnly,
                    Some("tag-only") => PullFromMirror::TagOnly,
                    Some(other) => {
                        return Err(err(file, format!("invalid pull-from-mirror {other:?}")))
                    }
                };
                mirrors.push(Mirror {
                    location: m.location,
                    insecure: m.insecure,
                    pull_from_mirror,
                });
            }
            entries.push(RegistryEntry {
                prefix,
                location,
                insecure: r.insecure,
                blocked: r.blocked,
                mirror_by_digest_only: r.mirror_by_digest_only,
                mirrors,
                file: file.to_path_buf(),
            });
        }
        for entry in entries {
            match self
                .registries
                .iter_mut()
                .find(|e| e.prefix == entry.prefix)
            {
                Some(old) => *old = entry,
                None => self.registries.push(entry),
            }
        }
        for (k, v) in raw.aliases.unwrap_or_default() {
            self.aliases.insert(k, (v, file.to_path_buf()));
        }
        Ok(())
    }

    /// The `[[registry]]` for a fully qualified `name` (no scheme): the
    /// longest matching prefix, a prefix matching when the name equals it
    /// or continues with `/`, `:` or `@`; `*.example.com` matches hosts
    /// ending in `.example.com`.
    pub fn find(&self, name: &str) -> Option<&RegistryEntry> {
        let host = name.split('/').next().unwrap_or(name);
        let mut best: Option<(usize, &RegistryEntry)> = None;
        for entry in &self.registries {
            let len = if let Some(suffix) = entry.prefix.strip_prefix('*') {
                if host.ends_with(suffix) && host.len() > suffix.len() {
                    // A wildcard is weaker than any explicit prefix of the same host.
                    host.len() - suffix.len()
                } else {
                    continue;
                }
            } else if name == entry.prefix
                || (name.starts_with(&entry.prefix)
                    && matches!(name.as_bytes()[entry.prefix.len()], b'/' | b':' | b'@'))
            {
                entry.prefix.len() + 1000
            } else {
                continue;
            };
            if best.is_none_or(|(l, _)| len > l) {
                best = Some((len, entry));
            }
        }
        best.map(|(_, e)| e)
    }

    /// Where to pull `name` (qualified, with tag and/or digest) from: the
    /// mirrors that apply, in order, then the primary location. Err with the
    /// defining file if the registry is blocked.
    pub fn pull_sources(
        &self,
        name: &str,
        by_digest: bool,
    ) -> Result<Vec<PullSource>, (String, PathBuf)> {
        let Some(entry) = self.find(name) else {
            return Ok(vec![PullSource {
                name: name.to_string(),
                insecure: false,
                is_mirror: false,
            }]);
        };
        let host = name.split('/').next().unwrap_or(name).to_string();
        if entry.blocked {
            return Err((host, entry.file.clone()));
        }
        let rewrite = |location: &str| -> String {
            if entry.prefix.starts_with("*.") {
                // A wildcard replaces the host only.
                let rest = &name[host.len()..];
                if location.is_empty() {
                    name.to_string()
                } else {
                    format!("{location}{rest}")
                }
            } else {
                format!("{location}{}", &name[entry.prefix.len()..])
            }
        };
        let mut sources = Vec::new();
        for m in &entry.mirrors {
            let wanted = match m.pull_from_mirror {
                PullFromMirror::All => by_digest || !entry.mirror_by_digest_only,
                PullFromMirror::DigestOnly => by_digest,
                PullFromMirror::TagOnly => !by_digest,
            };
            if wanted {
                sources.push(PullSource {
                    name: rewrite(&m.location),
                    insecure: m.insecure,
                    is_mirror: true,
                });
            }
        }
        sources.push(PullSource {
            name: rewrite(&entry.location),
            insecure: entry.insecure,
            is_mirror: false,
        });
        Ok(sources)
    }

    /// The primary location for a push (mirrors are never used), and
    /// whether it is insecure; Err when blocked.
    pub fn push_target(&self, name: &str) -> Result<PullSource, (String, PathBuf)> {
        let mut sources = self.pull_sources(name, true)?;
        Ok(sources.pop().expect("the primary is always last"))
    }

    /// Is `host` (a registry, `host[:port]`) marked insecure?
    pub fn is_insecure(&self, host: &str) -> bool {
        self.find(host).is_some_and(|e| e.insecure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Registries, ConfigError> {
        let mut r = Registries::default();
        r.merge_text(text, Path::new("/t/registries.conf"))
            .map(|()| r)
    }

    #[test]
    fn v2_mirrors_remap_and_blocking() {
        let r = parse(
            r#"
unqualified-search-registries = ["127.0.0.1:5000", "docker.io"]
short-name-mode = "permissive"
[[registry]]
prefix = "docker.io"
location = "127.0.0.1:5443/hub"
[[registry.mirror]]
location = "127.0.0.1:5999/dead"
[[registry.mirror]]
location = "127.0.0.1:5000/mirror"
insecure = true
[[registry.mirror]]
location = "127.0.0.1:5001/d"
pull-from-mirror = "digest-only"
[[registry]]
location = "blocked.test"
blocked = true
[[registry]]
prefix = "*.wild.test"
location = "127.0.0.1:5000/wild"
[aliases]
"bb" = "127.0.0.1:5000/bb"
"#,
        )
        .unwrap();
        assert_eq!(r.short_name_mode, ShortNameMode::Permissive);
        let names = |s: Vec<PullSource>| s.into_iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(
            names(
                r.pull_sources("docker.io/library/busybox:1", false)
                    .unwrap()
            ),
            [
                "127.0.0.1:5999/dead/library/busybox:1",
                "127.0.0.1:5000/mirror/library/busybox:1",
                "127.0.0.1:5443/hub/library/busybox:1"
            ]
        );
        assert_eq!(
            r.pull_sources("docker.io/x@sha256:0", true).unwrap().len(),
            4
        );
        assert_eq!(
            r.pull_sources("blocked.test/foo:1", false).unwrap_err().0,
            "blocked.test"
        );
        assert_eq!(
            names(r.pull_sources("x.wild.test/bb:latest", false).unwrap()),
            ["127.0.0.1:5000/wild/bb:latest"]
        );
        assert!(r.find("docker.iox/a").is_none());
        assert!(r.find("wild.test/a").is_none());
        assert_eq!(
            r.push_target("docker.io/a/b:1").unwrap().name,
            "127.0.0.1:5443/hub/a/b:1"
        );
        assert_eq!(r.aliases["bb"].0, "127.0.0.1:5000/bb");
    }

    #[test]
    fn v1_and_mixing() {
        let r = parse(
            "[registries.search]\nregistries = [\"127.0.0.1:5000\"]\n\
             [registries.insecure]\nregistries = [\"127.0.0.1:5000\"]\n\
             [registries.block]\nregistries = [\"blocked.test\"]\n",
        )
        .unwrap();
        assert_eq!(r.unqualified_search, ["127.0.0.1:5000"]);
        assert!(r.is_insecure("127.0.0.1:5000"));
        assert!(r.pull_sources("blocked.test/a:1", false).is_err());
        let err =
            parse("unqualified-search-registries = []\n[registries.search]\nregistries = []\n")
                .unwrap_err();
        assert!(
            err.to_string().contains("mixing sysregistry v1/v2"),
            "{err}"
        );
        let err = parse("[[registry]]\nlocation = \n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/t/registries.conf: loading registries configuration"),
            "{err}"
        );
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn drop_ins_replace_by_prefix_and_merge_aliases() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("main.conf");
        fs::write(
            &main,
            "[[registry]]\nlocation = \"a.test\"\ninsecure = true\n[aliases]\nx = \"a.test/x\"\n",
        )
        .unwrap();
        let d = dir.path().join("d");
        fs::create_dir(&d).unwrap();
        fs::write(
            d.join("10-b.conf"),
            "[[registry]]\nlocation = \"a.test\"\nblocked = true\n[aliases]\ny = \"b.test/y\"\n",
        )
        .unwrap();
        fs::write(d.join("ignored.txt"), "not toml [").unwrap();
        let (m, dd) = (main.clone(), d.clone());
        let env = move |n: &str| match n {
            "CONTAINERS_REGISTRIES_CONF" => Some(m.clone().into()),
            "VIGIL_REGISTRIES_CONF_DIR" => Some(dd.clone().into()),
            _ => None,
        };
        let r = load(&env).unwrap();
        assert_eq!(r.registries.len(), 1);
        assert!(r.registries[0].blocked && !r.registries[0].insecure);
        assert_eq!(r.aliases.len(), 2);
    }
}
