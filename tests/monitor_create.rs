//! Create path with the real runtime (runc), driven like Podman: sync pipe
//! messages (spec §3), conmon pidfile and daemon attributes (§2.2, §2.3),
//! runtime failure reporting (§2.6, §3.2).

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

#[test]
fn pid_message_api1_matches_container_pidfile() {
    if skip_without_runtime("pid_message_api1_matches_container_pidfile") {
        return;
    }
    let mut c = Container::new("pid-api1", &["sh", "-c", "exit 0"]);
    let l = c.launch();
    let pid = l.expect_pid("data");
    let pidfile = fs::read_to_string(&c.pidfile).expect("container pidfile");
    assert_eq!(
        pidfile.trim().parse::<i32>().unwrap(),
        pid,
        "pid message vs pidfile {pidfile:?}"
    );
    assert_eq!(
        l.sync_msg.as_deref().unwrap(),
        format!("{{\"data\": {pid}}}\n").as_bytes()
    );
    c.start();
    assert_eq!(c.wait_exit_file(T), b"0");
    // Nothing more is sent for create: after conmon exits the pipe is at EOF.
    c.wait_conmon_exit(T);
    match c.next_sync_packet(Duration::from_secs(5)) {
        Packet::Eof => {}
        Packet::Data(d) => panic!("unexpected second sync message {}", show(&d)),
        Packet::Timeout => panic!("sync pipe still open after conmon exited"),
    }
}

#[test]
fn pid_message_legacy_api_uses_pid_key() {
    if skip_without_runtime("pid_message_legacy_api_uses_pid_key") {
        return;
    }
    let mut c = Container::new("pid-legacy", &["sh", "-c", "exit 0"]);
    c.api_version = false;
    let l = c.launch();
    let pid = l.expect_pid("pid");
    assert_eq!(
        l.sync_msg.as_deref().unwrap(),
        format!("{{\"pid\": {pid}}}\n").as_bytes()
    );
    let pidfile = fs::read_to_string(&c.pidfile).unwrap();
    assert_eq!(pidfile.trim().parse::<i32>().unwrap(), pid);
    c.start();
    assert_eq!(c.wait_exit_file(T), b"0");
}

#[test]
fn conmon_pidfile_names_the_daemon() {
    if skip_without_runtime("conmon_pidfile_names_the_daemon") {
        return;
    }
    let mut c = Container::new("conmon-pidfile", &["sleep", "1000"]);
    let l = c.launch();
    let ctr_pid = l.expect_pid("data");
    let raw =
        fs::read(&c.conmon_pidfile).expect("conmon pidfile must exist when the launcher exits");
    assert!(
        !raw.is_empty() && raw.iter().all(|b| b.is_ascii_digit()),
        "conmon pidfile must be bare digits without newline: {}",
        show(&raw)
    );
    let daemon: i32 = std::str::from_utf8(&raw).unwrap().parse().unwrap();
    assert!(pid_alive(daemon), "daemon {daemon} not running");
    let exe = fs::read_link(format!("/proc/{daemon}/exe")).unwrap();
    assert!(
        exe.to_string_lossy().ends_with("/conmon"),
        "/proc/{daemon}/exe = {} must end in /conmon",
        exe.display()
    );

    // §2.3: new session, stdio on /dev/null, oom_score_adj -1000.
    let stat = proc_stat_fields(daemon).unwrap();
    // fields after comm: 0 state, 1 ppid, 2 pgrp, 3 session
    assert_eq!(
        stat[3],
        daemon.to_string(),
        "daemon must be a session leader (setsid)"
    );
    assert_eq!(
        stat[2],
        daemon.to_string(),
        "daemon must be a process group leader"
    );
    for fd in 0..3 {
        let target = fs::read_link(format!("/proc/{daemon}/fd/{fd}")).unwrap();
        assert_eq!(target.to_string_lossy(), "/dev/null", "daemon fd {fd}");
    }
    let adj = fs::read_to_string(format!("/proc/{daemon}/oom_score_adj")).unwrap();
    if can_lower_oom_score_adj() {
        assert_eq!(adj.trim(), "-1000", "daemon oom_score_adj");
    } else {
        eprintln!(
            "note: cannot lower oom_score_adj here (no CAP_SYS_RESOURCE); daemon has {}",
            adj.trim()
        );
    }

    // Subreaper: the container init (re-parented when `runc create` exited)
    // is a child of the daemon.
    let ctr_stat = proc_stat_fields(ctr_pid).unwrap();
    assert_eq!(
        ctr_stat[1],
        daemon.to_string(),
        "container init's parent must be conmon"
    );

    // The runtime child restores the caller's oom_score_adj.
    let ours = fs::read_to_string("/proc/self/oom_score_adj").unwrap();
    let ctr_adj = fs::read_to_string(format!("/proc/{ctr_pid}/oom_score_adj")).unwrap();
    assert_eq!(
        ctr_adj.trim(),
        ours.trim(),
        "container must get the caller's oom_score_adj, not -1000"
    );

    c.start();
    c.runtime_kill("KILL");
    assert_eq!(c.wait_exit_file(T), b"137");
    c.wait_conmon_exit(T);
}

