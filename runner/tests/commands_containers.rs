//! The container commands of issue #15 end to end with real runc, as root:
//! restart policies and `restart`, `pause`/`unpause`, `rename`, `top`,
//! `export`/`import`, `diff`, `commit`, `cp`, `stats`, prunes, `--latest`,
//! `ps` filters and Go templates, with the outputs and errors of
//! runner-commands.md (dynamic parts checked by pattern).
//!
//! Containers run an image imported from the busybox test rootfs
//! (scripts/make-test-rootfs), so `import` is exercised by every test.

mod e2e_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e_support::{
    podman_or_skip, rootfs_tar, run_bounded, text, vigil_with_busybox_image as setup, Vigil,
    BUSYBOX_IMAGE,
};

const IMAGE: &str = BUSYBOX_IMAGE;

/// (exit code, stdout, stderr).
fn run(v: &Vigil, args: &[&str]) -> (Option<i32>, String, String) {
    let out = v.run(args);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// Asserts exit 125 and that stderr names `message`.
fn fails(v: &Vigil, args: &[&str], message: &str) {
    let (code, out, err) = run(v, args);
    assert_eq!(code, Some(125), "{args:?}: stdout {out}\nstderr {err}");
    assert!(
        err.contains(message),
        "{args:?}: want {message:?} in {err:?}"
    );
}

/// [`setup`] and a private Podman with the same rootfs imported as the
/// same image, for side-by-side comparisons.
fn setup_with_podman(test: &str) -> Option<(Vigil, e2e_support::Podman)> {
    let (v, rootfs) = setup(test)?;
    let podman = podman_or_skip(test, "vfs")?;
    let imported = run_bounded(
        &mut podman.command(&["import", "-q", "-", "localhost/bb"]),
        &rootfs_tar(&rootfs),
        Duration::from_secs(120),
    );
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    Some((v, podman))
}

fn inspect_f(v: &Vigil, name: &str, format: &str) -> String {
    v.ok(&["inspect", "-f", format, name])
        .trim_end()
        .to_string()
}

/// Waits until the container is exited and no monitor of it is alive (the
/// restart policy is done with it).
fn wait_settled(v: &Vigil, name: &str, limit: Duration) {
    v.wait_for(&format!("{name} to settle"), limit, |v| {
        inspect_f(v, name, "{{.State.Status}} {{.State.ConmonPid}}") == "exited 0"
    });
}

#[test]
fn on_failure_restarts_exactly_the_retry_count() {
    let Some((v, _)) = setup("on_failure_restarts_exactly_the_retry_count") else {
        return;
    };
    v.ok(&[
        "run",
        "-d",
        "--name",
        "r",
        "--restart",
        "on-failure:2",
        IMAGE,
        "sh",
        "-c",
        "echo run; exit 4",
    ]);
    // An inspect can see an exit before the exit command restarts: wait for
    // the last run's end, not the first.
    v.wait_for(
        "two restarts and the last exit",
        Duration::from_secs(60),
        |v| {
            inspect_f(
                v,
                "r",
                "{{.RestartCount}} {{.State.Status}} {{.State.ConmonPid}}",
            ) == "2 exited 0"
        },
    );
    // Give a stray extra restart the chance to show up: there must be none.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        inspect_f(
            &v,
            "r",
            "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}"
        ),
        "exited 4 2"
    );
    assert_eq!(v.ok(&["logs", "r"]), "run\nrun\nrun\n");
    assert_eq!(
        inspect_f(&v, "r", "{{json .HostConfig.RestartPolicy}}"),
        r#"{"MaximumRetryCount":2,"Name":"on-failure"}"#
    );
}

