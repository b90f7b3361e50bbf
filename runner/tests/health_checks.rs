//! Healthchecks kept by the monitor, end to end with real runc, as root:
//! healthy -> unhealthy after N failures -> the on-failure action (kill,
//! stop, restart) as state changes; the start period; the timeout; the exit
//! codes and messages of `healthcheck run`; bad flags; a command that does
//! not exist, a check printing megabytes, a container exiting during a
//! check; an image whose config carries a `Healthcheck` (no flags); and
//! `Config.Healthcheck`, `State.Health` and the ps STATUS compared with what
//! Podman 4.3.1 prints for the same flags.
//!
//! Short intervals (1 s) and waits on conditions with deadlines; no timing
//! is asserted. Containers use the busybox rootfs (`--rootfs`) or the test
//! image of scripts/make-test-images. Skipped with a message when not root
//! or the binaries are missing.

mod e2e_support;

use std::fs;
use std::path::Path;
use std::time::Duration;

use e2e_support::{podman_or_skip, test_images, text, vigil_and_busybox_rootfs, Vigil};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Long enough for a few 1 s checks on a loaded 2-core machine.
const LIMIT: Duration = Duration::from_secs(60);

fn setup(test: &str) -> Option<(Vigil, String)> {
    vigil_and_busybox_rootfs(test)
}

/// `run -d --name NAME FLAGS --rootfs ROOTFS sh -c SCRIPT`.
fn run_d(v: &Vigil, rootfs: &str, name: &str, flags: &[&str], script: &str) {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--rootfs", rootfs, "sh", "-c", script]);
    v.ok(&args);
}

fn health(v: &Vigil, name: &str) -> Value {
    v.inspect(name)["State"]["Health"].clone()
}

