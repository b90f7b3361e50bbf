//! Image registries: a small distribution-API client of vigil's own (on
//! ureq + rustls; see docs/registry.md for why), used to pull images into
//! the store, push them, log in and search.
//!
//! The interface other code uses:
//! - [`pull`]`(ctx, reference, &PullOptions) -> Result<Pulled, RegistryError>`:
//!   resolves the name (short names, aliases, registries.conf mirrors and
//!   remaps), pulls, and returns the image ID. `vigil pull`, `run --pull`
//!   and `build`'s `FROM` all go through it.
//! - [`push`], [`login`], [`search`] for the commands of the same names.
//!
//! Layering: this module uses `config/` (registries.conf, auth.json),
//! `image/` (store, digests, formats) and `context`; nothing here knows the
//! command line.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

pub mod challenge;
pub mod client;
pub mod error;
pub mod manifest;
pub mod name;
pub mod pull;
pub mod push;
pub mod search;
pub mod transport;

pub use error::RegistryError;
pub use manifest::WantedPlatform;
pub use name::ImageName;

use crate::config::auth::{AuthFiles, Credentials};
use crate::config::registries::{self, Registries, ShortNameMode};
use crate::config::{self, Env};
use crate::context::Context;
use crate::image::digest::Digest;
use crate::image::reference::Reference;
use crate::image::Store;
use client::Session;
use pull::Reporter;
use transport::Transport;

/// Retries of a whole pull after a transient failure (Podman: 3, 1 s apart).
const PULL_RETRIES: usize = 3;

/// How to reach registries for one command.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// `--tls-verify`: `Some(false)` allows http and unverified https;
    /// `Some(true)` overrides `insecure = true` in registries.conf.
    pub tls_verify: Option<bool>,
    /// `--creds`: used instead of the auth files.
    pub creds: Option<Credentials>,
    /// `--authfile`.
    pub authfile: Option<PathBuf>,
    /// `--cert-dir`.
    pub cert_dir: Option<PathBuf>,
    /// The short-name selector (the command line's, on a terminal).
    pub choose: Option<ShortNameChooser>,
}

/// Asks the user to pick one of several qualified names for a short name;
/// the index chosen, or why not (cancelled, no terminal).
pub type ShortNameChooser = fn(&[String]) -> Result<usize, String>;

/// What [`pull`] needs besides the name.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub registry: RegistryOptions,
    /// `--platform`/`--os`/`--arch`/`--variant`; `None`: this machine.
    pub platform: Option<WantedPlatform>,
    /// `-q`: no progress lines (warnings still print).
    pub quiet: bool,
    /// SIGINT/SIGTERM handlers the caller installed: the pull then stops
    /// at the next chunk and deletes what it downloaded.
    pub interrupt: Option<crate::interrupt::Interrupt>,
}

/// A pulled image.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The image ID (config digest).
    pub id: Digest,
    /// The name it was pulled as (`127.0.0.1:5000/bb:latest`).
    pub name: String,
    pub warnings: Vec<String>,
}

/// Configuration and connections for one command.
pub struct Environment {
    pub registries: Registries,
    /// The short-name alias cache file for this user.
    pub alias_cache: Option<PathBuf>,
    pub auth: AuthFiles,
    pub transport: Transport,
    pub options: RegistryOptions,
}

impl Environment {
    /// Loads registries.conf and locates the auth files for this user.
    pub fn load(options: &RegistryOptions) -> Result<Environment, RegistryError> {
        let env = config::process_env();
        Environment::load_with(options, &env)
    }

    /// As [`Environment::load`], reading variables through `env`.
    pub fn load_with(
        options: &RegistryOptions,
        env: &dyn Env,
    ) -> Result<Environment, RegistryError> {
        let registries = registries::load(env).map_err(|e| RegistryError::Config(e.to_string()))?;
        let (uid, _) = crate::rootless::caller_ids(|n| env.var(n));
        let auth = AuthFiles::locate(options.authfile.as_deref(), env, uid);
        let home = (uid != 0).then(|| config::home(env)).flatten();
        Ok(Environment {
            registries,
            alias_cache: config::alias_cache::path(env, uid),
            auth,
            transport: Transport::new(options.cert_dir.clone(), home.as_deref()),
            options: options.clone(),
        })
    }

