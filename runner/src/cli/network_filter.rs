//! `network ls --filter KEY=VALUE` (repeatable) with Podman 4.3.1's keys:
//! `name` (regular expression), `id` (prefix), `driver`, `label` and
//! `label!` (KEY or KEY=VALUE), `until` (created before), `dangling` (no
//! container configured on it; the default network never is). Values of
//! one key are ORed, except `label`/`label!` which must all hold; different
//! keys are ANDed.

use std::collections::BTreeMap;

use regex::Regex;

use super::timespec::parse_time;
use crate::container::record::now_nanos;
use crate::error::RunnerError;
use crate::network::{NetworkDef, DEFAULT_NETWORK};

/// One parsed `--filter`.
enum Test {
    Name(Regex),
    Id(String),
    Driver(String),
    Until(i128),
    Dangling(bool),
}

/// Every `--filter` of `network ls`.
#[derive(Default)]
pub struct NetworkFilter {
    /// Key -> its values (ORed).
    groups: BTreeMap<&'static str, Vec<Test>>,
    labels: Vec<(String, Option<String>)>,
    not_labels: Vec<(String, Option<String>)>,
}

fn invalid(message: String) -> RunnerError {
    RunnerError::Engine(message)
}

impl NetworkFilter {
    pub fn parse(filters: &[String]) -> Result<NetworkFilter, RunnerError> {
        let mut out = NetworkFilter::default();
        let label = |value: &str| match value.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (value.to_string(), None),
        };
        for f in filters {
            let (key, value) = f.split_once('=').ok_or_else(|| {
                invalid(format!(
                    "filter input must be in the form of filter=value: {f} is invalid"
                ))
            })?;
            // `label!=a` splits at its `=` as key `label!`.
            let (group, test) = match key {
                "name" => (
                    "name",
                    Test::Name(
                        Regex::new(value)
                            .map_err(|e| invalid(format!("invalid name filter {value:?}: {e}")))?,
                    ),
                ),
                "id" => ("id", Test::Id(value.to_string())),
                "driver" => ("driver", Test::Driver(value.to_string())),
                "until" => (
                    "until",
                    Test::Until(parse_time(value, now_nanos()).ok_or_else(|| {
                        invalid(format!(
                            "failed to parse value as time or duration: {value:?}"
                        ))
                    })?),
                ),
                "dangling" => (
                    "dangling",
                    Test::Dangling(match value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(invalid(format!("invalid dangling filter value {value:?}")))
                        }
                    }),
                ),
                "label" => {
                    out.labels.push(label(value));
                    continue;
                }
                "label!" => {
                    out.not_labels.push(label(value));
                    continue;
                }
                _ => return Err(invalid(format!("invalid filter {key:?}"))),
            };
            out.groups.entry(group).or_default().push(test);
        }
        Ok(out)
    }

    /// Does the `dangling` filter need to know the networks' users?
    pub fn needs_users(&self) -> bool {
        self.groups.contains_key("dangling")
    }

    /// Does network `def` pass? `used`: some container is configured on it.
    pub fn matches(&self, def: &NetworkDef, used: bool) -> bool {
        let created = vigil::client::parse_rfc3339_nanos(&def.created).unwrap_or(0);
        let passes = |t: &Test| match t {
            Test::Name(re) => re.is_match(&def.name),
            Test::Id(prefix) => def.id.starts_with(prefix.as_str()),
            Test::Driver(d) => &def.driver == d,
            Test::Until(t) => created < *t,
            Test::Dangling(want) => {
                let dangling = def.name != DEFAULT_NETWORK && !used;
                dangling == *want
            }
        };
        let empty = BTreeMap::new();
        let labels = def.labels.as_ref().unwrap_or(&empty);
        let has = |(k, v): &(String, Option<String>)| match (labels.get(k), v) {
            (Some(have), Some(want)) => have == want,
            (Some(_), None) => true,
            (None, _) => false,
        };
        self.groups.values().all(|tests| tests.iter().any(passes))
            && self.labels.iter().all(has)
            && !self.not_labels.iter().any(has)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(name: &str, id: &str, labels: &[(&str, &str)]) -> NetworkDef {
        let mut def = crate::network::config::default_network();
        def.name = name.into();
        def.id = id.into();
        def.created = "2026-01-02T03:04:05.5Z".into();
        if !labels.is_empty() {
            def.labels = Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        }
        def
    }

    fn names(filters: &[&str], nets: &[NetworkDef], used: &[&str]) -> Vec<String> {
        let f: Vec<String> = filters.iter().map(|s| s.to_string()).collect();
        let f = NetworkFilter::parse(&f).unwrap();
        nets.iter()
            .filter(|n| f.matches(n, used.contains(&n.name.as_str())))
            .map(|n| n.name.clone())
            .collect()
    }

    #[test]
    fn podman_filter_forms() {
        let nets = [
            net(DEFAULT_NETWORK, "aaa111", &[]),
            net("lab", "bbb222", &[("a", "b"), ("c", "")]),
            net("v6only", "ccc333", &[]),
            net("v6b", "ccd444", &[("a", "x")]),
        ];
        assert_eq!(names(&["name=^v6"], &nets, &[]), ["v6only", "v6b"]);
        assert_eq!(names(&["name=lab", "name=v6b"], &nets, &[]), ["lab", "v6b"]);
        assert_eq!(names(&["id=cc"], &nets, &[]), ["v6only", "v6b"]);
        assert_eq!(
            names(&["id=cc", "name=lab"], &nets, &[]),
            Vec::<String>::new()
        );
        assert_eq!(names(&["driver=macvlan"], &nets, &[]), Vec::<String>::new());
        assert_eq!(names(&["driver=bridge"], &nets, &[]).len(), 4);
        assert_eq!(names(&["label=a"], &nets, &[]), ["lab", "v6b"]);
        assert_eq!(names(&["label=a=b"], &nets, &[]), ["lab"]);
        assert_eq!(names(&["label=a", "label=c"], &nets, &[]), ["lab"]);
        assert_eq!(
            names(&["label!=a"], &nets, &[]),
            [DEFAULT_NETWORK, "v6only"]
        );
        assert_eq!(
            names(&["dangling=true"], &nets, &["lab"]),
            ["v6only", "v6b"]
        );
        assert_eq!(
            names(&["dangling=false"], &nets, &["lab"]),
            [DEFAULT_NETWORK, "lab"]
        );
        assert_eq!(names(&["until=2026-01-02T03:04:06Z"], &nets, &[]).len(), 4);
        assert_eq!(names(&["until=2026-01-02T03:04:05Z"], &nets, &[]).len(), 0);
        let err = |f: &str| match NetworkFilter::parse(&[f.to_string()]) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{f} accepted"),
        };
        assert!(err("foo=bar").contains("invalid filter \"foo\""));
        assert!(err("nameonly")
            .contains("filter input must be in the form of filter=value: nameonly is invalid"));
        assert!(err("dangling=nope").contains("invalid dangling filter value \"nope\""));
        assert!(err("until=nonsense").contains("failed to parse value as time or duration"));
        assert!(err("name=[").contains("invalid name filter \"[\""));
    }
}
