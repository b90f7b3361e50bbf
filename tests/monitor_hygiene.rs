//! Process hygiene with the real runtime (conmon-interface §2.5, §3.5,
//! §10.4, §10.5, §11.1, §12-13): no monitor fd leaks into the container, an
//! exec process or a terminal container (read from `/proc/<pid>/fd` on the
//! host); Podman's preserved fds reach the container at 3…; the monitor's own
//! fd table after start (stdio `/dev/null`, no engine stdio, start pipe
//! closed, everything ≥ 3 CLOEXEC); `LISTEN_PID` garbage fails the create;
//! `--seccomp-notify-socket` (2.2.1: "seccomp support not present") closes
//! the sync pipe without a pid; the sockets and FIFOs are private (attach
//! 0700, console socket in a 0700 directory and gone after start, FIFOs and
//! log 0640; notify.sock 0777 is the documented exception).

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn is_pipe(target: &str) -> bool {
    regex::Regex::new(r"^pipe:\[\d+\]$")
        .unwrap()
        .is_match(target)
}

fn targets(table: &BTreeMap<i32, String>) -> Vec<&str> {
    table.values().map(|s| s.as_str()).collect()
}

/// fds ≥ 5 of this test process without CLOEXEC: what any child inherits
/// from our own environment (3 and 4 are the sync/start pipes in conmon).
fn inherited_fds() -> BTreeMap<i32, String> {
    let me = std::process::id() as i32;
    fd_table(me)
        .into_iter()
        .filter(|(fd, _)| {
            *fd > 4
                && fd_open_flags(me, *fd)
                    .map(|f| f & libc::O_CLOEXEC as i64 == 0)
                    .unwrap_or(false)
        })
        .collect()
}

/// Launch (pid message checked), start, wait until the process is `sleep`.
fn running_sleep(c: &mut Container) -> i32 {
    let l = c.launch();
    let pid = l.expect_pid("data");
    c.start();
    wait_for_exec(pid, "sleep", T);
    pid
}

fn kill_and_wait(c: &Container, pid: i32) {
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(c.wait_exit_file(T), b"137");
    c.wait_conmon_exit(T);
}

/// fds 0-2 of a non-terminal container process: /dev/null (or the stdin
/// pipe), two distinct pipes the monitor holds the other ends of.
fn check_stdio_pipes(
    table: &BTreeMap<i32, String>,
    monitor: &BTreeMap<i32, String>,
    stdin_pipe: bool,
    what: &str,
) {
    if stdin_pipe {
        assert!(
            is_pipe(&table[&0]),
            "{what}: fd 0 {:?} is not the stdin pipe",
            table[&0]
        );
        assert!(
            targets(monitor).contains(&table[&0].as_str()),
            "{what}: the monitor does not hold the stdin pipe"
        );
    } else {
        assert_eq!(table[&0], "/dev/null", "{what}: fd 0 without -i");
    }
    for fd in [1, 2] {
        assert!(
            is_pipe(&table[&fd]),
            "{what}: fd {fd} {:?} is not a pipe",
            table[&fd]
        );
        assert!(
            targets(monitor).contains(&table[&fd].as_str()),
            "{what}: fd {fd} {:?} is not one of the monitor's pipes: {monitor:?}",
            table[&fd]
        );
    }
    assert_ne!(
        table[&1], table[&2],
        "{what}: stdout and stderr are separate pipes"
    );
    if stdin_pipe {
        assert_ne!(table[&0], table[&1]);
    }
}

// --- (a) the container's fds -----------------------------------------------------

/// The container holds fds 0-2 only: the monitor's pipes (and with `--stdin`
/// a stdin pipe), nothing else of the monitor's.
fn only_stdio_case(name: &str, stdin: bool) {
    let mut c = Container::new(name, &["sleep", "1000"]);
    if stdin {
        c.extra_args = vec!["--stdin".into()];
    }
    let pid = running_sleep(&mut c);
    let table = fd_table(pid);
    assert_eq!(
        table.keys().copied().collect::<Vec<_>>(),
        vec![0, 1, 2],
        "container fds: {table:?}"
    );
    let what = if stdin { "container -i" } else { "container" };
    check_stdio_pipes(&table, &fd_table(c.conmon_pid()), stdin, what);
    kill_and_wait(&c, pid);
}

#[test]
fn container_gets_only_stdio() {
    if skip_without_runtime("container_gets_only_stdio") {
        return;
    }
    only_stdio_case("hyg-ctr-fds", false);
}

