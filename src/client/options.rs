//! [`MonitorOptions`]: every option of the monitor, typed, rendered to argv in
//! the order Podman passes them (shared/spec/conmon-interface.md §1.2-§1.3).

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;

pub use crate::proto::health::OnFailure;

/// One `-l`/`--log-path` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogDriver {
    /// `k8s-file:PATH`: CRI log records in a file.
    K8sFile(PathBuf),
    /// `journald:`: the systemd journal.
    Journald,
    /// `passthrough:`: the runtime inherits the monitor's stdio; no attach socket.
    Passthrough,
    /// `none:`: nothing is logged (attach still works).
    None,
    /// `syslog:DEST` (vigil extension): RFC 5424 records to the local syslog
    /// socket (`DEST` empty), `unix:PATH`, `udp:HOST:PORT` or `tcp:HOST:PORT`.
    Syslog(String),
}

impl LogDriver {
    /// The `--log-path` argument for this driver.
    pub fn to_arg(&self) -> OsString {
        match self {
            LogDriver::K8sFile(path) => {
                let mut s = OsString::from("k8s-file:");
                s.push(path);
                s
            }
            LogDriver::Journald => "journald:".into(),
            LogDriver::Passthrough => "passthrough:".into(),
            LogDriver::None => "none:".into(),
            LogDriver::Syslog(dest) => format!("syslog:{dest}").into(),
        }
    }
}

/// The monitor's own verbosity (`--log-level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl LogLevel {
    /// The name the monitor accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Fatal => "fatal",
        }
    }
}

/// A program the monitor runs when it exits (`--exit-command`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExitCommand {
    /// Executed with `execv`: no `PATH` search.
    pub path: PathBuf,
    /// `--exit-command-arg` values, in order.
    pub args: Vec<OsString>,
    /// `--exit-delay`: seconds to sleep before running it.
    pub delay: Option<u32>,
}

/// Exec mode (`-e`): run a process in an existing container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// `--exec-process-spec`: an OCI `process` JSON file.
    pub process_spec: PathBuf,
    /// `--exec-attach`: hold the process until the engine attached (needs the
    /// attach pipe; see [`Monitor::release_exec`](super::Monitor::release_exec)).
    pub attach: bool,
}

/// Healthchecks run by the monitor (vigil extension; see
/// [`proto::health`](crate::proto::health)): `runtime exec` of `command` in
/// the container every `interval`, results in the health log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthOptions {
    /// The argv run in the container (after `CMD`/`CMD-SHELL` are resolved:
    /// [`proto::health::command_argv`](crate::proto::health::command_argv)).
    pub command: Vec<String>,
    /// Time between the end of one check and the start of the next; zero:
    /// checks run only when asked for ([`Ctl::request_healthcheck`](super::Ctl::request_healthcheck)).
    pub interval: Duration,
    /// A check still running after this long is killed and counts as failed.
    pub timeout: Duration,
    /// Failures in this period after the start do not count.
    pub start_period: Duration,
    /// Failures in a row that make the container unhealthy.
    pub retries: u32,
    pub on_failure: OnFailure,
    /// For the stop and restart actions: the stop signal and the seconds
    /// before SIGKILL.
    pub stop_signal: i32,
    pub stop_timeout: u32,
    /// The health log; default `<bundle>/healthcheck.log`.
    pub log: Option<PathBuf>,
}

