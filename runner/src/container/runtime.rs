//! The OCI runtime's own commands (`start`, `kill`, `delete`, `state`); the
//! monitor runs `create` and `exec`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::RunnerError;

/// A runtime binary with its state root.
#[derive(Clone, Debug)]
pub struct Runtime {
    pub path: PathBuf,
    pub root: PathBuf,
}

impl Runtime {
    pub fn new(path: PathBuf, root: &Path) -> Runtime {
        Runtime {
            path,
            root: root.to_path_buf(),
        }
    }

    /// Global flags the monitor must pass too (`--runtime-arg`).
    pub fn global_args(&self, log: Option<&Path>) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec!["--root".into(), self.root.clone().into()];
        if let Some(log) = log {
            args.extend(["--log-format=json".into(), "--log".into(), log.into()]);
        }
        args
    }

    fn run(&self, args: &[&str]) -> Result<(bool, String), RunnerError> {
        log::debug!(
            "running {} --root {} {}",
            self.path.display(),
            self.root.display(),
            args.join(" ")
        );
        let out = Command::new(&self.path)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| RunnerError::io(format!("running {}", self.path.display()), e))?;
        let mut text = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if text.is_empty() {
            text = format!("exit status {}", out.status.code().unwrap_or(-1));
        }
        Ok((out.status.success(), text))
    }

    /// `runtime start ID`.
    pub fn start(&self, id: &str) -> Result<(), RunnerError> {
        match self.run(&["start", id])? {
            (true, _) => Ok(()),
            (false, err) => Err(RunnerError::Engine(format!(
                "OCI runtime start failed: {err}"
            ))),
        }
    }

    /// `runtime kill [--all] ID SIGNAL`.
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), RunnerError> {
        let sig = signal.to_string();
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([id, sig.as_str()]);
        match self.run(&args)? {
            (true, _) => Ok(()),
            // `--all` finds the processes through the container's cgroup,
            // which a rootless container on cgroup v1 does not have: signal
            // its init (in its own PID namespace, the rest dies with it).
            (false, _) if all && crate::rootless::active().is_some() => {
                self.kill(id, signal, false)
            }
            (false, err) => Err(RunnerError::Engine(format!(
                "sending signal {signal}: {err}"
            ))),
        }
    }

    /// `runtime pause ID`: freeze every process of the container.
    pub fn pause(&self, id: &str) -> Result<(), RunnerError> {
        match self.run(&["pause", id])? {
            (true, _) => Ok(()),
            (false, err) => Err(RunnerError::Engine(format!(
                "OCI runtime pause failed: {err}"
            ))),
        }
    }

    /// `runtime resume ID`: thaw a paused container.
    pub fn resume(&self, id: &str) -> Result<(), RunnerError> {
        match self.run(&["resume", id])? {
            (true, _) => Ok(()),
            (false, err) => Err(RunnerError::Engine(format!(
                "OCI runtime resume failed: {err}"
            ))),
        }
    }

    /// `runtime state ID`: the runtime's view of the container, `None` if it
    /// does not know it. runc and crun check the init process's start time,
    /// so a recycled pid reads as `stopped`.
    pub fn state(&self, id: &str) -> Result<Option<RuntimeState>, RunnerError> {
        let out = Command::new(&self.path)
            .arg("--root")
            .arg(&self.root)
            .args(["state", id])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| RunnerError::io(format!("running {}", self.path.display()), e))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("does not exist") || err.contains("not exist") {
                return Ok(None);
            }
            return Err(RunnerError::Engine(format!(
                "OCI runtime state failed: {}",
                err.trim()
            )));
        }
        serde_json::from_slice(&out.stdout)
            .map(Some)
            .map_err(|e| RunnerError::Engine(format!("OCI runtime state: {e}")))
    }

    /// `runtime delete --force ID`; a container the runtime does not know is fine.
    /// Whether the runtime keeps state for `id`, for runtimes whose state is
    /// a directory named by the id under `--root` (runc, crun); None for
    /// others (then only `delete` can tell).
    pub fn has_state(&self, id: &str) -> Option<bool> {
        let name = self.path.file_name()?.to_str()?;
        matches!(name, "runc" | "crun").then(|| self.root.join(id).exists())
    }

    pub fn delete(&self, id: &str) -> Result<(), RunnerError> {
        match self.run(&["delete", "--force", id])? {
            (true, _) => Ok(()),
            (false, err) if err.contains("does not exist") || err.contains("not exist") => Ok(()),
            (false, err) => Err(RunnerError::Engine(format!(
                "OCI runtime delete failed: {err}"
            ))),
        }
    }
}