/// Whether this environment allows setting oom_score_adj to -1000 (root
/// without CAP_SYS_RESOURCE in a sandbox cannot).
fn can_lower_oom_score_adj() -> bool {
    let out = run_with_timeout(
        std::process::Command::new("/bin/sh").args(["-c", "echo -1000 > /proc/self/oom_score_adj"]),
        Duration::from_secs(10),
    );
    out.status.success()
}

// --- runtime failures (§2.6, §3.2) ---------------------------------------------

#[test]
fn runc_create_failure_reports_minus_one_with_stderr() {
    if skip_without_runtime("runc_create_failure_reports_minus_one_with_stderr") {
        return;
    }
    let mut c = Container::new("runc-fail", &["/nonexistent"]);
    let l = c.launch();
    assert_eq!(
        l.status.code(),
        Some(0),
        "launcher exits 0: {}",
        l.describe()
    );
    let msg = l
        .sync_msg
        .clone()
        .unwrap_or_else(|| panic!("no sync message: {}", l.describe()));
    let text = String::from_utf8(msg.clone()).unwrap();
    assert!(
        text.starts_with("{\"data\": -1, \"message\": \""),
        "{text:?}"
    );
    assert!(text.ends_with("\"}\n"), "{text:?}");
    assert_eq!(text.matches('\n').count(), 1, "exactly one line: {text:?}");
    let v: serde_json::Value = serde_json::from_str(text.trim_end()).expect("valid JSON");
    assert_eq!(v["data"], -1);
    let m = v["message"].as_str().unwrap();
    assert!(m.contains("runc create failed"), "message: {m:?}");
    assert!(m.contains("/nonexistent"), "message: {m:?}");
    assert!(m.contains("no such file or directory"), "message: {m:?}");
    assert!(
        msg.len() < 4096,
        "message must fit Podman's 4096-byte reader"
    );
    // No exit file for a failed create.
    c.wait_conmon_exit(T);
    assert!(
        !c.exit_file().exists(),
        "no exit file after a failed create"
    );
    assert!(!c.persist_dir.join("exit").exists());
}

fn fake_failure(name: &str, stderr: &str, code: i32) -> (Container, Launch) {
    let dir = tempdir("fake");
    let rt = FakeRuntime::new(
        dir.path(),
        FakeMode::Fail {
            stderr: stderr.into(),
            code,
        },
        &[],
    );
    let mut c = Container::with_runtime(name, &rt.path);
    let l = c.launch();
    assert_eq!(
        l.status.code(),
        Some(0),
        "launcher exits 0: {}",
        l.describe()
    );
    c.wait_conmon_exit(T);
    assert!(
        !c.exit_file().exists(),
        "no exit file after a failed create"
    );
    drop(dir);
    (c, l)
}

