//! Exec sessions (`-e --exec-process-spec`) with the real runtime
//! (conmon-interface §3.4-3.6, §8.1, §8.4, §10.1; contract §6, §14; conmon's
//! 08-exec.bats): sync messages for API 1 and legacy, `--exec-attach` with
//! `_OCI_ATTACHPIPE` and the second start byte, exec with a terminal, exec
//! stdin through the attach socket, `-T` timeouts (also with `--sync`), and a
//! runtime failure (nonexistent binary) reported on the sync pipe.

mod common;

use common::*;
use std::fs;
use std::os::fd::AsRawFd;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn s(x: &str) -> String {
    x.to_string()
}

/// A running main container; `sleep 1000` unless a script is given.
fn main_container(name: &str, args: &[&str]) -> Container {
    let mut c = Container::new(name, args);
    let l = c.launch();
    l.expect_pid("data");
    c.start();
    c
}

/// A `sleep 1000` main container `<name>-main` and an exec session `name`
/// of `args` in it (not launched yet).
fn exec_in_sleeping_main(name: &str, args: &[&str], tty: bool) -> (Container, Container) {
    let main = main_container(&format!("{name}-main"), &["sleep", "1000"]);
    let e = Container::exec_in(&main, name, &oci_process(args, tty));
    (main, e)
}

fn stop_main(c: &Container) {
    c.runtime_kill("KILL");
    assert_eq!(c.wait_exit_file(T), b"137");
    c.wait_conmon_exit(T);
}

fn expect_sync(c: &Container, expected: &[u8], what: &str) {
    match c.next_sync_packet(T) {
        Packet::Data(d) => assert_eq!(show(&d), show(expected), "{what}"),
        Packet::Eof => panic!(
            "{what}: sync pipe closed; conmon stderr {}",
            c.conmon_stderr()
        ),
        Packet::Timeout => panic!("{what}: no sync message"),
    }
}

fn expect_sync_eof(c: &Container) {
    match c.next_sync_packet(T) {
        Packet::Eof => {}
        Packet::Data(d) => panic!("unexpected extra sync message {}", show(&d)),
        Packet::Timeout => panic!("sync pipe not closed"),
    }
}

