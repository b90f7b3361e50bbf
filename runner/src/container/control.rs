//! State changes several commands share: stop, start, restart, pause,
//! unpause, and the cleanup the monitor's exit command runs (restart
//! policies, `--rm`), with Podman's messages.

use std::time::Duration;

use super::lifecycle::Engine;
use super::record::{Record, Status};
use crate::error::RunnerError;

/// How long a container may take to go after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(30);

fn improper(message: String) -> RunnerError {
    RunnerError::Engine(format!("{message}: container state improper"))
}

/// Marks the container as stopped by the user (its restart policy does not
/// fire), under its lock. Returns the refreshed record.
fn mark_stopped_by_user(engine: &Engine<'_>, id: &str) -> Result<Record, RunnerError> {
    let _lock = engine.store.lock(id)?;
    let mut rec = engine.refresh(id)?;
    if matches!(rec.status, Status::Running | Status::Paused) && !rec.stopped_by_user {
        rec.stopped_by_user = true;
        rec.save(&engine.store.dir(id))?;
    }
    Ok(rec)
}

/// `stop`: the stop signal, SIGKILL to every process after `timeout`
/// seconds (default: the container's). A paused container is thawed after
/// the signal so that it can act on it. Returns the record afterwards.
pub fn stop(engine: &Engine<'_>, id: &str, timeout: Option<u32>) -> Result<Record, RunnerError> {
    let rec = mark_stopped_by_user(engine, id)?;
    if !matches!(rec.status, Status::Running | Status::Paused) {
        return Ok(rec);
    }
    let rt = engine.runtime()?;
    let paused = rec.status == Status::Paused;
    let timeout = timeout.unwrap_or(rec.config.stop_timeout);
    let signalled = timeout > 0 && rt.kill(id, rec.config.stop_signal, false).is_ok();
    if paused {
        let _ = rt.resume(id);
    }
    let stopped = signalled
        && engine
            .wait_exit(id, Some(Duration::from_secs(timeout.into())))
            .is_ok_and(|r| r.status == Status::Exited);
    if stopped {
        return engine.refresh_locked(id);
    }
    if timeout > 0 {
        log::warn!(
            "StopSignal {} failed to stop container {} in {timeout} seconds, resorting to SIGKILL",
            super::runtime::signal_name(rec.config.stop_signal),
            rec.name
        );
    }
    // Already gone is fine: the exit file tells.
    let _ = rt.kill(id, libc::SIGKILL, true);
    engine.wait_exit(id, Some(KILL_WAIT))
}

/// `kill`: a signal to the container's process, marking it stopped by the user.
pub fn kill(engine: &Engine<'_>, id: &str, signal: i32) -> Result<(), RunnerError> {
    let _lock = engine.store.lock(id)?;
    let mut rec = engine.refresh(id)?;
    if !matches!(rec.status, Status::Running | Status::Paused) {
        return Err(improper(format!(
            "can only kill running containers. {} is in state {}",
            rec.id,
            rec.status.as_str()
        )));
    }
    rec.stopped_by_user = true;
    rec.save(&engine.store.dir(id))?;
    let rt = engine.runtime()?;
    rt.kill(id, signal, false)?;
    if rec.status == Status::Paused && signal == libc::SIGKILL {
        let _ = rt.resume(id);
    }
    Ok(())
}

/// `start` of a created or exited container (a running one is left alone).
/// Call under the container's lock.
pub fn start_locked(engine: &Engine<'_>, rec: &mut Record) -> Result<(), RunnerError> {
    match rec.status {
        Status::Running => return Ok(()),
        Status::Paused => {
            return Err(improper(format!(
                "container {} is paused, unpause it first",
                rec.id
            )))
        }
        Status::Created | Status::Exited => {}
    }
    rec.stopped_by_user = false;
    let auto_remove = rec.auto_remove;
    engine.init(rec, auto_remove)?;
    engine.start(rec)
}

