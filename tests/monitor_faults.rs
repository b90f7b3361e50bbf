//! Faults around the runtime: a runtime that hangs is killed after
//! `--runtime-timeout` (vigil extension) and the engine gets a clear message
//! on the sync pipe within that bound; a missing runtime fails validation.

mod common;

use common::*;
use std::fs;
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