/// Every option of the monitor. Build one with [`MonitorOptions::new`], set
/// fields, and hand it to [`Monitor::spawn`](super::Monitor::spawn).
///
/// ```
/// use vigil::client::{LogDriver, MonitorOptions};
///
/// let mut opts = MonitorOptions::new("0123456789abcdef", "/usr/sbin/runc");
/// opts.bundle = Some("/run/ctr/b".into());
/// opts.exit_dir = Some("/run/ctr/exits".into());
/// opts.log_drivers = vec![LogDriver::K8sFile("/run/ctr/ctr.log".into())];
/// opts.log_rate_limit = Some((1 << 20, 4 << 20));
/// let argv: Vec<String> = opts.to_args().iter().map(|a| a.to_string_lossy().into_owned()).collect();
/// assert_eq!(&argv[..5], ["--api-version", "-c", "0123456789abcdef", "-u", "0123456789abcdef"]);
/// assert!(argv.ends_with(&["--log-rate-limit".to_string(), "1048576:4194304".to_string()]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorOptions {
    /// `--api-version`: JSON key `data` on the pipes (default on; CRI-O leaves it off).
    pub api_version: bool,
    /// `-c`: container id (runtime argument, exit file name).
    pub cid: String,
    /// `-u`: container UUID (name of the symlink in the socket dir). `None`
    /// uses the cid, which is what Podman does.
    pub cuuid: Option<String>,
    /// `-n`: container name (journald fields).
    pub name: Option<String>,
    /// `-r`: the OCI runtime binary.
    pub runtime: PathBuf,
    /// `-b`: the bundle; location of `attach`, `ctl`, `winsz`, `oom`.
    pub bundle: Option<PathBuf>,
    /// `-p`: the pidfile the runtime writes.
    pub container_pidfile: Option<PathBuf>,
    /// `-P`: the monitor writes its own pid here.
    pub conmon_pidfile: Option<PathBuf>,
    /// `--exit-dir`: `<dir>/<cid>` gets the exit status.
    pub exit_dir: Option<PathBuf>,
    /// `-0`/`--persist-dir`: `exit` and `oom` files.
    pub persist_dir: Option<PathBuf>,
    /// `--full-attach`: the attach socket is `<bundle>/attach` (default on).
    pub full_attach: bool,
    /// `--socket-dir-path`: where the `<cuuid>` symlink goes without `full_attach`.
    pub socket_dir: Option<PathBuf>,
    /// `--runtime-arg` values: global runtime flags (`--root`, `--log`...).
    pub runtime_args: Vec<OsString>,
    /// `-s`: `--systemd-cgroup` for the runtime.
    pub systemd_cgroup: bool,
    /// `-l` values; at least one is required by the monitor.
    pub log_drivers: Vec<LogDriver>,
    /// `--log-level`.
    pub log_level: Option<LogLevel>,
    /// `--syslog`: mirror the monitor's diagnostics to syslog.
    pub syslog: bool,
    /// `--log-size-max`: per-file cap of the k8s log.
    pub log_size_max: Option<i64>,
    /// `--log-global-size-max`: total cap of the k8s log.
    pub log_global_size_max: Option<i64>,
    /// `--log-rotate`: rotate instead of truncating at the cap.
    pub log_rotate: bool,
    /// `--log-max-files`: rotated backups to keep.
    pub log_max_files: Option<i32>,
    /// `--log-tag` (journald).
    pub log_tag: Option<String>,
    /// `--log-label NAME=VALUE` values (journald).
    pub log_labels: Vec<String>,
    /// `-t`: the container gets a pty.
    pub terminal: bool,
    /// `-i`: the container gets a stdin pipe.
    pub stdin: bool,
    /// `--leave-stdin-open`: do not close stdin when an attach client half-closes.
    pub leave_stdin_open: bool,
    /// `-T`: kill the container after this many seconds.
    pub timeout: Option<u32>,
    /// `--no-new-keyring` for the runtime.
    pub no_new_keyring: bool,
    /// `--no-pivot` for the runtime.
    pub no_pivot: bool,
    /// `--exit-command` and its arguments and delay.
    pub exit_command: Option<ExitCommand>,
    /// `--runtime-opt` values: flags after the runtime subcommand (`--preserve-fds=N`).
    pub runtime_opts: Vec<OsString>,
    /// `-e` and friends.
    pub exec: Option<ExecOptions>,
    /// `--restore PATH`: restore from a checkpoint.
    pub restore: Option<PathBuf>,
    /// `--sync`: do not daemonize; the monitor process lives until the container exits.
    pub sync: bool,
    /// `--sdnotify-socket`: relay sd-notify messages to this host socket.
    pub sdnotify_socket: Option<PathBuf>,
    /// `--no-sync-log`: skip the final fsync of the log.
    pub no_sync_log: bool,
    /// vigil extension `--log-rate-limit BYTES_PER_SEC[:BURST]`.
    pub log_rate_limit: Option<(u64, u64)>,
    /// vigil extension `--runtime-timeout SECONDS`: how long `runtime create`
    /// or `exec` may take before the monitor kills it and reports the failure
    /// on the sync pipe (monitor default 120; 0 = no limit).
    pub runtime_timeout: Option<u32>,
    /// vigil extension `--health-*`: healthchecks run by the monitor.
    pub health: Option<HealthOptions>,
}

