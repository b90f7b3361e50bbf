//! Exit handling with the real runtime: exit files (spec §8.1, §8.2), the
//! exit command (§8.3), --timeout (§8.4), signal forwarding (§11.2),
//! --sync (§2.2, §2.10).

mod common;

use common::*;
use std::fs;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

fn exit_code_case(name: &str, args: &[&str], expected: &[u8]) {
    let mut c = Container::new(name, args);
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, expected, "exit file content {}", show(&code));
    let persist = fs::read(c.persist_dir.join("exit")).expect("<persist-dir>/exit");
    assert_eq!(persist, expected, "persist exit content {}", show(&persist));
    c.wait_conmon_exit(T);
}

#[test]
fn exit_file_zero() {
    if skip_without_runtime("exit_file_zero") {
        return;
    }
    exit_code_case("exit-0", &["sh", "-c", "exit 0"], b"0");
}

#[test]
fn exit_file_three() {
    if skip_without_runtime("exit_file_three") {
        return;
    }
    exit_code_case("exit-3", &["sh", "-c", "exit 3"], b"3");
}

#[test]
fn exit_file_shell_reported_137() {
    if skip_without_runtime("exit_file_shell_reported_137") {
        return;
    }
    // The init cannot SIGKILL itself (pid-namespace init is protected), so a
    // child kills itself and the shell exits with 128+9.
    exit_code_case(
        "exit-sh137",
        &["sh", "-c", "sh -c 'kill -9 $$'; exit $?"],
        b"137",
    );
}

#[test]
fn exit_file_killed_by_sigkill_is_137() {
    if skip_without_runtime("exit_file_killed_by_sigkill_is_137") {
        return;
    }
    let mut c = Container::new("exit-sigkill", &["sleep", "1000"]);
    let l = c.launch();
    l.expect_pid("data");
    c.start();
    c.runtime_kill("KILL");
    assert_eq!(c.wait_exit_file(T), b"137");
    assert_eq!(fs::read(c.persist_dir.join("exit")).unwrap(), b"137");
}

#[test]
fn exit_file_written_atomically_only_file_in_exit_dir() {
    if skip_without_runtime("exit_file_written_atomically_only_file_in_exit_dir") {
        return;
    }
    let mut c = Container::new("exit-dir-clean", &["sh", "-c", "exit 7"]);
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"7");
    c.wait_conmon_exit(T);
    let names: Vec<String> = fs::read_dir(&c.exit_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![c.id.clone()], "exit dir must only hold <cid>");
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(c.exit_file()).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode, 0o644, "exit file mode");
}

#[test]
fn exit_command_runs_after_exit_file_with_args() {
    if skip_without_runtime("exit_command_runs_after_exit_file_with_args") {
        return;
    }
    let mut c = Container::new("exit-cmd", &["sh", "-c", "exit 5"]);
    let script = c.root().join("exit-command.sh");
    let out = c.root().join("exit-command.out");
    fs::write(
        &script,
        "#!/bin/sh\n\
         out=\"$1\"; exitfile=\"$2\"; persist=\"$3\"; shift 3\n\
         {\n\
           if [ -e \"$exitfile\" ]; then echo 'exit-file=yes'; echo \"content=$(cat \"$exitfile\")\"; else echo 'exit-file=no'; fi\n\
           if [ -e \"$persist\" ]; then echo 'persist=yes'; else echo 'persist=no'; fi\n\
           echo \"argc=$#\"\n\
           for a in \"$@\"; do printf 'arg=[%s]\\n' \"$a\"; done\n\
           echo \"mark=$VIGIL_TEST_MARK\"\n\
           echo \"fd0=$(readlink /proc/$$/fd/0)\"\n\
           echo \"sockets=$(ls -l /proc/$$/fd | grep -c socket:)\"\n\
         } > \"$out.tmp\"\n\
         mv \"$out.tmp\" \"$out\"\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    }
    c.exit_command = Some((
        script.clone(),
        vec![
            out.to_string_lossy().into_owned(),
            c.exit_file().to_string_lossy().into_owned(),
            c.persist_dir.join("exit").to_string_lossy().into_owned(),
            "--root".into(),
            "".into(),
            "with space".into(),
            "container".into(),
            "cleanup".into(),
            c.id.clone(),
        ],
    ));
    c.env.push(("VIGIL_TEST_MARK".into(), "mark-42".into()));
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"5");
    assert!(wait_for(T, || out.exists()), "exit command did not run");
    let text = fs::read_to_string(&out).unwrap();
    let expected = format!(
        "exit-file=yes\ncontent=5\npersist=yes\nargc=6\narg=[--root]\narg=[]\narg=[with space]\n\
         arg=[container]\narg=[cleanup]\narg=[{}]\nmark=mark-42\nfd0=/dev/null\nsockets=0\n",
        c.id
    );
    assert_eq!(text, expected, "exit command record");
    c.wait_conmon_exit(T);
}