#[test]
fn always_survives_exits_and_stop_ends_it() {
    let Some((v, _)) = setup("always_survives_exits_and_stop_ends_it") else {
        return;
    };
    v.ok(&[
        "run",
        "-d",
        "--name",
        "a",
        "--restart",
        "always",
        IMAGE,
        "sh",
        "-c",
        "sleep 0.2; exit 0",
    ]);
    v.wait_for("two policy restarts", Duration::from_secs(60), |v| {
        inspect_f(v, "a", "{{.RestartCount}}")
            .parse::<u32>()
            .unwrap_or(0)
            >= 2
    });
    assert_eq!(v.ok(&["stop", "-t", "0", "a"]), "a\n");
    wait_settled(&v, "a", Duration::from_secs(30));
    let count = inspect_f(&v, "a", "{{.RestartCount}}");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        inspect_f(&v, "a", "{{.State.Status}}"),
        "exited",
        "no restart after stop"
    );
    assert_eq!(inspect_f(&v, "a", "{{.RestartCount}}"), count);
}

#[test]
fn restart_policy_and_restart_errors() {
    let Some((v, _)) = setup("restart_policy_and_restart_errors") else {
        return;
    };
    fails(
        &v,
        &["run", "-d", "--restart", "always:3", IMAGE, "true"],
        "restart policy retries can only be specified with on-failure restart policy",
    );
    fails(
        &v,
        &["create", "--restart", "bogus", IMAGE, "true"],
        "\"bogus\" is not a valid restart policy: invalid argument",
    );
    fails(
        &v,
        &["create", "--restart", "on-failure:x", IMAGE, "true"],
        "parsing restart policy retry count: strconv.Atoi: parsing \"x\": invalid syntax",
    );
    fails(
        &v,
        &["run", "--rm", "--restart", "always", IMAGE, "true"],
        "the --rm option conflicts with --restart",
    );
    assert_eq!(v.ok(&["ps", "-aq"]), "", "nothing created");
    fails(&v, &["restart"], "you must provide at least one name or id");
    fails(
        &v,
        &["restart", "nosuch"],
        "no container with name or ID \"nosuch\" found: no such container",
    );
    fails(&v, &["restart", "-l"], "no such container");
    v.ok(&["create", "--name", "gone", IMAGE, "true"]);
    v.ok(&["rm", "gone"]);
    fails(
        &v,
        &["restart", "gone"],
        "no container with name or ID \"gone\" found",
    );
}

#[test]
fn restart_keeps_the_id_and_created_containers_just_start() {
    let Some((v, _)) = setup("restart_keeps_the_id_and_created_containers_just_start") else {
        return;
    };
    let id = v.ok(&[
        "run",
        "-d",
        "--name",
        "r",
        IMAGE,
        "sh",
        "-c",
        "echo started; sleep 1000",
    ]);
    let pid = inspect_f(&v, "r", "{{.State.Pid}}");
    assert_eq!(v.ok(&["restart", "-t", "0", "r"]), "r\n");
    assert_eq!(inspect_f(&v, "r", "{{.Id}}"), id.trim());
    assert_ne!(inspect_f(&v, "r", "{{.State.Pid}}"), pid);
    assert_eq!(
        inspect_f(&v, "r", "{{.State.Status}} {{.RestartCount}}"),
        "running 0"
    );
    v.wait_for("both runs logged", Duration::from_secs(20), |v| {
        v.ok(&["logs", "r"]) == "started\nstarted\n"
    });

    v.ok(&["create", "--name", "c", IMAGE, "echo", "hi"]);
    assert_eq!(v.ok(&["restart", "c"]), "c\n");
    v.ok(&["wait", "c"]);
    assert_eq!(v.ok(&["logs", "c"]), "hi\n");
    let status = v.ok(&[
        "ps",
        "-a",
        "--filter",
        "name=^c$",
        "--format",
        "{{.Status}}",
    ]);
    assert!(status.starts_with("Exited (0) "), "{status:?}");
}

