//! `create`: validate the flags, resolve the command, environment and user,
//! and write the record. Nothing runs until `start`.

use std::fs;
use std::path::{Path, PathBuf};

use super::image::ImageInfo;
use super::record::{now_nanos, LogConfig, Record, RestartPolicy, RootfsSource, RunConfig, Status};
use super::runtime::parse_signal;
use super::store::{generated_name, new_id, Store};
use crate::error::RunnerError;
use crate::network::NetEnv;
use crate::spec::{self, User};

/// Everything `create`/`run` ask for, already parsed by clap.
#[derive(Clone, Debug, Default)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub command: Vec<String>,
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub volumes: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    pub stdin: bool,
    /// `--network`, `-p`, `-P`, `--expose`, `--dns`, `--dns-search`,
    /// `--add-host`, `--network-alias`.
    pub net: crate::network::Request,
    /// `k8s-file`, `journald`, `passthrough` or `none`.
    pub log_driver: String,
    pub log_opts: Vec<String>,
    pub log_rate_limit: Option<String>,
    pub memory: Option<String>,
    pub auto_remove: bool,
    /// `--userns`, `--uidmap`, `--gidmap` (see `crate::rootless`).
    pub userns: Option<String>,
    pub uidmap: Vec<String>,
    pub gidmap: Vec<String>,
    /// `--env-file`: read at create time, before `env` (which wins).
    pub env_files: Vec<PathBuf>,
    /// `--hostname`; default: the short id.
    pub hostname: Option<String>,
    /// `--cap-add`, `--cap-drop`, `--tmpfs`, `--read-only`, `--pids-limit`.
    pub flags: spec::SpecFlags,
    /// containers.conf's `env`, under the image's.
    pub default_env: Vec<String>,
    /// `--restart`: `no`, `on-failure[:N]`, `always`, `unless-stopped`.
    pub restart: Option<String>,
    /// `--label KEY[=VALUE]`.
    pub labels: Vec<String>,
    /// `--health-*`, `--no-healthcheck`.
    pub health: super::health::HealthFlags,
}

/// Parse an `--env-file` like Podman 4.3.1: leading blanks trimmed, blank
/// lines and `#` comments skipped, `NAME=VALUE` taken verbatim (the value
/// may contain `=`), a bare `NAME` takes vigil's value (dropped if unset).
pub fn parse_env_file(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim_start())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// Every `--env-file` entry, in order, for [`spec::environment`].
pub fn read_env_files(paths: &[PathBuf]) -> Result<Vec<String>, RunnerError> {
    let mut out = Vec::new();
    for p in paths {
        let text = fs::read_to_string(p)
            .map_err(|e| RunnerError::Engine(format!("parsing env file {}: {e}", p.display())))?;
        for entry in parse_env_file(&text) {
            if entry.starts_with('=') {
                return Err(RunnerError::Engine(format!(
                    "parsing env file {}: invalid variable {entry:?}: empty name",
                    p.display()
                )));
            }
            out.push(entry);
        }
    }
    Ok(out)
}

/// Check a `--hostname`: what sethostname(2) takes, printable, no blanks.
pub fn check_hostname(name: &str) -> Result<(), RunnerError> {
    if name.is_empty()
        || name.len() > 64
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(RunnerError::Engine(format!(
            "invalid --hostname {name:?}: 1 to 64 characters, no blanks or '/'"
        )));
    }
    Ok(())
}

