//! The monitor's healthcheck extension (`--health-*`, see `conmon --help`),
//! driven directly as an engine would, with the real runtime: the health log
//! in Podman's format, checks on request over the ctl FIFO (`10 0 0`), the
//! on-failure kill, option validation, and a hanging check that never holds
//! up the container's log.

mod common;

use common::*;
use std::fs;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn health_log(c: &Container) -> serde_json::Value {
    fs::read(c.bundle.join("healthcheck.log"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null)
}

fn with_health(test: &str, script: &str, health: &[&str]) -> Container {
    let mut c = Container::new(test, &["sh", "-c", script]);
    c.extra_args = health.iter().map(|s| s.to_string()).collect();
    let l = c.launch();
    l.expect_pid("data");
    c.start();
    c
}

#[test]
fn scheduled_checks_write_podmans_health_log() {
    if skip_without_runtime("scheduled_checks_write_podmans_health_log") {
        return;
    }
    let c = with_health(
        "health-log",
        "sleep 1000",
        &[
            "--health-cmd",
            "/bin/sh",
            "--health-cmd",
            "-c",
            "--health-cmd",
            "echo hi; echo err >&2",
            "--health-interval",
            "1000",
        ],
    );
    assert!(
        wait_for(T, || health_log(&c)["Log"]
            .as_array()
            .is_some_and(|l| l.len() >= 2)),
        "{}",
        health_log(&c)
    );
    let log = health_log(&c);
    assert_eq!(log["Status"], "healthy");
    assert_eq!(log["FailingStreak"], 0);
    let e = &log["Log"][0];
    let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["End", "ExitCode", "Output", "Start"]);
    assert_eq!(
        (e["ExitCode"].clone(), e["Output"].clone()),
        (0.into(), "hi\nerr".into())
    );
    // Podman's key order in the file itself.
    let raw = fs::read_to_string(c.bundle.join("healthcheck.log")).unwrap();
    assert!(
        raw.starts_with("{\"Status\":\"healthy\",\"FailingStreak\":0,\"Log\":[{\"Start\":\""),
        "{raw}"
    );
    c.runtime_kill("KILL");
    assert_eq!(c.wait_exit_file(T), b"137");
    c.wait_conmon_exit(T);
}

#[test]
fn ctl_request_runs_a_check_and_kill_on_failure() {
    if skip_without_runtime("ctl_request_runs_a_check_and_kill_on_failure") {
        return;
    }
    // No schedule: checks only on request; one failure is enough.
    let c = with_health(
        "health-ctl",
        "sleep 1000",
        &[
            "--health-cmd",
            "false",
            "--health-interval",
            "0",
            "--health-retries",
            "1",
            "--health-on-failure",
            "kill",
        ],
    );
    assert!(wait_for(T, || health_log(&c)["Status"] == "starting"));
    c.write_ctl(b"10 0 0\n");
    assert_eq!(c.wait_exit_file(T), b"137");
    c.wait_conmon_exit(T);
    let log = health_log(&c);
    assert_eq!(
        (log["Status"].clone(), log["FailingStreak"].clone()),
        ("unhealthy".into(), 1.into())
    );
    assert_eq!(log["Log"][0]["ExitCode"], 1);
}

#[test]
fn a_hanging_check_does_not_hold_up_the_log() {
    if skip_without_runtime("a_hanging_check_does_not_hold_up_the_log") {
        return;
    }
    let c = with_health(
        "health-hang",
        "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done",
        &[
            "--health-cmd",
            "sleep",
            "--health-cmd",
            "30",
            "--health-interval",
            "500",
            "--health-timeout",
            "60000",
        ],
    );
    let pidfile = c.bundle.join("healthcheck.pid");
    assert!(wait_for(T, || fs::read_to_string(&pidfile)
        .is_ok_and(|p| !p.trim().is_empty())));
    let check: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let before = c.read_log().len();
    assert!(
        wait_for(T, || c.read_log().len() > before + 200),
        "log stalled during a check"
    );
    assert!(pid_alive(check), "the check should still run");
    c.runtime_kill("KILL");
    assert_eq!(c.wait_exit_file(T), b"137");
    c.wait_conmon_exit(T);
    // Abandoned with the container: not logged.
    assert_eq!(health_log(&c)["Log"], serde_json::Value::Null);
}

#[test]
fn health_options_are_validated() {
    let dir = tempdir("health-opts");
    let base = [
        "-c",
        "x",
        "-u",
        "x",
        "-r",
        "/bin/true",
        "-l",
        "none:",
        "--health-cmd",
        "true",
    ];
    for (extra, message) in [
        (
            &["--health-on-failure", "bogus"][..],
            "conmon: --health-on-failure must be none, kill, stop or restart, got bogus\n",
        ),
        (
            &["--health-retries", "0"][..],
            "conmon: --health-retries must be at least 1, got 0\n",
        ),
        (
            &["--health-interval", "-1"][..],
            "conmon: --health-interval must be non-negative, got -1\n",
        ),
        (
            &["--health-timeout", "0"][..],
            "conmon: --health-timeout must be at least 1 millisecond\n",
        ),
        (
            &["-e", "--exec-process-spec", "/p"][..],
            "conmon: --health-cmd needs a container (not --exec or --restore)\n",
        ),
    ] {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        let out = run_conmon(&args, dir.path());
        assert_eq!(out.code(), Some(1), "{extra:?}");
        assert!(
            out.stderr_str().ends_with(message),
            "{extra:?}: {}",
            out.stderr_str()
        );
    }
}