impl MonitorOptions {
    /// Options for container `cid` run by `runtime`, with Podman's defaults:
    /// `--api-version`, `--full-attach`, cuuid = cid, no log driver yet.
    pub fn new(cid: impl Into<String>, runtime: impl Into<PathBuf>) -> Self {
        MonitorOptions {
            api_version: true,
            cid: cid.into(),
            cuuid: None,
            name: None,
            runtime: runtime.into(),
            bundle: None,
            container_pidfile: None,
            conmon_pidfile: None,
            exit_dir: None,
            persist_dir: None,
            full_attach: true,
            socket_dir: None,
            runtime_args: Vec::new(),
            systemd_cgroup: false,
            log_drivers: Vec::new(),
            log_level: None,
            syslog: false,
            log_size_max: None,
            log_global_size_max: None,
            log_rotate: false,
            log_max_files: None,
            log_tag: None,
            log_labels: Vec::new(),
            terminal: false,
            stdin: false,
            leave_stdin_open: false,
            timeout: None,
            no_new_keyring: false,
            no_pivot: false,
            exit_command: None,
            runtime_opts: Vec::new(),
            exec: None,
            restore: None,
            sync: false,
            sdnotify_socket: None,
            no_sync_log: false,
            log_rate_limit: None,
            runtime_timeout: None,
            health: None,
        }
    }

    /// True when the output goes straight to the monitor's stdio.
    pub fn is_passthrough(&self) -> bool {
        self.log_drivers.contains(&LogDriver::Passthrough)
    }

