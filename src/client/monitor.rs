//! [`Monitor`]: start the monitor the way Podman does and talk to it over the
//! sync, start and attach pipes (shared/spec/conmon-interface.md §2.1, §3).

use std::fs;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use super::error::{Error, Result, RuntimeError};
use super::options::MonitorOptions;
use super::sys;
use crate::proto::sync::{self, SyncMessage};

/// Environment variable naming the sync pipe's fd in the monitor.
pub const ENV_SYNC_PIPE: &str = "_OCI_SYNCPIPE";
/// Environment variable naming the start pipe's fd in the monitor.
pub const ENV_START_PIPE: &str = "_OCI_STARTPIPE";
/// Environment variable naming the attach pipe's fd in the monitor (exec-attach).
pub const ENV_ATTACH_PIPE: &str = "_OCI_ATTACHPIPE";

/// A started monitor. Dropping it closes the engine's pipe ends; the monitor
/// itself lives on until its container exits.
///
/// ```no_run
/// use std::time::Duration;
/// use vigil::client::{LogDriver, Monitor, MonitorOptions};
///
/// let mut opts = MonitorOptions::new("c0ffee00c0ffee00", "/usr/sbin/runc");
/// opts.bundle = Some("/tmp/bundle".into());
/// opts.container_pidfile = Some("/tmp/bundle/pidfile".into());
/// opts.conmon_pidfile = Some("/tmp/bundle/conmon.pid".into());
/// opts.exit_dir = Some("/tmp/bundle/exits".into());
/// opts.log_drivers = vec![LogDriver::K8sFile("/tmp/bundle/ctr.log".into())];
/// let mut monitor = Monitor::spawn("/usr/bin/conmon".as_ref(), &opts, &[])?;
/// match monitor.await_pid(Some(Duration::from_secs(30))) {
///     Ok(pid) => println!("container init is pid {pid}, monitor {:?}", monitor.pid()),
///     Err(e) => std::process::exit(e.exit_code()), // 125, 126 or 127 like Podman
/// }
/// # Ok::<(), vigil::client::Error>(())
/// ```
pub struct Monitor {
    /// With `--sync` the spawned process is the monitor itself.
    sync_child: Option<Child>,
    pid: Option<i32>,
    sync_pipe: OwnedFd,
    start_pipe: Option<OwnedFd>,
    attach_pipe: Option<OwnedFd>,
    stderr: Option<ChildStderr>,
    pending: Vec<u8>,
}

