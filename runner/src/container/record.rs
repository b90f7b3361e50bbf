//! The container record: `<runroot>/containers/<id>/state.json`.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::RunnerError;
use crate::spec::{ParsedFlags, SpecFlags};

/// Name of the record file in the container's state directory.
pub const RECORD_FILE: &str = "state.json";

/// Lifecycle state, as Podman names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Defined, never started (or cleaned up before a restart).
    Created,
    /// The monitor and the container process are alive.
    Running,
    /// The process exited; `exit_code` is set.
    Exited,
    /// Frozen (`runtime pause`); the monitor and the process are alive.
    Paused,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
            Status::Paused => "paused",
        }
    }
}

/// Where the root file system comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "dirs")]
pub enum RootfsSource {
    /// Unpacked image layers, lowest first.
    Layers(Vec<PathBuf>),
    /// A directory given with `--rootfs` (used as the only lower layer).
    Directory(PathBuf),
}

/// How the rootfs is currently mounted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Overlay,
    /// Overlay failed: the layers were copied into a private directory.
    Copy,
}

/// What the container runs, for `inspect` and for `exec`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunConfig {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub hostname: String,
    pub network: String,
    pub tty: bool,
    pub stdin: bool,
    pub stop_signal: i32,
    pub stop_timeout: u32,
    /// `-v` values, as given (inspect's `Binds`).
    pub volumes: Vec<String>,
    /// `--cap-add`, `--cap-drop`, `--tmpfs`, `--read-only`, `--pids-limit`, as given.
    #[serde(default)]
    pub flags: SpecFlags,
    /// What `create` parsed from `volumes` and `flags` (mounts, limits).
    /// Absent in records written before it was kept: see [`RunConfig::parsed`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parsed: Option<ParsedFlags>,
    /// `--network`, `-p`, `--dns`... as decided at create.
    #[serde(default)]
    pub net: crate::network::NetworkConfig,
}

impl RunConfig {
    /// The mounts and limits `create` parsed; for a record written before
    /// they were kept, parsed now from the flags it kept.
    pub fn parsed(&self) -> Result<Cow<'_, ParsedFlags>, RunnerError> {
        match &self.parsed {
            Some(parsed) => Ok(Cow::Borrowed(parsed)),
            None => self.flags.parse(&self.volumes).map(Cow::Owned),
        }
    }
}

/// Logging settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    /// `k8s-file`, `journald`, `passthrough` or `none`.
    pub driver: String,
    /// The k8s-file path.
    pub path: Option<PathBuf>,
    pub size_max: Option<i64>,
    /// `max-file`: rotate at `size_max`, keeping this many old files.
    #[serde(default)]
    pub max_files: Option<i32>,
    pub tag: Option<String>,
    pub rate_limit: Option<(u64, u64)>,
}

/// `--restart`, as inspect's `HostConfig.RestartPolicy` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    /// `""` (no), `on-failure`, `always`, `unless-stopped`.
    pub name: String,
    /// For `on-failure`: at most this many restarts (0: no limit).
    pub max_retries: u32,
}

impl RestartPolicy {
    /// Parses `--restart` with Podman's messages.
    pub fn parse(text: &str) -> Result<RestartPolicy, RunnerError> {
        let (name, count) = match text.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (text, None),
        };
        let name = match name {
            "" | "no" => "",
            "on-failure" | "always" | "unless-stopped" => name,
            _ => {
                return Err(RunnerError::Engine(format!(
                    "running container create option: {text:?} is not a valid restart policy: invalid argument"
                )))
            }
        };
        let max_retries = match count {
            None => 0,
            Some(_) if name != "on-failure" => {
                return Err(RunnerError::Engine(
                    "restart policy retries can only be specified with on-failure restart policy"
                        .into(),
                ))
            }
            Some(c) => c.parse::<u32>().map_err(|_| {
                RunnerError::Engine(format!(
                    "parsing restart policy retry count: strconv.Atoi: parsing {c:?}: invalid syntax"
                ))
            })?,
        };
        Ok(RestartPolicy {
            name: name.to_string(),
            max_retries,
        })
    }

    /// A policy other than `no`.
    pub fn is_set(&self) -> bool {
        !self.name.is_empty()
    }

    /// Podman's `shouldRestart` once the container exited with `exit_code`
    /// after `restart_count` restarts.
    pub fn wants_restart(&self, exit_code: i32, restart_count: u32) -> bool {
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                exit_code != 0 && (self.max_retries == 0 || restart_count < self.max_retries)
            }
            _ => false,
        }
    }
}