    /// The arguments (without argv\[0\]) in Podman's order: identity, runtime,
    /// bundle and files, runtime args, logging, stdio, limits, exit command,
    /// runtime options, mode, extensions.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a = Args(Vec::new());
        if self.api_version {
            a.flag("--api-version");
        }
        a.val("-c", &self.cid);
        if self.api_version || self.exec.is_none() || self.cuuid.is_some() {
            a.val("-u", self.cuuid.as_deref().unwrap_or(&self.cid));
        }
        a.val("-r", &self.runtime);
        a.opt("-b", self.bundle.as_ref());
        a.opt("-p", self.container_pidfile.as_ref());
        a.opt("-n", self.name.as_ref());
        a.opt("--exit-dir", self.exit_dir.as_ref());
        a.opt("--persist-dir", self.persist_dir.as_ref());
        if self.full_attach {
            a.flag("--full-attach");
        }
        a.opt("--socket-dir-path", self.socket_dir.as_ref());
        for arg in &self.runtime_args {
            a.val("--runtime-arg", arg);
        }
        if self.systemd_cgroup {
            a.flag("-s");
        }
        for driver in &self.log_drivers {
            a.val("-l", driver.to_arg());
        }
        a.opt("--log-level", self.log_level.map(LogLevel::as_str));
        if self.syslog {
            a.flag("--syslog");
        }
        a.opt("--log-size-max", self.log_size_max.map(|n| n.to_string()));
        a.opt(
            "--log-global-size-max",
            self.log_global_size_max.map(|n| n.to_string()),
        );
        if self.log_rotate {
            a.flag("--log-rotate");
        }
        a.opt("--log-max-files", self.log_max_files.map(|n| n.to_string()));
        a.opt("--log-tag", self.log_tag.as_ref());
        for label in &self.log_labels {
            a.val("--log-label", label);
        }
        a.opt("--sdnotify-socket", self.sdnotify_socket.as_ref());
        if self.terminal {
            a.flag("-t");
        }
        if self.stdin {
            a.flag("-i");
        }
        if self.leave_stdin_open {
            a.flag("--leave-stdin-open");
        }
        a.opt("--timeout", self.timeout.map(|n| n.to_string()));
        if self.no_new_keyring {
            a.flag("--no-new-keyring");
        }
        a.opt("--conmon-pidfile", self.conmon_pidfile.as_ref());
        if self.no_pivot {
            a.flag("--no-pivot");
        }
        if self.no_sync_log {
            a.flag("--no-sync-log");
        }
        if let Some(exec) = &self.exec {
            a.flag("-e");
            if exec.attach {
                a.flag("--exec-attach");
            }
            a.val("--exec-process-spec", &exec.process_spec);
        }
        if let Some(cmd) = &self.exit_command {
            a.val("--exit-command", &cmd.path);
            for arg in &cmd.args {
                a.val("--exit-command-arg", arg);
            }
            a.opt("--exit-delay", cmd.delay.map(|n| n.to_string()));
        }
        for opt in &self.runtime_opts {
            a.val("--runtime-opt", opt);
        }
        a.opt("--restore", self.restore.as_ref());
        if self.sync {
            a.flag("--sync");
        }
        if let Some((rate, burst)) = self.log_rate_limit {
            let value = if burst == 0 {
                rate.to_string()
            } else {
                format!("{rate}:{burst}")
            };
            a.val("--log-rate-limit", value);
        }
        a.opt(
            "--runtime-timeout",
            self.runtime_timeout.map(|n| n.to_string()),
        );
        if let Some(h) = &self.health {
            for arg in &h.command {
                a.val("--health-cmd", arg);
            }
            let ms = |d: Duration| d.as_millis().min(i32::MAX as u128).to_string();
            a.val("--health-interval", ms(h.interval));
            a.val("--health-timeout", ms(h.timeout));
            a.val("--health-start-period", ms(h.start_period));
            a.val(
                "--health-retries",
                h.retries.min(i32::MAX as u32).to_string(),
            );
            if h.on_failure != OnFailure::None {
                a.val("--health-on-failure", h.on_failure.as_str());
                a.val("--health-stop-signal", h.stop_signal.to_string());
                a.val("--health-stop-timeout", h.stop_timeout.to_string());
            }
            a.opt("--health-log", h.log.as_ref());
        }
        a.0
    }
}

struct Args(Vec<OsString>);

impl Args {
    fn flag(&mut self, name: &str) {
        self.0.push(name.into());
    }

    fn val(&mut self, name: &str, value: impl AsRef<OsStr>) {
        self.0.push(name.into());
        self.0.push(value.as_ref().to_owned());
    }