/// What `runtime state` reports (the fields vigil uses).
#[derive(Clone, Debug, serde::Deserialize)]
pub struct RuntimeState {
    /// `creating`, `created`, `running`, `paused` or `stopped`.
    pub status: String,
    #[serde(default)]
    pub pid: i32,
}

impl RuntimeState {
    /// The container's init process exists.
    pub fn is_alive(&self) -> bool {
        self.status != "stopped"
    }
}

/// The start time of `pid` (clock ticks after boot, `/proc/PID/stat` field
/// 22), `None` if there is no such process.
pub fn start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// Field 22 of a `/proc/PID/stat` line. The command name (field 2) is in
/// parentheses and may hold spaces and parentheses itself, so the fields are
/// counted from the last `)`.
fn parse_start_time(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // rest: " S ppid ..." — field 3 is the first word.
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// `pid` is (still) the process that had start time `start` and has not
/// exited (a zombie has exited). Without a recorded start time (a record
/// from an older vigil), any live process with that pid counts.
pub fn same_process(pid: i32, start: Option<u64>) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let zombie = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "Z" || state == "X");
    !zombie
        && match start {
            Some(t) => parse_start_time(&stat) == Some(t),
            None => true,
        }
}

/// `SIGTERM` for 15 (Podman's spelling in messages); the number otherwise.
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "HUP",
        libc::SIGINT => "INT",
        libc::SIGQUIT => "QUIT",
        libc::SIGKILL => "KILL",
        libc::SIGUSR1 => "USR1",
        libc::SIGUSR2 => "USR2",
        libc::SIGTERM => "TERM",
        libc::SIGSTOP => "STOP",
        libc::SIGWINCH => "WINCH",
        libc::SIGPWR => "PWR",
        _ => return signal.to_string(),
    };
    format!("SIG{name}")
}

/// A signal by name (`KILL`, `SIGTERM`, `term`) or number.
pub fn parse_signal(s: &str) -> Result<i32, RunnerError> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let upper = t.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" | "CLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => return Err(RunnerError::Engine(format!("invalid signal: {s}"))),
    };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("BOGUS").is_err());
    }

    #[test]
    fn process_identity() {
        let line =
            "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_time(line), Some(987_654));
        assert_eq!(parse_start_time("garbage"), None);
        let me = std::process::id() as i32;
        let t = start_time(me).expect("own start time");
        assert!(same_process(me, Some(t)));
        assert!(same_process(me, None));
        assert!(
            !same_process(me, Some(t + 1)),
            "another start time is another process"
        );
        assert!(!same_process(0, None));
        assert!(!same_process(i32::MAX, None));
    }

    #[test]
    fn runtime_state_directory_is_known_for_runc_and_crun() {
        let root = tempfile::tempdir().unwrap();
        let runc = Runtime::new("/usr/sbin/runc".into(), root.path());
        assert_eq!(runc.has_state("abc"), Some(false));
        std::fs::create_dir(root.path().join("abc")).unwrap();
        assert_eq!(runc.has_state("abc"), Some(true));
        let other = Runtime::new("/usr/bin/youki".into(), root.path());
        assert_eq!(other.has_state("abc"), None, "only delete can tell");
    }
}