/// The record of one container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub name: String,
    /// The image as named on the command line (or the rootfs path).
    pub image: String,
    pub image_id: String,
    /// Unix nanoseconds.
    pub created: i128,
    pub rootfs_source: RootfsSource,
    pub config: RunConfig,
    pub log: LogConfig,
    pub auto_remove: bool,
    pub memory_limit: Option<i64>,
    pub status: Status,
    pub pid: Option<i32>,
    pub monitor_pid: Option<i32>,
    /// Start times (`/proc/PID/stat` field 22) of `monitor_pid` and `pid`,
    /// taken when they were reported, so that a recycled pid is never taken
    /// for the monitor or the container (`runtime::same_process`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_start: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start: Option<u64>,
    /// What went wrong outside the container, as inspect's `State.Error`
    /// (e.g. the monitor died, so the exit code is unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    pub started_at: Option<i128>,
    pub finished_at: Option<i128>,
    /// Set while the rootfs is mounted.
    pub mounted: Option<MountKind>,
    /// `--label`s over the image's labels.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// `--restart`.
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// Restarts made by the policy (not by `restart`).
    #[serde(default)]
    pub restart_count: u32,
    /// Stopped or killed through vigil: the policy does not restart it.
    #[serde(default)]
    pub stopped_by_user: bool,
    /// A user namespace of the container's own (`--userns=keep-id`,
    /// `--uidmap`); `None`: the namespace vigil runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns: Option<crate::rootless::ContainerUserNs>,
    /// The network set up for the running container (namespace, addresses,
    /// helpers), so that teardown undoes exactly that.
    #[serde(
        default,
        skip_serializing_if = "crate::network::NetworkState::is_empty"
    )]
    pub net_state: crate::network::NetworkState,
    /// `Config.Healthcheck`: from `--health-*` or the image (`container::health`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<crate::image::oci::Healthcheck>,
    /// `--health-on-failure` (none, kill, restart, stop), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_on_failure: Option<String>,
}

impl Record {
    /// The 12-character short id.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    /// Load `<dir>/state.json`.
    pub fn load(dir: &Path) -> Result<Record, RunnerError> {
        let path = dir.join(RECORD_FILE);
        let bytes = std::fs::read(&path)
            .map_err(|e| RunnerError::io(format!("reading {}", path.display()), e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            RunnerError::Engine(format!("corrupt container record {}: {e}", path.display()))
        })
    }

    /// Write `<dir>/state.json` atomically.
    pub fn save(&self, dir: &Path) -> Result<(), RunnerError> {
        let path = dir.join(RECORD_FILE);
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| RunnerError::Engine(format!("encoding record: {e}")))?;
        vigil::proto::exit::write_atomic(&path, &bytes)
            .map_err(|e| RunnerError::io(format!("writing {}", path.display()), e))
    }
}

// Times as records, configs and `inspect` write them (shared with image/).
pub use crate::clock::{format_rfc3339, now_nanos};

/// go-units' `HumanDuration`, as Podman prints ages.
pub fn human_duration(nanos: i128) -> String {
    let seconds = nanos / 1_000_000_000;
    let minutes = seconds / 60;
    let hours = (nanos as f64 / 3.6e12 + 0.5) as i64;
    match () {
        _ if seconds < 1 => "Less than a second".into(),
        _ if seconds == 1 => "1 second".into(),
        _ if seconds < 60 => format!("{seconds} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        let p = RestartPolicy::parse("on-failure:2").unwrap();
        assert_eq!((p.name.as_str(), p.max_retries), ("on-failure", 2));
        assert!(p.wants_restart(4, 1) && !p.wants_restart(4, 2) && !p.wants_restart(0, 0));
        assert!(RestartPolicy::parse("always").unwrap().wants_restart(0, 99));
        assert!(!RestartPolicy::parse("no").unwrap().is_set());
        let err = |t: &str| RestartPolicy::parse(t).unwrap_err().to_string();
        assert_eq!(
            err("bogus"),
            "running container create option: \"bogus\" is not a valid restart policy: invalid argument"
        );
        assert_eq!(
            err("on-failure:x"),
            "parsing restart policy retry count: strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            err("always:3"),
            "restart policy retries can only be specified with on-failure restart policy"
        );
    }

    #[test]
    fn formats_durations() {
        let s = 1_000_000_000i128;
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(s), "1 second");
        assert_eq!(human_duration(59 * s), "59 seconds");
        assert_eq!(human_duration(61 * s), "About a minute");
        assert_eq!(human_duration(300 * s), "5 minutes");
        assert_eq!(human_duration(3600 * s), "About an hour");
        assert_eq!(human_duration(5 * 3600 * s), "5 hours");
        assert_eq!(human_duration(72 * 3600 * s), "3 days");
    }

    #[test]
    fn records_without_parsed_flags_are_parsed_from_what_they_kept() {
        let mut config = RunConfig {
            volumes: vec!["/src:/dst:ro".into()],
            flags: SpecFlags {
                tmpfs: vec!["/scratch:size=1m".into()],
                pids_limit: Some(0),
                ..Default::default()
            },
            ..Default::default()
        };
        // As an older vigil wrote it: no "parsed" key.
        let json = serde_json::to_value(&config).unwrap();
        assert!(json.get("parsed").is_none());
        let old: RunConfig = serde_json::from_value(json).unwrap();
        let parsed = old.parsed().unwrap().into_owned();
        assert_eq!(parsed.volumes[0].destination, "/dst");
        assert_eq!(parsed.tmpfs[0].destination, "/scratch");
        assert_eq!(parsed.pids_limit, -1);
        // A new record keeps what create parsed, and that is what is read.
        config.parsed = Some(ParsedFlags {
            pids_limit: 7,
            ..parsed
        });
        let json = serde_json::to_value(&config).unwrap();
        let new: RunConfig = serde_json::from_value(json).unwrap();
        assert_eq!(new.parsed().unwrap().pids_limit, 7);
    }
}