#[test]
fn pause_unpause_and_rename() {
    let Some((v, _)) = setup("pause_unpause_and_rename") else {
        return;
    };
    let id = v
        .ok(&["run", "-d", "--name", "p", IMAGE, "sleep", "1000"])
        .trim()
        .to_string();
    assert_eq!(v.ok(&["pause", "p"]), "p\n");
    assert_eq!(
        v.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]),
        "p Paused\n"
    );
    assert_eq!(v.ok(&["ps", "-q"]), "", "plain ps hides paused containers");
    assert_eq!(
        v.ok(&["ps", "-q", "--filter", "status=paused"]),
        format!("{}\n", &id[..12])
    );
    fails(
        &v,
        &["pause", "p"],
        &format!("\"{id}\" is already paused: container state improper"),
    );
    fails(
        &v,
        &["restart", "p"],
        "unable to restart a container in a paused or unknown state: container state improper",
    );
    assert_eq!(v.ok(&["unpause", "p"]), "p\n");
    fails(
        &v,
        &["unpause", "p"],
        &format!("\"{id}\" is not paused, can't unpause: container state improper"),
    );
    assert!(v.ok(&["ps", "--format", "{{.Status}}"]).starts_with("Up "));

    v.ok(&["create", "--name", "other", IMAGE, "true"]);
    assert_eq!(v.ok(&["rename", "p", "q"]), "");
    assert_eq!(inspect_f(&v, "q", "{{.Name}}"), "q");
    fails(
        &v,
        &["rename", "q", "other"],
        &format!("renaming container {id}: name other already in use"),
    );
    fails(
        &v,
        &["rename", "q", "b@d"],
        "names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*: invalid argument",
    );
    fails(&v, &["rename", "q"], "accepts 2 arg(s), received 1");
    fails(
        &v,
        &["rename", "nosuch", "x"],
        "no container with name or ID \"nosuch\" found: no such container",
    );
}