/// A file of the image's root file system (`/etc/passwd`...), from the
/// top-most layer that has it, resolved inside that layer only and refused
/// unless it is a regular file of sane size.
pub fn read_image_file(source: &RootfsSource, path: &str) -> String {
    let dirs: Vec<&PathBuf> = match source {
        RootfsSource::Layers(layers) => layers.iter().rev().collect(),
        RootfsSource::Directory(d) => vec![d],
    };
    for d in dirs {
        if let Ok(Some(bytes)) = crate::image::rootfs::read_file(d, path, 1 << 20) {
            return String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    String::new()
}

/// Resolve `USER[:GROUP]` against the image's /etc/passwd and /etc/group.
pub fn resolve_user(source: &RootfsSource, user: &str) -> Result<User, RunnerError> {
    spec::resolve_user(
        user,
        &read_image_file(source, "/etc/passwd"),
        &read_image_file(source, "/etc/group"),
    )
}

/// Parse a size such as `512m`, `1g`, `1048576`.
pub fn parse_size(s: &str) -> Result<i64, RunnerError> {
    let t = s.trim().to_ascii_lowercase();
    let t = match t.strip_suffix('b') {
        Some(rest) if !rest.is_empty() => rest,
        _ => t.as_str(),
    };
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| RunnerError::Engine(format!("invalid size {s:?}")))
}

/// Parse `--log-rate-limit BYTES[:BURST]` (sizes with units).
pub fn parse_rate_limit(s: &str) -> Result<(u64, u64), RunnerError> {
    let (rate, burst) = s.split_once(':').unwrap_or((s, "0"));
    let rate = parse_size(rate)? as u64;
    let burst = if burst == "0" {
        0
    } else {
        parse_size(burst)? as u64
    };
    Ok((rate, burst))
}

fn log_config(req: &CreateRequest, data: &Path) -> Result<LogConfig, RunnerError> {
    let mut log = LogConfig {
        driver: req.log_driver.clone(),
        ..Default::default()
    };
    if log.driver == "k8s-file" {
        log.path = Some(data.join("ctr.log"));
    }
    for opt in &req.log_opts {
        let (k, v) = opt
            .split_once('=')
            .ok_or_else(|| RunnerError::Engine(format!("invalid log option {opt:?}")))?;
        match k {
            "path" if log.driver == "k8s-file" => log.path = Some(PathBuf::from(v)),
            "max-size" => log.size_max = Some(parse_size(v)?),
            "tag" => log.tag = Some(v.to_string()),
            // vigil extension: rotate at max-size keeping N old files
            // (the monitor's --log-rotate --log-max-files N).
            "max-file" => {
                log.max_files = Some(
                    v.parse::<i32>()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| RunnerError::Engine(format!("invalid max-file {v:?}")))?,
                )
            }
            _ => return Err(RunnerError::Engine(format!("unknown log option {k:?}"))),
        }
    }
    if log.max_files.is_some() && (log.driver != "k8s-file" || log.size_max.is_none()) {
        return Err(RunnerError::Engine(
            "log option max-file needs the k8s-file driver and max-size".into(),
        ));
    }
    log.rate_limit = req
        .log_rate_limit
        .as_deref()
        .map(parse_rate_limit)
        .transpose()?;
    Ok(log)
}

/// Validate `req` against `image`, then write the record. Returns it.
pub fn create(
    store: &Store,
    net_env: &NetEnv,
    image: &ImageInfo,
    req: &CreateRequest,
) -> Result<Record, RunnerError> {
    let restart_policy = match &req.restart {
        Some(p) => RestartPolicy::parse(p)?,
        None => RestartPolicy::default(),
    };
    if req.auto_remove && restart_policy.is_set() {
        return Err(RunnerError::Engine(
            "the --rm option conflicts with --restart, when the restartPolicy is not \"\" and \"no\""
                .into(),
        ));
    }
    let healthcheck = super::health::from_flags(&req.health, image.defaults.healthcheck.as_ref())?;
    let health_on_failure = super::health::parse_on_failure(req.health.on_failure.as_deref())?;
    let mut checked = check_flags(req)?;
    apply_rootless_limits(&mut checked)?;
    let (userns, userns_user) =
        crate::rootless::resolve_userns(req.userns.as_deref(), &req.uidmap, &req.gidmap)?;
    let process = resolve_process(image, req, userns.as_ref(), userns_user)?;

    let _all = store.lock_all()?;
    // `--name ''` is no name, as in Podman.
    let name = req.name.as_deref().filter(|n| !n.is_empty());
    let (id, name) = allocate_id_and_name(store, name)?;
    let hostname = req.hostname.clone().unwrap_or_else(|| id[..12].to_string());
    // Only a name the user chose must be a DNS name (generated ones have '_').
    let dns_name = req.name.as_deref().unwrap_or("");
    let net =
        crate::network::configure(net_env, &req.net, &image.defaults.exposed_ports, dns_name)?;
    let env = spec::environment(
        &super::defaults::base_environment(&req.default_env, &image.defaults.env),
        &checked.env_flags,
        |k| std::env::var(k).ok(),
        req.tty,
        &hostname,
        &process.user.home,
    );
    let log = log_config(req, &store.data_dir(&id))?;
    let (dir, data) = store.create_dirs(&id)?;
    let record = Record {
        id,
        name,
        image: image.name.clone(),
        image_id: image.id.clone(),
        created: now_nanos(),
        rootfs_source: image.rootfs.clone(),
        config: RunConfig {
            args: process.args,
            env,
            cwd: working_dir(req, image),
            user: process.user_spec,
            entrypoint: image.defaults.entrypoint.clone(),
            cmd: if req.command.is_empty() {
                image.defaults.cmd.clone()
            } else {
                req.command.clone()
            },
            hostname,
            network: net.mode.name(),
            tty: req.tty,
            stdin: req.stdin,
            stop_signal: process.stop_signal,
            stop_timeout: 10,
            volumes: req.volumes.clone(),
            flags: checked.flags,
            parsed: Some(checked.parsed),
            net,
        },
        log,
        auto_remove: req.auto_remove,
        memory_limit: checked.memory_limit,
        status: Status::Created,
        pid: None,
        monitor_pid: None,
        monitor_start: None,
        pid_start: None,
        error: None,
        exit_code: None,
        oom_killed: false,
        started_at: None,
        finished_at: None,
        mounted: None,
        labels: {
            let mut labels = image.labels.clone();
            for l in &req.labels {
                let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
                labels.insert(k.to_string(), v.to_string());
            }
            labels
        },
        restart_policy,
        restart_count: 0,
        stopped_by_user: false,
        userns,
        net_state: Default::default(),
        healthcheck,
        health_on_failure,
    };
    if let Err(e) = record.save(&dir) {
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::remove_dir_all(&data);
        return Err(e);
    }
    Ok(record)
}

