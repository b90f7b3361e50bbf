//! Faults around the runtime: a runtime that hangs is killed after
//! `--runtime-timeout` (vigil extension) and the engine gets a clear message
//! on the sync pipe within that bound; a missing runtime fails validation.

mod common;

use common::*;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

fn script(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn hanging_runtime_is_killed_and_reported_within_the_bound() {
    let dir = tempdir("hangrt");
    let rt = script(
        dir.path(),
        "hang-runtime",
        "echo 'stuck in create' >&2\nexec sleep 1000",
    );
    let mut c = Container::with_runtime("fault-hang", &rt);
    c.extra_args = vec!["--runtime-timeout".into(), "1".into()];
    let t0 = Instant::now();
    let l = c.launch();
    let took = t0.elapsed();
    assert_eq!(
        l.sync_msg.as_deref().map(String::from_utf8_lossy),
        Some(
            "{\"data\": -1, \"message\": \"runtime did not finish within 1 seconds and was killed: stuck in create\\n\"}\n"
                .into()
        ),
        "{}",
        l.describe()
    );
    assert!(took < Duration::from_secs(10), "reported after {took:?}");
    assert!(!c.exit_file().exists(), "no exit file for a failed create");
}

#[test]
fn failing_runtime_reports_its_stderr() {
    let dir = tempdir("failrt");
    let rt = script(
        dir.path(),
        "fail-runtime",
        "echo 'no such image layer' >&2\nexit 2",
    );
    let mut c = Container::with_runtime("fault-fail", &rt);
    let l = c.launch();
    assert_eq!(
        l.sync_msg.as_deref().map(String::from_utf8_lossy),
        Some("{\"data\": -1, \"message\": \"no such image layer\\n\"}\n".into()),
        "{}",
        l.describe()
    );
}

#[test]
fn runtime_timeout_rejects_non_numbers() {
    let out = std::process::Command::new(conmon_binary())
        .args(["--cid", "x", "--runtime-timeout", "soon"])
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "conmon: option parsing failed: Cannot parse integer value \u{201c}soon\u{201d} for --runtime-timeout\n"
    );
}

/// Mounts a small tmpfs for the log and unmounts it when dropped.
struct SmallTmpfs {
    dir: tempfile::TempDir,
}