    /// Is `registry` to be reached without TLS verification?
    pub fn insecure(&self, registry: &str, in_config: bool) -> bool {
        match self.options.tls_verify {
            Some(verify) => !verify,
            None => in_config || self.registries.is_insecure(registry),
        }
    }

    /// The credentials for `name` (`host/repo`): `--creds`, else the auth files.
    pub fn credentials(&self, name: &str) -> Result<Option<Credentials>, RegistryError> {
        if let Some(creds) = &self.options.creds {
            return Ok(Some(creds.clone()));
        }
        self.auth
            .lookup(name)
            .map_err(|e| RegistryError::Config(e.to_string()))
    }

    /// Connects to `registry` for the repository `name`.
    pub fn session(
        &self,
        registry: &str,
        name: &str,
        insecure_in_config: bool,
    ) -> Result<Session<'_>, RegistryError> {
        let creds = self.credentials(name)?;
        Session::connect(
            &self.transport,
            registry,
            self.insecure(registry, insecure_in_config),
            creds,
        )
    }
}

/// The names to try for what a user typed, and the line to print first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidates {
    pub names: Vec<ImageName>,
    /// `Resolved "x" as an alias (...)` or `Resolving "x" using ...`.
    pub note: Option<String>,
    /// The user's choice at the selector, to record in the alias cache once
    /// the pull succeeds: (short name, repository).
    pub record: Option<(String, String)>,
}

/// How a short name may be resolved beyond registries.conf: the alias
/// cache, and a selector to ask the user with.
#[derive(Clone, Copy, Default)]
pub struct ShortNameHelp<'a> {
    pub alias_cache: Option<&'a Path>,
    pub choose: Option<ShortNameChooser>,
}