/// `restart`: stop if running, then start. The restart count is not
/// touched (only the policy counts).
pub fn restart(engine: &Engine<'_>, id: &str, timeout: Option<u32>) -> Result<Record, RunnerError> {
    let rec = {
        let _lock = engine.store.lock(id)?;
        engine.refresh(id)?
    };
    if rec.status == Status::Paused {
        return Err(improper(
            "unable to restart a container in a paused or unknown state".into(),
        ));
    }
    if rec.status == Status::Running {
        stop(engine, id, timeout)?;
    }
    let _lock = engine.store.lock(id)?;
    let mut rec = engine.refresh(id)?;
    start_locked(engine, &mut rec)?;
    Ok(rec)
}

/// `pause`: freeze the container (`runtime pause`).
pub fn pause(engine: &Engine<'_>, id: &str) -> Result<(), RunnerError> {
    let _lock = engine.store.lock(id)?;
    let mut rec = engine.refresh(id)?;
    match rec.status {
        Status::Running => {}
        Status::Paused => return Err(improper(format!("{:?} is already paused", rec.id))),
        other => {
            return Err(improper(format!(
                "{:?} is not running, can't pause",
                other.as_str()
            )))
        }
    }
    if crate::rootless::active().is_some() && !super::lifecycle::is_cgroup2() {
        return Err(RunnerError::Engine(
            "pause is not supported for rootless containers on cgroup v1 (no freezer)".into(),
        ));
    }
    engine.runtime()?.pause(id)?;
    rec.status = Status::Paused;
    rec.save(&engine.store.dir(id))
}

/// `unpause`: thaw a paused container.
pub fn unpause(engine: &Engine<'_>, id: &str) -> Result<(), RunnerError> {
    let _lock = engine.store.lock(id)?;
    let mut rec = engine.refresh(id)?;
    if rec.status != Status::Paused {
        return Err(improper(format!(
            "{:?} is not paused, can't unpause",
            rec.id
        )));
    }
    engine.runtime()?.resume(id)?;
    rec.status = Status::Running;
    rec.save(&engine.store.dir(id))
}

/// What [`cleanup`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Cleanup {
    /// Nothing to do (still running, already removed...).
    Nothing,
    /// Exited and cleaned up.
    Exited,
    /// The restart policy started it again.
    Restarted,
    /// `--rm`: removed.
    Removed,
}

/// `container cleanup ID`, run by the monitor's exit command when the
/// container exits: record the exit, then apply the restart policy (unless
/// it was stopped through vigil) or, with `remove` (a detached `--rm`
/// container, whose exit command says `--rm` as Podman's does), remove it.
/// A foreground `run --rm` removes its container itself: its exit command
/// (network teardown) must not pull the record from under it.
pub fn cleanup(engine: &Engine<'_>, id: &str, remove: bool) -> Result<Cleanup, RunnerError> {
    if !engine
        .store
        .dir(id)
        .join(super::record::RECORD_FILE)
        .is_file()
    {
        return Ok(Cleanup::Nothing);
    }
    let lock = engine.store.lock(id)?;
    let mut rec = match engine.refresh(id) {
        Ok(rec) => rec,
        // Removed while we waited for the lock.
        Err(_)
            if !engine
                .store
                .dir(id)
                .join(super::record::RECORD_FILE)
                .is_file() =>
        {
            return Ok(Cleanup::Nothing)
        }
        Err(e) => return Err(e),
    };
    if rec.status != Status::Exited {
        return Ok(Cleanup::Nothing);
    }
    // The monitor stopped it for `--health-on-failure restart` (it left the marker).
    let marker = engine
        .store
        .dir(id)
        .join(vigil::proto::health::RESTART_MARKER);
    if std::fs::remove_file(&marker).is_ok() && !rec.stopped_by_user {
        engine.init(&mut rec, false)?;
        engine.start(&mut rec)?;
        return Ok(Cleanup::Restarted);
    }
    let policy = rec.restart_policy.clone();
    if !rec.stopped_by_user && policy.wants_restart(rec.exit_code.unwrap_or(-1), rec.restart_count)
    {
        rec.restart_count += 1;
        rec.save(&engine.store.dir(id))?;
        engine.init(&mut rec, false)?;
        engine.start(&mut rec)?;
        return Ok(Cleanup::Restarted);
    }
    if remove && rec.auto_remove {
        drop(lock);
        let _all = engine.store.lock_all()?;
        let _lock = engine.store.lock(id)?;
        engine.remove(&mut rec)?;
        return Ok(Cleanup::Removed);
    }
    Ok(Cleanup::Exited)
}
