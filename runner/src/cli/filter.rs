//! `--filter KEY=VALUE` for container lists (`ps`): parsed once, matched per
//! container. Values of one key are ORed, different keys ANDed (Podman).
//! Keys so far: `health` (starting, healthy, unhealthy).

use crate::error::RunnerError;

/// What a container shows to the filters.
pub struct FilterSubject<'a> {
    /// `starting`, `healthy`, `unhealthy`, or empty without a healthcheck.
    pub health: &'a str,
}

/// Parsed `--filter` values.
#[derive(Debug, Default)]
pub struct ContainerFilter {
    health: Vec<String>,
}

impl ContainerFilter {
    pub fn parse(filters: &[String]) -> Result<ContainerFilter, RunnerError> {
        let mut f = ContainerFilter::default();
        for spec in filters {
            let (key, value) = spec.split_once('=').unwrap_or((spec.as_str(), ""));
            match key {
                "health" => f.health.push(value.to_string()),
                _ => return Err(RunnerError::Engine(format!("{key} is an invalid filter"))),
            }
        }
        Ok(f)
    }

    /// Whether any filter needs the health status.
    pub fn needs_health(&self) -> bool {
        !self.health.is_empty()
    }

    pub fn matches(&self, s: &FilterSubject<'_>) -> bool {
        self.health.is_empty() || self.health.iter().any(|h| h == s.health)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_values_or_and_unknown_keys() {
        let f =
            ContainerFilter::parse(&["health=healthy".into(), "health=starting".into()]).unwrap();
        assert!(f.matches(&FilterSubject { health: "healthy" }));
        assert!(f.matches(&FilterSubject { health: "starting" }));
        assert!(!f.matches(&FilterSubject { health: "" }));
        assert!(ContainerFilter::parse(&[])
            .unwrap()
            .matches(&FilterSubject { health: "" }));
        let e = ContainerFilter::parse(&["bogus=1".into()]).unwrap_err();
        assert_eq!(e.to_string(), "bogus is an invalid filter");
    }
}
