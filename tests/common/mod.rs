//! Shared harness for the integration tests that drive the real `conmon`
//! binary the way Podman does (spec: shared/spec/conmon-interface.md and
//! shared/spec/podman-conmon-contract.md).
//!
//! Environment:
//! * `CONMON_BINARY`   – absolute path of the monitor under test; default
//!   `<workspace>/target/release/conmon`, then `target/debug/conmon`.
//! * `RUNTIME_BINARY`  – OCI runtime, default `/usr/sbin/runc`.
//! * `VIGIL_TEST_ROOTFS` – busybox rootfs, default
//!   `<workspace>/target/test-rootfs/busybox` (built by
//!   `scripts/make-test-rootfs` on first use). Containers run on it
//!   read-only; one with bind mounts runs on a private copy
//!   ([`private_rootfs`]), as runc leaves their mount points in its root.
//!
//! Tests that need a real container call [`skip_without_runtime`] and return
//! early (printing the reason) when not root or when the runtime is missing.
#![allow(dead_code)]

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

// ---------------------------------------------------------------------------
// Locations
// ---------------------------------------------------------------------------

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The conmon binary under test.
pub fn conmon_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let chosen = match std::env::var_os("CONMON_BINARY") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => {
                let ws = workspace_root();
                let candidates = [
                    ws.join("target/release/conmon"),
                    ws.join("target/debug/conmon"),
                ];
                match candidates.iter().find(|p| p.is_file()) {
                    Some(p) => p.clone(),
                    None => panic!(
                        "no conmon binary found: set CONMON_BINARY or build the monitor \
                         (cargo build -p vigil-monitor); looked at {:?}",
                        candidates
                    ),
                }
            }
        };
        assert!(
            chosen.is_file(),
            "CONMON_BINARY {} does not exist",
            chosen.display()
        );
        eprintln!("[harness] conmon binary: {}", chosen.display());
        chosen
    })
    .clone()
}

pub fn runtime_binary() -> PathBuf {
    match std::env::var_os("RUNTIME_BINARY") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from("/usr/sbin/runc"),
    }
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Why tests that run real containers cannot run here, if they cannot.
pub fn runtime_skip_reason() -> Option<String> {
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root (real containers need root)".into());
    }
    let rt = runtime_binary();
    if !is_executable(&rt) {
        return Some(format!("OCI runtime {} not found/executable", rt.display()));
    }
    None
}

/// Returns true (after printing why) when a real-container test must be skipped.
pub fn skip_without_runtime(test: &str) -> bool {
    match runtime_skip_reason() {
        Some(reason) => {
            eprintln!("SKIPPED {test}: {reason}");
            true
        }
        None => false,
    }
}

/// The shared, read-only busybox rootfs (built on first use).
pub fn rootfs() -> PathBuf {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS
        .get_or_init(|| {
            let dir = match std::env::var_os("VIGIL_TEST_ROOTFS") {
                Some(p) if !p.is_empty() => PathBuf::from(p),
                _ => workspace_root().join("target/test-rootfs/busybox"),
            };
            if !dir.join("bin/sh").exists() || !dir.join("data").is_dir() {
                let script = workspace_root().join("scripts/make-test-rootfs");
                let out = Command::new("bash")
                    .arg(&script)
                    .arg(&dir)
                    .output()
                    .expect("run scripts/make-test-rootfs");
                assert!(
                    out.status.success(),
                    "scripts/make-test-rootfs failed: {}\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            assert!(
                dir.join("bin/sh").exists(),
                "rootfs {} has no /bin/sh",
                dir.display()
            );
            fs::canonicalize(&dir).unwrap()
        })
        .clone()
}

/// A copy of the shared rootfs at `<dir>/rootfs`, used by this container
/// alone. runc creates a directory for every bind mount's destination in the
/// root it is given (before making it read-only) and leaves it there, so a
/// bind onto `/out` run on the shared tree would add `/out` to it for every
/// later test (and for anything that copies the tree). The copy goes away
/// with the container's temporary directory.
pub fn private_rootfs(dir: &Path) -> PathBuf {
    let dest = dir.join("rootfs");
    if !dest.join("bin/sh").exists() {
        let out = Command::new("cp")
            .arg("-a")
            .arg(rootfs())
            .arg(&dest)
            .output()
            .expect("run cp");
        assert!(
            out.status.success(),
            "copying the rootfs to {} failed: {}",
            dest.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dest
}

/// A directory bound read-only at `/trigger`: a container's script waits
/// with [`WAIT_FOR_TRIGGER`] until the test calls [`Trigger::fire`].
pub struct Trigger {
    dir: tempfile::TempDir,
}

/// Shell that waits until `/trigger/go` exists.
pub const WAIT_FOR_TRIGGER: &str = "while [ ! -e /trigger/go ]; do sleep 0.05; done";

impl Trigger {
    pub fn new() -> Trigger {
        Trigger {
            dir: tempdir("trigger"),
        }
    }

    /// The bind mount to give the container.
    pub fn mounts(&self) -> [BindMount; 1] {
        [BindMount {
            source: self.dir.path().to_path_buf(),
            destination: "/trigger".into(),
            readonly: true,
        }]
    }

    /// Lets the waiting container go on.
    pub fn fire(&self) {
        fs::write(self.dir.path().join("go"), b"").unwrap();
    }
}

// ---------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------

/// Poll `cond` every few milliseconds until it returns true or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Unique, runc-compatible container id: pid + counter + test name.
pub fn unique_id(test: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let mut name: String = test
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name.truncate(40);
    format!("vt{}-{}-{}", std::process::id(), n, name)
}

pub fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("vigil-{prefix}-"))
        .tempdir()
        .expect("create temp dir")
}

/// True if `pid` names a live (non-zombie) process.
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // state is the first field after the ")" that closes comm
            let after = stat
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start())
                .unwrap_or("");
            !after.starts_with('Z') && !after.starts_with('X')
        }
        Err(_) => false,
    }
}

/// Fields of /proc/<pid>/stat after the comm field (index 0 = state).
pub fn proc_stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(String::from).collect())
}