#[test]
fn failing_runtime_message_is_its_stderr() {
    let (_c, l) = fake_failure("fake-fail", "boom: bad thing\n", 1);
    assert_eq!(
        l.sync_msg.as_deref().map(String::from_utf8_lossy),
        Some("{\"data\": -1, \"message\": \"boom: bad thing\\n\"}\n".into())
    );
}

#[test]
fn failing_runtime_message_json_escaping() {
    // §3.2 (2.2.x): \ " / LF CR TAB BS FF, other controls \u00xx, >= 0x80 raw.
    let stderr = "a\"b\\c/d\te\rf\u{1}g\u{8}h\u{c}i\u{7f}j\u{e9}k\n";
    let (_c, l) = fake_failure("fake-escape", stderr, 2);
    let expected =
        "{\"data\": -1, \"message\": \"a\\\"b\\\\c\\/d\\te\\rf\\u0001g\\bh\\fi\\u007fj\u{e9}k\\n\"}\n";
    assert_eq!(
        l.sync_msg.as_deref().map(String::from_utf8_lossy),
        Some(expected.into())
    );
}

#[test]
fn failing_runtime_legacy_key() {
    let dir = tempdir("fake");
    let rt = FakeRuntime::new(
        dir.path(),
        FakeMode::Fail {
            stderr: "legacy failure\n".into(),
            code: 1,
        },
        &[],
    );
    let mut c = Container::with_runtime("fake-fail-legacy", &rt.path);
    c.api_version = false;
    let l = c.launch();
    assert_eq!(
        l.sync_msg.as_deref().map(String::from_utf8_lossy),
        Some("{\"pid\": -1, \"message\": \"legacy failure\\n\"}\n".into()),
        "{}",
        l.describe()
    );
}

#[test]
fn failing_runtime_without_stderr_sends_bare_minus_one() {
    // 2.2.x: {"K": -1} even when the runtime printed nothing (2.1.6 sent nothing).
    let (_c, l) = fake_failure("fake-silent", "", 1);
    assert_eq!(
        l.sync_msg.as_deref().map(String::from_utf8_lossy),
        Some("{\"data\": -1}\n".into()),
        "{}",
        l.describe()
    );
}

// --- start pipe gate (§2.1 step 5, §3.5) and files ready before the pid (§8) -------

#[test]
fn start_pipe_gates_everything() {
    let dir = tempdir("fake");
    let rt = FakeRuntime::new(dir.path(), FakeMode::Sleep, &[]);
    let mut c = Container::with_runtime("start-gate", &rt.path);
    let mut child = c.spawn_without_start_byte();
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        child.try_wait().unwrap().is_none(),
        "conmon must block on the start pipe before forking"
    );
    assert!(
        !rt.argv_log.exists(),
        "runtime must not run before the start byte"
    );
    assert!(!c.conmon_pidfile.exists(), "no fork before the start byte");
    c.send_start_byte();
    let st = c.wait_spawned(&mut child, T);
    assert_eq!(st.code(), Some(0));
    let pid = match c.next_sync_packet(T) {
        Packet::Data(d) => {
            let t = String::from_utf8_lossy(&d).into_owned();
            t.strip_prefix("{\"data\": ")
                .and_then(|r| r.strip_suffix("}\n"))
                .unwrap()
                .parse()
                .unwrap()
        }
        _ => panic!("no pid message"),
    };
    c.fake_ctr_pid = Some(pid);
    assert_eq!(rt.invocations().len(), 1);
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(c.wait_exit_file(T), b"137");
}