impl Monitor {
    /// Start `binary` with `opts`. `extra_fds` are passed to the monitor (and
    /// through it to the runtime) as fds 3, 4, ... like Podman's preserve-fds;
    /// the sync, start (and attach) pipes follow them. The monitor gets its own
    /// process group, the start byte is written, and (unless `--sync`) the
    /// launcher is waited for and the conmon pidfile read.
    pub fn spawn(
        binary: &Path,
        opts: &MonitorOptions,
        extra_fds: &[BorrowedFd<'_>],
    ) -> Result<Monitor> {
        let exec_attach = opts.exec.as_ref().is_some_and(|e| e.attach);
        if exec_attach && !opts.api_version {
            return Err(Error::Usage("exec attach needs the API version 1 protocol"));
        }
        let pair = || sys::seqpacket_pair().map_err(|e| Error::io("creating monitor pipes", e));
        let (sync_ours, sync_theirs) = pair()?;
        let (start_ours, start_theirs) = pair()?;
        let attach = if exec_attach { Some(pair()?) } else { None };

        // Everything the child gets, in target order, moved above the target range
        // first so no dup2 can clobber a source that is still to be placed.
        let mut sources: Vec<RawFd> = extra_fds.iter().map(|fd| fd.as_raw_fd()).collect();
        sources.push(sync_theirs.as_raw_fd());
        sources.push(start_theirs.as_raw_fd());
        if let Some((_, theirs)) = &attach {
            sources.push(theirs.as_raw_fd());
        }
        let base = 3 + sources.len() as RawFd;
        let parked: Vec<OwnedFd> = sources
            .iter()
            .map(|&fd| sys::dup_at_least(fd, base))
            .collect::<std::io::Result<_>>()
            .map_err(|e| Error::io("passing fds to the monitor", e))?;
        let parked_raw: Vec<RawFd> = parked.iter().map(AsRawFd::as_raw_fd).collect();
        let n = extra_fds.len() as RawFd;

        let mut cmd = Command::new(binary);
        cmd.args(opts.to_args())
            .env(ENV_SYNC_PIPE, (3 + n).to_string())
            .env(ENV_START_PIPE, (4 + n).to_string())
            .env_remove(ENV_ATTACH_PIPE)
            .process_group(0);
        if exec_attach {
            cmd.env(ENV_ATTACH_PIPE, (5 + n).to_string());
        }
        if let Some(bundle) = opts.bundle.as_ref().filter(|b| b.is_dir()) {
            cmd.current_dir(bundle);
        }
        if opts.is_passthrough() {
            cmd.stdin(Stdio::inherit())
                .stdout(Stdio::inherit())
                .stderr(Stdio::inherit());
        } else {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
        }
        // SAFETY: the closure only calls dup2, which is async-signal-safe, on
        // descriptors that are open in the child; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                for (i, &fd) in parked_raw.iter().enumerate() {
                    // dup2 leaves the new descriptor without FD_CLOEXEC.
                    if libc::dup2(fd, 3 + i as RawFd) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::io(format!("starting monitor {}", binary.display()), e))?;
        drop(parked);
        drop((sync_theirs, start_theirs));
        let (attach_ours, attach_theirs) = match attach {
            Some((ours, theirs)) => (Some(ours), Some(theirs)),
            None => (None, None),
        };
        drop(attach_theirs);

        let stderr = child.stderr.take();
        let mut monitor = Monitor {
            sync_child: None,
            pid: None,
            sync_pipe: sync_ours,
            start_pipe: Some(start_ours),
            attach_pipe: attach_ours,
            stderr,
            pending: Vec::new(),
        };
        monitor.write_start_byte()?;
        if !exec_attach {
            monitor.start_pipe = None;
        }
        if opts.sync {
            monitor.pid = Some(child.id() as i32);
            monitor.sync_child = Some(child);
            return Ok(monitor);
        }
        let status = child
            .wait()
            .map_err(|e| Error::io("waiting for the monitor launcher", e))?;
        if !status.success() {
            let stderr = monitor.take_stderr(Duration::from_millis(500));
            let status = match (status.code(), status.signal()) {
                (Some(c), _) => format!("exit status {c}"),
                (None, Some(s)) => format!("signal {s}"),
                _ => "unknown status".into(),
            };
            return Err(Error::Launcher { status, stderr });
        }
        if let Some(pidfile) = &opts.conmon_pidfile {
            let text = fs::read(pidfile)
                .map_err(|e| Error::io(format!("reading {}", pidfile.display()), e))?;
            monitor.pid = crate::proto::exit::parse_status(&text);
        }
        Ok(monitor)
    }

    /// The monitor's pid: from the conmon pidfile, or the spawned process with `--sync`.
    pub fn pid(&self) -> Option<i32> {
        self.pid
    }

    /// Wait for the container (or exec process) pid on the sync pipe.
    /// A runtime failure becomes [`Error::Runtime`]; `None` waits forever.
    pub fn await_pid(&mut self, timeout: Option<Duration>) -> Result<i32> {
        let msg = self.read_message(timeout, "the container pid")?;
        if msg.is_error() {
            return Err(Error::Runtime(RuntimeError {
                message: msg
                    .message
                    .unwrap_or_else(|| "the OCI runtime failed".into()),
            }));
        }
        i32::try_from(msg.value).map_err(|_| Error::Protocol(sync::DecodeError("pid out of range")))
    }