    fn opt<V: AsRef<OsStr>>(&mut self, name: &str, value: Option<V>) {
        if let Some(v) = value {
            self.val(name, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(opts: &MonitorOptions) -> Vec<String> {
        opts.to_args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn podman_create_order() {
        let mut o = MonitorOptions::new("abc", "/usr/bin/runc");
        o.bundle = Some("/b".into());
        o.container_pidfile = Some("/b/pidfile".into());
        o.name = Some("web".into());
        o.exit_dir = Some("/x".into());
        o.persist_dir = Some("/p".into());
        o.runtime_args = vec!["--root".into(), "/run/runc".into()];
        o.log_drivers = vec![LogDriver::K8sFile("/b/ctr.log".into())];
        o.log_level = Some(LogLevel::Warn);
        o.log_size_max = Some(1024);
        o.terminal = true;
        o.conmon_pidfile = Some("/b/conmon.pid".into());
        o.exit_command = Some(ExitCommand {
            path: "/bin/vigil".into(),
            args: vec!["cleanup".into(), "abc".into()],
            delay: None,
        });
        assert_eq!(
            argv(&o),
            [
                "--api-version",
                "-c",
                "abc",
                "-u",
                "abc",
                "-r",
                "/usr/bin/runc",
                "-b",
                "/b",
                "-p",
                "/b/pidfile",
                "-n",
                "web",
                "--exit-dir",
                "/x",
                "--persist-dir",
                "/p",
                "--full-attach",
                "--runtime-arg",
                "--root",
                "--runtime-arg",
                "/run/runc",
                "-l",
                "k8s-file:/b/ctr.log",
                "--log-level",
                "warn",
                "--log-size-max",
                "1024",
                "-t",
                "--conmon-pidfile",
                "/b/conmon.pid",
                "--exit-command",
                "/bin/vigil",
                "--exit-command-arg",
                "cleanup",
                "--exit-command-arg",
                "abc",
            ]
        );
    }

    #[test]
    fn exec_attach_and_every_flag() {
        let mut o = MonitorOptions::new("c1", "runc");
        o.cuuid = Some("u1".into());
        o.full_attach = false;
        o.socket_dir = Some("/s".into());
        o.systemd_cgroup = true;
        o.log_drivers = vec![
            LogDriver::None,
            LogDriver::Journald,
            LogDriver::Passthrough,
            LogDriver::Syslog("udp:127.0.0.1:514".into()),
        ];
        o.syslog = true;
        o.log_global_size_max = Some(16);
        o.log_rotate = true;
        o.log_max_files = Some(3);
        o.log_tag = Some("t".into());
        o.log_labels = vec!["A=b".into()];
        o.sdnotify_socket = Some("/n".into());
        o.stdin = true;
        o.leave_stdin_open = true;
        o.timeout = Some(5);
        o.no_new_keyring = true;
        o.no_pivot = true;
        o.no_sync_log = true;
        o.exec = Some(ExecOptions {
            process_spec: "/e/p.json".into(),
            attach: true,
        });
        o.exit_command = Some(ExitCommand {
            path: "/x".into(),
            args: vec![],
            delay: Some(2),
        });
        o.runtime_opts = vec!["--preserve-fds=2".into()];
        o.restore = Some("/ckpt".into());
        o.sync = true;
        o.log_rate_limit = Some((100, 0));
        o.runtime_timeout = Some(30);
        assert_eq!(
            argv(&o),
            [
                "--api-version",
                "-c",
                "c1",
                "-u",
                "u1",
                "-r",
                "runc",
                "--socket-dir-path",
                "/s",
                "-s",
                "-l",
                "none:",
                "-l",
                "journald:",
                "-l",
                "passthrough:",
                "-l",
                "syslog:udp:127.0.0.1:514",
                "--syslog",
                "--log-global-size-max",
                "16",
                "--log-rotate",
                "--log-max-files",
                "3",
                "--log-tag",
                "t",
                "--log-label",
                "A=b",
                "--sdnotify-socket",
                "/n",
                "-i",
                "--leave-stdin-open",
                "--timeout",
                "5",
                "--no-new-keyring",
                "--no-pivot",
                "--no-sync-log",
                "-e",
                "--exec-attach",
                "--exec-process-spec",
                "/e/p.json",
                "--exit-command",
                "/x",
                "--exit-delay",
                "2",
                "--runtime-opt",
                "--preserve-fds=2",
                "--restore",
                "/ckpt",
                "--sync",
                "--log-rate-limit",
                "100",
                "--runtime-timeout",
                "30",
            ]
        );
        assert!(o.is_passthrough());
    }

    #[test]
    fn legacy_exec_has_no_cuuid() {
        let mut o = MonitorOptions::new("c", "runc");
        o.api_version = false;
        o.full_attach = false;
        o.exec = Some(ExecOptions {
            process_spec: "p".into(),
            attach: false,
        });
        o.log_drivers = vec![LogDriver::K8sFile("l".into())];
        assert_eq!(
            argv(&o),
            [
                "-c",
                "c",
                "-r",
                "runc",
                "-l",
                "k8s-file:l",
                "-e",
                "--exec-process-spec",
                "p"
            ]
        );
    }
}