#[test]
fn top_shows_podmans_columns() {
    let Some((v, _)) = setup("top_shows_podmans_columns") else {
        return;
    };
    v.ok(&[
        "run",
        "-d",
        "--name",
        "c",
        IMAGE,
        "sh",
        "-c",
        "sleep 1000 & sleep 2000",
    ]);
    v.wait_for("both sleeps", Duration::from_secs(20), |v| {
        v.ok(&["top", "c", "pid"]).lines().count() == 3
    });
    let out = v.ok(&["top", "c"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "USER        PID         PPID        %CPU        ELAPSED       TTY         TIME        COMMAND"
    );
    let row = regex::Regex::new(r"^root {8}1 {11}0 {11}\d+\.\d{3} +\S+s +\? +\d\S*s +sleep 2000 $")
        .unwrap();
    assert!(row.is_match(lines[1]), "{:?}", lines[1]);
    assert!(lines[2].contains("sleep 1000 "), "{:?}", lines[2]);
    let mut rows = v
        .ok(&["top", "c", "pid,ppid,comm"])
        .lines()
        .map(String::from)
        .collect::<Vec<_>>();
    rows.iter_mut().for_each(|r| *r = r.trim_end().to_string());
    assert_eq!(rows[0], "PID         PPID        COMMAND");
    assert_eq!(rows[1], "1           0           sleep");
    assert!(
        regex::Regex::new(r"^\d+ +1 +sleep$")
            .unwrap()
            .is_match(&rows[2]),
        "{:?}",
        rows[2]
    );
    // Unknown descriptors: ps(1) inside the container.
    let ps = v.ok(&["top", "c", "-o", "pid,comm"]);
    assert!(ps.starts_with("PID"), "{ps:?}");
    assert!(ps.contains("sleep"), "{ps:?}");
    v.ok(&["create", "--name", "cr", IMAGE, "true"]);
    fails(
        &v,
        &["top", "cr"],
        "top can only be used on running containers",
    );
    fails(
        &v,
        &["top"],
        "you must provide the name or id of a running container",
    );
    fails(&v, &["top", "nosuch"], "unable to look up requested container: no container with name or ID \"nosuch\" found: no such container");
}

#[test]
fn export_import_round_trip_and_diff_and_commit() {
    let Some((v, _)) = setup("export_import_round_trip_and_diff_and_commit") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    let vol = format!("{}:/mnt/host", host.display());
    v.ok(&[
        "run",
        "--name",
        "d",
        "-v",
        &vol,
        IMAGE,
        "sh",
        "-c",
        "echo x > /root/f; rm /etc/group; echo in-volume > /mnt/host/v",
    ]);
    assert_eq!(
        v.ok(&["diff", "d"]),
        "C /etc\nD /etc/group\nA /mnt\nA /mnt/host\nC /root\nA /root/f\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&v.ok(&["diff", "--format", "json", "d"])).unwrap();
    assert_eq!(json["deleted"], serde_json::json!(["/etc/group"]));

    let tar_path = dir.path().join("x.tar");
    v.ok(&["export", "-o", tar_path.to_str().unwrap(), "d"]);
    let list = text(
        &run_bounded(
            Command::new("tar").arg("tvf").arg(&tar_path),
            b"",
            Duration::from_secs(30),
        )
        .stdout,
    );
    let names: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert!(
        names.contains(&"etc/passwd") && names.contains(&"root/f") && names.contains(&"proc/"),
        "{names:?}"
    );
    assert!(!names.contains(&"etc/group"), "deleted file exported");
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("./") || n.starts_with("proc/1")),
        "{names:?}"
    );
    assert!(
        !names.contains(&"mnt/host/v"),
        "a file in a volume is not exported"
    );
    let tty = v.run_on_terminal(&["export", "d"]);
    assert!(
        text(&tty.stdout).contains("refusing to export to terminal. Use -o flag or redirect"),
        "{}",
        text(&tty.stdout)
    );

    // import of the export, with a fixed mtime: Created, same id twice.
    let set_mtime = Command::new("touch")
        .args(["-d", "2001-02-03 04:05:06 UTC"])
        .arg(&tar_path)
        .status()
        .unwrap();
    assert!(set_mtime.success());
    let id = v.ok(&[
        "import",
        "-q",
        tar_path.to_str().unwrap(),
        "localhost/imp:a",
    ]);
    assert!(
        regex::Regex::new("^sha256:[0-9a-f]{64}\n$")
            .unwrap()
            .is_match(&id),
        "{id:?}"
    );
    assert_eq!(
        v.ok(&[
            "import",
            "-q",
            tar_path.to_str().unwrap(),
            "localhost/imp:a"
        ]),
        id
    );
    assert_eq!(
        v.ok(&["image", "inspect", "-f", "{{.Created}}", "localhost/imp:a"]),
        "2001-02-03T04:05:06Z\n"
    );
    assert_eq!(
        v.ok(&["run", "--rm", "localhost/imp:a", "cat", "/root/f"]),
        "x\n"
    );
    let imported = v.ok(&[
        "import",
        "-q",
        "-m",
        "m",
        "-c",
        "ENV A=1",
        tar_path.to_str().unwrap(),
        "localhost/imp:b",
    ]);
    assert_ne!(imported, id);
    assert_eq!(
        v.ok(&[
            "image",
            "inspect",
            "-f",
            "{{.Comment}} {{json .Config.Env}}",
            "localhost/imp:b"
        ]),
        "m [\"A=1\"]\n"
    );
    let history = v.ok(&["history", "localhost/imp:b"]);
    assert_eq!(history.lines().count(), 2, "{history}");
    assert!(
        history.lines().nth(1).unwrap().trim_end().ends_with("  m"),
        "{history}"
    );

    // commit: base layer + the change layer, config from -a -m -c.
    let cid = v.ok(&[
        "commit",
        "-q",
        "-f",
        "docker",
        "-a",
        "A",
        "-m",
        "M",
        "-c",
        r#"CMD ["sleep","5"]"#,
        "d",
        "localhost/cm:2",
    ]);
    assert!(
        regex::Regex::new("^[0-9a-f]{64}\n$")
            .unwrap()
            .is_match(&cid),
        "{cid:?}"
    );
    assert_eq!(
        v.ok(&[
            "image",
            "inspect",
            "-f",
            "{{.Author}}|{{.Comment}}|{{json .Config.Cmd}}|{{len .RootFS.Layers}}",
            "localhost/cm:2"
        ]),
        "A|M|[\"sleep\",\"5\"]|2\n"
    );
    assert_eq!(
        v.ok(&[
            "run",
            "--rm",
            "localhost/cm:2",
            "sh",
            "-c",
            "cat /root/f; ls /etc/group 2>&1 | wc -l"
        ]),
        "x\n1\n"
    );
    fails(
        &v,
        &["commit", "-m", "M", "d"],
        "messages are only compatible with the docker image format (-f docker)",
    );
    v.ok(&["run", "-d", "--name", "live", IMAGE, "sleep", "100"]);
    fails(&v, &["commit", "--pause=false", "live"], "without --pause");
    fails(
        &v,
        &["commit", "nosuch"],
        "no container with name or ID \"nosuch\" found: no such container",
    );
}