/// The flags of a request, checked: everything that does not depend on the
/// image or the store.
struct CheckedFlags {
    memory_limit: Option<i64>,
    /// The spec flags, capabilities normalised.
    flags: spec::SpecFlags,
    /// The mounts and limits parsed from `-v` and `flags`.
    parsed: spec::ParsedFlags,
    /// `--env-file` entries, then `-e`.
    env_flags: Vec<String>,
}

fn check_flags(req: &CreateRequest) -> Result<CheckedFlags, RunnerError> {
    let mut flags = req.flags.clone();
    let parsed = flags.parse(&req.volumes)?;
    let memory_limit = req.memory.as_deref().map(parse_size).transpose()?;
    flags.cap_add = spec::parse_capabilities(&flags.cap_add)?;
    flags.cap_drop = spec::parse_capabilities(&flags.cap_drop)?;
    if let Some(h) = &req.hostname {
        check_hostname(h)?;
    }
    let mut env_flags = read_env_files(&req.env_files)?;
    env_flags.extend(req.env.iter().cloned());
    check_env(&env_flags)?;
    check_bind_sources(&parsed.volumes)?;
    Ok(CheckedFlags {
        memory_limit,
        flags,
        parsed,
        env_flags,
    })
}

/// Rootless: resource
/// limits are dropped with Podman's warning (no cgroup delegated).
fn apply_rootless_limits(checked: &mut CheckedFlags) -> Result<(), RunnerError> {
    if crate::rootless::active().is_none() {
        return Ok(());
    }
    if checked.memory_limit.take().is_some() {
        log::warn!("{}", crate::rootless::resource_limits_warning("--memory"));
    }
    if checked.flags.pids_limit.take().is_some() {
        log::warn!(
            "{}",
            crate::rootless::resource_limits_warning("--pids-limit")
        );
        checked.parsed.pids_limit = spec::pids_limit(None)?;
    }
    Ok(())
}

/// What the container's process is: its command, user and stop signal.
struct ProcessChoice {
    args: Vec<String>,
    /// `--user` (or keep-id's, or the image's), as given.
    user_spec: String,
    user: User,
    stop_signal: i32,
}

fn resolve_process(
    image: &ImageInfo,
    req: &CreateRequest,
    userns: Option<&crate::rootless::ContainerUserNs>,
    userns_user: Option<String>,
) -> Result<ProcessChoice, RunnerError> {
    let d = &image.defaults;
    let args = spec::command(
        req.entrypoint.as_deref(),
        &d.entrypoint,
        &d.cmd,
        &req.command,
    )?;
    // keep-id runs the process as the user unless --user says otherwise (Podman).
    let user_spec = req
        .user
        .clone()
        .or(userns_user)
        .unwrap_or_else(|| d.user.clone());
    // A user the image does not have fails when the container starts, as
    // in Podman (`create` succeeds; `run` exits 126).
    let mut user = resolve_user(&image.rootfs, &user_spec).unwrap_or(User {
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        home: "/".into(),
    });
    if userns.is_some_and(|ns| ns.mode == "keep-id") && user.home == "/" {
        if let Some((_, home)) =
            crate::rootless::passwd_entry(crate::rootless::active().map_or(0, |r| r.uid))
        {
            if !home.is_empty() {
                user.home = home;
            }
        }
    }
    let stop_signal = d
        .stop_signal
        .as_deref()
        .map(parse_signal)
        .transpose()?
        .unwrap_or(libc::SIGTERM);
    Ok(ProcessChoice {
        args,
        user_spec,
        user,
        stop_signal,
    })
}

