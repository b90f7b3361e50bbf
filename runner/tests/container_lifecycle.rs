//! The container lifecycle end to end: the real `vigil` binary with the real
//! monitor and runc, as root, with private `--root`/`--runroot` directories.
//!
//! Environment: `VIGIL_BINARY` (default `<workspace>/target/release/vigil`),
//! `CONMON_BINARY` (default `<workspace>/target/release/conmon`),
//! `VIGIL_TEST_ROOTFS` (default `<workspace>/target/test-rootfs/busybox`, made
//! by scripts/make-test-rootfs). Containers use the rootfs with `--rootfs`, so
//! these tests do not depend on the image store.

mod e2e_support;

use std::process::Output;

use e2e_support::{test_image_archive, text, vigil_and_busybox_rootfs, Vigil};
use std::time::{Duration, Instant};

/// A private vigil (e2e_support's) and the busybox rootfs its containers
/// run from.
struct Lifecycle {
    vigil: Vigil,
    rootfs: String,
}

impl std::ops::Deref for Lifecycle {
    type Target = Vigil;

    fn deref(&self) -> &Vigil {
        &self.vigil
    }
}

fn setup(test: &str) -> Option<Lifecycle> {
    let (vigil, rootfs) = vigil_and_busybox_rootfs(test)?;
    Some(Lifecycle { vigil, rootfs })
}

impl Lifecycle {
    /// `vigil run --rootfs ROOTFS` with `flags` before it and the command after.
    fn run_container(&self, flags: &[&str], command: &[&str]) -> Output {
        let mut args = vec!["run"];
        args.extend(flags);
        args.extend(["--rootfs", self.rootfs.as_str()]);
        args.extend(command);
        self.run(&args)
    }

    /// Nothing of the containers is left: no mounts, no state, no data dirs.
    fn assert_clean(&self) {
        let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let base = self.dir.path().to_string_lossy().into_owned();
        assert!(!info.contains(&base), "mounts left under {base}");
        for d in [
            self.runroot().join("containers"),
            self.root().join("containers"),
        ] {
            let left = e2e_support::entries_but_lock(&d);
            assert!(left.is_empty(), "left in {}: {left:?}", d.display());
        }
    }
}

#[test]
fn foreground_run_relays_output_and_exit_codes() {
    let Some(v) = setup("foreground_run_relays_output_and_exit_codes") else {
        return;
    };
    let out = v.run_container(&["--rm"], &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");
    assert_eq!(out.status.code(), Some(3));

    let out = v.run_container(&["--rm"], &["true"]);
    assert_eq!(
        (out.status.code(), out.stdout.len()),
        (Some(0), 0),
        "{}",
        text(&out.stderr)
    );

    // The container's init ignores signals from inside its namespace: the
    // child dies of SIGKILL and the shell reports it as 137.
    let out = v.run_container(&["--rm"], &["sh", "-c", "sleep 100 & kill -9 $!; wait $!"]);
    assert_eq!(out.status.code(), Some(137), "{}", text(&out.stderr));

    // With a terminal everything is stdout, with the pty's line endings.
    let out = v.run_container(&["--rm", "-t"], &["sh", "-c", "tty; echo e >&2; exit 2"]);
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("/dev/pts/0\r\ne\r\n", Some(2))
    );

    let out = v.run_container(
        &["--rm", "-e", "FOO=bar", "-w", "/tmp"],
        &["sh", "-c", "echo $FOO $(pwd) $(hostname)"],
    );
    let line = text(&out.stdout);
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&words[..2], ["bar", "/tmp"], "{line}");
    assert_eq!(words[2].len(), 12, "hostname is the short id: {line}");
    v.assert_clean();
}

