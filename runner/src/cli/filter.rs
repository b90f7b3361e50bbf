//! `ps --filter KEY=VALUE` (repeatable): the same key ORed, different keys
//! ANDed, with Podman's keys and errors: status, name, id, ancestor, label,
//! exited, restart-policy, health, before, since, until, volume, network,
//! pod.

use std::collections::BTreeMap;

use std::path::Path;

use regex::Regex;

use super::timespec::parse_time;
use crate::container::record::now_nanos;
use crate::network::Mode;

use crate::container::{Record, Status};
use crate::error::RunnerError;

/// One parsed `--filter`.
enum Test {
    Status(Status),
    /// Unanchored regular expression on the name.
    Name(Regex),
    /// Id prefix.
    Id(String),
    /// Image name (repository, tag or short name) or id prefix.
    Ancestor(String),
    /// `key` or `key=value`.
    Label(String, Option<String>),
    Exited(i32),
    RestartPolicy(String),
    /// `starting`, `healthy`, `unhealthy`.
    Health(String),
    /// Created before this time (Unix ns): `before=CONTAINER`.
    Before(i128),
    /// Created after this time: `since=CONTAINER`.
    Since(i128),
    /// Created before this time: `until=TIME|DURATION`.
    Until(i128),
    /// A bind mount of this host path (and destination, when given).
    Volume(String, Option<String>),
    /// Joined this bridge network.
    Network(String),
    /// vigil has no pods: matches nothing, as Podman for a container in none.
    Pod,
}

/// What a container shows to the filters besides its record.
pub struct FilterSubject<'a> {
    /// `starting`, `healthy`, `unhealthy`, or empty without a healthcheck.
    pub health: &'a str,
}

/// Every `--filter`, grouped by key.
#[derive(Default)]
pub struct ContainerFilter {
    groups: BTreeMap<String, Vec<Test>>,
}

fn invalid(message: String) -> RunnerError {
    RunnerError::Engine(message)
}

impl ContainerFilter {
    /// `created_of` gives a container's creation time (Unix ns) by name or
    /// id, or Podman's "no container" error, for `before` and `since`.
    pub fn parse(
        filters: &[String],
        created_of: &dyn Fn(&str) -> Result<i128, RunnerError>,
    ) -> Result<ContainerFilter, RunnerError> {
        let mut out = ContainerFilter::default();
        for f in filters {
            let (key, value) = f
                .split_once('=')
                .ok_or_else(|| invalid(format!("invalid filter {f:?}: want KEY=VALUE")))?;
            let test = match key {
                "status" => Test::Status(match value {
                    "created" => Status::Created,
                    "running" => Status::Running,
                    "paused" => Status::Paused,
                    "exited" | "stopped" => Status::Exited,
                    _ => {
                        return Err(invalid(format!(
                            "unknown container state: {value}: invalid argument"
                        )))
                    }
                }),
                "name" => Test::Name(
                    Regex::new(value)
                        .map_err(|e| invalid(format!("invalid name filter {value:?}: {e}")))?,
                ),
                "id" => Test::Id(value.to_string()),
                "ancestor" => Test::Ancestor(value.to_string()),
                "label" => match value.split_once('=') {
                    Some((k, v)) => Test::Label(k.to_string(), Some(v.to_string())),
                    None => Test::Label(value.to_string(), None),
                },
                "exited" => Test::Exited(
                    value
                        .parse()
                        .map_err(|_| invalid(format!("exited code out of range {value:?}")))?,
                ),
                "restart-policy" => Test::RestartPolicy(value.to_string()),
                "health" => Test::Health(value.to_string()),
                "before" => Test::Before(created_of(value)?),
                "since" => Test::Since(created_of(value)?),
                "until" => Test::Until(parse_time(value, now_nanos()).ok_or_else(|| {
                    invalid(format!(
                        "failed to parse value as time or duration: {value:?}"
                    ))
                })?),
                "volume" => match value.split_once(':') {
                    Some((source, dest)) => {
                        Test::Volume(source.to_string(), Some(dest.to_string()))
                    }
                    None => Test::Volume(value.to_string(), None),
                },
                "network" => Test::Network(value.to_string()),
                "pod" => Test::Pod,
                _ => return Err(invalid(format!("{key} is an invalid filter"))),
            };
            out.groups.entry(key.to_string()).or_default().push(test);
        }
        Ok(out)
    }

    /// Whether `--filter status=...` or `exited=...` asks for stopped
    /// containers (then `ps` without `-a` lists them too, like Podman).
    pub fn selects_states(&self) -> bool {
        self.groups.contains_key("status") || self.groups.contains_key("exited")
    }

