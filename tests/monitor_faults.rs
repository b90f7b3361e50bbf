//! Faults around the runtime: a runtime that hangs is killed after
//! `--runtime-timeout` (vigil extension) and the engine gets a clear message
//! on the sync pipe within that bound; a missing runtime fails validation.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

fn script(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn hanging_runtime_is_killed_and_reported_within_the_bound() {
    let dir = tempdir("hangrt");
    let rt = script(dir.path(), "hang-runtime", "echo 'stuck in create' >&2\nexec sleep 1000");
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
    let rt = script(dir.path(), "fail-runtime", "echo 'no such image layer' >&2\nexit 2");
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