/// A new id and the container's name: `name` if valid and free, else a
/// generated one. The caller holds the store lock.
fn allocate_id_and_name(
    store: &Store,
    name: Option<&str>,
) -> Result<(String, String), RunnerError> {
    let records = store.records()?;
    if let Some(name) = name {
        check_name(name)?;
        if let Some(other) = records.iter().find(|r| r.name == name) {
            return Err(RunnerError::Engine(format!(
                "the container name {name:?} is already in use by {}. You have to remove that container to be able to reuse that name: that name is already in use",
                other.id
            )));
        }
    }
    let id = new_id()?;
    let name = match name {
        Some(name) => name.to_string(),
        None => {
            let generated = generated_name(&id);
            if records.iter().any(|r| r.name == generated) {
                format!("{generated}_{}", &id[..6])
            } else {
                generated
            }
        }
    };
    Ok((id, name))
}

/// A container name as Podman takes it: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn check_name(name: &str) -> Result<(), RunnerError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        return Err(RunnerError::Engine(format!(
            "invalid container name {name:?}: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*"
        )));
    }
    Ok(())
}

/// `-e`/`--env-file` entries: a variable needs a name (Podman's check,
/// before the runtime would refuse it).
fn check_env(entries: &[String]) -> Result<(), RunnerError> {
    match entries.iter().find(|e| e.starts_with('=')) {
        Some(bad) => Err(RunnerError::Engine(format!(
            "invalid environment variable: {bad:?}"
        ))),
        None => Ok(()),
    }
}

/// Bind-mount sources must exist when the container is created (Podman
/// checks them before the runtime, which would report a mount error).
fn check_bind_sources(volumes: &[spec::BindMount]) -> Result<(), RunnerError> {
    for v in volumes {
        if let Err(e) = fs::metadata(&v.source) {
            return Err(RunnerError::Engine(format!(
                "statfs {}: {}",
                v.source.display(),
                crate::error::os_error_text(&e)
            )));
        }
    }
    Ok(())
}

/// `--workdir`, else the image's, else `/`.
fn working_dir(req: &CreateRequest, image: &ImageInfo) -> String {
    let image_dir = &image.defaults.working_dir;
    req.workdir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| {
            if image_dir.is_empty() {
                "/".into()
            } else {
                image_dir.clone()
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rates() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("4k").unwrap(), 4096);
        assert_eq!(parse_size("2m").unwrap(), 2 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("1gb").unwrap(), 1 << 30);
        assert_eq!(parse_size("100b").unwrap(), 100);
        assert!(parse_size("x").is_err());
        assert!(parse_size("-1").is_err());
        assert_eq!(parse_rate_limit("1m:4m").unwrap(), (1 << 20, 4 << 20));
        assert_eq!(parse_rate_limit("100").unwrap(), (100, 0));
    }

    #[test]
    fn env_files_and_hostnames() {
        assert_eq!(
            parse_env_file("A=1\n# comment\n\n   B=x y\nHOME\nC=a=b\n\t#x\nD=\n"),
            ["A=1", "B=x y", "HOME", "C=a=b", "D="]
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("env");
        std::fs::write(&f, "X=1\nY\n").unwrap();
        assert_eq!(
            read_env_files(std::slice::from_ref(&f)).unwrap(),
            ["X=1", "Y"]
        );
        let missing = dir.path().join("nope");
        let e = read_env_files(&[f.clone(), missing]).unwrap_err();
        assert!(e.to_string().contains("parsing env file"), "{e}");
        assert_eq!(e.exit_code(), 125);
        std::fs::write(&f, "=1\n").unwrap();
        assert!(read_env_files(&[f]).is_err());
        check_hostname("my-host.example").unwrap();
        for bad in ["", "a b", "a/b", &"x".repeat(65)] {
            assert!(check_hostname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn log_options() {
        let config = |driver: &str, opts: &[&str]| {
            let req = CreateRequest {
                log_driver: driver.into(),
                log_opts: opts.iter().map(|o| o.to_string()).collect(),
                ..Default::default()
            };
            log_config(&req, Path::new("/d"))
        };
        let log = config("k8s-file", &["max-size=4k", "max-file=3"]).unwrap();
        assert_eq!((log.size_max, log.max_files), (Some(4096), Some(3)));
        assert_eq!(log.path.as_deref(), Some(Path::new("/d/ctr.log")));
        assert_eq!(
            config("k8s-file", &["max-size=4k"]).unwrap().max_files,
            None
        );
        assert!(
            config("k8s-file", &["max-file=3"]).is_err(),
            "without max-size"
        );
        assert!(config("journald", &["max-size=4k", "max-file=3"]).is_err());
        assert!(config("k8s-file", &["max-size=4k", "max-file=0"]).is_err());
        assert!(config("k8s-file", &["max-size=4k", "max-file=x"]).is_err());
    }
}
