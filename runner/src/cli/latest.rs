//! `-l/--latest` and the container arguments of commands that take several:
//! which containers a command acts on, with Podman's errors.

use crate::container::{Engine, Record};
use crate::error::RunnerError;

/// Podman's error when a command got no container at all.
pub fn no_names() -> RunnerError {
    RunnerError::Engine("you must provide at least one name or id".into())
}

/// The most recently created container (any state), Podman's "latest".
pub fn latest(engine: &Engine<'_>) -> Result<Record, RunnerError> {
    engine
        .store
        .records()?
        .into_iter()
        .max_by_key(|r| r.created)
        .ok_or_else(|| RunnerError::Engine("no such container".into()))
}

/// What a command acts on: `(as typed, id)` pairs. With `latest`, the newest
/// container (shown by its full id); otherwise `names`, each resolved (an
/// unknown one is Podman's "no such container" error).
pub fn targets(
    engine: &Engine<'_>,
    names: &[String],
    latest_flag: bool,
) -> Result<Vec<(String, String)>, RunnerError> {
    if latest_flag {
        if !names.is_empty() {
            return Err(RunnerError::Engine(
                "--latest and containers cannot be used together".into(),
            ));
        }
        let rec = latest(engine)?;
        return Ok(vec![(rec.id.clone(), rec.id)]);
    }
    if names.is_empty() {
        return Err(no_names());
    }
    names
        .iter()
        .map(|n| Ok((n.clone(), engine.store.resolve(n)?)))
        .collect()
}