/// Resolves `reference` to qualified names: as is when it has a registry;
/// a short name through a stored image of that name, `[aliases]`, then
/// `unqualified-search-registries` per `short-name-mode`. With several
/// search registries, enforcing or permissive mode and a terminal (stdin
/// and stdout), the user picks one at the selector; without a terminal,
/// enforcing mode is an error and permissive tries them in order (as
/// Podman); disabled always tries them in order.
pub fn resolve(
    registries: &Registries,
    store: Option<&Store>,
    reference: &str,
    help: ShortNameHelp<'_>,
) -> Result<Candidates, RegistryError> {
    let parsed =
        Reference::parse(reference).map_err(|_| RegistryError::Reference(reference.into()))?;
    if parsed.domain.is_some() {
        return Ok(Candidates {
            names: vec![ImageName::parse(reference)?],
            note: None,
            record: None,
        });
    }
    let with_ref = |repo: &str| -> Result<ImageName, RegistryError> {
        let mut full = repo.to_string();
        if let Some(tag) = &parsed.tag {
            full.push(':');
            full.push_str(tag);
        }
        if let Some(digest) = &parsed.digest {
            full.push('@');
            full.push_str(digest);
        }
        ImageName::parse(&full)
    };
    if let Some(store) = store {
        if parsed.digest.is_none() {
            if let Ok(record) = store.resolve(reference) {
                let stored = record.names.iter().find_map(|n| {
                    let r = Reference::parse(n).ok()?;
                    let qualified = r.domain.as_deref().is_some_and(|d| d != "localhost");
                    (qualified && parsed.matches(&r))
                        .then(|| ImageName::parse(n).ok())
                        .flatten()
                });
                if let Some(name) = stored {
                    return Ok(Candidates {
                        names: vec![name],
                        note: None,
                        record: None,
                    });
                }
            }
        }
    }
    let cached = match help.alias_cache {
        Some(file) => config::alias_cache::load(file)
            .map_err(|e| RegistryError::Config(e.to_string()))?
            .remove(&parsed.path)
            .map(|value| (value, file.to_path_buf())),
        None => None,
    };
    if let Some((value, file)) = registries.aliases.get(&parsed.path).cloned().or(cached) {
        return Ok(Candidates {
            names: vec![with_ref(&value)?],
            note: Some(format!(
                "Resolved {:?} as an alias ({})",
                parsed.path,
                file.display()
            )),
            record: None,
        });
    }
    let conf = registries
        .search_file
        .clone()
        .or_else(|| registries.files.first().cloned())
        .unwrap_or_else(|| PathBuf::from(registries::SYSTEM_FILE));
    if registries.unqualified_search.is_empty() {
        return Err(RegistryError::ShortName(format!(
            "short-name {reference:?} did not resolve to an alias and no unqualified-search \
             registries are defined in {:?}",
            conf.display().to_string()
        )));
    }
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let several = registries.unqualified_search.len() > 1;
    if let (true, true, Some(choose)) = (
        tty && several,
        registries.short_name_mode != ShortNameMode::Disabled,
        help.choose,
    ) {
        let repos: Vec<String> = registries
            .unqualified_search
            .iter()
            .map(|registry| format!("{registry}/{}", parsed.path))
            .collect();
        let names = repos
            .iter()
            .map(|repo| with_ref(repo))
            .collect::<Result<Vec<_>, _>>()?;
        let shown: Vec<String> = names.iter().map(ToString::to_string).collect();
        let index = choose(&shown).map_err(RegistryError::ShortName)?;
        let (Some(name), Some(repo)) = (names.get(index), repos.get(index)) else {
            return Err(RegistryError::ShortName(format!(
                "short-name selector chose {index} of {} names",
                names.len()
            )));
        };
        return Ok(Candidates {
            names: vec![name.clone()],
            note: None,
            record: Some((parsed.path.clone(), repo.clone())),
        });
    }
    if registries.short_name_mode == ShortNameMode::Enforcing
        && registries.unqualified_search.len() > 1
        && !tty
    {
        return Err(RegistryError::ShortName(
            "short-name resolution enforced but cannot prompt without a TTY".into(),
        ));
    }
    let names = registries
        .unqualified_search
        .iter()
        .map(|registry| with_ref(&format!("{registry}/{}", parsed.path)))
        .collect::<Result<Vec<_>, _>>()?;
    let note = (registries.short_name_mode != ShortNameMode::Disabled).then(|| {
        format!(
            "Resolving {:?} using unqualified-search registries ({})",
            parsed.path,
            conf.display()
        )
    });
    Ok(Candidates {
        names,
        note,
        record: None,
    })
}

/// Pulls `reference` into the store of `ctx`: the interface for `vigil
/// pull`, `run`/`create --pull` and `build`'s `FROM`.
pub fn pull(ctx: &Context, reference: &str, opts: &PullOptions) -> Result<Pulled, RegistryError> {
    let env = Environment::load(&opts.registry)?;
    let store = Store::open(&ctx.paths)?;
    pull_with(&env, &store, reference, opts)
}

/// [`pull`] with a loaded environment and store.
pub fn pull_with(
    env: &Environment,
    store: &Store,
    reference: &str,
    opts: &PullOptions,
) -> Result<Pulled, RegistryError> {
    let report = Reporter::new(opts.quiet);
    let help = ShortNameHelp {
        alias_cache: env.alias_cache.as_deref(),
        choose: env.options.choose,
    };
    let candidates = resolve(&env.registries, Some(store), reference, help)?;
    if let Some(note) = &candidates.note {
        report.line(note);
    }
    let mut errors = Vec::new();
    let count = candidates.names.len();
    for name in candidates.names {
        report.line(&format!("Trying to pull {name}..."));
        match pull_retrying(env, store, &name, opts, &report) {
            Ok(pulled) => {
                for warning in &pulled.warnings {
                    report.warn(warning);
                }
                // The selector's choice is remembered only once it pulled.
                if let (Some((short, repo)), Some(file)) = (&candidates.record, &env.alias_cache) {
                    config::alias_cache::record(file, short, repo)
                        .map_err(|e| RegistryError::Config(e.to_string()))?;
                }
                return Ok(pulled);
            }
            Err(err) if count == 1 || matches!(err, RegistryError::Interrupted) => return Err(err),
            Err(err) => errors.push((name.to_string(), err)),
        }
    }
    Err(RegistryError::Several(errors))
}