#[test]
fn import_refuses_what_is_not_a_tar() {
    let Some((v, _)) = setup("import_refuses_what_is_not_a_tar") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.tar");
    std::fs::write(&bad, "this is not a tar archive\n".repeat(100)).unwrap();
    let before = v.ok(&["images", "-q"]);
    fails(
        &v,
        &["import", bad.to_str().unwrap(), "localhost/bad"],
        "processing tar file",
    );
    assert_eq!(v.ok(&["images", "-q"]), before, "nothing stored");
    fails(
        &v,
        &["import", "/nonexist.tar"],
        "error opening \"/nonexist.tar\": open /nonexist.tar: no such file or directory",
    );
    fails(&v, &["import", "-c", "RUN x", bad.to_str().unwrap()], "");
}

#[test]
fn cp_both_ways_with_podmans_owners_and_never_out_of_the_rootfs() {
    let Some((v, _)) = setup("cp_both_ways_with_podmans_owners_and_never_out_of_the_rootfs") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("h.txt");
    std::fs::write(&h, "hello\n").unwrap();
    std::os::unix::fs::chown(&h, Some(1234), Some(5678)).unwrap();
    let hs = h.to_str().unwrap();
    v.ok(&["run", "-d", "--name", "c", IMAGE, "sleep", "1000"]);
    assert_eq!(v.ok(&["cp", hs, "c:/tmp/"]), "");
    assert_eq!(
        v.ok(&["exec", "c", "stat", "-c", "%u %g", "/tmp/h.txt"]),
        "0 0\n"
    );
    v.ok(&["cp", "--archive=false", hs, "c:/tmp/h2.txt"]);
    assert_eq!(
        v.ok(&["exec", "c", "stat", "-c", "%u %g", "/tmp/h2.txt"]),
        "1234 5678\n"
    );
    // A symlink in the container leads to the container's /etc, never the host's.
    v.ok(&["exec", "c", "ln", "-s", "/etc", "/tmp/esc"]);
    let marker = format!("vigil-cp-escape-{}", std::process::id());
    let target = format!("c:/tmp/esc/{marker}");
    v.ok(&["cp", hs, &target]);
    assert!(
        !Path::new("/etc").join(&marker).exists(),
        "cp wrote through a container symlink onto the host"
    );
    assert_eq!(
        v.ok(&["exec", "c", "cat", &format!("/etc/{marker}")]),
        "hello\n"
    );
    // Container to host, a stopped container, and a tar stream.
    v.ok(&["stop", "-t", "0", "c"]);
    let back = dir.path().join("back.txt");
    v.ok(&["cp", "c:/tmp/h.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "hello\n");
    let out = v.run(&["cp", "c:/etc", "-"]);
    let names = text(
        &run_bounded(
            Command::new("tar").arg("tf").arg("-"),
            &out.stdout,
            Duration::from_secs(30),
        )
        .stdout,
    );
    assert!(names.lines().any(|l| l == "etc/passwd"), "{names}");
    fails(
        &v,
        &["cp", "c:/nonexist", dir.path().to_str().unwrap()],
        "\"/nonexist\" could not be found on container c: no such file or directory",
    );
    fails(
        &v,
        &["cp", hs, "c:/nonexist/dir/x"],
        "could not be found on container c",
    );
    fails(
        &v,
        &["cp", hs, dir.path().to_str().unwrap()],
        "name or ID cannot be empty",
    );
    fails(
        &v,
        &["cp", hs, "nosuch:/tmp"],
        "no container with name or ID \"nosuch\" found: no such container",
    );
}

#[test]
fn stats_ps_templates_latest_and_prune() {
    let Some((v, _)) = setup("stats_ps_templates_latest_and_prune") else {
        return;
    };
    // Empty store: --latest errors as Podman's.
    let out = v.run(&["inspect", "-l"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(125), "[]\n".to_string())
    );
    assert_eq!(v.run(&["rm", "-l"]).status.code(), Some(1));
    fails(&v, &["logs", "-l"], "no such container");

    assert_eq!(
        run(
            &v,
            &["run", "--name", "three", "-l", "app=web", IMAGE, "sh", "-c", "exit 3"]
        )
        .0,
        Some(3)
    );
    v.ok(&[
        "run", "-d", "-m", "64m", "--name", "s", IMAGE, "sleep", "100",
    ]);
    assert_eq!(
        v.ok(&["ps", "-a", "--filter", "exited=3", "--format", "{{.Names}}"]),
        "three\n"
    );
    assert_eq!(
        v.ok(&[
            "ps",
            "-a",
            "--filter",
            "label=app=web",
            "--format",
            "{{.Names}}"
        ]),
        "three\n"
    );
    assert_eq!(
        v.ok(&[
            "ps",
            "-a",
            "--filter",
            "ancestor=bb",
            "--format",
            "{{.Names}}"
        ]),
        "three\ns\n"
    );
    assert_eq!(v.ok(&["ps", "--format", "{{.Names}}"]), "s\n");
    let table = v.ok(&[
        "ps",
        "-a",
        "--format",
        "table {{.ID}}\\t{{.Names}}\\t{{.Status}}",
    ]);
    assert_eq!(
        table.lines().next(),
        Some("CONTAINER ID  NAMES       STATUS")
    );
    assert_eq!(
        inspect_f(
            &v,
            "three",
            "{{.State.Status}} {{index .Config.Labels \"app\"}} {{json .Config.Cmd}}"
        ),
        "exited web [\"sh\",\"-c\",\"exit 3\"]"
    );
    let newest = inspect_f(&v, "s", "{{.Id}}");
    assert_eq!(
        v.ok(&["ps", "-a", "-n", "1", "-q"]),
        format!("{}\n", &newest[..12])
    );
    assert_eq!(v.ok(&["inspect", "-l", "-f", "{{.Name}}"]), "s\n");
    fails(
        &v,
        &["ps", "--filter", "status=bogus"],
        "unknown container state: bogus: invalid argument",
    );
    fails(
        &v,
        &["ps", "--filter", "bogus=1"],
        "bogus is an invalid filter",
    );
    fails(
        &v,
        &["inspect", "-f", "{{.Nope", "s"],
        "template: inspect:1",
    );
    fails(
        &v,
        &["inspect", "-f", "{{json .Config.Cmd}}", "nosuch"],
        "no such object",
    );

    // Column widths follow the widest cell (NET IO grows with the default
    // network's counters), so compare the header's columns.
    let header = v.ok(&["stats", "--no-stream", "s"]);
    let columns: Vec<&str> = header
        .lines()
        .next()
        .unwrap_or("")
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        columns,
        [
            "ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET IO",
            "BLOCK IO",
            "PIDS",
            "CPU TIME",
            "AVG CPU %"
        ]
    );
    let line = v.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}} {{.MemUsage}}",
        "s",
    ]);
    assert!(
        regex::Regex::new(r"^s 1 [0-9.]+[kM]B / 67\.11MB\n$")
            .unwrap()
            .is_match(&line),
        "{line:?}"
    );
    fails(
        &v,
        &["stats", "--no-stream", "nosuch"],
        "unable to get list of containers: unable to look up container nosuch",
    );

    let df = v.ok(&["system", "df"]);
    assert!(df.starts_with("TYPE           TOTAL       ACTIVE      SIZE        RECLAIMABLE\nImages         1           1    "), "{df}");
    // The prompt: anything but y keeps everything.
    let no = v.run_input(&["container", "prune"], b"n\n");
    assert_eq!(text(&no.stdout), "");
    assert!(text(&no.stderr).contains("WARNING! This will remove all non running containers.\nAre you sure you want to continue? [y/N] "));
    let three = inspect_f(&v, "three", "{{.Id}}");
    assert_eq!(v.ok(&["container", "prune", "-f"]), format!("{three}\n"));
    assert_eq!(v.ok(&["ps", "-aq"]), format!("{}\n", &newest[..12]));
    assert_eq!(
        v.ok(&["version", "--format", "{{.Client.Version}}"]),
        format!("{}\n", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        v.ok(&[
            "info",
            "--format",
            "{{.Host.OCIRuntime.Name}} {{.Store.GraphDriverName}}"
        ]),
        "runc overlay\n"
    );
}

