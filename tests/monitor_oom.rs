//! OOM detection with the real runtime (conmon-interface §9, contract
//! §11.4): a container over its memory limit gets empty `oom` files in the
//! bundle and the persist dir (before the exit file is written), a normal
//! container none; an OOM-killed child in a surviving container counts too.
//! Also the `Cgroup appears to have been removed` string in the binary
//! (05-oom-detection.bats).

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);
const LIMIT: u64 = 20 * 1024 * 1024;

fn limited_container(name: &str, args: &[&str]) -> Container {
    let c = Container::new(name, args);
    c.edit_config(|v| {
        v["linux"]["resources"]["memory"] = serde_json::json!({"limit": LIMIT, "swap": LIMIT});
    });
    c
}

fn memory_cgroup_available() -> bool {
    std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()
        || fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .map(|s| s.contains("memory"))
            .unwrap_or(false)
}

fn skip(test: &str) -> bool {
    if skip_without_runtime(test) {
        return true;
    }
    if !memory_cgroup_available() {
        eprintln!("SKIPPED {test}: no memory cgroup controller");
        return true;
    }
    false
}

fn assert_oom_file(path: &std::path::Path) {
    let m = fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(m.is_file(), "{} must be a regular file", path.display());
    assert_eq!(m.len(), 0, "{} must be empty", path.display());
    assert_eq!(
        m.permissions().mode() & 0o777,
        0o644,
        "{} mode",
        path.display()
    );
}

#[test]
fn oom_killed_container_gets_oom_files_before_the_exit_file() {
    if skip("oom_killed_container_gets_oom_files_before_the_exit_file") {
        return;
    }
    let mut c = limited_container("oom-kill", &["tail", "/dev/zero"]);
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"137", "OOM kill = SIGKILL");
    // Podman reads <persist-dir>/oom right after the exit file: both must
    // already be there.
    assert_oom_file(&c.bundle.join("oom"));
    assert_oom_file(&c.persist_dir.join("oom"));
    c.wait_conmon_exit(T);
}

#[test]
fn oom_killed_child_in_surviving_container_is_reported() {
    if skip("oom_killed_child_in_surviving_container_is_reported") {
        return;
    }
    let mut c = limited_container("oom-child", &["sh", "-c", "tail /dev/zero; echo survived"]);
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"0", "the shell survives its OOM-killed child");
    assert_oom_file(&c.bundle.join("oom"));
    assert_oom_file(&c.persist_dir.join("oom"));
    c.wait_conmon_exit(T);
    let mut t = triples(&parse_k8s_log(&c.read_log()));
    t.sort();
    // busybox sh reports its SIGKILLed child on stderr.
    assert_eq!(
        t,
        vec![
            ("stderr".to_string(), 'F', "Killed".to_string()),
            ("stdout".to_string(), 'F', "survived".to_string())
        ]
    );
}

#[test]
fn normal_exit_has_no_oom_file() {
    if skip("normal_exit_has_no_oom_file") {
        return;
    }
    let mut c = limited_container(
        "oom-none",
        &["sh", "-c", "head -c 1000000 /dev/zero > /dev/null; exit 0"],
    );
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"0");
    c.wait_conmon_exit(T);
    assert!(!c.bundle.join("oom").exists(), "no OOM: no <bundle>/oom");
    assert!(
        !c.persist_dir.join("oom").exists(),
        "no OOM: no <persist-dir>/oom"
    );
}

#[test]
fn killed_container_is_not_an_oom() {
    if skip("killed_container_is_not_an_oom") {
        return;
    }
    // SIGKILL from outside (and the cgroup removal that follows) is no OOM.
    let mut c = limited_container("oom-sigkill", &["sleep", "1000"]);
    let l = c.launch();
    l.expect_pid("data");
    c.start();
    c.runtime_kill("KILL");
    assert_eq!(c.wait_exit_file(T), b"137");
    c.wait_conmon_exit(T);
    // runc delete removes the cgroup: the monitor has exited, nothing may appear.
    let _ = std::process::Command::new(runtime_binary())
        .args(["delete", "-f", &c.id])
        .output();
    assert!(!c.bundle.join("oom").exists());
    assert!(!c.persist_dir.join("oom").exists());
}

#[test]
fn binary_contains_cgroup_removed_message() {
    let bin = fs::read(conmon_binary()).unwrap();
    let needle = b"Cgroup appears to have been removed";
    assert!(
        bin.windows(needle.len()).any(|w| w == needle),
        "{} does not contain {:?}",
        conmon_binary().display(),
        String::from_utf8_lossy(needle)
    );
}