#[test]
fn container_with_stdin_gets_only_stdio_pipes() {
    if skip_without_runtime("container_with_stdin_gets_only_stdio_pipes") {
        return;
    }
    only_stdio_case("hyg-ctr-stdin", true);
}

#[test]
fn preserved_fd_reaches_the_container_at_3_and_nothing_else() {
    if skip_without_runtime("preserved_fd_reaches_the_container_at_3_and_nothing_else") {
        return;
    }
    // Podman --preserve-fds 1: the fd is conmon's fd 3 (sync/start pipes at
    // 4/5) and `--runtime-opt --preserve-fds=1` makes runc pass it on.
    let (rd, wr) = cloexec_pipe();
    let wr_target = fs::read_link(format!("/proc/self/fd/{}", wr.as_raw_fd()))
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut c = Container::new("hyg-preserve", &["sleep", "1000"]);
    c.tail_args = vec!["--runtime-opt".into(), "--preserve-fds=1".into()];
    let l = c.launch_with_preserved_fds(&[wr.as_raw_fd()]);
    let pid = l.expect_pid("data");
    drop(wr);
    c.start();
    wait_for_exec(pid, "sleep", T);
    let table = fd_table(pid);
    assert_eq!(
        table.keys().copied().collect::<Vec<_>>(),
        vec![0, 1, 2, 3],
        "container fds: {table:?}"
    );
    assert_eq!(table[&3], wr_target, "fd 3 is the preserved fd");
    let monitor = fd_table(c.conmon_pid());
    check_stdio_pipes(&table, &monitor, false, "container with a preserved fd");
    // The monitor holds it too while the container runs (closed at shutdown).
    assert!(
        targets(&monitor).contains(&wr_target.as_str()),
        "monitor fds {monitor:?}"
    );
    kill_and_wait(&c, pid);
    // Every holder is gone: the read end sees EOF.
    match read_packet(rd.as_raw_fd(), Duration::from_secs(5)) {
        Packet::Eof => {}
        Packet::Timeout => panic!(
            "the preserved fd is still open somewhere after the container and monitor exited"
        ),
        Packet::Data(d) => panic!("unexpected data {}", show(&d)),
    }
}

// --- (b) exec process and terminal container ------------------------------------------

#[test]
fn exec_process_gets_only_stdio() {
    if skip_without_runtime("exec_process_gets_only_stdio") {
        return;
    }
    let mut main = Container::new("hyg-exec-main", &["sleep", "1000"]);
    let main_pid = running_sleep(&mut main);
    let mut e = Container::exec_in(&main, "hyg-exec", &oci_process(&["sleep", "999"], false));
    let l = e.launch();
    let pid = l.expect_pid("data");
    wait_for_exec(pid, "sleep", T);
    let table = fd_table(pid);
    assert_eq!(
        table.keys().copied().collect::<Vec<_>>(),
        vec![0, 1, 2],
        "exec process fds: {table:?}"
    );
    check_stdio_pipes(&table, &fd_table(e.conmon_pid()), false, "exec process");
    // Nothing of the main container's monitor either.
    let main_monitor = fd_table(main.conmon_pid());
    for t in targets(&table) {
        assert!(
            t == "/dev/null" || !targets(&main_monitor).contains(&t),
            "exec fd {t} belongs to the main monitor"
        );
    }
    unsafe { libc::kill(pid, libc::SIGKILL) };
    match e.next_sync_packet(T) {
        Packet::Data(d) => assert_eq!(show(&d), show(b"{\"data\": 137}\n")),
        _ => panic!("no exit status message; {}", e.conmon_stderr()),
    }
    e.wait_conmon_exit(T);
    kill_and_wait(&main, main_pid);
}

/// A `-t` container (`process.terminal: true`) with its own TMPDIR.
fn tty_container(name: &str, args: &[&str]) -> Container {
    let mut c = Container::new(name, args);
    c.edit_config(|v| v["process"]["terminal"] = serde_json::Value::Bool(true));
    let tmp = c.root().join("tmp");
    fs::create_dir(&tmp).unwrap();
    c.env.push(("TMPDIR".into(), tmp.display().to_string()));
    c.extra_args.push("-t".into());
    c
}