/// `ps --filter` before, since, until, volume, network and pod, and
/// templates reading a missing map key, side by side with Podman 4.3.1 on
/// the same containers (created in the same order in both).
#[test]
fn ps_filters_and_missing_map_keys_as_podman() {
    let test = "ps_filters_and_missing_map_keys_as_podman";
    let Some((v, podman)) = setup_with_podman(test) else {
        return;
    };
    let vol = tempfile::tempdir().unwrap();
    let bind = format!("{}:/data", vol.path().display());
    // Networks are the host's, not the store's: a name of this run, removed
    // on the way out (also when an assertion fails).
    let net = format!("vpsf{}", std::process::id());
    let net = net.as_str();
    struct RemoveNetwork<'a>(&'a Vigil, &'a str);
    impl Drop for RemoveNetwork<'_> {
        fn drop(&mut self) {
            let _ = self.0.run(&["network", "rm", "-f", self.1]);
        }
    }
    let _remove = RemoveNetwork(&v, net);
    let fixtures: [&[&str]; 4] = [
        &["network", "create", net],
        &["create", "--name", "f1", "--label", "a=b", IMAGE, "true"],
        &["create", "--name", "f2", "-v", &bind, IMAGE, "true"],
        &["create", "--name", "f3", "--network", net, IMAGE, "true"],
    ];
    for args in fixtures {
        podman.ok(args);
        v.ok(args);
    }
    let source = vol.path().display().to_string();
    let future = format!(
        "until={}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600
    );
    let filters: Vec<Vec<String>> = [
        vec!["before=f3".to_string()],
        vec!["since=f1".into()],
        vec!["since=f1".into(), "before=f3".into()],
        vec!["until=2020-01-01T00:00:00Z".into()],
        vec!["until=1h".into()],
        vec![future],
        vec![format!("volume={source}")],
        vec![format!("volume={source}:/data")],
        vec![format!("volume={source}:/other")],
        vec!["volume=/data".into()],
        vec![format!("network={net}")],
        vec!["network=nosuchnet".into()],
        vec!["pod=nosuchpod".into()],
        vec!["before=nosuch".into()],
        vec!["until=bogus".into()],
    ]
    .to_vec();
    for f in &filters {
        let mut args = vec!["ps", "-a", "--format", "{{.Names}}"];
        for one in f {
            args.extend(["--filter", one.as_str()]);
        }
        let (p, ours) = (podman.run(&args), v.run(&args));
        assert_eq!(
            (ours.status.code(), text(&ours.stdout)),
            (p.status.code(), text(&p.stdout)),
            "{f:?}: podman stderr {}\nvigil stderr {}",
            text(&p.stderr),
            text(&ours.stderr)
        );
        let (perr, verr) = (text(&p.stderr), text(&ours.stderr));
        if let Some(message) = perr.trim().strip_prefix("Error: ") {
            assert!(verr.contains(message), "{f:?}: {verr:?} lacks {message:?}");
        }
    }
    for format in [
        "{{.Config.Labels.nope}}",
        "{{.Config.Labels.nope.x}}|{{.Config.Labels.a}}",
        "{{index .Config.Labels \"nope\"}}|",
        "{{if .Config.Labels.nope}}y{{else}}n{{end}}",
        "{{.NetworkSettings.Networks.nope}}",
    ] {
        let args = ["inspect", "-f", format, "f1"];
        assert_eq!(v.ok(&args), podman.ok(&args), "{format}");
    }
    for args in [
        &["inspect", "-f", "{{.Config.Nope}}", "f1"][..],
        &["ps", "-a", "--format", "{{.Nope}}"][..],
    ] {
        let (p, ours) = (podman.run(args), v.run(args));
        assert_eq!(p.status.code(), Some(125));
        assert_eq!(ours.status.code(), Some(125), "{args:?}");
        assert!(
            text(&ours.stderr).contains("can't evaluate field Nope"),
            "{args:?}: {}",
            text(&ours.stderr)
        );
    }
    assert_eq!(
        v.ok(&[
            "ps",
            "-a",
            "--format",
            "{{.Labels.nope}}",
            "--filter",
            "name=f1"
        ]),
        "<no value>\n"
    );
    let _ = podman.run(&["network", "rm", "-f", net]);
}