fn pull_retrying(
    env: &Environment,
    store: &Store,
    name: &ImageName,
    opts: &PullOptions,
    report: &Reporter,
) -> Result<Pulled, RegistryError> {
    let mut attempt = 0;
    loop {
        match pull::pull_name(env, store, name, opts, report) {
            Err(err) if err.is_transient() && attempt < PULL_RETRIES => {
                attempt += 1;
                report.warn(&format!(
                    "Failed, retrying in 1s ... ({attempt}/{PULL_RETRIES}). Error: {err}"
                ));
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

/// `--pull` of run/create (and build).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull only when the image is not in the store.
    #[default]
    Missing,
    Always,
    Never,
    /// Pull when the registry's manifest digest differs from the stored one.
    Newer,
}

impl std::str::FromStr for PullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "missing" => Ok(PullPolicy::Missing),
            "always" | "true" => Ok(PullPolicy::Always),
            "never" | "false" => Ok(PullPolicy::Never),
            "newer" | "ifnewer" => Ok(PullPolicy::Newer),
            _ => Err(format!("unsupported pull policy {s:?}")),
        }
    }
}

/// Makes sure `reference` is in the store as `policy` says. Returns the
/// image ID when it pulled (use it: a digest pull has no tag to look up),
/// `None` when the store's image is to be used as is.
pub fn ensure(
    ctx: &Context,
    reference: &str,
    policy: PullPolicy,
    opts: &PullOptions,
) -> Result<Option<Digest>, RegistryError> {
    let store = Store::open(&ctx.paths)?;
    let local = store.resolve(reference).ok();
    let pull_now = match (policy, &local) {
        (PullPolicy::Never, _) => false,
        (PullPolicy::Always, _) => true,
        (PullPolicy::Missing, local) => local.is_none(),
        (PullPolicy::Newer, None) => true,
        (PullPolicy::Newer, Some(record)) => {
            let env = Environment::load(&opts.registry)?;
            match newer_digest(&env, reference) {
                Ok(Some(remote)) => record.digest.as_ref() != Some(&remote),
                // Unreachable or unknown upstream: keep using the local image.
                _ => false,
            }
        }
    };
    if !pull_now {
        return Ok(None);
    }
    let env = Environment::load(&opts.registry)?;
    pull_with(&env, &store, reference, opts).map(|p| Some(p.id))
}

/// The registry's current manifest digest for `reference` (qualified).
fn newer_digest(env: &Environment, reference: &str) -> Result<Option<Digest>, RegistryError> {
    let name = resolve(&env.registries, None, reference, ShortNameHelp::default())?
        .names
        .into_iter()
        .next()
        .ok_or_else(|| RegistryError::Reference(reference.into()))?;
    let target = env
        .registries
        .push_target(&name.to_string())
        .map_err(|(registry, file)| RegistryError::Blocked {
            registry,
            file: file.display().to_string(),
        })?;
    let located = ImageName::parse(&target.name)?;
    let session = Session::connect(
        &env.transport,
        &located.registry,
        env.insecure(&located.registry, target.insecure),
        env.credentials(&located.repository_name())?,
    )?;
    session.manifest_digest(&located.repository, &located.manifest_reference())
}