    /// Exec mode: the final status of the exec process (second sync message).
    /// `-1` means the monitor's `--timeout` killed it.
    pub fn await_exit_code(&mut self, timeout: Option<Duration>) -> Result<i32> {
        let msg = self.read_message(timeout, "the exec exit status")?;
        Ok(i32::try_from(msg.value).unwrap_or(-1))
    }

    /// Exec-attach: wait until the attach socket exists (`{"data": 0}` on the attach pipe).
    pub fn await_attach_ready(&mut self, timeout: Option<Duration>) -> Result<()> {
        let pipe = self
            .attach_pipe
            .as_ref()
            .ok_or(Error::Usage("the monitor was not started with exec attach"))?;
        let fd = pipe.as_raw_fd();
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut buf = vec![0u8; 4096];
        if !sys::wait_readable(pipe, deadline)
            .map_err(|e| Error::io("waiting on the attach pipe", e))?
        {
            return Err(Error::Timeout("the attach socket".into()));
        }
        let n = sys::recv(fd, &mut buf).map_err(|e| Error::io("reading the attach pipe", e))?;
        if n == 0 {
            return Err(Error::MonitorExited {
                stderr: self.take_stderr(Duration::from_millis(200)),
            });
        }
        let msg = sync::decode(&buf[..n]).map_err(Error::Protocol)?;
        if msg.is_error() {
            return Err(Error::Runtime(RuntimeError {
                message: msg.message.unwrap_or_default(),
            }));
        }
        self.attach_pipe = None;
        Ok(())
    }

    /// Exec-attach: let the runtime start the process (second start-pipe
    /// write), after the engine connected to the attach socket.
    pub fn release_exec(&mut self) -> Result<()> {
        if self.start_pipe.is_none() {
            return Err(Error::Usage("the monitor was not started with exec attach"));
        }
        let result = self.write_start_byte();
        self.start_pipe = None;
        result
    }

    /// `--sync` mode: wait for the monitor process and return its exit code.
    pub fn wait_sync(&mut self) -> Result<i32> {
        let child = self
            .sync_child
            .as_mut()
            .ok_or(Error::Usage("the monitor was not started with --sync"))?;
        let status = child
            .wait()
            .map_err(|e| Error::io("waiting for the monitor", e))?;
        Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    }

    /// Whatever the monitor wrote to its stderr so far (only before it
    /// detached its stdio, i.e. early failures).
    pub fn take_stderr(&mut self, wait: Duration) -> String {
        let Some(stderr) = self.stderr.take() else {
            return String::new();
        };
        let bytes = sys::read_available(&stderr, wait);
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        text.truncate(text.trim_end().len());
        text
    }

    fn write_start_byte(&mut self) -> Result<()> {
        let Some(fd) = &self.start_pipe else {
            return Ok(());
        };
        match sys::send(fd.as_raw_fd(), b"0") {
            Ok(_) => Ok(()),
            // The monitor already failed; the sync pipe will tell why.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) => Ok(()),
            Err(e) => Err(Error::io("writing the start pipe", e)),
        }
    }