#[test]
fn start_pipe_eof_is_accepted() {
    let dir = tempdir("fake");
    let rt = FakeRuntime::new(dir.path(), FakeMode::Sleep, &[]);
    let mut c = Container::with_runtime("start-eof", &rt.path);
    let mut child = c.spawn_without_start_byte();
    c.start = None; // close our end: conmon reads EOF
    let st = c.wait_spawned(&mut child, T);
    assert_eq!(st.code(), Some(0));
    match c.next_sync_packet(T) {
        Packet::Data(d) => {
            let t = String::from_utf8_lossy(&d).into_owned();
            let pid: i32 = t
                .strip_prefix("{\"data\": ")
                .and_then(|r| r.strip_suffix("}\n"))
                .unwrap()
                .parse()
                .unwrap();
            c.fake_ctr_pid = Some(pid);
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        _ => panic!("no pid message"),
    }
    assert_eq!(c.wait_exit_file(T), b"137");
}

#[test]
fn attach_socket_and_fifos_exist_when_pid_is_reported() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if skip_without_runtime("attach_socket_and_fifos_exist_when_pid_is_reported") {
        return;
    }
    let mut c = Container::new("bundle-files", &["sh", "-c", "exit 0"]);
    let l = c.launch();
    l.expect_pid("data");
    let attach = fs::symlink_metadata(c.bundle.join("attach")).expect("<bundle>/attach");
    assert!(attach.file_type().is_socket(), "attach must be a socket");
    assert_eq!(attach.permissions().mode() & 0o777, 0o700, "attach mode");
    for fifo in ["ctl", "winsz"] {
        let m = fs::symlink_metadata(c.bundle.join(fifo))
            .unwrap_or_else(|e| panic!("<bundle>/{fifo}: {e}"));
        assert!(m.file_type().is_fifo(), "{fifo} must be a FIFO");
        assert_eq!(m.permissions().mode() & 0o777, 0o640, "{fifo} mode");
    }
    // ctl has a reader: a non-blocking writer can open it (Podman's resize path).
    let ctl = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(c.bundle.join("ctl"));
    assert!(
        ctl.is_ok(),
        "O_WRONLY|O_NONBLOCK open of ctl must succeed: {:?}",
        ctl.err()
    );
    drop(ctl);
    c.start();
    assert_eq!(c.wait_exit_file(T), b"0");
    c.wait_conmon_exit(T);
    assert!(
        !c.bundle.join("attach").exists(),
        "attach socket removed at normal exit"
    );
    assert!(c.bundle.join("ctl").exists(), "ctl is not removed");
}

/// A bind mount onto a directory the busybox tree lacks runs on a private
/// copy of the tree: runc's mount-point directory lands in the copy, and the
/// shared tree (which other suites copy and compare) keeps its entries.
#[test]
fn bind_mount_points_stay_out_of_the_shared_rootfs() {
    if skip_without_runtime("bind_mount_points_stay_out_of_the_shared_rootfs") {
        return;
    }
    let name = format!("vigil-mountpoint-{}", std::process::id());
    let entries = |dir: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let before = entries(&rootfs());
    let src = tempdir("mountpoint-src");
    fs::write(src.path().join("marker"), b"seen\n").unwrap();
    let mounts = [BindMount {
        source: src.path().to_path_buf(),
        destination: format!("/{name}"),
        readonly: true,
    }];
    let mut c = Container::with_mounts(
        "mountpoint-private",
        &["cat", &format!("/{name}/marker")],
        &mounts,
    );
    let (_, code) = c.run_to_exit(T);
    assert_eq!(code, b"0", "exit status; log {}", show(&c.read_log()));
    assert!(
        String::from_utf8_lossy(&c.read_log()).contains("seen"),
        "the bind mount was visible: {}",
        show(&c.read_log())
    );
    assert!(
        c.root().join("rootfs").join(&name).is_dir(),
        "runc made its mount point in the container's private copy"
    );
    assert_eq!(entries(&rootfs()), before, "shared rootfs entries changed");
}