fn state(v: &Vigil, name: &str) -> String {
    v.inspect(name)["State"]["Status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn wait_health(v: &Vigil, name: &str, status: &str) {
    v.wait_for(&format!("{name} {status}"), LIMIT, |v| {
        health(v, name)["Status"] == status
    });
}

/// STATUS column of `ps -a` for `name`.
fn ps_status(v: &Vigil, name: &str) -> String {
    let out = v.ok(&["ps", "-a", "--format", "json"]);
    let list: Value = serde_json::from_str(&out).expect("ps json");
    list.as_array()
        .and_then(|a| a.iter().find(|c| c["Names"][0] == name))
        .map(|c| c["Status"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

/// A container that is healthy while /tmp/ok exists, made unhealthy by
/// removing it; on-failure `action` must then show as `expect`.
fn unhealthy_then(action: &str, test: &str, expect: impl Fn(&Vigil, &str)) {
    let Some((v, rootfs)) = setup(test) else {
        return;
    };
    let name = format!("hc-{action}");
    run_d(
        &v,
        &rootfs,
        &name,
        &[
            "--health-cmd",
            "cat /tmp/ok",
            "--health-interval",
            "1s",
            "--health-retries",
            "2",
            "--health-on-failure",
            action,
        ],
        "trap 'echo term; exit 7' TERM; echo started; echo fine > /tmp/ok; sleep 1000 & wait",
    );
    wait_health(&v, &name, "healthy");
    assert!(
        ps_status(&v, &name).ends_with(" (healthy)"),
        "{}",
        ps_status(&v, &name)
    );
    let h = health(&v, &name);
    assert_eq!(h["FailingStreak"], 0);
    let last = h["Log"]
        .as_array()
        .and_then(|l| l.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (last["ExitCode"].clone(), last["Output"].clone()),
        (0.into(), "fine".into())
    );
    v.ok(&["exec", &name, "rm", "/tmp/ok"]);
    expect(&v, &name);
}

#[test]
fn unhealthy_after_retries_then_kill() {
    unhealthy_then("kill", "unhealthy_after_retries_then_kill", |v, name| {
        v.wait_for("killed", LIMIT, |v| state(v, name) == "exited");
        let c = v.inspect(name);
        assert_eq!(c["State"]["ExitCode"], 137, "{c}");
        let h = &c["State"]["Health"];
        assert_eq!(h["Status"], "unhealthy");
        assert_eq!(h["FailingStreak"], 2);
        let log = h["Log"].as_array().expect("log");
        let last = &log[log.len() - 1];
        assert_eq!(last["ExitCode"], 1);
        assert!(
            last["Output"].as_str().unwrap().contains("No such file"),
            "{last}"
        );
        assert!(
            ps_status(v, name).ends_with(" (unhealthy)"),
            "{}",
            ps_status(v, name)
        );
    });
}

#[test]
fn unhealthy_then_stop_sends_the_stop_signal() {
    unhealthy_then(
        "stop",
        "unhealthy_then_stop_sends_the_stop_signal",
        |v, name| {
            v.wait_for("stopped", LIMIT, |v| state(v, name) == "exited");
            assert_eq!(v.inspect(name)["State"]["ExitCode"], 7);
            assert_eq!(text(&v.run(&["logs", name]).stdout), "started\nterm\n");
            assert_eq!(health(v, name)["Status"], "unhealthy");
        },
    );
}

#[test]
fn unhealthy_then_restart_runs_the_container_again() {
    unhealthy_then(
        "restart",
        "unhealthy_then_restart_runs_the_container_again",
        |v, name| {
            let first_pid = v.inspect(name)["State"]["Pid"].clone();
            v.wait_for("restarted", LIMIT, |v| {
                let c = v.inspect(name);
                c["State"]["Status"] == "running" && c["State"]["Pid"] != first_pid
            });
            v.wait_for("second run logged", LIMIT, |v| {
                text(&v.run(&["logs", name]).stdout) == "started\nterm\nstarted\n"
            });
            // The new run creates /tmp/ok again: healthy again, same container.
            wait_health(v, name, "healthy");
            assert_eq!(state(v, name), "running");
        },
    );
}

#[test]
fn start_period_failures_do_not_count() {
    let Some((v, rootfs)) = setup("start_period_failures_do_not_count") else {
        return;
    };
    let flags = |period: &'static str| {
        vec![
            "--health-cmd",
            "false",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
            "--health-start-period",
            period,
        ]
    };
    run_d(&v, &rootfs, "in-period", &flags("10m"), "sleep 1000");
    run_d(&v, &rootfs, "no-period", &flags("0s"), "sleep 1000");
    wait_health(&v, "no-period", "unhealthy");
    v.wait_for("two checks in the start period", LIMIT, |v| {
        health(v, "in-period")["Log"]
            .as_array()
            .is_some_and(|l| l.len() >= 2)
    });
    let h = health(&v, "in-period");
    assert_eq!(h["Status"], "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    assert!(ps_status(&v, "in-period").ends_with(" (starting)"));
    let out = v.ok(&["ps", "--filter", "health=starting", "--format", "json"]);
    let names: Vec<Value> = serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Names"][0].clone())
        .collect();
    assert_eq!(names, vec![Value::from("in-period")]);
    let out = v.ok(&[
        "ps",
        "-q",
        "--filter",
        "health=unhealthy",
        "--filter",
        "health=healthy",
    ]);
    assert_eq!(out.lines().count(), 1, "{out}");
    let out = v.run(&["ps", "--filter", "bogus=1"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("bogus is an invalid filter"));
}

#[test]
fn healthcheck_run_exit_codes_and_messages() {
    let Some((v, rootfs)) = setup("healthcheck_run_exit_codes_and_messages") else {
        return;
    };
    // No interval: checks run only when asked for.
    let hc = |cmd: &'static str| vec!["--health-cmd", cmd, "--health-interval", "disable"];
    run_d(&v, &rootfs, "good", &hc("echo ok"), "sleep 1000");
    run_d(&v, &rootfs, "bad", &hc("echo no; exit 3"), "sleep 1000");
    run_d(&v, &rootfs, "plain", &[], "sleep 1000");
    v.ok(&[
        "create",
        "--name",
        "created",
        "--health-cmd",
        "true",
        "--rootfs",
        &rootfs,
        "true",
    ]);

    let out = v.run(&["healthcheck", "run", "good"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), String::new())
    );
    assert_eq!(health(&v, "good")["Status"], "healthy");
    let out = v.run(&["healthcheck", "run", "bad"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(1), "unhealthy\n".into())
    );
    let h = health(&v, "bad");
    // One failure of three: still starting, as Podman.
    assert_eq!(
        (h["Status"].clone(), h["FailingStreak"].clone()),
        ("starting".into(), 1.into())
    );
    assert_eq!(h["Log"][0]["ExitCode"], 1);
    assert_eq!(h["Log"][0]["Output"], "no");

    let id = |n: &str| v.inspect(n)["Id"].as_str().unwrap().to_string();
    let out = v.run(&["healthcheck", "run", "plain"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains(&format!(
        "container {} has no defined healthcheck",
        id("plain")
    )));
    let out = v.run(&["healthcheck", "run", "created"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains(&format!("container {} is not running", id("created"))));
    let out = v.run(&["healthcheck", "run", "nosuch"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("unable to look up nosuch to perform a health check"));
    // At most five entries kept.
    for _ in 0..6 {
        v.run(&["healthcheck", "run", "bad"]);
    }
    let h = health(&v, "bad");
    assert_eq!(h["Log"].as_array().unwrap().len(), 5);
    assert_eq!(
        (h["Status"].clone(), h["FailingStreak"].clone()),
        ("unhealthy".into(), 7.into())
    );
}

#[test]
fn timeout_kills_the_check_and_is_recorded() {
    let Some((v, rootfs)) = setup("timeout_kills_the_check_and_is_recorded") else {
        return;
    };
    let flags = [
        "--health-cmd",
        "echo before; sleep 300",
        "--health-timeout",
        "1s",
        "--health-interval",
        "disable",
    ];
    run_d(&v, &rootfs, "slow", &flags, "sleep 1000");
    let out = v.run(&["healthcheck", "run", "slow"]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("healthcheck command exceeded timeout of 1s"));
    let h = health(&v, "slow");
    assert_eq!(h["Log"][0]["ExitCode"], -1);
    assert_eq!(h["Log"][0]["Output"], "before");
    // The check was killed, not left running in the container.
    v.wait_for("the check's sleep gone", LIMIT, |v| {
        !v.ok(&["exec", "slow", "ps", "-o", "args"])
            .contains("sleep 300")
    });
}

#[test]
fn bad_flags_are_named_and_create_nothing() {
    let Some((v, rootfs)) = setup("bad_flags_are_named_and_create_nothing") else {
        return;
    };
    let cases: &[(&[&str], &str)] = &[
        (&["--health-interval", "bogus"], "invalid healthcheck-interval: time: invalid duration \"bogus\""),
        (&["--health-interval", "1"], "invalid healthcheck-interval: time: missing unit in duration \"1\""),
        (&["--health-timeout", "0"], "healthcheck-timeout must be at least 1 second"),
        (&["--health-timeout", "x"], "invalid healthcheck-timeout: time: invalid duration \"x\""),
        (&["--health-start-period", "-1s"], "healthcheck-start-period must be 0 seconds or greater"),
        (&["--health-retries", "0"], "healthcheck-retries must be greater than 0"),
        (&["--health-retries", "x"], "invalid argument \"x\" for \"--health-retries\" flag: strconv.ParseUint: parsing \"x\": invalid syntax"),
        (&["--health-retries", "-1"], "invalid argument \"-1\" for \"--health-retries\" flag"),
        (&["--health-on-failure", "bogus"], "invalid on-failure action \"bogus\""),
        (&["--no-healthcheck"], "cannot specify both --no-healthcheck and --health-cmd"),
    ];
    for (flags, message) in cases {
        let mut args = vec!["create", "--health-cmd", "true"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--rootfs", &rootfs, "true"]);
        let out = v.run(&args);
        assert_eq!(out.status.code(), Some(125), "{flags:?}");
        assert!(
            text(&out.stderr).contains(message),
            "{flags:?}: {}",
            text(&out.stderr)
        );
    }
    let out = v.run(&["create", "--health-cmd", "[]", "--rootfs", &rootfs, "true"]);
    assert!(text(&out.stderr).contains("must define a healthcheck command for all healthchecks"));
    assert_eq!(v.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn missing_command_megabytes_and_exit_during_a_check() {
    let Some((v, rootfs)) = setup("missing_command_megabytes_and_exit_during_a_check") else {
        return;
    };
    let once = |cmd: &'static str| vec!["--health-cmd", cmd, "--health-interval", "disable"];
    run_d(
        &v,
        &rootfs,
        "missing",
        &once(r#"["/nosuch/cmd", "x"]"#),
        "sleep 1000",
    );
    let out = v.run(&["healthcheck", "run", "missing"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(1), "unhealthy\n".into())
    );
    let e = &health(&v, "missing")["Log"][0];
    assert_eq!(e["ExitCode"], 1);
    assert!(e["Output"].as_str().unwrap().contains("/nosuch/cmd"), "{e}");
    assert_eq!(state(&v, "missing"), "running");

    run_d(
        &v,
        &rootfs,
        "chatty",
        &once("printf 'a\\n\\n\\n'; yes | head -c 3000000"),
        "sleep 1000",
    );
    assert_eq!(
        v.run(&["healthcheck", "run", "chatty"]).status.code(),
        Some(0)
    );
    let out = health(&v, "chatty")["Log"][0]["Output"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(out.len(), 500);
    assert_eq!(out, format!("a\n\n\n{}", "y\n".repeat(248)));

    // The container exits while a check runs: the monitor ends normally.
    run_d(
        &v,
        &rootfs,
        "leaving",
        &["--health-cmd", "sleep 30", "--health-interval", "1s"],
        "sleep 3; exit 4",
    );
    v.wait_for("exited", LIMIT, |v| state(v, "leaving") == "exited");
    let c = v.inspect("leaving");
    assert_eq!(c["State"]["ExitCode"], 4, "{c}");
    assert_eq!(c["State"]["Error"], "", "{c}");
    assert_eq!(v.ok(&["wait", "leaving"]).trim(), "4");
}

/// A copy of the OCI layout `src` (ref `base`) whose image config carries
/// `healthcheck`: config blob, manifest and index rewritten with new digests.
fn layout_with_healthcheck(src: &Path, dst: &Path, healthcheck: Value) {
    let copy = Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(dst)
        .status()
        .expect("cp");
    assert!(copy.success());
    let blob = |d: &str| {
        dst.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let put = |bytes: &[u8]| {
        let digest = format!("sha256:{}", hex(&Sha256::digest(bytes)));
        fs::write(blob(&digest), bytes).unwrap();
        (digest, bytes.len())
    };
    let mut index: Value =
        serde_json::from_slice(&fs::read(dst.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "base")
        .expect("ref base");
    let mut manifest: Value =
        serde_json::from_slice(&fs::read(blob(entry["digest"].as_str().unwrap())).unwrap())
            .unwrap();
    let mut config: Value = serde_json::from_slice(
        &fs::read(blob(manifest["config"]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    config["config"]["Healthcheck"] = healthcheck;
    let (d, n) = put(&serde_json::to_vec(&config).unwrap());
    manifest["config"]["digest"] = d.into();
    manifest["config"]["size"] = n.into();
    let (d, n) = put(&serde_json::to_vec(&manifest).unwrap());
    entry["digest"] = d.into();
    entry["size"] = n.into();
    entry["annotations"]["org.opencontainers.image.ref.name"] = "hc".into();
    fs::write(dst.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

use std::process::Command;

#[test]
fn image_healthcheck_runs_without_flags() {
    let Some((v, _)) = setup("image_healthcheck_runs_without_flags") else {
        return;
    };
    let images = match test_images() {
        Ok(d) => d,
        Err(why) => return eprintln!("skipping image_healthcheck_runs_without_flags: {why}"),
    };
    let dst = v.dir.path().join("layout-hc");
    let hc = serde_json::json!({
        "Test": ["CMD-SHELL", "echo from-image"],
        "Interval": 1_000_000_000i64,
        "Timeout": 5_000_000_000i64,
        "Retries": 2
    });
    layout_with_healthcheck(&images.join("oci"), &dst, hc.clone());
    v.ok(&["load", "--layout", dst.to_str().unwrap()]);
    let image = "localhost/hc:latest";
    let out = v.run(&["run", "-d", "--name", "img", image, "-c", "sleep 1000"]);
    if out.status.code() != Some(0) {
        // The layout's ref name decides the tag; find what load named it.
        panic!("run {image}: {}\n{}", text(&out.stderr), v.ok(&["images"]));
    }
    assert_eq!(v.inspect("img")["Config"]["Healthcheck"], hc);
    wait_health(&v, "img", "healthy");
    assert_eq!(health(&v, "img")["Log"][0]["Output"], "from-image");
    // --no-healthcheck turns it off; --health-cmd replaces it.
    v.ok(&[
        "run",
        "-d",
        "--name",
        "off",
        "--no-healthcheck",
        image,
        "-c",
        "sleep 1000",
    ]);
    assert_eq!(
        v.inspect("off")["Config"]["Healthcheck"],
        serde_json::json!({"Test": ["NONE"]})
    );
    let out = v.run(&["healthcheck", "run", "off"]);
    assert!(text(&out.stderr).contains("has no defined healthcheck"));
}

/// `Config.Healthcheck`, the health status after one check and the ps
/// STATUS suffix, for the same flags in vigil and in Podman 4.3.1 (whose
/// `healthcheck run` works here without systemd).
#[test]
fn config_health_and_ps_match_podman() {
    let Some((v, _)) = setup("config_health_and_ps_match_podman") else {
        return;
    };
    let Some(podman) = podman_or_skip("config_health_and_ps_match_podman", "vfs") else {
        return;
    };
    let images = match test_images() {
        Ok(d) => d,
        Err(why) => return eprintln!("skipping config_health_and_ps_match_podman: {why}"),
    };
    let archive = images.join("docker.tar");
    let archive = archive.to_str().unwrap();
    v.ok(&["load", "-i", archive]);
    podman.ok(&["load", "-q", "-i", archive]);
    let image = "localhost/test:multi";
    let cases: &[&[&str]] = &[
        &[
            "--health-cmd",
            "echo hello; exit 0",
            "--health-interval",
            "disable",
        ],
        &[
            "--health-cmd",
            r#"["/bin/sh","-c","echo out; exit 3"]"#,
            "--health-retries",
            "1",
            "--health-interval",
            "0",
        ],
        &[
            "--health-cmd",
            "CMD  true  x",
            "--health-timeout",
            "90s",
            "--health-start-period",
            "3s",
            "--health-retries",
            "7",
        ],
        &["--health-cmd", r#"["a"]"#, "--health-interval", "500ms"],
        &["--health-cmd", "none"],
        &["--no-healthcheck"],
    ];
    for (i, flags) in cases.iter().enumerate() {
        let name = format!("p{i}");
        let mut args = vec!["run", "-d", "--name", name.as_str()];
        args.extend_from_slice(flags);
        // The image's entrypoint is /bin/sh.
        args.extend_from_slice(&[image, "-c", "sleep 1000"]);
        v.ok(&args);
        podman.ok(&args);
        let theirs: Value = serde_json::from_str(&podman.ok(&[
            "inspect",
            "--format",
            "{{json .Config.Healthcheck}}",
            &name,
        ]))
        .unwrap();
        assert_eq!(
            v.inspect(&name)["Config"]["Healthcheck"],
            theirs,
            "{flags:?}"
        );
        if i > 1 {
            continue;
        }
        assert_eq!(v.inspect(&name)["State"]["Status"], "running");
        let ours = v.run(&["healthcheck", "run", &name]);
        let theirs_run = podman.run(&["healthcheck", "run", &name]);
        assert_eq!(ours.status.code(), theirs_run.status.code(), "{flags:?}");
        assert_eq!(text(&ours.stdout), text(&theirs_run.stdout), "{flags:?}");
        let theirs: Value = serde_json::from_str(&podman.ok(&[
            "inspect",
            "--format",
            "{{json .State.Health}}",
            &name,
        ]))
        .unwrap();
        let ours = health(&v, &name);
        for key in ["Status", "FailingStreak"] {
            assert_eq!(ours[key], theirs[key], "{key} {flags:?}");
        }
        for key in ["ExitCode", "Output"] {
            assert_eq!(
                ours["Log"][0][key], theirs["Log"][0][key],
                "{key} {flags:?}"
            );
        }
        let suffix = |s: &str| {
            s.rsplit_once(" (")
                .map(|(_, h)| h.to_string())
                .unwrap_or_default()
        };
        let theirs_ps = podman.ok(&[
            "ps",
            "--filter",
            &format!("name=^{name}$"),
            "--format",
            "{{.Status}}",
        ]);
        assert_eq!(
            suffix(&ps_status(&v, &name)),
            suffix(theirs_ps.trim()),
            "{flags:?}"
        );
    }
}