#[test]
fn terminal_container_gets_only_the_pty() {
    if skip_without_runtime("terminal_container_gets_only_the_pty") {
        return;
    }
    let mut c = tty_container("hyg-tty", &["sleep", "1000"]);
    let pid = running_sleep(&mut c);
    let table = fd_table(pid);
    assert_eq!(
        table.keys().copied().collect::<Vec<_>>(),
        vec![0, 1, 2],
        "terminal container fds: {table:?}"
    );
    assert!(
        regex::Regex::new(r"^/dev/pts/\d+$")
            .unwrap()
            .is_match(&table[&0]),
        "fd 0 {:?}",
        table[&0]
    );
    assert_eq!(table[&1], table[&0], "fd 1 is the pty");
    assert_eq!(table[&2], table[&0], "fd 2 is the pty");
    // The console socket (and its directory) are gone.
    assert_eq!(
        fs::read_dir(c.root().join("tmp")).unwrap().count(),
        0,
        "TMPDIR not empty after start"
    );
    // The monitor holds the pty master, no console socket.
    let monitor = fd_table(c.conmon_pid());
    let ptmx = regex::Regex::new(r"^/dev/(pts/)?ptmx$").unwrap();
    assert!(
        monitor.values().any(|t| ptmx.is_match(t)),
        "monitor has no pty master: {monitor:?}"
    );
    assert!(
        !monitor.values().any(|t| t.contains("conmon-term")),
        "monitor still holds the console socket path: {monitor:?}"
    );
    kill_and_wait(&c, pid);
}

// --- (c) LISTEN_PID ----------------------------------------------------------------

#[test]
fn garbage_listen_pid_fails_the_create() {
    if skip_without_runtime("garbage_listen_pid_fails_the_create") {
        return;
    }
    let mut c = Container::new("hyg-listen-pid", &["sleep", "1000"]);
    c.env
        .push(("LISTEN_PID".into(), "garbage-listen-pid".into()));
    let l = c.launch();
    assert_eq!(l.status.code(), Some(0), "launcher: {}", l.describe());
    let msg = l
        .sync_msg
        .clone()
        .unwrap_or_else(|| panic!("no sync message: {}", l.describe()));
    let (data, message) = parse_sync_message(&msg, "data");
    assert_eq!(data, -1, "{}", show(&msg));
    let message = message.unwrap_or_default();
    assert!(
        message.contains("Invalid LISTEN_PID garbage-li"),
        "message {message:?}"
    );
    assert!(
        !message.contains("garbage-lis"),
        "only the first 10 characters are quoted: {message:?}"
    );
    c.wait_conmon_exit(T);
    // The runtime never ran: no container, no exit file.
    let st = run_with_timeout(Command::new(runtime_binary()).args(["state", &c.id]), T);
    assert!(
        !st.status.success(),
        "runc knows the container: {}",
        st.stdout_str()
    );
    assert!(!c.exit_file().exists(), "exit file after a failed create");
}

/// conmon parses `LISTEN_PID` with `strtol` into an int and only checks
/// `errno == 0 && pid > 0` (strerror(0) = "Success" in the message):
/// a numeric prefix, leading blanks and a long that truncates to a positive
/// int are all accepted.
#[test]
fn listen_pid_is_parsed_like_strtol() {
    if skip_without_runtime("listen_pid_is_parsed_like_strtol") {
        return;
    }
    for (i, v) in ["123abc", " 77", "99999999999"].iter().enumerate() {
        let mut c = Container::new(&format!("hyg-lpid-ok-{i}"), &["sleep", "1000"]);
        c.env.push(("LISTEN_PID".into(), v.to_string()));
        let pid = running_sleep(&mut c);
        kill_and_wait(&c, pid);
    }
    let mut c = Container::new("hyg-lpid-zero", &["sleep", "1000"]);
    c.env.push(("LISTEN_PID".into(), "0".into()));
    let l = c.launch();
    let msg = l
        .sync_msg
        .clone()
        .unwrap_or_else(|| panic!("no sync message: {}", l.describe()));
    assert_eq!(
        show(&msg),
        show(b"{\"data\": -1, \"message\": \"[conmon:e]: Invalid LISTEN_PID 0 Success\\n\"}\n")
    );
    c.wait_conmon_exit(T);
}

// --- (d) seccomp notify ----------------------------------------------------------

