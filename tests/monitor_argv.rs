//! Exact runtime argv (spec §2.4) and the runtime child's environment
//! (§2.5, §3.1, §11.1), recorded with a fake runtime script. Also the exec
//! sync-pipe sequence (§3.4) and the inherited-fd lifetime (§2.9 step 6).
//! No real runtime and no root needed.

mod common;

use common::*;
use std::fs;
use std::os::fd::AsRawFd;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

struct Fake {
    _dir: tempfile::TempDir,
    rt: FakeRuntime,
}

fn fake(probe_fds: &[i32]) -> Fake {
    let dir = tempdir("fakert");
    let rt = FakeRuntime::new(dir.path(), FakeMode::Sleep, probe_fds);
    Fake { _dir: dir, rt }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Launch, expect `{"<key>": <pid>}`, remember the fake container pid.
fn launch_ok(c: &mut Container, key: &str) -> i32 {
    let l = c.launch();
    let pid = l.expect_pid(key);
    c.fake_ctr_pid = Some(pid);
    let from_file = fs::read_to_string(&c.pidfile).unwrap_or_default();
    assert_eq!(from_file, pid.to_string(), "pid message vs pidfile");
    pid
}

/// Stop the fake container (SIGTERM to `sleep`) and expect exit status 143.
fn terminate_and_expect_143(c: &Container, pid: i32) {
    assert!(pid_alive(pid));
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(c.wait_exit_file(T), b"143", "128 + SIGTERM");
    assert_eq!(fs::read(c.persist_dir.join("exit")).unwrap(), b"143");
    c.wait_conmon_exit(T);
}

fn single_invocation(f: &Fake) -> Vec<String> {
    let inv = f.rt.invocations();
    assert_eq!(inv.len(), 1, "runtime must be called exactly once: {inv:?}");
    inv[0].clone()
}

#[test]
fn create_argv_minimal() {
    let f = fake(&[]);
    let mut c = Container::with_runtime("argv-min", &f.rt.path);
    let pid = launch_ok(&mut c, "data");
    let argv = single_invocation(&f);
    assert_eq!(
        argv,
        vec![
            f.rt.path.display().to_string(),
            "create".into(),
            "--bundle".into(),
            c.bundle.display().to_string(),
            "--pid-file".into(),
            c.pidfile.display().to_string(),
            c.id.clone(),
        ]
    );
    terminate_and_expect_143(&c, pid);
}

#[test]
fn create_argv_with_everything() {
    let f = fake(&[]);
    let mut c = Container::with_runtime("argv-all", &f.rt.path);
    c.extra_args = strings(&[
        "-s",
        "--runtime-arg",
        "--root",
        "--runtime-arg",
        "/run/x",
        "--runtime-arg=--log-format=json",
        "--no-new-keyring",
        "--no-pivot",
        "--runtime-opt",
        "--preserve-fds",
        "--runtime-opt",
        "0",
        "--restore-arg",
        "--tcp-established",
        "--runtime-opt=c",
        "--runtime-arg",
        "",
    ]);
    let pid = launch_ok(&mut c, "data");
    let argv = single_invocation(&f);
    let mut expected = strings(&[
        &f.rt.path.display().to_string(),
        "--systemd-cgroup",
        "--root",
        "/run/x",
        "--log-format=json",
        "",
        "create",
        "--bundle",
        &c.bundle.display().to_string(),
        "--pid-file",
        &c.pidfile.display().to_string(),
        "--no-pivot",
        "--no-new-keyring",
        "--preserve-fds",
        "0",
        "--tcp-established",
        "c",
    ]);
    expected.push(c.id.clone());
    assert_eq!(argv, expected);
    terminate_and_expect_143(&c, pid);
}

#[test]
fn create_argv_defaults_bundle_and_pidfile_to_cwd() {
    let f = fake(&[]);
    let mut c = Container::with_runtime("argv-defaults", &f.rt.path);
    c.pass_bundle = false;
    c.pass_pidfile = false;
    // conmon's cwd is the container's root dir (see Container::launch).
    let cwd = c.root();
    c.pidfile = cwd.join(format!("pidfile-{}", c.id));
    let pid = launch_ok(&mut c, "data");
    let argv = single_invocation(&f);
    assert_eq!(
        argv,
        vec![
            f.rt.path.display().to_string(),
            "create".into(),
            "--bundle".into(),
            cwd.display().to_string(),
            "--pid-file".into(),
            c.pidfile.display().to_string(),
            c.id.clone(),
        ]
    );
    terminate_and_expect_143(&c, pid);
}

#[test]
fn restore_argv() {
    let f = fake(&[]);
    let mut c = Container::with_runtime("argv-restore", &f.rt.path);
    let image = c.bundle.join("checkpoint");
    c.extra_args = vec![
        "-s".into(),
        "--runtime-arg".into(),
        "--root=/run/y".into(),
        "--no-pivot".into(),
        "--no-new-keyring".into(),
        "--restore".into(),
        image.display().to_string(),
        "--runtime-opt".into(),
        "--tcp-established".into(),
        "--restore-arg".into(),
        "--file-locks".into(),
    ];
    let pid = launch_ok(&mut c, "data");
    let argv = single_invocation(&f);
    let b = c.bundle.display().to_string();
    let mut expected = strings(&[
        &f.rt.path.display().to_string(),
        "--systemd-cgroup",
        "--root=/run/y",
        "restore",
        "--bundle",
        &b,
        "--pid-file",
        &c.pidfile.display().to_string(),
        "--no-pivot",
        "--no-new-keyring",
        "--detach",
        "--image-path",
        &image.display().to_string(),
        "--work-path",
        &b,
        "--tcp-established",
        "--file-locks",
    ]);
    expected.push(c.id.clone());
    assert_eq!(argv, expected);
    terminate_and_expect_143(&c, pid);
}

fn exec_container(name: &str, f: &Fake) -> Container {
    let mut c = Container::with_runtime(name, &f.rt.path);
    let spec = c.bundle.join("exec-process-1234");
    fs::write(&spec, b"{}").unwrap();
    c.pidfile = c.bundle.join("exec_pid");
    c.log_specs = vec!["none".into()];
    c.conmon_pidfile_arg = true;
    c.extra_args = vec![
        "-s".into(),
        "--no-pivot".into(),
        "--no-new-keyring".into(),
        "--runtime-arg".into(),
        "--root".into(),
        "--runtime-arg".into(),
        "/run/z".into(),
        "-e".into(),
        "--exec-process-spec".into(),
        spec.display().to_string(),
        "--runtime-opt".into(),
        "--preserve-fds".into(),
        "--runtime-opt".into(),
        "0".into(),
    ];
    c
}

#[test]
fn exec_argv_and_sync_sequence_api1() {
    let f = fake(&[]);
    let mut c = exec_container("argv-exec", &f);
    let pid = launch_ok(&mut c, "data");
    let argv = single_invocation(&f);
    let mut expected = strings(&[
        &f.rt.path.display().to_string(),
        "--root",
        "/run/z",
        "exec",
        "--pid-file",
        &c.pidfile.display().to_string(),
        "--process",
        &c.bundle.join("exec-process-1234").display().to_string(),
        "--detach",
        "--preserve-fds",
        "0",
    ]);
    expected.push(c.id.clone());
    assert_eq!(
        argv, expected,
        "exec: no --systemd-cgroup/--no-pivot/--no-new-keyring"
    );
    unsafe { libc::kill(pid, libc::SIGTERM) };
    // Second message: the exit status.
    match c.next_sync_packet(T) {
        Packet::Data(d) => assert_eq!(show(&d), show(b"{\"data\": 143}\n")),
        Packet::Eof => panic!("sync pipe closed without the exit status message"),
        Packet::Timeout => panic!("no exit status message on the sync pipe"),
    }
    assert_eq!(c.wait_exit_file(T), b"143");
    c.wait_conmon_exit(T);
}

#[test]
fn exec_legacy_reports_only_exit_code() {
    let f = fake(&[]);
    let mut c = exec_container("argv-exec-legacy", &f);
    c.api_version = false;
    let mut child = c.spawn();
    let st = c.wait_spawned(&mut child, T);
    assert_eq!(st.code(), Some(0), "launcher; stderr {}", c.conmon_stderr());
    // Legacy exec sends nothing until the process exits.
    assert!(
        wait_for(T, || c.pidfile.exists()),
        "runtime did not write the exec pid file"
    );
    match c.next_sync_packet(Duration::from_millis(500)) {
        Packet::Timeout => {}
        Packet::Data(d) => panic!("unexpected early sync message {}", show(&d)),
        Packet::Eof => panic!("sync pipe closed early"),
    }
    let pid: i32 = fs::read_to_string(&c.pidfile).unwrap().parse().unwrap();
    c.fake_ctr_pid = Some(pid);
    unsafe { libc::kill(pid, libc::SIGTERM) };
    match c.next_sync_packet(T) {
        Packet::Data(d) => assert_eq!(show(&d), show(b"{\"exit_code\": 143}\n")),
        Packet::Eof => panic!("sync pipe closed without the exit_code message"),
        Packet::Timeout => panic!("no exit_code message"),
    }
    assert_eq!(c.wait_exit_file(T), b"143");
}

#[test]
fn terminal_mode_passes_console_socket_and_reports_missing_terminal() {
    let f = fake(&[]);
    let mut c = Container::with_runtime("argv-tty", &f.rt.path);
    let tmp = c.root().join("tmp");
    fs::create_dir(&tmp).unwrap();
    c.env.push(("TMPDIR".into(), tmp.display().to_string()));
    c.extra_args = vec!["-t".into()];
    let l = c.launch();
    if let Ok(p) = fs::read_to_string(&c.pidfile) {
        c.fake_ctr_pid = p.parse().ok();
    }
    assert_eq!(
        l.sync_msg.as_deref().map(String::from_utf8_lossy),
        Some("{\"data\": -1, \"message\": \"Runtime did not set up terminal\"}\n".into()),
        "{}",
        l.describe()
    );
    let argv = single_invocation(&f);
    let n = argv.len();
    assert!(n >= 3, "{argv:?}");
    assert_eq!(argv[n - 1], c.id);
    assert_eq!(argv[n - 3], "--console-socket", "{argv:?}");
    let sock = &argv[n - 2];
    // vigil binds the console socket inside a private 0700 directory
    // `<tmpdir>/conmon-term.XXXXXX/` (conmon binds `<tmpdir>/conmon-term.XXXXXX`).
    let prefix = format!("{}/conmon-term.", tmp.display());
    assert!(
        sock.starts_with(&prefix)
            && sock.len() == prefix.len() + 6 + "/console".len()
            && sock.ends_with("/console"),
        "console socket {sock:?} must be {prefix}XXXXXX/console"
    );
    assert!(
        !std::path::Path::new(sock).exists(),
        "console socket must be removed"
    );
    assert!(
        !std::path::Path::new(sock).parent().unwrap().exists(),
        "console socket dir must be removed"
    );
    assert_eq!(
        &argv[..n - 3],
        &[
            f.rt.path.display().to_string(),
            "create".into(),
            "--bundle".into(),
            c.bundle.display().to_string(),
            "--pid-file".into(),
            c.pidfile.display().to_string(),
        ]
    );
}

#[test]
fn runtime_child_environment_and_fds() {
    // Extra inherited fd 5 (a pipe write end): passed to the runtime,
    // held by conmon while the container runs, closed before the exit file.
    let f = fake(&[3, 4, 5]);
    let (rd, wr) = cloexec_pipe();
    let mut c = Container::with_runtime("argv-fds", &f.rt.path);
    c.extra_fds = vec![(wr.as_raw_fd(), 5)];
    c.env.push(("LISTEN_PID".into(), "1".into()));
    c.extra_args = vec!["--replace-listen-pid".into()];
    let pid = launch_ok(&mut c, "data");
    drop(wr);
    // (probe key, expected, why) as the fake runtime recorded them.
    for (key, want, why) in [
        ("3", "closed", "sync pipe must be CLOEXEC"),
        ("4", "closed", "start pipe must be CLOEXEC"),
        ("5", "open", "inherited fd 5 must reach the runtime"),
        ("sockets", "0", "no conmon sockets leak into the runtime"),
        ("fd0", "/dev/null", "stdin without -i"),
        ("fd1", "pipe:", "stdout is conmon's pipe"),
        ("fd2", "pipe:", "stderr is conmon's pipe"),
        ("syncpipe", "3", "_OCI_SYNCPIPE stays in the env"),
    ] {
        assert_eq!(f.rt.probe(key).as_deref(), Some(want), "{why}");
    }
    let self_pid = f.rt.probe("self").unwrap();
    assert_eq!(
        f.rt.probe("listen_pid"),
        Some(self_pid),
        "--replace-listen-pid: LISTEN_PID = the runtime's own pid"
    );

    // conmon holds fd 5 while the container runs.
    match read_packet(rd.as_raw_fd(), Duration::from_millis(300)) {
        Packet::Timeout => {}
        Packet::Eof => panic!("conmon closed the inherited fd while the container is running"),
        Packet::Data(d) => panic!("unexpected data {}", show(&d)),
    }
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(c.wait_exit_file(T), b"143");
    // Closed before the exit file was written: EOF right away.
    match read_packet(rd.as_raw_fd(), Duration::from_millis(100)) {
        Packet::Eof => {}
        Packet::Timeout => {
            panic!("inherited fd still open in conmon after the exit file was written")
        }
        Packet::Data(d) => panic!("unexpected data {}", show(&d)),
    }
    c.wait_conmon_exit(T);
}

#[test]
fn runtime_child_gets_umask_0022() {
    // §2.1 step 1 (2.1.8+): conmon sets umask 0022 whatever it inherited.
    let f = fake(&[]);
    let mut c = Container::with_runtime("argv-umask", &f.rt.path);
    c.umask = Some(0o077);
    let pid = launch_ok(&mut c, "data");
    assert_eq!(
        f.rt.probe("umask").as_deref(),
        Some("0022"),
        "started with umask 0077"
    );
    terminate_and_expect_143(&c, pid);
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(c.exit_file()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "exit file mode under umask 0022");
}