/// The tags of the repository `reference` names (for `pull --all-tags`),
/// in server order.
pub fn list_tags(
    reference: &str,
    opts: &RegistryOptions,
) -> Result<(ImageName, Vec<String>), RegistryError> {
    let env = Environment::load(opts)?;
    let candidates = resolve(&env.registries, None, reference, ShortNameHelp::default())?;
    let name = candidates
        .names
        .into_iter()
        .next()
        .ok_or_else(|| RegistryError::Reference(reference.into()))?;
    let target = env
        .registries
        .push_target(&name.repository_name())
        .map_err(|(registry, file)| RegistryError::Blocked {
            registry,
            file: file.display().to_string(),
        })?;
    let located = ImageName::parse(&format!("{}:latest", target.name))?;
    let session = Session::connect(
        &env.transport,
        &located.registry,
        env.insecure(&located.registry, target.insecure),
        env.credentials(&located.repository_name())?,
    )?;
    let tags = session.tags(&located.repository, usize::MAX)?;
    Ok((name, tags))
}

/// Logs in to `registry` (`host[:port][/namespace]`, or a URL): verifies the
/// credentials, then stores them under that key. Nothing is written when
/// they are refused.
pub fn login(
    registry: &str,
    creds: &Credentials,
    opts: &RegistryOptions,
) -> Result<(), RegistryError> {
    let env = Environment::load(opts)?;
    let key = config::auth::normalize_key(registry);
    let host = key.split('/').next().unwrap_or(&key).to_string();
    let session = Session::connect(
        &env.transport,
        &host,
        env.insecure(&host, false),
        Some(creds.clone()),
    )
    .map_err(|e| e.context(format!("authenticating creds for {host:?}")))?;
    if !session.verify_login()? {
        return Err(RegistryError::Credentials(format!(
            "logging into {key:?}: invalid username/password"
        )));
    }
    env.auth
        .store(&key, creds)
        .map_err(|e| RegistryError::Config(e.to_string()))
}

/// The auth files for `--authfile` (for logout and `--get-login`).
pub fn auth_files(authfile: Option<&Path>) -> AuthFiles {
    let env = config::process_env();
    let (uid, _) = crate::rootless::caller_ids(|n| env.var(n));
    AuthFiles::locate(authfile, &env, uid)
}

pub use push::{push, PushOptions};
pub use search::{search, SearchHit, SearchOptions};

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> Registries {
        let mut r = Registries::default();
        r.merge_text(text, Path::new("/c/registries.conf")).unwrap();
        r
    }

    #[test]
    fn short_names() {
        let r = conf("unqualified-search-registries = [\"127.0.0.1:5000\"]\n[aliases]\nbb = \"127.0.0.1:5001/x/bb\"\n");
        let c = resolve(&r, None, "bb:1", ShortNameHelp::default()).unwrap();
        assert_eq!(c.names[0].to_string(), "127.0.0.1:5001/x/bb:1");
        assert_eq!(
            c.note.unwrap(),
            "Resolved \"bb\" as an alias (/c/registries.conf)"
        );
        let c = resolve(&r, None, "other", ShortNameHelp::default()).unwrap();
        assert_eq!(c.names[0].to_string(), "127.0.0.1:5000/other:latest");
        assert!(c
            .note
            .unwrap()
            .starts_with("Resolving \"other\" using unqualified-search registries"));
        let err = resolve(
            &Registries::default(),
            None,
            "nothing:1",
            ShortNameHelp::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("short-name \"nothing:1\" did not resolve to an alias"),
            "{err}"
        );
        let two = conf("unqualified-search-registries = [\"a.test\", \"b.test\"]\n");
        if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
            let err = resolve(&two, None, "x", ShortNameHelp::default())
                .unwrap_err()
                .to_string();
            assert_eq!(
                err,
                "short-name resolution enforced but cannot prompt without a TTY"
            );
        }
        let c = resolve(&r, None, "docker.io/busybox", ShortNameHelp::default()).unwrap();
        assert_eq!(c.names[0].to_string(), "docker.io/library/busybox:latest");
    }
}