fn exit_dir_entries(c: &Container) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(&c.exit_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn api1_reports_pid_then_status_and_writes_exit_file_named_by_container_id() {
    if skip_without_runtime(
        "api1_reports_pid_then_status_and_writes_exit_file_named_by_container_id",
    ) {
        return;
    }
    let (main, mut e) = exec_in_sleeping_main(
        "exec-api1",
        &["sh", "-c", "echo from-exec; echo err-exec >&2; exit 7"],
        false,
    );
    e.log_specs = vec![format!("k8s-file:{}", e.log_path.display())];
    let l = e.launch();
    let pid = l.expect_pid("data");
    assert_eq!(
        fs::read_to_string(&e.pidfile).unwrap(),
        pid.to_string(),
        "exec pid file"
    );
    expect_sync(&e, b"{\"data\": 7}\n", "second message: exit status");
    expect_sync_eof(&e);
    assert_eq!(e.wait_exit_file(T), b"7");
    assert_eq!(
        exit_dir_entries(&e),
        vec![main.id.clone()],
        "exit file named by the container id"
    );
    e.wait_conmon_exit(T);
    let recs = parse_k8s_log(&e.read_log());
    let mut t = triples(&recs);
    t.sort();
    assert_eq!(
        t,
        vec![
            (s("stderr"), 'F', s("err-exec")),
            (s("stdout"), 'F', s("from-exec"))
        ]
    );
    // The main container is unaffected and its log has no exec output.
    assert!(
        main.exit_file().exists() == false,
        "main container must keep running"
    );
    assert_eq!(main.read_log(), b"");
    stop_main(&main);
}

#[test]
fn legacy_exec_reports_only_exit_code_and_logs_separately() {
    if skip_without_runtime("legacy_exec_reports_only_exit_code_and_logs_separately") {
        return;
    }
    // 08-exec.bats: the container waits for a file the exec creates.
    let main = main_container(
        "exec-legacy-main",
        &[
            "sh",
            "-c",
            "echo 'Hello there!'; while [ ! -e /tmp/exec-done ]; do sleep 0.05; done",
        ],
    );
    main.wait_log_contains("Hello there!", T);
    let mut e = Container::exec_in(
        &main,
        "exec-legacy",
        &oci_process(
            &["sh", "-c", "echo 'Hello from exec!'; touch /tmp/exec-done"],
            false,
        ),
    );
    e.api_version = false;
    e.log_specs = vec![format!("k8s-file:{}", e.log_path.display())];
    // No --api-version and no --cuuid (not required for a legacy exec).
    let args = args_without_option(&e.conmon_args(), "-u");
    let mut child = e.spawn_with_args(args);
    assert_eq!(
        e.wait_spawned(&mut child, T).code(),
        Some(0),
        "launcher; {}",
        e.conmon_stderr()
    );
    // Legacy: no pid message, only the final exit code.
    expect_sync(&e, b"{\"exit_code\": 0}\n", "legacy exec");
    expect_sync_eof(&e);
    e.expect_exit_and_log(b"0", &[("stdout", 'F', "Hello from exec!")], T);
    main.expect_exit_and_log(b"0", &[("stdout", 'F', "Hello there!")], T);
}

/// An exec session with `--exec-attach` and `_OCI_ATTACHPIPE` on fd 5;
/// returns the parent end of the attach pipe.
fn with_attach_pipe(e: &mut Container) -> std::os::fd::OwnedFd {
    let (parent, child) = seqpacket_pair();
    // Leaked into the fd table until conmon is spawned; closed right after.
    let raw = child.as_raw_fd();
    e.extra_fds.push((raw, 5));
    e.env.push(("_OCI_ATTACHPIPE".into(), "5".into()));
    e.extra_args.push("--exec-attach".into());
    std::mem::forget(child);
    parent
}

fn close_raw(fd: i32) {
    unsafe { libc::close(fd) };
}

#[test]
fn exec_attach_handshake_and_second_start_byte_gate_the_runtime() {
    if skip_without_runtime("exec_attach_handshake_and_second_start_byte_gate_the_runtime") {
        return;
    }
    let (main, mut e) = exec_in_sleeping_main(
        "exec-attach",
        &["sh", "-c", "echo exec-output; echo exec-err >&2"],
        false,
    );
    let attach_pipe = with_attach_pipe(&mut e);
    let mut child = e.spawn();
    close_raw(e.extra_fds[0].0);
    assert_eq!(
        e.wait_spawned(&mut child, T).code(),
        Some(0),
        "launcher; {}",
        e.conmon_stderr()
    );
    match read_packet(attach_pipe.as_raw_fd(), T) {
        Packet::Data(d) => assert_eq!(show(&d), show(b"{\"data\": 0}\n"), "attach pipe message"),
        Packet::Eof => panic!("attach pipe closed; conmon stderr {}", e.conmon_stderr()),
        Packet::Timeout => panic!("no attach pipe message"),
    }
    // The attach socket is ready; the runtime has not run yet.
    let client = AttachClient::connect_or_panic(&e.attach_path());
    match e.next_sync_packet(Duration::from_millis(700)) {
        Packet::Timeout => {}
        Packet::Data(d) => panic!("pid message before the second start byte: {}", show(&d)),
        Packet::Eof => panic!("sync pipe closed early; {}", e.conmon_stderr()),
    }
    assert!(
        !e.pidfile.exists(),
        "runtime exec ran before the second start byte"
    );
    match client.recv(Duration::from_millis(300)) {
        Packet::Timeout => {}
        Packet::Data(d) => panic!("exec output before the second start byte: {}", show(&d)),
        Packet::Eof => panic!("attach connection closed early"),
    }
    e.send_start_byte();
    let pid_msg = match e.next_sync_packet(T) {
        Packet::Data(d) => d,
        _ => panic!(
            "no pid message after the second start byte; {}",
            e.conmon_stderr()
        ),
    };
    let (pid, msg) = parse_sync_message(&pid_msg, "data");
    assert!(pid > 0 && msg.is_none(), "pid message {}", show(&pid_msg));
    let out = client.read_to_eof(T);
    assert_eq!(show(&out.stdout), show(b"exec-output\n"));
    assert_eq!(show(&out.stderr), show(b"exec-err\n"));
    expect_sync(&e, b"{\"data\": 0}\n", "exit status");
    assert_eq!(e.wait_exit_file(T), b"0");
    e.wait_conmon_exit(T);
    stop_main(&main);
}

#[test]
fn exec_stdin_through_attach_socket() {
    if skip_without_runtime("exec_stdin_through_attach_socket") {
        return;
    }
    // podman exec -i: input through the socket, half-close = EOF for `cat`.
    let (main, mut e) =
        exec_in_sleeping_main("exec-stdin", &["sh", "-c", "cat; echo cat-done"], false);
    let attach_pipe = with_attach_pipe(&mut e);
    e.extra_args.push("-i".into());
    let mut child = e.spawn();
    close_raw(e.extra_fds[0].0);
    assert_eq!(e.wait_spawned(&mut child, T).code(), Some(0));
    assert!(matches!(
        read_packet(attach_pipe.as_raw_fd(), T),
        Packet::Data(_)
    ));
    let client = AttachClient::connect_or_panic(&e.attach_path());
    e.send_start_byte();
    let (pid, _) = match e.next_sync_packet(T) {
        Packet::Data(d) => parse_sync_message(&d, "data"),
        _ => panic!("no pid message; {}", e.conmon_stderr()),
    };
    assert!(pid > 0);
    client.send(b"ping\n");
    client.send(b"pong\n");
    client.shutdown_write();
    let out = client.read_to_eof(T);
    assert_eq!(show(&out.stdout), show(b"ping\npong\ncat-done\n"));
    expect_sync(&e, b"{\"data\": 0}\n", "exit status");
    assert_eq!(e.wait_exit_file(T), b"0");
    stop_main(&main);
}

#[test]
fn exec_with_terminal() {
    if skip_without_runtime("exec_with_terminal") {
        return;
    }
    let (main, mut e) =
        exec_in_sleeping_main("exec-tty", &["sh", "-c", "tty; echo hi; exit 3"], true);
    e.log_specs = vec![format!("k8s-file:{}", e.log_path.display())];
    let tmp = e.root().join("tmp");
    fs::create_dir(&tmp).unwrap();
    e.env.push(("TMPDIR".into(), tmp.display().to_string()));
    e.extra_args.insert(0, "-t".into());
    let l = e.launch();
    l.expect_pid("data");
    expect_sync(&e, b"{\"data\": 3}\n", "exit status");
    assert_eq!(e.wait_exit_file(T), b"3");
    e.wait_conmon_exit(T);
    let t = triples(&parse_k8s_log(&e.read_log()));
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(
        regex::Regex::new(r"^/dev/pts/\d+\r$")
            .unwrap()
            .is_match(&t[0].2),
        "{t:?}"
    );
    assert_eq!(t[1], (s("stdout"), 'F', s("hi\r")));
    assert_eq!(
        fs::read_dir(&tmp).unwrap().count(),
        0,
        "console socket removed"
    );
    stop_main(&main);
}

#[test]
fn exec_timeout_reports_command_timed_out() {
    if skip_without_runtime("exec_timeout_reports_command_timed_out") {
        return;
    }
    let (main, mut e) = exec_in_sleeping_main("exec-timeout", &["sleep", "1000"], false);
    e.extra_args.extend(["-T".to_string(), "1".to_string()]);
    let l = e.launch();
    let pid = l.expect_pid("data");
    let t0 = std::time::Instant::now();
    expect_sync(
        &e,
        b"{\"data\": -1, \"message\": \"command timed out\"}\n",
        "timeout message",
    );
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "timeout took {:?} (the issue asks for -1 within 2 s)",
        t0.elapsed()
    );
    assert_eq!(e.wait_exit_file(T), b"-1");
    assert!(
        wait_for(T, || !pid_alive(pid)),
        "exec process must be killed"
    );
    e.wait_conmon_exit(T);
    assert!(
        main.exit_file().exists() == false,
        "the main container keeps running"
    );
    stop_main(&main);
}