#[test]
fn runtime_errors_map_to_podman_exit_codes() {
    let Some(v) = setup("runtime_errors_map_to_podman_exit_codes") else {
        return;
    };
    let out = v.run_container(&["--rm"], &["/nonexistent"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no such file or directory"),
        "{}",
        text(&out.stderr)
    );
    let out = v.run_container(&["--rm"], &["/etc/passwd"]);
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
    let out = v.run(&["run", "--rm", "--rootfs", "/nonexistent-rootfs", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let out = v.run(&[
        "run",
        "--rm",
        "--network",
        "bogus",
        "--rootfs",
        v.rootfs.as_str(),
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
    v.assert_clean();
}

#[test]
fn interactive_run_forwards_stdin() {
    let Some(v) = setup("interactive_run_forwards_stdin") else {
        return;
    };
    let rootfs = v.rootfs.clone();
    let out = v.run_input(
        &[
            "run",
            "--rm",
            "-i",
            "--rootfs",
            &rootfs,
            "sh",
            "-c",
            "read x; echo got:$x; cat",
        ],
        b"hello\nrest\n",
    );
    assert_eq!(
        text(&out.stdout),
        "got:hello\nrest\n",
        "{}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
    v.assert_clean();
}

#[test]
fn detached_lifecycle_ps_logs_exec_stop_rm() {
    let Some(v) = setup("detached_lifecycle_ps_logs_exec_stop_rm") else {
        return;
    };
    let script = "trap 'echo bye; exit 0' TERM; echo one; echo two >&2; printf three; while :; do sleep 0.1; done";
    let out = v.run_container(&["-d", "--name", "web"], &["sh", "-c", script]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_string();
    assert_eq!(id.len(), 64, "run -d prints the full id: {id:?}");

    assert_eq!(v.ok(&["ps", "-q"]), format!("{}\n", &id[..12]));
    let ps = v.ok(&["ps"]);
    let lines: Vec<&str> = ps.lines().collect();
    assert_eq!(lines.len(), 2, "{ps}");
    assert!(lines[0].starts_with("CONTAINER ID  IMAGE"), "{ps}");
    assert!(
        lines[1].starts_with(&id[..12]) && lines[1].ends_with("web") && lines[1].contains("Up "),
        "{ps}"
    );

    // Wait for the output to reach the log.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !v.run(&["logs", "web"]).stdout.ends_with(b"three") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let logs = v.run(&["logs", "web"]);
    assert_eq!(text(&logs.stdout), "one\nthree");
    assert_eq!(text(&logs.stderr), "two\n");
    assert_eq!(v.ok(&["logs", "--tail", "1", "web"]), "three");
    let stamped = v.ok(&["logs", "-t", "web"]);
    let contents: Vec<&str> = stamped
        .split_inclusive('\n')
        .map(|line| {
            let (ts, rest) = line.split_once(' ').expect("timestamp, space, content");
            assert!(
                vigil::client::parse_rfc3339_nanos(ts).is_some(),
                "{stamped:?}"
            );
            rest
        })
        .collect();
    assert_eq!(contents, ["one\n", "three"]);

    let out = v.run(&[
        "exec",
        "web",
        "sh",
        "-c",
        "echo in-exec; echo e >&2; exit 5",
    ]);
    assert_eq!(
        (
            text(&out.stdout).as_str(),
            text(&out.stderr).as_str(),
            out.status.code()
        ),
        ("in-exec\n", "e\n", Some(5))
    );
    let out = v.run_input(&["exec", "-i", "web", "cat"], b"piped\n");
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("piped\n", Some(0))
    );
    let out = v.run(&["exec", "web", "nonexistent-command"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));

    let inspect: serde_json::Value =
        serde_json::from_str(&v.ok(&["inspect", "web"])).expect("inspect JSON");
    assert_eq!(inspect[0]["Id"], id.as_str());
    assert_eq!(inspect[0]["Name"], "web");
    assert_eq!(inspect[0]["State"]["Status"], "running");
    assert!(inspect[0]["State"]["Pid"].as_i64().unwrap_or(0) > 0);

    let out = v.run(&["rm", "web"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "rm of a running container: {}",
        text(&out.stderr)
    );

    assert_eq!(v.ok(&["stop", "-t", "10", "web"]), "web\n");
    assert_eq!(v.ok(&["wait", "web"]), "0\n");
    assert_eq!(v.ok(&["ps", "-q"]), "");
    let ps = v.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (0)"), "{ps}");
    assert_eq!(text(&v.run(&["logs", "web"]).stdout), "one\nthreebye\n");
    let inspect: serde_json::Value =
        serde_json::from_str(&v.ok(&["inspect", "web"])).expect("inspect JSON");
    assert_eq!(inspect[0]["State"]["Status"], "exited");
    assert_eq!(inspect[0]["State"]["ExitCode"], 0);

    assert_eq!(v.ok(&["rm", "web"]), format!("{id}\n"));
    assert_eq!(v.run(&["rm", "web"]).status.code(), Some(1));
    assert_eq!(v.ok(&["ps", "-a", "-q"]), "");
    v.assert_clean();
}

#[test]
fn kill_wait_and_force_remove() {
    let Some(v) = setup("kill_wait_and_force_remove") else {
        return;
    };
    let out = v.run_container(&["-d", "--name", "k"], &["sleep", "1000"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(v.ok(&["kill", "k"]), "k\n");
    assert_eq!(v.ok(&["wait", "k"]), "137\n");
    assert_eq!(
        v.run(&["kill", "k"]).status.code(),
        Some(125),
        "killing an exited container"
    );

    let out = v.run_container(&["-d", "--name", "f"], &["sleep", "1000"]);
    let id = text(&out.stdout).trim().to_string();
    assert_eq!(v.ok(&["rm", "-f", "f"]), format!("{id}\n"));
    assert_eq!(v.ok(&["rm", "k"]).len(), 65);
    v.assert_clean();
}

#[test]
fn create_start_attach_and_follow_logs() {
    let Some(v) = setup("create_start_attach_and_follow_logs") else {
        return;
    };
    let rootfs = v.rootfs.clone();
    let script = "for i in 1 2 3; do echo line$i; sleep 0.2; done; exit 4";
    let id = v
        .ok(&[
            "create", "--name", "c", "--rootfs", &rootfs, "sh", "-c", script,
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    assert!(v.ok(&["ps", "-a"]).contains("Created"));
    assert_eq!(v.ok(&["ps", "-q"]), "");
    assert_eq!(v.ok(&["start", "c"]), "c\n");
    let follow = v.run(&["logs", "-f", "c"]);
    assert_eq!(text(&follow.stdout), "line1\nline2\nline3\n");
    assert_eq!(v.ok(&["wait", "c"]), "4\n");

    // Started again, attached: the exit code is the container's.
    let out = v.run(&["start", "-a", "c"]);
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("line1\nline2\nline3\n", Some(4))
    );
    assert_eq!(v.ok(&["logs", "--tail", "2", "c"]), "line2\nline3\n");
    v.ok(&["rm", "c"]);
    v.assert_clean();
}

#[test]
fn containers_from_a_loaded_image_use_its_config() {
    let Some(v) = setup("containers_from_a_loaded_image_use_its_config") else {
        return;
    };
    let archive = match test_image_archive() {
        Ok(a) => a,
        Err(why) => {
            return eprintln!("skipping containers_from_a_loaded_image_use_its_config: {why}")
        }
    };
    v.ok(&["load", "-i", archive.to_str().expect("utf-8 path")]);
    // Entrypoint /bin/sh, Cmd [-c, echo hi], User 1000:1000, WorkingDir /dir1, Env FOO=bar.
    let out = v.run(&["run", "--rm", "localhost/test:multi"]);
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("hi\n", Some(0)),
        "{}",
        text(&out.stderr)
    );
    let out = v.run(&[
        "run",
        "--rm",
        "localhost/test:multi",
        "-c",
        "id -u; pwd; echo $FOO; ls /opq",
    ]);
    assert_eq!(
        text(&out.stdout),
        "1000\n/dir1\nbar\nnew\n",
        "{}",
        text(&out.stderr)
    );
    let out = v.run(&[
        "run",
        "--rm",
        "-u",
        "0",
        "--entrypoint",
        "id",
        "localhost/test:multi",
        "-u",
    ]);
    assert_eq!(text(&out.stdout), "0\n", "{}", text(&out.stderr));

    // The image's StopSignal (SIGINT) is what `stop` sends first.
    let script = "trap 'echo got-int; exit 0' INT; echo up; while :; do sleep 0.1; done";
    let out = v.run(&[
        "run",
        "-d",
        "--name",
        "img",
        "localhost/test:multi",
        "-c",
        script,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(v.ok(&["ps"]).contains("localhost/test:multi"));
    assert_eq!(v.ok(&["stop", "img"]), "img\n");
    assert_eq!(v.ok(&["wait", "img"]), "0\n");
    assert_eq!(v.ok(&["logs", "img"]), "up\ngot-int\n");
    v.ok(&["rm", "img"]);
    assert_eq!(
        v.run(&["run", "--rm", "localhost/test:missing"])
            .status
            .code(),
        Some(125)
    );
    v.assert_clean();
}
