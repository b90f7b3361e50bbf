//! [`ExitWatcher`]: wait for the monitor's exit file (`<exit-dir>/<cid>`) and
//! read the OOM marker (shared/spec/conmon-interface.md §8.1, §9).

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::{Error, Result};
use super::sys;
use crate::proto::exit::{read_status, OOM_FILE};

/// How a container (or exec session) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitStatus {
    /// Exit code; 128+N when killed by signal N; -1 on a monitor timeout.
    pub code: i32,
    /// `<persist-dir>/oom` exists.
    pub oom_killed: bool,
}

/// Watches for one container's exit file.
///
/// ```no_run
/// use std::time::Duration;
/// use vigil::client::ExitWatcher;
///
/// let status = ExitWatcher::new("/run/ctr/exits".as_ref(), "c0ffee")
///     .persist_dir("/run/ctr/persist".as_ref())
///     .monitor_pid(4242)
///     .wait(Some(Duration::from_secs(10)))?;
/// println!("exit code {} (oom: {})", status.code, status.oom_killed);
/// # Ok::<(), vigil::client::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ExitWatcher {
    exit_file: PathBuf,
    persist_dir: Option<PathBuf>,
    monitor_pid: Option<i32>,
}

impl ExitWatcher {
    /// Watch `<exit_dir>/<cid>`.
    pub fn new(exit_dir: &Path, cid: &str) -> Self {
        ExitWatcher {
            exit_file: exit_dir.join(cid),
            persist_dir: None,
            monitor_pid: None,
        }
    }

    /// Also report `<dir>/oom` as [`ExitStatus::oom_killed`].
    pub fn persist_dir(mut self, dir: &Path) -> Self {
        self.persist_dir = Some(dir.to_path_buf());
        self
    }

    /// Stop waiting (with [`Error::MonitorExited`]) if this monitor process
    /// disappears without writing the exit file.
    pub fn monitor_pid(mut self, pid: i32) -> Self {
        self.monitor_pid = Some(pid);
        self
    }

    /// The exit file path.
    pub fn exit_file(&self) -> &Path {
        &self.exit_file
    }

    /// The status if the exit file exists already.
    pub fn try_read(&self) -> Result<Option<ExitStatus>> {
        let code = read_status(&self.exit_file)
            .map_err(|e| Error::io(format!("reading {}", self.exit_file.display()), e))?;
        Ok(code.map(|code| ExitStatus {
            code,
            oom_killed: self.oom_killed(),
        }))
    }

    /// `<persist-dir>/oom` exists.
    pub fn oom_killed(&self) -> bool {
        self.persist_dir.as_ref().is_some_and(|d| oom_killed(d))
    }

    /// Wait for the exit file (inotify on its directory, polling as a fallback).
    /// `None` waits forever; [`Error::Timeout`] when the timeout passes.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<ExitStatus> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let notify = self.exit_file.parent().and_then(watch_dir);
        loop {
            if let Some(status) = self.try_read()? {
                return Ok(status);
            }
            if let Some(pid) = self.monitor_pid {
                if !sys::pid_exists(pid) {
                    // It may have written the file just before exiting.
                    return self.try_read()?.ok_or(Error::MonitorExited {
                        stderr: String::new(),
                    });
                }
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(Error::Timeout(format!(
                    "exit file {}",
                    self.exit_file.display()
                )));
            }
            // Wake at least every 250 ms to re-check the monitor (50 ms without inotify).
            let step = if notify.is_some() { 250 } else { 50 };
            let mut next = now + Duration::from_millis(step);
            if let Some(d) = deadline {
                next = next.min(d);
            }
            match &notify {
                Some(fd) => {
                    if sys::wait_readable(fd, Some(next)).unwrap_or(false) {
                        drain(fd);
                    }
                }
                None => std::thread::sleep(next.saturating_duration_since(Instant::now())),
            }
        }
    }
}

/// `<persist_dir>/oom` exists: the monitor saw an OOM kill.
pub fn oom_killed(persist_dir: &Path) -> bool {
    persist_dir.join(OOM_FILE).exists()
}

fn watch_dir(dir: &Path) -> Option<OwnedFd> {
    let fd = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok()?;
    let mask =
        AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CLOSE_WRITE;
    fd.add_watch(dir, mask).ok()?;
    Some(OwnedFd::from(fd))
}

fn drain(fd: &OwnedFd) {
    let mut buf = [0u8; 4096];
    // Non-blocking: ends when nothing is left.
    while matches!(nix::unistd::read(fd, &mut buf), Ok(n) if n > 0) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::exit::write_status;

    #[test]
    fn waits_for_the_exit_file() {
        let dir = std::env::temp_dir().join(format!("vigil-client-exit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let w = ExitWatcher::new(&dir, "cid").persist_dir(&dir);
        assert_eq!(w.try_read().unwrap(), None);
        assert!(matches!(
            w.wait(Some(Duration::from_millis(30))),
            Err(Error::Timeout(_))
        ));
        let file = dir.join("cid");
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            write_status(&file, 137).unwrap();
        });
        let st = w.wait(Some(Duration::from_secs(5))).unwrap();
        t.join().unwrap();
        assert_eq!(
            st,
            ExitStatus {
                code: 137,
                oom_killed: false
            }
        );
        std::fs::write(dir.join("oom"), b"").unwrap();
        assert!(w.try_read().unwrap().unwrap().oom_killed);
        let gone = ExitWatcher::new(&dir, "other").monitor_pid(i32::MAX);
        assert!(matches!(gone.wait(None), Err(Error::MonitorExited { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