/// `container prune --filter` label, label! and until, and the filter
/// errors of container and image prune, side by side with Podman 4.3.1.
#[test]
fn prune_filters_as_podman() {
    let test = "prune_filters_as_podman";
    let Some((v, podman)) = setup_with_podman(test) else {
        return;
    };
    let names = |out: String| -> Vec<String> {
        let mut n: Vec<String> = out.lines().map(String::from).collect();
        n.sort();
        n
    };
    for (prune, left) in [
        (vec!["until=1h"], vec!["p1", "p2", "p3"]),
        (vec!["label=a=b"], vec!["p2", "p3"]),
        (vec!["label=a", "label!=a=b"], vec!["p1", "p3"]),
        (vec!["label!=a"], vec!["p1", "p2"]),
    ] {
        for args in [
            &["create", "--name", "p1", "--label", "a=b", IMAGE, "true"][..],
            &["create", "--name", "p2", "--label", "a=c", IMAGE, "true"][..],
            &["create", "--name", "p3", IMAGE, "true"][..],
        ] {
            if !names(v.ok(&["ps", "-a", "--format", "{{.Names}}"])).contains(&args[2].to_string())
            {
                v.ok(args);
                podman.ok(args);
            }
        }
        let mut args = vec!["container", "prune", "-f"];
        for f in &prune {
            args.extend(["--filter", f]);
        }
        let (ours, theirs) = (v.ok(&args), podman.ok(&args));
        assert_eq!(ours.lines().count(), theirs.lines().count(), "{prune:?}");
        let ps = ["ps", "-a", "--format", "{{.Names}}"];
        assert_eq!(names(v.ok(&ps)), left, "{prune:?}");
        assert_eq!(names(podman.ok(&ps)), left, "podman {prune:?}");
    }
    for args in [
        &["container", "prune", "-f", "--filter", "bogus=1"][..],
        &["image", "prune", "-f", "--filter", "bogus=1"][..],
        &["container", "prune", "-f", "--filter", "until=bogus"][..],
    ] {
        let p = podman.run(args);
        let message = text(&p.stderr);
        let message = message.trim().trim_start_matches("Error: ");
        assert_eq!(p.status.code(), Some(125));
        fails(&v, args, message);
    }
}