#[test]
fn exec_timeout_with_sync_exits_255() {
    if skip_without_runtime("exec_timeout_with_sync_exits_255") {
        return;
    }
    let (main, mut e) = exec_in_sleeping_main("exec-timeout-sync", &["sleep", "1000"], false);
    e.extra_args
        .extend(["-T".to_string(), "1".to_string(), "--sync".to_string()]);
    let mut child = e.spawn();
    let (pid, _) = match e.next_sync_packet(T) {
        Packet::Data(d) => parse_sync_message(&d, "data"),
        _ => panic!("no pid message; {}", e.conmon_stderr()),
    };
    assert!(pid > 0);
    expect_sync(
        &e,
        b"{\"data\": -1, \"message\": \"command timed out\"}\n",
        "timeout message",
    );
    let st = e.wait_spawned(&mut child, T);
    assert_eq!(
        st.code(),
        Some(255),
        "--sync: conmon exits 255 after a timeout ({})",
        describe_status(&st)
    );
    assert_eq!(fs::read(e.exit_file()).unwrap(), b"-1");
    stop_main(&main);
}

#[test]
fn exec_of_missing_binary_reports_runtime_error() {
    if skip_without_runtime("exec_of_missing_binary_reports_runtime_error") {
        return;
    }
    let (main, mut e) = exec_in_sleeping_main("exec-missing", &["/no/such/binary"], false);
    let l = e.launch();
    let msg = l
        .sync_msg
        .clone()
        .unwrap_or_else(|| panic!("no sync message: {}", l.describe()));
    let (data, message) = parse_sync_message(&msg, "data");
    assert_eq!(data, -1, "{}", show(&msg));
    assert!(message.is_some(), "no message member: {}", show(&msg));
    let v: serde_json::Value = serde_json::from_slice(&msg).expect("sync message is JSON");
    let message = v["message"].as_str().unwrap().to_string();
    assert!(message.contains("exec failed"), "message {message:?}");
    assert!(message.contains("/no/such/binary"), "message {message:?}");
    assert!(
        message.contains("no such file or directory"),
        "message {message:?}"
    );
    assert!(msg.len() < 4096);
    e.wait_conmon_exit(T);
    assert_eq!(
        exit_dir_entries(&e),
        Vec::<String>::new(),
        "no exit file after a failed exec"
    );
    stop_main(&main);
}