    /// Whether any filter needs the health status.
    pub fn needs_health(&self) -> bool {
        self.groups.contains_key("health")
    }

    pub fn matches(&self, rec: &Record, subject: &FilterSubject<'_>) -> bool {
        self.groups
            .values()
            .all(|tests| tests.iter().any(|t| test(t, rec, subject)))
    }
}

fn test(t: &Test, rec: &Record, subject: &FilterSubject<'_>) -> bool {
    match t {
        Test::Health(h) => subject.health == h,
        Test::Status(s) => rec.status == *s,
        Test::Name(re) => re.is_match(&rec.name),
        Test::Id(prefix) => rec.id.starts_with(prefix.as_str()),
        Test::Ancestor(image) => ancestor_matches(image, rec),
        Test::Label(k, v) => match (rec.labels.get(k), v) {
            (Some(_), None) => true,
            (Some(have), Some(want)) => have == want,
            (None, _) => false,
        },
        Test::Exited(code) => rec.status == Status::Exited && rec.exit_code == Some(*code),
        Test::Before(t) => rec.created < *t,
        Test::Since(t) => rec.created > *t,
        Test::Until(t) => rec.created < *t,
        Test::Volume(source, dest) => rec.config.parsed().is_ok_and(|parsed| {
            parsed.volumes.iter().any(|m| {
                m.source == Path::new(source)
                    && dest.as_ref().is_none_or(|d| {
                        m.destination.trim_end_matches('/') == d.trim_end_matches('/')
                    })
            })
        }),
        Test::Network(name) => {
            rec.config.net.mode == Mode::Bridge && rec.config.net.networks.contains(name)
        }
        Test::Pod => false,
        Test::RestartPolicy(p) => {
            rec.restart_policy.name == *p || (p == "no" && rec.restart_policy.name.is_empty())
        }
    }
}

/// `busybox`, `busybox:latest`, `localhost/busybox` and the image id (or a
/// prefix of it) all match an image stored as `localhost/busybox:latest`.
fn ancestor_matches(want: &str, rec: &Record) -> bool {
    if !rec.image_id.is_empty() && rec.image_id.starts_with(want) {
        return true;
    }
    let name = rec.image.as_str();
    let without_tag = |n: &str| -> String {
        match n.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => repo.to_string(),
            _ => n.to_string(),
        }
    };
    let short = |n: &str| -> String { without_tag(n).rsplit('/').next().unwrap_or("").to_string() };
    name == want
        || without_tag(name) == want
        || without_tag(name) == without_tag(want) && !want.contains(':')
        || short(name) == want
        || (want.contains(':') && name.ends_with(&format!("/{want}")))
}

/// `container/image/system prune --filter`: `until=TIME` (created before),
/// `label=KEY[=VALUE]` and `label!=KEY[=VALUE]`, every one of them
/// required (as Podman's prune filters are).
#[derive(Default)]
pub struct PruneFilter {
    until: Vec<i128>,
    labels: Vec<(String, Option<String>)>,
    not_labels: Vec<(String, Option<String>)>,
}

impl PruneFilter {
    /// `unknown` words the error for a key prunes do not take (Podman's
    /// container and image prunes say it differently).
    pub fn parse(
        filters: &[String],
        unknown: &dyn Fn(&str) -> String,
    ) -> Result<PruneFilter, RunnerError> {
        let mut out = PruneFilter::default();
        let label = |value: &str| match value.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (value.to_string(), None),
        };
        for f in filters {
            let (key, value) = f
                .split_once('=')
                .ok_or_else(|| invalid(format!("invalid filter {f:?}: want KEY=VALUE")))?;
            // `label!=a` splits at its `=` as key `label!`.
            match key {
                "until" => out
                    .until
                    .push(parse_time(value, now_nanos()).ok_or_else(|| {
                        invalid(format!(
                            "failed to parse value as time or duration: {value:?}"
                        ))
                    })?),
                "label" => out.labels.push(label(value)),
                "label!" => out.not_labels.push(label(value)),
                _ => return Err(invalid(unknown(key))),
            }
        }
        Ok(out)
    }

    /// Does something created at `created` (Unix ns) with `labels` go?
    pub fn matches(&self, created: i128, labels: &BTreeMap<String, String>) -> bool {
        let has = |(k, v): &(String, Option<String>)| match (labels.get(k), v) {
            (Some(have), Some(want)) => have == want,
            (Some(_), None) => true,
            (None, _) => false,
        };
        self.until.iter().all(|&t| created < t)
            && self.labels.iter().all(has)
            && !self.not_labels.iter().any(has)
    }
}