impl SmallTmpfs {
    fn new(size: &str) -> SmallTmpfs {
        let dir = tempdir("logfs");
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs");
        SmallTmpfs { dir }
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The log file system fills up: the container keeps running, the loss is
/// recorded, and logging resumes once space returns.
#[test]
fn full_log_filesystem_loses_only_what_did_not_fit_and_recovers() {
    if skip_without_runtime("full_log_filesystem_loses_only_what_did_not_fit_and_recovers") {
        return;
    }
    let fs_ = SmallTmpfs::new("1m");
    let ctl = tempdir("fullctl");
    let log = fs_.dir.path().join("ctr.log");
    // Phase 1 (logged), wait; phase 2 (disk full: lost), wait; phase 3 (logged).
    let script = "echo before-full; touch /ctl/phase1; while [ ! -e /ctl/go2 ]; do sleep 0.05; done; \
                  i=0; while [ $i -lt 2000 ]; do echo lost-line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done; \
                  touch /ctl/phase2; while [ ! -e /ctl/go3 ]; do sleep 0.05; done; echo after-recovery";
    let mut c = Container::with_mounts(
        "fault-full",
        &["sh", "-c", script],
        &[BindMount {
            source: fs::canonicalize(ctl.path()).unwrap(),
            destination: "/ctl".into(),
            readonly: false,
        }],
    );
    c.log_specs = vec![format!("k8s-file:{}", log.display())];
    let l = c.launch();
    l.expect_pid("data");
    c.start();
    assert!(
        wait_for(T, || ctl.path().join("phase1").exists()),
        "phase 1"
    );
    assert!(
        wait_for(T, || fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("before-full")),
        "logged before"
    );
    // Fill the file system.
    let filler = fs_.dir.path().join("filler");
    let _ = fs::write(&filler, vec![b'f'; 2 << 20]);
    fs::write(ctl.path().join("go2"), b"").unwrap();
    assert!(
        wait_for(T, || ctl.path().join("phase2").exists()),
        "the container kept running with the disk full"
    );
    fs::remove_file(&filler).unwrap();
    fs::write(ctl.path().join("go3"), b"").unwrap();
    assert_eq!(c.wait_exit_file(T), b"0");
    c.wait_conmon_exit(T);
    let data = fs::read(&log).unwrap();
    let text = String::from_utf8_lossy(&data);
    assert!(text.contains(" stdout F before-full\n"), "{text}");
    assert!(
        text.contains(" stdout F after-recovery\n"),
        "logging resumed: {text}"
    );
    let marker = text
        .lines()
        .find(|l| l.contains(" stderr F vigil: log write failed (No space left on device); "))
        .unwrap_or_else(|| panic!("no loss marker in {text}"));
    let lost: u64 = marker
        .split("; ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(lost > 0, "{marker}");
    // Every line is still a well-formed record (a torn record was terminated).
    for line in text.lines().filter(|l| !l.is_empty()) {
        assert!(
            vigil::logfmt::k8s::parse_record(line.as_bytes()).is_ok(),
            "malformed record {line:?}"
        );
    }
}

// --- the log file deleted or replaced under the monitor ----------------------------

/// A container that runs `script` with the test's directory `ctl` at /ctl.
fn ctl_container(name: &str, ctl: &tempfile::TempDir, script: &str) -> Container {
    Container::with_mounts(
        name,
        &["sh", "-c", script],
        &[BindMount {
            source: fs::canonicalize(ctl.path()).unwrap(),
            destination: "/ctl".into(),
            readonly: true,
        }],
    )
}

/// The stdout bytes of a k8s-file log.
fn stdout_of(log: &[u8]) -> String {
    String::from_utf8_lossy(&reconstruct(&parse_k8s_log_fast(log), "stdout")).into_owned()
}

/// The log is deleted while the container floods it: the monitor keeps
/// writing to the file it holds (a reader that kept it open sees every
/// record), the container is not disturbed, and a reopen (`2 0 0` on ctl)
/// recreates the file, which gets everything after. Nothing lost, nothing twice.
#[test]
fn log_deleted_while_logging_loses_nothing() {
    if skip_without_runtime("log_deleted_while_logging_loses_nothing") {
        return;
    }
    let ctl = tempdir("delctl");
    let mut c = ctl_container(
        "fault-logdel",
        &ctl,
        "i=0; while [ ! -e /ctl/stop ]; do echo n$i; i=$((i+1)); done; echo end",
    );
    let l = c.launch();
    l.expect_pid("data");
    c.start();
    c.wait_log_contains("n100\n", T);
    let mut held = fs::File::open(&c.log_path).unwrap();
    fs::remove_file(&c.log_path).unwrap();
    // Still logging into the deleted file.
    let len_then = held.metadata().unwrap().len();
    assert!(
        wait_for(T, || held.metadata().unwrap().len() > len_then + 4096),
        "the monitor stopped writing after the log was deleted"
    );
    assert!(pid_alive(c.conmon_pid()));
    c.write_ctl(b"2 0 0\n");
    assert!(
        wait_for(T, || fs::metadata(&c.log_path)
            .is_ok_and(|m| m.len() > 4096)),
        "the reopened log gets no output"
    );
    fs::write(ctl.path().join("stop"), b"").unwrap();
    assert_eq!(c.wait_exit_file(T), b"0");
    c.wait_conmon_exit(T);

    let mut old = Vec::new();
    std::io::Read::read_to_end(&mut held, &mut old).unwrap();
    let before = stdout_of(&old);
    let after = stdout_of(&c.read_log());
    assert!(!before.is_empty() && !after.is_empty());
    let all = before + &after;
    let mut lines: Vec<&str> = all.split_terminator('\n').collect();
    assert_eq!(lines.pop(), Some("end"), "last line");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, format!("n{i}"), "line {i} of {}", lines.len());
    }
}

/// The log path is replaced by a symlink to a file outside (what an attacker
/// with write access to the log directory could do): the monitor never writes
/// through it. It keeps its open file; a truncating reopen replaces the
/// symlink itself with a fresh file; a rotating reopen refuses the symlink.
fn log_replaced_by_symlink_case(name: &str, rotate: bool) {
    let ctl = tempdir("replctl");
    let outside = tempdir("outside");
    let sentinel = outside.path().join("precious");
    fs::write(&sentinel, b"sentinel\n").unwrap();
    let mut c = ctl_container(
        name,
        &ctl,
        "echo before; while [ ! -e /ctl/go1 ]; do sleep 0.05; done; echo after; \
         while [ ! -e /ctl/go2 ]; do sleep 0.05; done; echo again",
    );
    if rotate {
        c.extra_args = vec!["--log-rotate".into()];
    }
    let l = c.launch();
    l.expect_pid("data");
    c.start();
    c.wait_log_contains("before", T);
    let mut held = fs::File::open(&c.log_path).unwrap();
    let link = c.log_path.with_extension("evil");
    std::os::unix::fs::symlink(&sentinel, &link).unwrap();
    fs::rename(&link, &c.log_path).unwrap();

    fs::write(ctl.path().join("go1"), b"").unwrap();
    let held_len = |h: &fs::File| h.metadata().unwrap().len();
    let len_before = held_len(&held);
    assert!(
        wait_for(T, || held_len(&held) > len_before),
        "`after` never reached the file the monitor holds"
    );
    c.write_ctl(b"2 0 0\n");
    let replaced = || fs::symlink_metadata(&c.log_path).is_ok_and(|m| m.file_type().is_file());
    if rotate {
        // Rotation validates the path and gives up on a symlink.
        assert!(!replaced(), "rotation went through a symlink");
    } else {
        assert!(
            wait_for(T, replaced),
            "truncating reopen did not replace the symlink"
        );
    }
    fs::write(ctl.path().join("go2"), b"").unwrap();
    assert_eq!(c.wait_exit_file(T), b"0");
    c.wait_conmon_exit(T);

    assert_eq!(
        fs::read(&sentinel).unwrap(),
        b"sentinel\n",
        "wrote through the symlink"
    );
    let mut old = Vec::new();
    std::io::Read::read_to_end(&mut held, &mut old).unwrap();
    if rotate {
        assert_eq!(stdout_of(&old), "before\nafter\nagain\n");
        assert!(fs::symlink_metadata(&c.log_path)
            .unwrap()
            .file_type()
            .is_symlink());
    } else {
        assert_eq!(stdout_of(&old), "before\nafter\n");
        assert_eq!(stdout_of(&c.read_log()), "again\n");
    }
}

#[test]
fn log_replaced_by_a_symlink_is_not_followed_on_reopen() {
    if skip_without_runtime("log_replaced_by_a_symlink_is_not_followed_on_reopen") {
        return;
    }
    log_replaced_by_symlink_case("fault-logsym", false);
}

#[test]
fn log_replaced_by_a_symlink_is_not_followed_on_rotation() {
    if skip_without_runtime("log_replaced_by_a_symlink_is_not_followed_on_rotation") {
        return;
    }
    log_replaced_by_symlink_case("fault-logsymrot", true);
}

// --- the engine killed right after spawning the monitor ----------------------------

/// Give the engine's ends of the sync and start pipes to a stand-in engine
/// process (fds 3 and 4 of a `sleep`), drop the test's copies, and SIGKILL
/// it: from the monitor's side exactly what an engine killed at that moment
/// looks like (the kernel closes its ends).
fn kill_engine_holding_the_pipes(c: &mut Container) {
    let sync = c.sync.take().expect("spawned");
    let start = c.start.take().expect("spawned");
    let (s, st) = (sync.as_raw_fd(), start.as_raw_fd());
    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("1000");
    // SAFETY: only dup2 between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if libc::dup2(s, 3) < 0 || libc::dup2(st, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut engine = cmd.spawn().expect("spawn the stand-in engine");
    drop(sync);
    drop(start);
    engine.kill().expect("SIGKILL the engine");
    engine.wait().expect("reap the engine");
}

/// The engine dies before (`start_byte` false) or after writing the start
/// byte, before reading the pid. The monitor must neither die nor hang on
/// the closed pipes: it creates the container (EOF on the start pipe is a
/// go, EPIPE on the sync pipe is ignored), keeps it, and a recovering engine
/// can start it later: output logged, exit file written, monitor gone.
fn engine_killed_case(name: &str, start_byte: bool) {
    let mut c = Container::new(name, &["sh", "-c", "echo recovered; exit 7"]);
    let mut launcher = c.spawn_without_start_byte();
    if start_byte {
        c.send_start_byte();
    }
    kill_engine_holding_the_pipes(&mut c);
    let st = c.wait_spawned(&mut launcher, T);
    assert!(st.success(), "launcher: {st:?} {}", c.conmon_stderr());
    let created = || {
        let out = run_with_timeout(
            std::process::Command::new(runtime_binary()).args(["state", &c.id]),
            T,
        );
        out.status.success() && out.stdout_str().contains("\"status\": \"created\"")
    };
    assert!(wait_for(T, created), "the container was not created");
    let pid = c.conmon_pid();
    assert!(pid_alive(pid), "the monitor died with its engine");
    c.start();
    assert_eq!(c.wait_exit_file(T), b"7");
    c.wait_conmon_exit(T);
    assert_eq!(stdout_of(&c.read_log()), "recovered\n");
}

#[test]
fn engine_killed_before_the_start_byte() {
    if skip_without_runtime("engine_killed_before_the_start_byte") {
        return;
    }
    engine_killed_case("fault-engkill0", false);
}

#[test]
fn engine_killed_before_reading_the_pid() {
    if skip_without_runtime("engine_killed_before_reading_the_pid") {
        return;
    }
    engine_killed_case("fault-engkill1", true);
}