#[test]
fn exec_tty_initial_size_written_before_second_start_byte() {
    if skip_without_runtime("exec_tty_initial_size_written_before_second_start_byte") {
        return;
    }
    // podman exec -t: the initial size goes to <exec-bundle>/ctl right after
    // the attach-ready message, before the process is started. (The process
    // sleeps a little: runc may start it before the monitor got the pty.)
    let (main, mut e) =
        exec_in_sleeping_main("exec-tty-size", &["sh", "-c", "sleep 0.5; stty size"], true);
    let tmp = e.root().join("tmp");
    fs::create_dir(&tmp).unwrap();
    e.env.push(("TMPDIR".into(), tmp.display().to_string()));
    let attach_pipe = with_attach_pipe(&mut e);
    e.extra_args.insert(0, "-t".into());
    let mut child = e.spawn();
    close_raw(e.extra_fds[0].0);
    assert_eq!(
        e.wait_spawned(&mut child, T).code(),
        Some(0),
        "launcher; {}",
        e.conmon_stderr()
    );
    match read_packet(attach_pipe.as_raw_fd(), T) {
        Packet::Data(d) => assert_eq!(show(&d), show(b"{\"data\": 0}\n")),
        _ => panic!("no attach pipe message; {}", e.conmon_stderr()),
    }
    // The monitor only reads ctl once the runtime has finished: the line
    // waits in the FIFO (Podman opens it O_WRONLY|O_NONBLOCK and writes).
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(e.bundle.join("ctl"))
            .expect("open exec ctl O_WRONLY|O_NONBLOCK (the monitor must hold the read side)");
        f.write_all(b"1 11 22\n").unwrap();
    }
    let client = AttachClient::connect_or_panic(&e.attach_path());
    e.send_start_byte();
    match e.next_sync_packet(T) {
        Packet::Data(d) => assert!(parse_sync_message(&d, "data").0 > 0, "{}", show(&d)),
        _ => panic!("no pid message; {}", e.conmon_stderr()),
    }
    let out = client.read_to_eof(T);
    assert_eq!(show(&out.stdout), show(b"11 22\r\n"));
    expect_sync(&e, b"{\"data\": 0}\n", "exit status");
    assert_eq!(e.wait_exit_file(T), b"0");
    stop_main(&main);
}