pub fn show(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

fn write_executable(path: &Path, content: &str) {
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

// ---------------------------------------------------------------------------
// Running a command with a deadline (stdout/stderr captured via files, so a
// daemon that keeps them open can never make us hang)
// ---------------------------------------------------------------------------

pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

fn wait_child(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Run `cmd` to completion (stdin /dev/null), at most `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let status = wait_child(&mut child, timeout, &format!("{cmd:?}"));
    Output {
        status,
        stdout: read_file_from_start(out),
        stderr: read_file_from_start(err),
    }
}

fn read_file_from_start(mut f: File) -> Vec<u8> {
    use std::io::Seek;
    f.seek(io::SeekFrom::Start(0)).unwrap();
    let mut v = Vec::new();
    f.read_to_end(&mut v).unwrap();
    v
}

/// Run conmon with the given argv (no pipes) in `cwd`, LC_ALL=C.UTF-8.
pub fn run_conmon(args: &[&str], cwd: &Path) -> Output {
    let mut cmd = Command::new(conmon_binary());
    cmd.args(args)
        .current_dir(cwd)
        .env("LC_ALL", "C.UTF-8")
        .env_remove("_OCI_SYNCPIPE")
        .env_remove("_OCI_STARTPIPE")
        .env_remove("_OCI_ATTACHPIPE")
        .process_group(0);
    run_with_timeout(&mut cmd, Duration::from_secs(20))
}

// ---------------------------------------------------------------------------
// SEQPACKET socket pairs (Podman's "pipes")
// ---------------------------------------------------------------------------

/// socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC): (parent end, child end).
pub fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as RawFd; 2];
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(r, 0, "socketpair: {}", io::Error::last_os_error());
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// pipe2(O_CLOEXEC): (read end, write end).
pub fn cloexec_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as RawFd; 2];
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", io::Error::last_os_error());
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

pub enum Packet {
    Data(Vec<u8>),
    Eof,
    Timeout,
}

/// Read one packet (message) from a SEQPACKET/pipe fd, waiting at most `timeout`.
pub fn read_packet(fd: RawFd, timeout: Duration) -> Packet {
    let deadline = Instant::now() + timeout;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Packet::Timeout;
        }
        let ms = (deadline - now).as_millis().min(i32::MAX as u128) as i32;
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let r = unsafe { libc::poll(&mut pfd, 1, ms.max(1)) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            panic!("poll: {e}");
        }
        if r == 0 {
            continue;
        }
        let mut buf = vec![0u8; 65536];
        let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::WouldBlock {
                continue;
            }
            if e.raw_os_error() == Some(libc::ECONNRESET) {
                return Packet::Eof;
            }
            panic!("read: {e}");
        }
        if n == 0 {
            return Packet::Eof;
        }
        buf.truncate(n as usize);
        return Packet::Data(buf);
    }
}

// ---------------------------------------------------------------------------
// OCI bundle
// ---------------------------------------------------------------------------

pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
}

/// config.json for runc 1.1.5, modelled on `runc spec` (root, no terminal,
/// read-only shared rootfs, no network namespace).
pub fn runc_config(args: &[&str], env: &[&str], mounts: &[BindMount]) -> serde_json::Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut env_v: Vec<String> = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        "HOME=/root".into(),
    ];
    env_v.extend(env.iter().map(|s| s.to_string()));
    let mut mounts_v = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "nodev", "mode=1777", "size=65536k"]}),
    ];
    for m in mounts {
        let mut opts = vec!["rbind"];
        if m.readonly {
            opts.push("ro");
        }
        mounts_v.push(json!({
            "destination": m.destination,
            "type": "bind",
            "source": m.source,
            "options": opts,
        }));
    }
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": env_v,
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": rootfs(), "readonly": true},
        "hostname": "vigil-test",
        "mounts": mounts_v,
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

// ---------------------------------------------------------------------------
// The recording fake runtime
// ---------------------------------------------------------------------------

/// What the fake runtime does for create/restore/exec.
#[derive(Clone)]
pub enum FakeMode {
    /// Record argv, start `sleep 1000` in the background and write its pid
    /// (no newline) to the `--pid-file` path, exit 0.
    Sleep,
    /// Record argv, print the text to stderr, exit with the code.
    Fail { stderr: String, code: i32 },
}

pub struct FakeRuntime {
    pub path: PathBuf,
    pub argv_log: PathBuf,
    pub fd_log: PathBuf,
}

impl FakeRuntime {
    /// Write the fake runtime script into `dir`.
    /// `probe_fds` lists fd numbers whose presence the runtime records in
    /// `fd_log` (`<fd>=open|closed` lines) plus a `sockets=<count>` line.
    pub fn new(dir: &Path, mode: FakeMode, probe_fds: &[i32]) -> FakeRuntime {
        let path = dir.join("fake-runtime");
        let argv_log = dir.join("fake-runtime.argv");
        let fd_log = dir.join("fake-runtime.fds");
        let mut close_extra = String::new();
        for fd in probe_fds {
            close_extra.push_str(&format!(" {fd}>&-"));
        }
        let mut probes = String::new();
        for fd in probe_fds {
            probes.push_str(&format!(
                "if [ -e /proc/$$/fd/{fd} ]; then echo '{fd}=open'; else echo '{fd}=closed'; fi\n"
            ));
        }
        let action = match &mode {
            FakeMode::Sleep => format!(
                "sleep 1000 </dev/null >/dev/null 2>&1{close_extra} &\n\
                 printf '%s' \"$!\" > \"$pidfile.tmp\"\n\
                 mv -f \"$pidfile.tmp\" \"$pidfile\"\n\
                 exit 0\n"
            ),
            FakeMode::Fail { stderr, code } => {
                // Single-quote the text for sh.
                let quoted = stderr.replace('\'', "'\\''");
                format!("printf '%s' '{quoted}' >&2\nexit {code}\n")
            }
        };
        let script = format!(
            "#!/bin/sh\n\
             # recording fake OCI runtime (vigil integration tests)\n\
             log='{log}'\n\
             {{ echo '---'; for a in \"$0\" \"$@\"; do printf '%s\\n' \"$a\"; done; }} >> \"$log\"\n\
             fd0=$(readlink /proc/$$/fd/0)\n\
             fd1=$(readlink /proc/$$/fd/1 | cut -c1-5)\n\
             fd2=$(readlink /proc/$$/fd/2 | cut -c1-5)\n\
             {{\n{probes}echo \"sockets=$(ls -l /proc/$$/fd | grep -c socket:)\"\n\
             echo \"fd0=$fd0\"\n\
             echo \"fd1=$fd1\"\n\
             echo \"fd2=$fd2\"\n\
             echo \"syncpipe=${{_OCI_SYNCPIPE-unset}}\"\n\
             echo \"listen_pid=${{LISTEN_PID-unset}}\"\n\
             echo \"self=$$\"\n\
             echo \"umask=$(umask)\"\n\
             }} > '{fdlog}.tmp'\n\
             mv -f '{fdlog}.tmp' '{fdlog}'\n\
             pidfile=''\n\
             prev=''\n\
             for a in \"$@\"; do\n\
               if [ \"$prev\" = '--pid-file' ]; then pidfile=\"$a\"; fi\n\
               prev=\"$a\"\n\
             done\n\
             {action}",
            log = argv_log.display(),
            fdlog = fd_log.display(),
        );
        write_executable(&path, &script);
        FakeRuntime {
            path,
            argv_log,
            fd_log,
        }
    }

    /// `key=value` lines recorded by the last invocation.
    pub fn probe(&self, key: &str) -> Option<String> {
        let text = fs::read_to_string(&self.fd_log).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")).map(String::from))
    }

    /// The argv of every invocation (argv[0] first), in order.
    pub fn invocations(&self) -> Vec<Vec<String>> {
        let text = fs::read_to_string(&self.argv_log).unwrap_or_default();
        let mut out: Vec<Vec<String>> = Vec::new();
        for line in text.lines() {
            if line == "---" {
                out.push(Vec::new());
            } else if let Some(last) = out.last_mut() {
                last.push(line.to_string());
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------
// A conmon-monitored container
// ---------------------------------------------------------------------------

/// Result of starting conmon Podman-style.
pub struct Launch {
    /// Exit status of the process we started (the launcher, not the daemon).
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// First packet on the sync pipe (None: EOF/timeout, see `first_packet_eof`).
    pub sync_msg: Option<Vec<u8>>,
    pub first_packet_eof: bool,
}

impl Launch {
    pub fn describe(&self) -> String {
        format!(
            "launcher status {:?}; sync message {:?}; launcher stdout {}; launcher stderr {}",
            self.status,
            self.sync_msg
                .as_ref()
                .map(|m| String::from_utf8_lossy(m).into_owned()),
            show(&self.stdout),
            show(&self.stderr)
        )
    }

    /// Assert the launcher exited 0 and the sync message is exactly
    /// `{"<key>": <pid>}\n`; returns the pid.
    pub fn expect_pid(&self, key: &str) -> i32 {
        assert_eq!(
            self.status.code(),
            Some(0),
            "launcher must exit 0: {}",
            self.describe()
        );
        let msg = self
            .sync_msg
            .as_ref()
            .unwrap_or_else(|| panic!("no sync message: {}", self.describe()));
        let text = String::from_utf8_lossy(msg);
        let re = regex::Regex::new(&format!(r#"^\{{"{key}": (\d+)\}}\n$"#)).unwrap();
        let caps = re.captures(&text).unwrap_or_else(|| {
            panic!(
                "sync message is not {{\"{key}\": <pid>}}\\n: {}",
                self.describe()
            )
        });
        caps[1].parse().unwrap()
    }
}

pub struct Container {
    pub name: String,
    pub id: String,
    pub dir: tempfile::TempDir,
    pub bundle: PathBuf,
    pub exit_dir: PathBuf,
    pub persist_dir: PathBuf,
    pub log_path: PathBuf,
    pub conmon_pidfile: PathBuf,
    pub pidfile: PathBuf,
    pub runtime: PathBuf,
    /// true: real runc, `runc delete -f` on drop.
    pub real_runtime: bool,
    pub api_version: bool,
    /// `-l` values; default `k8s-file:<log_path>`.
    pub log_specs: Vec<String>,
    /// `--log-level` value.
    pub log_level: String,
    /// Extra conmon options, inserted after `--log-level`.
    pub extra_args: Vec<String>,
    /// Extra options appended after the exit command (e.g. `--runtime-opt`).
    pub tail_args: Vec<String>,
    pub conmon_pidfile_arg: bool,
    /// Pass `-b` / `-p` (otherwise conmon defaults them to cwd-based paths).
    pub pass_bundle: bool,
    pub pass_pidfile: bool,
    /// umask to start conmon with (default: inherited).
    pub umask: Option<libc::mode_t>,
    pub exit_command: Option<(PathBuf, Vec<String>)>,
    pub env: Vec<(String, String)>,
    /// (fd in the test process, fd number in conmon) – inherited extra fds.
    pub extra_fds: Vec<(RawFd, RawFd)>,
    pub launched: bool,
    /// Parent end of the sync socket, kept after launch.
    pub sync: Option<OwnedFd>,
    pub start: Option<OwnedFd>,
    /// pid of a fake-runtime container to kill on drop.
    pub fake_ctr_pid: Option<i32>,
}

impl Container {
    fn base(test: &str, runtime: PathBuf, real: bool) -> Container {
        let dir = tempdir("ctr");
        let root = fs::canonicalize(dir.path()).unwrap();
        let bundle = root.join("bundle");
        let exit_dir = root.join("exits");
        let persist_dir = root.join("persist");
        for d in [&bundle, &exit_dir, &persist_dir] {
            fs::create_dir_all(d).unwrap();
        }
        let log_path = root.join("ctr.log");
        Container {
            name: test.to_string(),
            id: unique_id(test),
            pidfile: bundle.join("pidfile"),
            conmon_pidfile: root.join("conmon.pid"),
            dir,
            bundle,
            exit_dir,
            persist_dir,
            log_specs: vec![format!("k8s-file:{}", log_path.display())],
            log_path,
            runtime,
            real_runtime: real,
            api_version: true,
            log_level: "debug".into(),
            extra_args: vec![],
            tail_args: vec![],
            conmon_pidfile_arg: true,
            pass_bundle: true,
            pass_pidfile: true,
            umask: None,
            exit_command: None,
            env: vec![],
            extra_fds: vec![],
            launched: false,
            sync: None,
            start: None,
            fake_ctr_pid: None,
        }
    }

    /// A container run by the real runtime with process args `args`.
    pub fn new(test: &str, args: &[&str]) -> Container {
        Self::with_mounts(test, args, &[])
    }

    pub fn with_mounts(test: &str, args: &[&str], mounts: &[BindMount]) -> Container {
        let c = Self::base(test, runtime_binary(), true);
        c.write_config(args, mounts);
        c
    }

    /// config.json with `args`; with bind mounts, the root is a private copy
    /// of the busybox tree (see `private_rootfs`).
    pub fn write_config(&self, args: &[&str], mounts: &[BindMount]) {
        let mut cfg = runc_config(args, &[], mounts);
        if !mounts.is_empty() {
            cfg["root"]["path"] = json!(private_rootfs(&self.root()));
        }
        fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(&cfg).unwrap(),
        )
        .unwrap();
    }

    /// A container whose "runtime" is an arbitrary executable (fake runtime).
    pub fn with_runtime(test: &str, runtime: &Path) -> Container {
        Self::base(test, runtime.to_path_buf(), false)
    }

    pub fn root(&self) -> PathBuf {
        self.bundle.parent().unwrap().to_path_buf()
    }

    pub fn exit_file(&self) -> PathBuf {
        self.exit_dir.join(&self.id)
    }

    /// conmon's argv, Podman order (contract §3.2/§3.3).
    pub fn conmon_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |s: &dyn AsRef<std::ffi::OsStr>| a.push(s.as_ref().to_os_string());
        if self.api_version {
            push(&"--api-version");
            push(&"1");
        }
        push(&"-c");
        push(&self.id);
        push(&"-u");
        push(&self.id);
        push(&"-r");
        push(&self.runtime);
        if self.pass_bundle {
            push(&"-b");
            push(&self.bundle);
        }
        if self.pass_pidfile {
            push(&"-p");
            push(&self.pidfile);
        }
        push(&"-n");
        push(&self.name);
        push(&"--exit-dir");
        push(&self.exit_dir);
        push(&"--persist-dir");
        push(&self.persist_dir);
        push(&"--full-attach");
        for l in &self.log_specs {
            push(&"-l");
            push(l);
        }
        push(&"--log-level");
        push(&self.log_level);
        for e in &self.extra_args {
            push(e);
        }
        if self.conmon_pidfile_arg {
            push(&"--conmon-pidfile");
            push(&self.conmon_pidfile);
        }
        if let Some((cmd, args)) = &self.exit_command {
            push(&"--exit-command");
            push(cmd);
            for x in args {
                push(&"--exit-command-arg");
                push(x);
            }
        }
        for t in &self.tail_args {
            push(t);
        }
        a
    }

    /// Start conmon like Podman: SEQPACKET socketpairs on fds 3 (sync) and 4
    /// (start), own process group, one start byte, wait for the launcher to
    /// exit, then read one message from the sync pipe.
    pub fn launch(&mut self) -> Launch {
        let child = self.spawn();
        self.finish_launch(child)
    }

    /// Wait for the launcher to exit, then read one sync message.
    fn finish_launch(&mut self, mut child: Child) -> Launch {
        let status = wait_child(&mut child, Duration::from_secs(30), "conmon launcher");
        let stdout = fs::read(self.root().join("conmon.stdout")).unwrap_or_default();
        let stderr = fs::read(self.root().join("conmon.stderr")).unwrap_or_default();
        let (sync_msg, eof) = if status.code() == Some(0) {
            match self.next_sync_packet(Duration::from_secs(30)) {
                Packet::Data(d) => (Some(d), false),
                Packet::Eof => (None, true),
                Packet::Timeout => (None, false),
            }
        } else {
            (None, false)
        };
        Launch {
            status,
            stdout,
            stderr,
            sync_msg,
            first_packet_eof: eof,
        }
    }

    /// Spawn conmon (fds 3/4 = sync/start SEQPACKET pairs, own process
    /// group) and write the start byte; does not wait.
    pub fn spawn(&mut self) -> Child {
        let child = self.spawn_without_start_byte();
        self.send_start_byte();
        child
    }

    /// Write the start byte (Podman: after moving conmon into its cgroup).
    pub fn send_start_byte(&self) {
        let fd = self.start.as_ref().expect("not spawned").as_raw_fd();
        let b = [0u8; 1];
        let n = unsafe { libc::write(fd, b.as_ptr() as *const _, 1) };
        assert_eq!(n, 1, "write start byte: {}", io::Error::last_os_error());
    }

    /// Spawn conmon but do not write the start byte yet.
    pub fn spawn_without_start_byte(&mut self) -> Child {
        let args = self.conmon_args();
        self.spawn_inner(args, &[])
    }

    /// Spawn conmon with `args`: the fds `preserved` (in the test process)
    /// become conmon's fds 3…3+N-1 (Podman's `--preserve-fds N` layout), the
    /// sync/start SEQPACKET pairs N+3/N+4, then `extra_fds`; own process group.
    fn spawn_inner(&mut self, args: Vec<OsString>, preserved: &[RawFd]) -> Child {
        assert!(!self.launched, "launch() called twice");
        self.launched = true;
        let n = preserved.len() as RawFd;
        let (sync_parent, sync_child) = seqpacket_pair();
        let (start_parent, start_child) = seqpacket_pair();
        let out = File::create(self.root().join("conmon.stdout")).unwrap();
        let err = File::create(self.root().join("conmon.stderr")).unwrap();
        let mut cmd = Command::new(conmon_binary());
        cmd.args(args)
            .current_dir(self.root())
            .env("_OCI_SYNCPIPE", (n + 3).to_string())
            .env("_OCI_STARTPIPE", (n + 4).to_string())
            .env_remove("_OCI_ATTACHPIPE")
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut map: Vec<(RawFd, RawFd)> = preserved
            .iter()
            .enumerate()
            .map(|(i, &fd)| (fd, 3 + i as RawFd))
            .collect();
        map.push((sync_child.as_raw_fd(), n + 3));
        map.push((start_child.as_raw_fd(), n + 4));
        map.extend(self.extra_fds.iter().copied());
        assert!(map.len() <= 16, "at most 16 fds can be placed");
        let umask = self.umask;
        unsafe {
            cmd.pre_exec(move || {
                if let Some(m) = umask {
                    libc::umask(m);
                }
                // Move every source out of the way first (CLOEXEC copies >= 64),
                // then dup2 onto the target numbers (dup2 clears CLOEXEC).
                let mut tmp = [0 as RawFd; 16];
                for (i, (src, _)) in map.iter().enumerate() {
                    let t = libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, 64);
                    if t < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    tmp[i] = t;
                }
                for (i, (_, dst)) in map.iter().enumerate() {
                    if libc::dup2(tmp[i], *dst) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn conmon");
        drop(sync_child);
        drop(start_child);
        self.sync = Some(sync_parent);
        self.start = Some(start_parent);
        child
    }

    /// Wait for a spawned conmon (e.g. `--sync` mode) with a deadline.
    pub fn wait_spawned(&self, child: &mut Child, timeout: Duration) -> ExitStatus {
        wait_child(child, timeout, "conmon")
    }

    /// Next packet on the sync pipe.
    pub fn next_sync_packet(&self, timeout: Duration) -> Packet {
        read_packet(
            self.sync.as_ref().expect("not launched").as_raw_fd(),
            timeout,
        )
    }

    /// conmon's stderr file (launcher, and daemon until it redirects stdio).
    pub fn conmon_stderr(&self) -> String {
        fs::read_to_string(self.root().join("conmon.stderr")).unwrap_or_default()
    }

    /// `runc start ID`.
    pub fn start(&self) {
        let out = run_with_timeout(
            Command::new(&self.runtime).arg("start").arg(&self.id),
            Duration::from_secs(30),
        );
        assert!(
            out.status.success(),
            "runtime start failed: {:?} {} {}\nconmon stderr: {}",
            out.status,
            out.stdout_str(),
            out.stderr_str(),
            self.conmon_stderr()
        );
    }

    /// `runc kill ID SIG`.
    pub fn runtime_kill(&self, sig: &str) {
        let out = run_with_timeout(
            Command::new(&self.runtime)
                .arg("kill")
                .arg(&self.id)
                .arg(sig),
            Duration::from_secs(30),
        );
        assert!(
            out.status.success(),
            "runtime kill failed: {}",
            out.stderr_str()
        );
    }

    /// Wait for `<exit-dir>/<id>` and return its content.
    pub fn wait_exit_file(&self, timeout: Duration) -> Vec<u8> {
        let f = self.exit_file();
        if !wait_for(timeout, || f.exists()) {
            panic!(
                "exit file {} did not appear within {timeout:?}; conmon stderr: {}; log: {}",
                f.display(),
                self.conmon_stderr(),
                show(&fs::read(&self.log_path).unwrap_or_default())
            );
        }
        fs::read(&f).unwrap()
    }

    /// The daemon pid from the conmon pidfile.
    pub fn conmon_pid(&self) -> i32 {
        let s = fs::read_to_string(&self.conmon_pidfile).unwrap_or_else(|e| {
            panic!("read conmon pidfile {}: {e}", self.conmon_pidfile.display())
        });
        s.parse()
            .unwrap_or_else(|_| panic!("conmon pidfile content {s:?} is not a bare number"))
    }

    /// Wait until the conmon daemon has exited.
    pub fn wait_conmon_exit(&self, timeout: Duration) {
        let pid = self.conmon_pid();
        assert!(
            wait_for(timeout, || !pid_alive(pid)),
            "conmon daemon {pid} still alive after {timeout:?}"
        );
    }

    pub fn read_log(&self) -> Vec<u8> {
        fs::read(&self.log_path)
            .unwrap_or_else(|e| panic!("read log {}: {e}", self.log_path.display()))
    }

    /// Launch, check the pid message, start, wait for the exit file.
    /// Returns (container pid, exit file content).
    pub fn run_to_exit(&mut self, timeout: Duration) -> (i32, Vec<u8>) {
        let l = self.launch();
        let key = if self.api_version { "data" } else { "pid" };
        let pid = l.expect_pid(key);
        self.start();
        let code = self.wait_exit_file(timeout);
        (pid, code)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if !self.launched {
            return;
        }
        if self.real_runtime {
            let _ = Command::new(&self.runtime)
                .args(["delete", "-f", &self.id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if let Some(pid) = self.fake_ctr_pid {
            let is_sleep = fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.starts_with(b"sleep"))
                .unwrap_or(false);
            if is_sleep && pid_alive(pid) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        // A daemon that outlived its container (test failure): stop it.
        if let Ok(s) = fs::read_to_string(&self.conmon_pidfile) {
            if let Ok(pid) = s.trim().parse::<i32>() {
                if wait_for(Duration::from_secs(5), || !pid_alive(pid)) {
                    return;
                }
                let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
                if exe.to_string_lossy().ends_with("conmon") {
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// k8s-file log parsing
// ---------------------------------------------------------------------------

pub const K8S_RECORD_RE: &str = r"(?s-u)^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}[+-]\d{2}:\d{2}) (stdout|stderr) (P|F) (.*)$";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub timestamp: String,
    pub stream: String,
    /// 'P' or 'F'
    pub tag: char,
    /// Content without the record's terminating newline.
    pub content: Vec<u8>,
}

impl Record {
    /// Bytes this record occupies in the file.
    pub fn file_len(&self) -> usize {
        self.timestamp.len() + 1 + self.stream.len() + 3 + self.content.len() + 1
    }
}

/// Parse a whole k8s-file log; panics (with context) on any malformed line.
pub fn parse_k8s_log(data: &[u8]) -> Vec<Record> {
    let re = regex::bytes::Regex::new(K8S_RECORD_RE).unwrap();
    if data.is_empty() {
        return vec![];
    }
    assert!(
        data.ends_with(b"\n"),
        "log does not end with a newline; tail: {}",
        show(&data[data.len().saturating_sub(200)..])
    );
    let mut out = Vec::new();
    for (i, line) in data[..data.len() - 1].split(|&b| b == b'\n').enumerate() {
        let caps = re.captures(line).unwrap_or_else(|| {
            panic!(
                "log line {} is not a k8s-file record: {}",
                i + 1,
                show(&line[..line.len().min(300)])
            )
        });
        out.push(Record {
            timestamp: String::from_utf8(caps[1].to_vec()).unwrap(),
            stream: String::from_utf8(caps[2].to_vec()).unwrap(),
            tag: caps[3][0] as char,
            content: caps[4].to_vec(),
        });
    }
    out
}

/// Reassemble one stream: `P` pieces are joined, `F` ends a line with "\n".
pub fn reconstruct(records: &[Record], stream: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records.iter().filter(|r| r.stream == stream) {
        out.extend_from_slice(&r.content);
        if r.tag == 'F' {
            out.push(b'\n');
        }
    }
    out
}

/// (stream, tag, content) triples, timestamps dropped — for exact comparisons.
pub fn triples(records: &[Record]) -> Vec<(String, char, String)> {
    records
        .iter()
        .map(|r| {
            (
                r.stream.clone(),
                r.tag,
                String::from_utf8_lossy(&r.content).into_owned(),
            )
        })
        .collect()
}

impl Container {
    /// Wait for the exit file (it must say `code`) and for the monitor to
    /// exit; then the k8s log must hold exactly `records` (stream, tag, content).
    pub fn expect_exit_and_log(
        &self,
        code: &[u8],
        records: &[(&str, char, &str)],
        timeout: Duration,
    ) {
        assert_eq!(show(&self.wait_exit_file(timeout)), show(code), "exit file");
        self.wait_conmon_exit(timeout);
        let want: Vec<(String, char, String)> = records
            .iter()
            .map(|(s, t, c)| (s.to_string(), *t, c.to_string()))
            .collect();
        assert_eq!(
            triples(&parse_k8s_log(&self.read_log())),
            want,
            "log records"
        );
    }
}

/// Records a piece of output becomes (§7.3), as (stream, tag, content).
pub fn records_for(stream: &str, output: &str) -> Vec<(String, char, String)> {
    let mut v = Vec::new();
    let mut rest = output;
    while !rest.is_empty() {
        match rest.find('\n') {
            Some(i) => {
                v.push((stream.to_string(), 'F', rest[..i].to_string()));
                rest = &rest[i + 1..];
            }
            None => {
                v.push((stream.to_string(), 'P', rest.to_string()));
                rest = "";
            }
        }
    }
    v
}

/// Size accounting of §7.4: len(piece incl. "\n") + 45, +1 for P.
pub fn accounted_len(rec: &(String, char, String)) -> i64 {
    let piece = rec.2.len() as i64 + if rec.1 == 'F' { 1 } else { 0 };
    piece + 45 + if rec.1 == 'P' { 1 } else { 0 }
}

/// Simulate §7.4 per-file cap (truncate or rotate) and global cap.
/// Returns the files' records: index 0 = the live file, 1.. = `.1`, `.2` …
/// (`None` for a backup that does not exist).
pub fn simulate_k8s_limits(
    records: &[(String, char, String)],
    initial_size: i64,
    size_max: i64,
    global_max: i64,
    rotate_max_files: Option<usize>,
) -> Vec<Option<Vec<(String, char, String)>>> {
    let mut files: Vec<Option<Vec<(String, char, String)>>> = vec![Some(vec![])];
    let mut counter = initial_size;
    let mut global = initial_size;
    for r in records {
        let len = accounted_len(r);
        if global_max > 0 && global >= global_max {
            break;
        }
        if size_max > 0 && counter + len > size_max {
            match rotate_max_files {
                None => files[0] = Some(vec![]),
                Some(n) => {
                    let top = n.max(2);
                    while files.len() <= top {
                        files.push(None);
                    }
                    for i in (2..=top).rev() {
                        if files[i - 1].is_some() {
                            files[i] = files[i - 1].take();
                        }
                    }
                    files[1] = files[0].take();
                    files[0] = Some(vec![]);
                }
            }
            counter = 0;
        }
        files[0].as_mut().unwrap().push(r.clone());
        counter += len;
        global += len;
    }
    files
}

/// Deterministic xorshift64* generator.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Exit status as the shell would describe it.
pub fn describe_status(st: &ExitStatus) -> String {
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (_, Some(s)) => format!("signal {s}"),
        _ => format!("{st:?}"),
    }
}

// ===========================================================================
// Helpers for the attach / terminal / ctl / exec / journald / syslog / oom /
// notify tests (appended; nothing above depends on them).
// ===========================================================================

/// Output collected from an attach client, split by stream id.
#[derive(Debug, Default, Clone)]
pub struct AttachOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Number of packets received.
    pub packets: usize,
    /// Largest payload seen (without the stream id byte).
    pub max_payload: usize,
    /// The peer closed the connection.
    pub eof: bool,
}

impl AttachOutput {
    /// Account one packet; panics on a malformed one (§5.3: id 2/3, payload ≤ 8192).
    pub fn push(&mut self, pkt: &[u8]) {
        assert!(!pkt.is_empty(), "empty attach packet");
        let payload = &pkt[1..];
        assert!(
            payload.len() <= 8192,
            "attach packet payload of {} bytes exceeds 8192",
            payload.len()
        );
        match pkt[0] {
            2 => self.stdout.extend_from_slice(payload),
            3 => self.stderr.extend_from_slice(payload),
            id => panic!(
                "attach packet with stream id {id}: {}",
                show(&pkt[..pkt.len().min(100)])
            ),
        }
        self.packets += 1;
        self.max_payload = self.max_payload.max(payload.len());
    }
}

/// A client of the monitor's SEQPACKET attach socket (like Podman's).
pub struct AttachClient {
    pub fd: OwnedFd,
}

impl AttachClient {
    /// Connect to the socket at `path` through an `O_PATH` fd of its
    /// directory (`/proc/self/fd/N/attach`), as Podman does.
    pub fn connect(path: &Path) -> io::Result<AttachClient> {
        use std::os::unix::ffi::OsStrExt;
        let dir = path.parent().unwrap();
        let cdir = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
        let dfd = unsafe { libc::open(cdir.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if dfd < 0 {
            return Err(io::Error::last_os_error());
        }
        let dfd = unsafe { OwnedFd::from_raw_fd(dfd) };
        let short = format!(
            "/proc/self/fd/{}/{}",
            dfd.as_raw_fd(),
            path.file_name().unwrap().to_string_lossy()
        );
        let fd =
            unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in addr.sun_path.iter_mut().zip(short.as_bytes()) {
            *d = *s as libc::c_char;
        }
        let r = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                &addr as *const libc::sockaddr_un as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(AttachClient { fd })
    }

    /// Connect or panic with context.
    pub fn connect_or_panic(path: &Path) -> AttachClient {
        AttachClient::connect(path)
            .unwrap_or_else(|e| panic!("connect to attach socket {}: {e}", path.display()))
    }

    /// Send `data` as one message (raw input for the container's stdin).
    pub fn send(&self, data: &[u8]) {
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                data.as_ptr() as *const _,
                data.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        assert_eq!(
            n,
            data.len() as isize,
            "send to attach socket: {}",
            io::Error::last_os_error()
        );
    }

    /// `shutdown(SHUT_WR)`: end of input (Podman's CloseWrite).
    pub fn shutdown_write(&self) {
        let r = unsafe { libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_WR) };
        assert_eq!(r, 0, "shutdown(SHUT_WR): {}", io::Error::last_os_error());
    }

    /// One packet, waiting at most `timeout`.
    pub fn recv(&self, timeout: Duration) -> Packet {
        read_packet(self.fd.as_raw_fd(), timeout)
    }

    /// Read packets into `out` until `done(out)` holds or EOF; false on timeout.
    pub fn read_until(
        &self,
        out: &mut AttachOutput,
        timeout: Duration,
        mut done: impl FnMut(&AttachOutput) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(out) {
                return true;
            }
            if out.eof {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            match self.recv(deadline - now) {
                Packet::Data(d) => out.push(&d),
                Packet::Eof => out.eof = true,
                Packet::Timeout => return false,
            }
        }
    }

    /// Read until EOF; panics (with what was read) if it does not come in time.
    pub fn read_to_eof(&self, timeout: Duration) -> AttachOutput {
        let mut out = AttachOutput::default();
        self.read_until(&mut out, timeout, |o| o.eof);
        assert!(
            out.eof,
            "attach client: no EOF within {timeout:?}; stdout so far {} stderr so far {}",
            show(&out.stdout[..out.stdout.len().min(300)]),
            show(&out.stderr[..out.stderr.len().min(300)])
        );
        out
    }
}

/// An OCI `process` object for `runc exec --process` (root, cwd /).
pub fn oci_process(args: &[&str], terminal: bool) -> serde_json::Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "terminal": terminal,
        "user": {"uid": 0, "gid": 0},
        "args": args,
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"],
        "cwd": "/",
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
        "noNewPrivileges": true
    })
}

/// Parse `{"<key>": <n>}\n` / `{"<key>": <n>, "message": "<m>"}\n` exactly;
/// returns (n, message).
pub fn parse_sync_message(msg: &[u8], key: &str) -> (i64, Option<String>) {
    let text = String::from_utf8_lossy(msg);
    let re = regex::Regex::new(&format!(
        r#"(?s)^\{{"{key}": (-?\d+)(?:, "message": "(.*)")?\}}\n$"#
    ))
    .unwrap();
    let caps = re.captures(&text).unwrap_or_else(|| {
        panic!("sync message {text:?} is not {{\"{key}\": N[, \"message\": M]}}\\n")
    });
    (
        caps[1].parse().unwrap(),
        caps.get(2).map(|m| m.as_str().to_string()),
    )
}

impl Container {
    /// Overwrite config.json with `cfg`.
    pub fn write_config_value(&self, cfg: &serde_json::Value) {
        fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(cfg).unwrap(),
        )
        .unwrap();
    }

    /// Edit config.json in place.
    pub fn edit_config(&self, f: impl FnOnce(&mut serde_json::Value)) {
        let path = self.bundle.join("config.json");
        let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        f(&mut v);
        self.write_config_value(&v);
    }

    /// `<bundle>/attach`.
    pub fn attach_path(&self) -> PathBuf {
        self.bundle.join("attach")
    }

    /// Like `spawn`, with an explicit argv instead of `conmon_args()`.
    pub fn spawn_with_args(&mut self, args: Vec<OsString>) -> Child {
        let child = self.spawn_inner(args, &[]);
        self.send_start_byte();
        child
    }

    /// Like `launch`, with an explicit argv instead of `conmon_args()`.
    pub fn launch_with_args(&mut self, args: Vec<OsString>) -> Launch {
        let child = self.spawn_with_args(args);
        self.finish_launch(child)
    }

    /// Wait until the k8s log contains `needle`.
    pub fn wait_log_contains(&self, needle: &str, timeout: Duration) {
        let ok = wait_for(timeout, || {
            fs::read(&self.log_path)
                .map(|l| String::from_utf8_lossy(&l).contains(needle))
                .unwrap_or(false)
        });
        assert!(
            ok,
            "log never contained {needle:?} within {timeout:?}: {}",
            show(&fs::read(&self.log_path).unwrap_or_default())
        );
    }

    /// Write `msg` to `<bundle>/ctl` (non-blocking open: the monitor holds the
    /// read side) and wait until the monitor has read it all from the FIFO.
    pub fn write_ctl(&self, msg: &[u8]) {
        write_fifo_and_wait_drained(&self.bundle.join("ctl"), msg);
    }

    /// An exec session (`-e`) in the running container `main`: its own
    /// directory with `<exec-bundle>`, `exec_pid`, `exit/` (Podman's layout),
    /// id = the container's id, runtime = the real runtime, log `none`.
    pub fn exec_in(main: &Container, test: &str, process: &serde_json::Value) -> Container {
        let mut c = Self::base(test, main.runtime.clone(), false);
        c.id = main.id.clone();
        let spec = c.bundle.join("exec-process-1");
        fs::write(&spec, serde_json::to_vec_pretty(process).unwrap()).unwrap();
        c.pidfile = c.bundle.join("exec_pid");
        c.exit_dir = c.bundle.join("exit");
        fs::create_dir_all(&c.exit_dir).unwrap();
        c.log_specs = vec!["none".into()];
        c.extra_args = vec![
            "-e".into(),
            "--exec-process-spec".into(),
            spec.display().to_string(),
        ];
        c
    }
}

/// Write `msg` to the FIFO at `path` and wait (≤ 10 s) until a reader took every byte.
pub fn write_fifo_and_wait_drained(path: &Path, msg: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .unwrap_or_else(|e| panic!("open {} for writing: {e}", path.display()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rest = msg;
    while !rest.is_empty() {
        match f.write(rest) {
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "FIFO {} not drained",
                    path.display()
                );
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("write {}: {e}", path.display()),
        }
    }
    let drained = wait_for(Duration::from_secs(10), || {
        let mut n: libc::c_int = 0;
        let r = unsafe { libc::ioctl(f.as_raw_fd(), libc::FIONREAD, &mut n) };
        r == 0 && n == 0
    });
    assert!(
        drained,
        "the monitor did not read {} within 10 s",
        path.display()
    );
    // Reading and acting happen in the same event-loop turn; allow for scheduling.
    thread::sleep(Duration::from_millis(100));
}

/// Remove every `flag` (no value) from an argv.
pub fn args_without_flag(args: &[OsString], flag: &str) -> Vec<OsString> {
    args.iter()
        .filter(|a| a.as_os_str() != flag)
        .cloned()
        .collect()
}

/// Remove an option and its value (`-n NAME`) from an argv.
pub fn args_without_option(args: &[OsString], opt: &str) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        if a.as_os_str() == opt {
            skip = true;
            continue;
        }
        out.push(a.clone());
    }
    out
}

/// Replace the value of option `opt` (`-u X` → `-u value`).
pub fn args_with_option_value(args: &[OsString], opt: &str, value: &str) -> Vec<OsString> {
    let mut out: Vec<OsString> = args.to_vec();
    let i = out
        .iter()
        .position(|a| a.as_os_str() == opt)
        .unwrap_or_else(|| panic!("{opt} not in argv"));
    out[i + 1] = value.into();
    out
}

// ---------------------------------------------------------------------------
// journald
// ---------------------------------------------------------------------------

pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

fn journal_socket_alive() -> bool {
    let s = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(_) => return false,
    };
    s.connect(JOURNAL_SOCKET).is_ok()
}

/// Make sure a systemd-journald is listening on `/run/systemd/journal/socket`
/// (starts `/lib/systemd/systemd-journald` once if not; serialised with a
/// file lock because tests run in parallel and in several processes).
/// Returns the reason when journald cannot be provided.
pub fn ensure_journald() -> Result<(), String> {
    static RESULT: OnceLock<Result<(), String>> = OnceLock::new();
    RESULT
        .get_or_init(|| {
            if journal_socket_alive() {
                return Ok(());
            }
            let daemon = Path::new("/lib/systemd/systemd-journald");
            if !is_executable(daemon) {
                return Err(
                    "no journald socket and /lib/systemd/systemd-journald not installed".into(),
                );
            }
            if !is_executable(Path::new("/usr/bin/journalctl"))
                && !is_executable(Path::new("/bin/journalctl"))
            {
                return Err("journalctl not installed".into());
            }
            fs::create_dir_all("/run/systemd/journal")
                .map_err(|e| format!("mkdir /run/systemd/journal: {e}"))?;
            let lock = File::create("/run/systemd/vigil-tests-journald.lock")
                .map_err(|e| format!("journald lock file: {e}"))?;
            if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
                return Err(format!("flock: {}", io::Error::last_os_error()));
            }
            if !journal_socket_alive() {
                // A stale socket from a dead journald would make it fail to bind.
                let _ = fs::remove_file(JOURNAL_SOCKET);
                Command::new(daemon)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .process_group(0)
                    .spawn()
                    .map_err(|e| format!("start systemd-journald: {e}"))?;
                if !wait_for(Duration::from_secs(15), journal_socket_alive) {
                    return Err("systemd-journald did not come up".into());
                }
            }
            drop(lock);
            Ok(())
        })
        .clone()
}

/// One journal entry: field name → raw value bytes.
pub type JournalEntry = std::collections::BTreeMap<String, Vec<u8>>;

fn json_field_bytes(v: &serde_json::Value) -> Vec<u8> {
    match v {
        serde_json::Value::String(s) => s.as_bytes().to_vec(),
        serde_json::Value::Array(a) if a.iter().all(|x| x.is_u64()) => {
            a.iter().map(|x| x.as_u64().unwrap() as u8).collect()
        }
        // A field present several times: keep the first value.
        serde_json::Value::Array(a) if !a.is_empty() => json_field_bytes(&a[0]),
        other => other.to_string().into_bytes(),
    }
}

/// `journalctl -a -o json --no-pager MATCH…` parsed.
pub fn journal_entries(matches: &[&str]) -> Vec<JournalEntry> {
    let out = run_with_timeout(
        Command::new("journalctl")
            .args(["-a", "-o", "json", "--no-pager"])
            .args(matches),
        Duration::from_secs(30),
    );
    let mut v = Vec::new();
    for line in out.stdout_str().lines() {
        if line.trim().is_empty() {
            continue;
        }
        let obj: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("journalctl json line {line:?}: {e}"));
        let map = obj.as_object().expect("journal entry is an object");
        v.push(
            map.iter()
                .map(|(k, val)| (k.clone(), json_field_bytes(val)))
                .collect(),
        );
    }
    v
}

/// Poll the journal until `done(entries)` holds (≤ `timeout`); returns the last entries.
pub fn wait_journal(
    matches: &[&str],
    timeout: Duration,
    mut done: impl FnMut(&[JournalEntry]) -> bool,
) -> Vec<JournalEntry> {
    let deadline = Instant::now() + timeout;
    loop {
        let e = journal_entries(matches);
        if done(&e) || Instant::now() >= deadline {
            return e;
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Window size (rows, cols) of the terminal on fd 0 of process `pid`, read
/// from the host through `/proc/<pid>/fd/0` (busybox `stty size` refuses to
/// print a 0×0 size).
pub fn pty_size_of(pid: i32) -> (u16, u16) {
    use std::os::unix::fs::OpenOptionsExt;
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(format!("/proc/{pid}/fd/0"))
        .unwrap_or_else(|e| panic!("open /proc/{pid}/fd/0: {e}"));
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::ioctl(f.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    assert_eq!(
        r,
        0,
        "TIOCGWINSZ on /proc/{pid}/fd/0: {}",
        io::Error::last_os_error()
    );
    (ws.ws_row, ws.ws_col)
}

// ===========================================================================
// Helpers for the hygiene tests (appended; nothing above depends on them).
// ===========================================================================

impl Container {
    /// Like `launch`, but with Podman's `--preserve-fds N` layout: the fds
    /// `preserved` (in the test process) become conmon's fds 3…3+N-1 and the
    /// sync/start pipes move to N+3/N+4 (`_OCI_SYNCPIPE`/`_OCI_STARTPIPE`
    /// say so). Pass `--runtime-opt --preserve-fds=N` yourself (`tail_args`)
    /// to have the runtime hand them on to the container.
    pub fn launch_with_preserved_fds(&mut self, preserved: &[RawFd]) -> Launch {
        assert!(
            self.extra_fds.is_empty(),
            "extra_fds and preserved fds together are not supported"
        );
        let args = self.conmon_args();
        let child = self.spawn_inner(args, preserved);
        self.send_start_byte();
        self.finish_launch(child)
    }
}

/// `/proc/<pid>/fd`: fd number → link target (`pipe:[…]`, `/dev/null`, …).
pub fn fd_table(pid: i32) -> std::collections::BTreeMap<i32, String> {
    let mut m = std::collections::BTreeMap::new();
    let dir = format!("/proc/{pid}/fd");
    for e in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {dir}: {e}")) {
        let e = e.unwrap();
        let Ok(fd) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // An fd closed between readdir and readlink is simply not there.
        if let Ok(target) = fs::read_link(e.path()) {
            m.insert(fd, target.to_string_lossy().into_owned());
        }
    }
    m
}

/// The `flags:` field of `/proc/<pid>/fdinfo/<fd>` (octal open flags).
pub fn fd_open_flags(pid: i32, fd: i32) -> Option<i64> {
    let info = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let v = info.lines().find_map(|l| l.strip_prefix("flags:"))?;
    i64::from_str_radix(v.trim(), 8).ok()
}

/// Wait until `/proc/<pid>/cmdline` starts with `argv0` (the runtime's init
/// has exec'd the container process); panics after `timeout`.
pub fn wait_for_exec(pid: i32, argv0: &str, timeout: Duration) {
    let want = format!("{argv0}\0");
    let ok = wait_for(timeout, || {
        fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| c.starts_with(want.as_bytes()))
            .unwrap_or(false)
    });
    assert!(
        ok,
        "process {pid} did not exec {argv0} within {timeout:?} (cmdline {:?})",
        fs::read(format!("/proc/{pid}/cmdline")).map(|c| String::from_utf8_lossy(&c).into_owned())
    );
}

/// Same result as [`parse_k8s_log`] (and a panic on the same malformed
/// lines), with each line's structure checked by hand instead of by regex:
/// the regex parser needs about a minute for 256 MiB in a debug build.
pub fn parse_k8s_log_fast(data: &[u8]) -> Vec<Record> {
    fn ts_ok(ts: &[u8]) -> bool {
        // \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}[+-]\d{2}:\d{2}
        ts.len() == 35
            && ts.iter().enumerate().all(|(i, &b)| match i {
                4 | 7 => b == b'-',
                10 => b == b'T',
                13 | 16 | 32 => b == b':',
                19 => b == b'.',
                29 => b == b'+' || b == b'-',
                _ => b.is_ascii_digit(),
            })
    }
    if data.is_empty() {
        return vec![];
    }
    assert!(
        data.ends_with(b"\n"),
        "log does not end with a newline; tail: {}",
        show(&data[data.len().saturating_sub(200)..])
    );
    let mut out = Vec::new();
    let mut start = 0;
    for (i, end) in memchr::memchr_iter(b'\n', data).enumerate() {
        let line = &data[start..end];
        start = end + 1;
        let ok = line.len() >= 45
            && ts_ok(&line[..35])
            && line[35] == b' '
            && (&line[36..42] == b"stdout" || &line[36..42] == b"stderr")
            && line[42] == b' '
            && (line[43] == b'P' || line[43] == b'F')
            && line[44] == b' ';
        assert!(
            ok,
            "log line {} is not a k8s-file record: {}",
            i + 1,
            show(&line[..line.len().min(300)])
        );
        out.push(Record {
            timestamp: String::from_utf8(line[..35].to_vec()).unwrap(),
            stream: String::from_utf8(line[36..42].to_vec()).unwrap(),
            tag: line[43] as char,
            content: line[45..].to_vec(),
        });
    }
    out
}