#[test]
fn daemon_exit_status_is_not_observable_but_daemon_exits() {
    if skip_without_runtime("daemon_exit_status_is_not_observable_but_daemon_exits") {
        return;
    }
    // The launcher exits 0 right after the fork; the daemon goes away once
    // the container exited and the exit file is written.
    let mut c = Container::new("daemon-exits", &["sh", "-c", "exit 9"]);
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"9");
    c.wait_conmon_exit(T);
}

/// Wait until the k8s log contains `needle` (container readiness marker).
fn wait_log_contains(c: &Container, needle: &str) {
    let ok = wait_for(T, || {
        fs::read(&c.log_path)
            .map(|l| String::from_utf8_lossy(&l).contains(needle))
            .unwrap_or(false)
    });
    assert!(
        ok,
        "log never contained {needle:?}: {}",
        show(&fs::read(&c.log_path).unwrap_or_default())
    );
}

#[test]
fn timeout_kills_container_and_writes_minus_one() {
    if skip_without_runtime("timeout_kills_container_and_writes_minus_one") {
        return;
    }
    let mut c = Container::new("exit-timeout", &["sleep", "1000"]);
    c.extra_args = vec!["--timeout=1".into()];
    let l = c.launch();
    let pid = l.expect_pid("data");
    let t0 = Instant::now();
    c.start();
    assert_eq!(c.wait_exit_file(T), b"-1", "timeout => -1");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "timeout took {:?} (the issue asks for -1 within 2 s)",
        t0.elapsed()
    );
    assert_eq!(fs::read(c.persist_dir.join("exit")).unwrap(), b"-1");
    assert!(
        wait_for(T, || !pid_alive(pid)),
        "container process must be killed"
    );
    c.wait_conmon_exit(T);
}

#[test]
fn sigterm_to_conmon_is_forwarded_to_container() {
    if skip_without_runtime("sigterm_to_conmon_is_forwarded_to_container") {
        return;
    }
    let mut c = Container::new(
        "exit-fwd",
        &[
            "sh",
            "-c",
            "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    let l = c.launch();
    l.expect_pid("data");
    c.start();
    wait_log_contains(&c, "ready");
    let daemon = c.conmon_pid();
    assert_eq!(unsafe { libc::kill(daemon, libc::SIGTERM) }, 0);
    assert_eq!(c.wait_exit_file(T), b"42");
    wait_log_contains(&c, "got-term");
    c.wait_conmon_exit(T);
}

#[test]
fn sync_mode_does_not_fork_and_exits_with_container_status() {
    if skip_without_runtime("sync_mode_does_not_fork_and_exits_with_container_status") {
        return;
    }
    let mut c = Container::new("exit-sync", &["sh", "-c", "exit 3"]);
    c.extra_args = vec!["--sync".into()];
    let mut child = c.spawn();
    let pid = match c.next_sync_packet(T) {
        Packet::Data(d) => {
            let text = String::from_utf8_lossy(&d).into_owned();
            let re = regex::Regex::new(r#"^\{"data": (\d+)\}\n$"#).unwrap();
            let caps = re
                .captures(&text)
                .unwrap_or_else(|| panic!("sync message {text:?}"));
            caps[1].parse::<i32>().unwrap()
        }
        Packet::Eof => panic!("sync pipe closed; stderr {}", c.conmon_stderr()),
        Packet::Timeout => panic!("no sync message"),
    };
    // The process we started is the monitor itself: parent of the container.
    let stat = proc_stat_fields(pid).unwrap();
    assert_eq!(
        stat[1],
        child.id().to_string(),
        "--sync: container init's parent is our child"
    );
    c.start();
    let status = c.wait_spawned(&mut child, T);
    assert_eq!(
        status.code(),
        Some(3),
        "--sync: conmon exits with the container status"
    );
    assert_eq!(fs::read(c.exit_file()).unwrap(), b"3");
    assert!(
        !c.conmon_pidfile.exists(),
        "--sync writes no conmon pidfile"
    );
}

#[test]
fn exit_delay_delays_exit_command() {
    if skip_without_runtime("exit_delay_delays_exit_command") {
        return;
    }
    let mut c = Container::new("exit-delay", &["sh", "-c", "exit 0"]);
    let out = c.root().join("delayed.out");
    c.exit_command = Some(("/bin/touch".into(), vec![out.display().to_string()]));
    c.extra_args = vec!["--exit-delay".into(), "2".into()];
    let (_pid, code) = c.run_to_exit(T);
    let t0 = Instant::now();
    assert_eq!(code, b"0");
    assert!(wait_for(T, || out.exists()), "exit command did not run");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "exit command ran {waited:?} after the exit file; --exit-delay 2 expected"
    );
    c.wait_conmon_exit(T);
}