#[test]
fn seccomp_notify_socket_closes_sync_pipe_without_pid() {
    if skip_without_runtime("seccomp_notify_socket_closes_sync_pipe_without_pid") {
        return;
    }
    let dir = tempdir("hyg-seccomp");
    let sock = dir.path().join("seccomp.sock");
    let mut c = Container::new("hyg-seccomp", &["sleep", "1000"]);
    c.extra_args = vec!["--seccomp-notify-socket".into(), sock.display().to_string()];
    let l = c.launch();
    assert_eq!(
        l.status.code(),
        Some(0),
        "the launcher daemonized: {}",
        l.describe()
    );
    assert!(
        l.first_packet_eof,
        "sync pipe must close without a message: {}",
        l.describe()
    );
    c.wait_conmon_exit(T);
    let st = run_with_timeout(Command::new(runtime_binary()).args(["state", &c.id]), T);
    assert!(
        !st.status.success(),
        "runc knows the container: {}",
        st.stdout_str()
    );
    assert!(!c.exit_file().exists(), "no exit file");
    assert!(fs::symlink_metadata(&sock).is_err(), "no seccomp socket");
    assert!(
        fs::symlink_metadata(c.attach_path()).is_err(),
        "no attach socket (it exits before creating it)"
    );
}

// --- (e) the monitor's own fds ------------------------------------------------------

#[test]
fn monitor_fds_after_start() {
    if skip_without_runtime("monitor_fds_after_start") {
        return;
    }
    let mut c = Container::new("hyg-monitor-fds", &["sleep", "1000"]);
    let pid = running_sleep(&mut c);
    let mpid = c.conmon_pid();
    let table = fd_table(mpid);
    for fd in [0, 1, 2] {
        assert_eq!(
            table.get(&fd).map(|s| s.as_str()),
            Some("/dev/null"),
            "monitor fd {fd}: {table:?}"
        );
    }
    let engine_stdio = [
        c.root().join("conmon.stdout"),
        c.root().join("conmon.stderr"),
    ];
    for (fd, t) in &table {
        for e in &engine_stdio {
            assert_ne!(
                Path::new(t),
                e.as_path(),
                "monitor fd {fd} is the engine's stdio {t}"
            );
        }
    }
    // What it must hold: the log, ctl, winsz, the container's stdout/stderr pipes.
    let tset = targets(&table);
    for p in [
        c.log_path.clone(),
        c.bundle.join("ctl"),
        c.bundle.join("winsz"),
    ] {
        assert!(
            tset.contains(&p.to_str().unwrap()),
            "monitor does not hold {}: {table:?}",
            p.display()
        );
    }
    let ctr = fd_table(pid);
    for fd in [1, 2] {
        assert!(
            tset.contains(&ctr[&fd].as_str()),
            "monitor does not hold the container's fd {fd} pipe"
        );
    }
    // The attach listener: one of the monitor's sockets is a listening
    // SEQPACKET socket bound at …/attach (bound through /proc/self/fd/N/).
    let unix = fs::read_to_string("/proc/net/unix").unwrap();
    let listeners: Vec<&str> = unix
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 8
                && f[3] == "00010000"
                && f[4] == "0005"
                && f[7].ends_with("/attach")
                && tset.contains(&format!("socket:[{}]", f[6]).as_str())
        })
        .collect();
    assert_eq!(
        listeners.len(),
        1,
        "attach listeners among the monitor's fds: {listeners:?}"
    );
    // fds the test process itself inherited without CLOEXEC (none in a clean
    // environment) reach the monitor unchanged and stay open (§11.1);
    // everything else above stdio is close-on-exec.
    let inherited = inherited_fds();
    for (fd, t) in &inherited {
        assert_eq!(
            table.get(fd),
            Some(t),
            "inherited fd {fd} not kept by the monitor"
        );
    }
    for fd in table
        .keys()
        .filter(|&&fd| fd > 2 && !inherited.contains_key(&fd))
    {
        let flags = fd_open_flags(mpid, *fd).unwrap_or(0);
        assert!(
            flags & libc::O_CLOEXEC as i64 != 0,
            "monitor fd {fd} ({}) is not CLOEXEC",
            table[fd]
        );
    }
    // The start pipe was closed after the start byte (§3.5): our end hangs up.
    let mut pfd = libc::pollfd {
        fd: c.start.as_ref().unwrap().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let r = unsafe { libc::poll(&mut pfd, 1, 1000) };
    assert!(
        r == 1 && pfd.revents & libc::POLLHUP != 0,
        "start pipe still open in the monitor (revents {:#x})",
        pfd.revents
    );
    kill_and_wait(&c, pid);
}

