//! containers.conf's `[containers]` defaults applied to a container:
//! `env` (before the image's), `default_ulimits` and `default_capabilities`
//! (on the runtime spec vigil built).

use std::collections::HashSet;

use oci_spec::runtime::{Capability, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Spec};

use crate::config::containers::{ContainersSection, Ulimit};
use crate::error::RunnerError;
use crate::spec;

/// The image's environment on top of containers.conf's `env`: a variable
/// the image sets wins, the others are kept in the configured order.
pub fn base_environment(configured: &[String], image: &[String]) -> Vec<String> {
    let key = |e: &String| e.split('=').next().unwrap_or("").to_string();
    let image_keys: HashSet<String> = image.iter().map(key).collect();
    configured
        .iter()
        .filter(|e| !image_keys.contains(&key(e)))
        .chain(image)
        .cloned()
        .collect()
}

/// Applies `default_ulimits` and `default_capabilities` to `spec`.
/// `cap_add`/`cap_drop` are the container's flags (applied on top of the
/// configured set, as with the built-in one); `root`: the process runs as
/// uid 0 (its effective set is the bounding set); `max_hard`: the highest
/// hard limit the caller may set (`None`: it may raise limits).
pub fn apply(
    spec: &mut Spec,
    conf: &ContainersSection,
    (cap_add, cap_drop): (&[String], &[String]),
    root: bool,
    max_hard: Option<u64>,
) -> Result<(), RunnerError> {
    let Some(process) = spec.process_mut() else {
        return Ok(());
    };
    if !conf.default_ulimits.is_empty() {
        let mut limits: Vec<PosixRlimit> = process.rlimits().clone().unwrap_or_default();
        for u in &conf.default_ulimits {
            let limit = rlimit(u, max_hard)?;
            limits.retain(|l| l.typ() != limit.typ());
            limits.push(limit);
        }
        process.set_rlimits(Some(limits));
    }
    if let Some(defaults) = &conf.default_capabilities {
        let base: Vec<Capability> = spec::parse_capabilities(defaults)?
            .iter()
            .filter(|c| *c != "ALL")
            .map(|c| capability(c))
            .collect::<Result<_, _>>()?;
        let all = spec::all_capabilities(spec::bounding_set());
        let names = spec::merge_capabilities(&base, cap_add, cap_drop, &all)?;
        let set: HashSet<Capability> = names
            .iter()
            .map(|c| capability(c))
            .collect::<Result<_, _>>()?;
        if let Some(mut caps) = process.capabilities().clone() {
            // Root's effective and permitted sets are its bounding set; a
            // user's hold only what it was given (unchanged here).
            caps.set_bounding(Some(set.clone()));
            if root {
                caps.set_effective(Some(set.clone()));
                caps.set_permitted(Some(set));
            }
            process.set_capabilities(Some(caps));
        }
    }
    Ok(())
}

fn capability(name: &str) -> Result<Capability, RunnerError> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map_err(|_| RunnerError::Engine(format!("unknown capability {name:?}")))
}

fn rlimit(u: &Ulimit, max_hard: Option<u64>) -> Result<PosixRlimit, RunnerError> {
    let typ: PosixRlimitType = u
        .oci_type()
        .parse()
        .map_err(|_| RunnerError::Engine(format!("ulimit {:?} is not supported", u.name)))?;
    // Without CAP_SYS_RESOURCE (rootless) a limit cannot be raised above
    // ours: clamp, as the runtime would fail to set it.
    let hard = max_hard.map_or(u.hard, |m| u.hard.min(m));
    let soft = u.soft.min(hard);
    PosixRlimitBuilder::default()
        .typ(typ)
        .soft(soft)
        .hard(hard)
        .build()
        .map_err(|e| RunnerError::Engine(format!("ulimit {:?}: {e}", u.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_env_wins_over_configured() {
        let conf = ["A=1".to_string(), "PATH=/c".into(), "TERM=xterm".into()];
        let image = ["PATH=/i".to_string(), "B=2".into()];
        assert_eq!(
            base_environment(&conf, &image),
            ["A=1", "TERM=xterm", "PATH=/i", "B=2"]
        );
    }

    #[test]
    fn ulimits_and_capabilities_replace_the_defaults() {
        let mut spec = Spec::default();
        let conf = ContainersSection {
            env: vec![],
            default_ulimits: vec![
                Ulimit::parse("nofile=20000:20000").unwrap(),
                Ulimit::parse("core=0:10").unwrap(),
            ],
            default_capabilities: Some(vec!["CHOWN".into(), "kill".into()]),
        };
        let (add, drop) = (["NET_RAW".to_string()], ["KILL".to_string()]);
        apply(&mut spec, &conf, (&add, &drop), true, Some(5)).unwrap();
        let v = serde_json::to_value(&spec).unwrap();
        let limits = &v["process"]["rlimits"];
        let find = |t: &str| {
            limits
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["type"] == t)
                .cloned()
                .unwrap()
        };
        assert_eq!(find("RLIMIT_NOFILE")["hard"], 5, "clamped: {limits}");
        assert_eq!(find("RLIMIT_CORE")["soft"], 0);
        let mut bounding: Vec<String> =
            serde_json::from_value(v["process"]["capabilities"]["bounding"].clone()).unwrap();
        bounding.sort();
        assert_eq!(bounding, ["CAP_CHOWN", "CAP_NET_RAW"]);
        assert_eq!(
            v["process"]["capabilities"]["effective"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
}
