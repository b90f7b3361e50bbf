//! `-l/--latest` and the container arguments of commands that take several:
//! which containers a command acts on, with Podman's errors.

use crate::container::{Engine, Record, Status};
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

/// Like [`targets`], but `all` picks every container in `status` instead
/// (`pause --all` the running ones, `unpause --all` the paused ones), each
/// shown by its full id.
pub fn targets_or_all_in(
    engine: &Engine<'_>,
    names: &[String],
    latest_flag: bool,
    all: Option<Status>,
) -> Result<Vec<(String, String)>, RunnerError> {
    let Some(status) = all else {
        return targets(engine, names, latest_flag);
    };
    let mut picked = Vec::new();
    for id in engine.store.ids()? {
        let rec = engine.refresh_locked(&id)?;
        if rec.status == status {
            picked.push((rec.id.clone(), rec.id));
        }
    }
    Ok(picked)
}