    fn read_message(&mut self, timeout: Option<Duration>, what: &str) -> Result<SyncMessage> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let fd = self.sync_pipe.as_raw_fd();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=pos).collect();
                return sync::decode(&line).map_err(Error::Protocol);
            }
            if !self.pending.is_empty() {
                // SEQPACKET keeps message boundaries: a packet without a newline is whole.
                let line = std::mem::take(&mut self.pending);
                return sync::decode(&line).map_err(Error::Protocol);
            }
            if !sys::wait_readable(&self.sync_pipe, deadline)
                .map_err(|e| Error::io("waiting on the sync pipe", e))?
            {
                return Err(Error::Timeout(what.into()));
            }
            let n = sys::recv(fd, &mut buf).map_err(|e| Error::io("reading the sync pipe", e))?;
            if n == 0 {
                return Err(Error::MonitorExited {
                    stderr: self.take_stderr(Duration::from_millis(200)),
                });
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::LogDriver;
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    /// A stand-in monitor: a shell script that ignores its arguments.
    fn fake_monitor(name: &str, body: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "vigil-client-monitor-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("conmon");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn opts() -> MonitorOptions {
        let mut o = MonitorOptions::new("cid", "/bin/true");
        o.log_drivers = vec![LogDriver::None];
        o
    }

    #[test]
    fn passes_fds_at_fixed_numbers_and_reads_the_pid() {
        // fd 3 is the caller's extra fd, then the sync (4) and start (5) pipes.
        let bin = fake_monitor(
            "fds",
            "echo \"$_OCI_SYNCPIPE $_OCI_STARTPIPE ${_OCI_ATTACHPIPE:-none}\" >&3\nprintf '{\"data\": 42}\\n' >&4",
        );
        let (mut reader, writer) = std::io::pipe().unwrap();
        let mut m = Monitor::spawn(&bin, &opts(), &[writer.as_fd()]).unwrap();
        drop(writer);
        assert_eq!(m.await_pid(Some(Duration::from_secs(10))).unwrap(), 42);
        let mut seen = String::new();
        reader.read_to_string(&mut seen).unwrap();
        assert_eq!(seen, "4 5 none\n");
        assert_eq!(m.pid(), None, "no conmon pidfile was asked for");
        assert!(matches!(
            m.await_pid(Some(Duration::from_secs(10))),
            Err(Error::MonitorExited { .. })
        ));
    }

    #[test]
    fn reports_launcher_and_runtime_failures() {
        let bin = fake_monitor(
            "launcher",
            "echo '[conmon:e]: Runtime path /x is not valid' >&2\nexit 1",
        );
        match Monitor::spawn(&bin, &opts(), &[]) {
            Err(Error::Launcher { status, stderr }) => {
                assert_eq!(status, "exit status 1");
                assert_eq!(stderr, "[conmon:e]: Runtime path /x is not valid");
            }
            other => panic!("expected a launcher error, got {:?}", other.err()),
        }

        let bin = fake_monitor(
            "runtime",
            "printf '{\"data\": -1, \"message\": \"exec: \\\\\"x\\\\\": executable file not found in $PATH\"}\\n' >&3",
        );
        let mut m = Monitor::spawn(&bin, &opts(), &[]).unwrap();
        match m.await_pid(Some(Duration::from_secs(10))) {
            Err(Error::Runtime(e)) => {
                assert_eq!(e.message, "exec: \"x\": executable file not found in $PATH");
                assert_eq!(e.exit_code(), 127);
            }
            other => panic!("expected a runtime error, got {other:?}"),
        }
    }

    #[test]
    fn exec_attach_uses_the_attach_pipe_and_conmon_pidfile() {
        let dir = std::env::temp_dir().join(format!(
            "vigil-client-monitor-{}-pidfile",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("conmon.pid");
        let bin = fake_monitor(
            "attach",
            &format!(
                "printf 4242 > {}\nprintf '{{\"data\": 0}}\\n' >&5\nsleep 0.1\nprintf '{{\"data\": 7}}\\n' >&3\nprintf '{{\"data\": 3}}\\n' >&3",
                pidfile.display()
            ),
        );
        let mut o = opts();
        o.conmon_pidfile = Some(pidfile);
        o.exec = Some(crate::client::ExecOptions {
            process_spec: "/p.json".into(),
            attach: true,
        });
        let mut m = Monitor::spawn(&bin, &o, &[]).unwrap();
        assert_eq!(m.pid(), Some(4242));
        m.await_attach_ready(Some(Duration::from_secs(10))).unwrap();
        m.release_exec().unwrap();
        assert_eq!(m.await_pid(Some(Duration::from_secs(10))).unwrap(), 7);
        assert_eq!(m.await_exit_code(Some(Duration::from_secs(10))).unwrap(), 3);
        assert!(matches!(m.release_exec(), Err(Error::Usage(_))));

        let mut legacy = o.clone();
        legacy.api_version = false;
        assert!(matches!(
            Monitor::spawn(&bin, &legacy, &[]),
            Err(Error::Usage(_))
        ));
    }
}