// --- (f) modes of sockets, FIFOs, log --------------------------------------------------

fn mode_of(p: &Path) -> u32 {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("stat {}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn attach_socket_fifos_and_log_are_private() {
    if skip_without_runtime("attach_socket_fifos_and_log_are_private") {
        return;
    }
    let mut c = Container::new("hyg-modes", &["sleep", "1000"]);
    // A permissive caller umask must not loosen anything (the monitor sets 0022).
    c.umask = Some(0);
    let pid = running_sleep(&mut c);
    let attach = c.attach_path();
    assert!(fs::symlink_metadata(&attach)
        .unwrap()
        .file_type()
        .is_socket());
    assert_eq!(mode_of(&attach), 0o700, "attach socket mode");
    for f in ["ctl", "winsz"] {
        let p = c.bundle.join(f);
        assert!(
            fs::symlink_metadata(&p).unwrap().file_type().is_fifo(),
            "{f} is a FIFO"
        );
        assert_eq!(mode_of(&p), 0o640, "{f} mode");
    }
    assert_eq!(mode_of(&c.log_path), 0o640, "log file mode");
    kill_and_wait(&c, pid);
}

#[test]
fn console_socket_is_private_and_gone_after_start() {
    if skip_without_runtime("console_socket_is_private_and_gone_after_start") {
        return;
    }
    // A wrapper runtime records the console socket (and its directory) as
    // the runtime sees them, then runs runc.
    let wrapdir = tempdir("hyg-console-rt");
    let wrapper = wrapdir.path().join("runtime");
    let record = wrapdir.path().join("console.stat");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n\
             prev=''\n\
             for a in \"$@\"; do\n\
               if [ \"$prev\" = --console-socket ]; then\n\
                 stat -c '%a %F %n' \"$a\" \"$(dirname \"$a\")\" > '{rec}.tmp'; mv '{rec}.tmp' '{rec}'\n\
               fi\n\
               prev=\"$a\"\n\
             done\n\
             exec '{runc}' \"$@\"\n",
            rec = record.display(),
            runc = runtime_binary().display()
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = tty_container("hyg-console", &["sleep", "1000"]);
    c.runtime = wrapper.clone();
    c.umask = Some(0);
    let pid = running_sleep(&mut c);
    let rec = fs::read_to_string(&record).expect("the runtime saw --console-socket");
    let lines: Vec<&str> = rec.lines().collect();
    assert_eq!(lines.len(), 2, "{rec:?}");
    let tmp = fs::canonicalize(c.root().join("tmp")).unwrap();
    let sock_re = regex::Regex::new(&format!(
        r"^700 socket {}/conmon-term\.[A-Za-z0-9]{{6}}(/[^/]+)?$",
        regex::escape(&tmp.display().to_string())
    ))
    .unwrap();
    assert!(sock_re.is_match(lines[0]), "console socket: {:?}", lines[0]);
    let sock_path = lines[0]
        .splitn(3, ' ')
        .nth(2)
        .unwrap()
        .trim_start_matches("socket ");
    let dir = Path::new(sock_path).parent().unwrap();
    if dir != tmp {
        // vigil: a private directory of its own.
        assert_eq!(
            lines[1],
            format!("700 directory {}", dir.display()),
            "console socket directory"
        );
    }
    assert_eq!(
        fs::read_dir(&tmp).unwrap().count(),
        0,
        "console socket left in TMPDIR after start"
    );
    kill_and_wait(&c, pid);
}

#[test]
fn notify_socket_is_the_world_writable_exception() {
    if skip_without_runtime("notify_socket_is_the_world_writable_exception") {
        return;
    }
    let host = tempdir("hyg-notify-host");
    let mut c = Container::new("hyg-notify", &["sleep", "1000"]);
    fs::create_dir(c.bundle.join("notify")).unwrap();
    c.umask = Some(0o077);
    c.extra_args = vec![
        "--sdnotify-socket".into(),
        host.path().join("notify.sock").display().to_string(),
    ];
    let pid = running_sleep(&mut c);
    let p = c.bundle.join("notify/notify.sock");
    assert!(fs::symlink_metadata(&p).unwrap().file_type().is_socket());
    assert_eq!(
        mode_of(&p),
        0o777,
        "notify.sock mode (documented exception)"
    );
    kill_and_wait(&c, pid);
}
