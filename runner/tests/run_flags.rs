//! `run`/`create` flags end to end with real runc, as root: `--cap-add` /
//! `--cap-drop`, `--read-only` (+ `--read-only-tmpfs`), `--tmpfs`,
//! `--hostname`, `--env-file`, `--pids-limit`, and `ps --format json`. Each
//! test checks the outcome inside the container (CapEff bits, EROFS,
//! /proc/mounts, the pids cgroup...), and that bad input fails with exit 125,
//! a message, and nothing left behind.
//!
//! Containers use the busybox rootfs of scripts/make-test-rootfs with
//! `--rootfs` (`VIGIL_TEST_ROOTFS`, default `<workspace>/target/test-rootfs/busybox`),
//! so no image is needed. Skipped with a message when not root or the
//! binaries or the rootfs are missing.

mod e2e_support;

use e2e_support::{text, vigil_and_busybox_rootfs, Vigil};

/// A private vigil and the busybox rootfs, or why the test cannot run.
fn setup(test: &str) -> Option<(Vigil, String)> {
    vigil_and_busybox_rootfs(test)
}

/// `vigil run --rm FLAGS... --rootfs ROOTFS sh -c SCRIPT`: exit code and stdout+stderr.
fn run_sh(v: &Vigil, rootfs: &str, flags: &[&str], script: &str) -> (Option<i32>, String) {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--rootfs", rootfs, "sh", "-c", script]);
    let out = v.run(&args);
    (out.status.code(), text(&out.stdout) + &text(&out.stderr))
}

/// Like [`run_sh`], asserting exit 0; the output.
fn run_ok(v: &Vigil, rootfs: &str, flags: &[&str], script: &str) -> String {
    let (code, out) = run_sh(v, rootfs, flags, script);
    assert_eq!(code, Some(0), "run {flags:?} {script:?}\n{out}");
    out
}

/// The container's effective capability mask (`CapEff` of /proc/self/status).
fn cap_eff(v: &Vigil, rootfs: &str, flags: &[&str]) -> u64 {
    let out = run_ok(v, rootfs, flags, "grep CapEff /proc/self/status");
    let hex = out
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no CapEff in {out:?}"));
    u64::from_str_radix(hex, 16).expect("hex CapEff")
}

const CAP_CHOWN: u64 = 1 << 0;
const CAP_KILL: u64 = 1 << 5;
const CAP_NET_BIND_SERVICE: u64 = 1 << 10;
const CAP_NET_RAW: u64 = 1 << 13;
const CAP_SYS_ADMIN: u64 = 1 << 21;

#[test]
fn cap_add_and_cap_drop_change_the_effective_set() {
    let Some((v, rootfs)) = setup("cap_add_and_cap_drop_change_the_effective_set") else {
        return;
    };
    let default = cap_eff(&v, &rootfs, &[]);
    assert_eq!(default.count_ones(), 11, "default CapEff {default:#x}");
    assert!(default & CAP_CHOWN != 0 && default & CAP_SYS_ADMIN == 0);

    let changed = cap_eff(
        &v,
        &rootfs,
        &[
            "--cap-add",
            "sys_admin",
            "--cap-drop",
            "CAP_CHOWN,net_bind_service",
        ],
    );
    assert_eq!(
        changed,
        (default | CAP_SYS_ADMIN) & !(CAP_CHOWN | CAP_NET_BIND_SERVICE),
        "CapEff {changed:#x}"
    );
    // Without CHOWN, chown fails; with it, it works.
    let script = "touch /tmp/f && chown 1:1 /tmp/f && echo chowned";
    let (code, out) = run_sh(&v, &rootfs, &["--cap-drop", "chown"], script);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    assert_eq!(run_ok(&v, &rootfs, &[], script), "chowned\n");

    assert_eq!(cap_eff(&v, &rootfs, &["--cap-drop", "ALL"]), 0);
    assert_eq!(
        cap_eff(
            &v,
            &rootfs,
            &[
                "--cap-drop",
                "all",
                "--cap-add",
                "KILL",
                "--cap-add",
                "cap_net_raw"
            ]
        ),
        CAP_KILL | CAP_NET_RAW
    );
    let all = cap_eff(&v, &rootfs, &["--cap-add", "ALL"]);
    assert!(all.count_ones() >= 40, "CapEff {all:#x}");
    // A non-root process gets just what was added.
    assert_eq!(
        cap_eff(&v, &rootfs, &["--user", "1000", "--cap-add", "net_raw"]),
        CAP_NET_RAW
    );
    assert_eq!(cap_eff(&v, &rootfs, &["--user", "1000"]), 0);
}

#[test]
fn read_only_keeps_tmp_run_and_var_tmp_writable() {
    let Some((v, rootfs)) = setup("read_only_keeps_tmp_run_and_var_tmp_writable") else {
        return;
    };
    let out = run_ok(
        &v,
        &rootfs,
        &["--read-only"],
        "touch /x 2>&1; echo rc=$?; for d in /tmp /run /var/tmp /dev /dev/shm; do \
         touch $d/ok && echo $d-ok; done; grep ' / ' /proc/mounts | grep -c ' ro,'",
    );
    assert_eq!(
        out,
        "touch: /x: Read-only file system\nrc=1\n/tmp-ok\n/run-ok\n/var/tmp-ok\n/dev-ok\n/dev/shm-ok\n1\n"
    );
    // The generated /etc files are read-only too (Podman).
    let out = run_sh(&v, &rootfs, &["--read-only"], "echo x >> /etc/hosts").1;
    assert!(out.contains("Read-only file system"), "{out}");

    let out = run_sh(
        &v,
        &rootfs,
        &["--read-only", "--read-only-tmpfs=false"],
        "touch /tmp/x",
    )
    .1;
    assert!(out.contains("Read-only file system"), "{out}");
    // Not read-only: / is writable.
    run_ok(&v, &rootfs, &[], "touch /x");
}

/// The /proc/mounts line of `dest`, from the container's point of view.
fn mount_line(v: &Vigil, rootfs: &str, flags: &[&str], dest: &str) -> String {
    let out = run_ok(v, rootfs, flags, &format!("grep ' {dest} ' /proc/mounts"));
    assert_eq!(out.lines().count(), 1, "{out}");
    out.trim_end().to_string()
}

#[test]
fn tmpfs_mounts_have_their_options() {
    let Some((v, rootfs)) = setup("tmpfs_mounts_have_their_options") else {
        return;
    };
    let line = mount_line(&v, &rootfs, &["--tmpfs", "/scratch"], "/scratch");
    assert!(
        line.starts_with("tmpfs /scratch tmpfs rw,nosuid,nodev,"),
        "{line}"
    );
    let line = mount_line(
        &v,
        &rootfs,
        &["--tmpfs", "/scratch:ro,size=1m,mode=700,noexec"],
        "/scratch",
    );
    let opts: Vec<&str> = line.split(' ').nth(3).unwrap().split(',').collect();
    for o in ["ro", "nosuid", "nodev", "noexec", "size=1024k", "mode=700"] {
        assert!(opts.contains(&o), "{o} missing in {line}");
    }
    // Two tmpfs, writable, and the default /dev/shm replaced.
    let out = run_ok(
        &v,
        &rootfs,
        &["--tmpfs", "/a", "--tmpfs", "/dev/shm:size=2m"],
        "echo hi > /a/f && cat /a/f; grep -c ' /dev/shm ' /proc/mounts; \
         grep ' /dev/shm ' /proc/mounts | grep -o size=[0-9]*k",
    );
    assert_eq!(out, "hi\n1\nsize=2048k\n");
    // A tmpfs below a volume is mounted after it, so it is not hidden.
    let host = tempfile::tempdir().unwrap();
    std::fs::create_dir(host.path().join("sub")).unwrap();
    let volume = format!("{}:/data", host.path().display());
    let out = run_ok(
        &v,
        &rootfs,
        &["--tmpfs", "/data/sub", "-v", &volume],
        "touch /data/sub/f /data/g; stat -f -c %T /data/sub",
    );
    assert_eq!(out, "tmpfs\n");
    assert!(host.path().join("g").exists());
    assert!(!host.path().join("sub/f").exists());
}

#[test]
fn hostname_is_the_uts_name_and_in_etc_files() {
    let Some((v, rootfs)) = setup("hostname_is_the_uts_name_and_in_etc_files") else {
        return;
    };
    let out = run_ok(
        &v,
        &rootfs,
        &["--hostname", "web-1.example", "--name", "hn"],
        "hostname; cat /etc/hostname; echo; tail -n 1 /etc/hosts; echo $HOSTNAME",
    );
    // /etc/hosts ends with the container's address on the default network.
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        [lines[0], lines[1], lines[3]],
        ["web-1.example"; 3],
        "{out}"
    );
    let (addr, names) = lines[2].split_once('\t').expect("hosts line");
    assert!(addr.starts_with("10.77."), "{out}");
    assert_eq!(names, "web-1.example hn");
    // Default: the short id.
    let out = run_ok(&v, &rootfs, &[], "hostname");
    assert_eq!(out.trim().len(), 12, "{out}");
}

#[test]
fn env_file_values_reach_the_container() {
    let Some((v, rootfs)) = setup("env_file_values_reach_the_container") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("env");
    std::fs::write(
        &file,
        "# a comment\nFROM_FILE=one two\n\n   INDENTED=x\nEQ=a=b\nOVERRIDDEN=file\nVIGIL_FLAGS_HOST\nVIGIL_FLAGS_UNSET\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let out = v
        .command(&[
            "run",
            "--rm",
            "--env-file",
            f,
            "-e",
            "OVERRIDDEN=flag",
            "--rootfs",
            &rootfs,
            "env",
        ])
        .env("VIGIL_FLAGS_HOST", "from-host")
        .env_remove("VIGIL_FLAGS_UNSET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let env = text(&out.stdout);
    let lines: Vec<&str> = env.lines().collect();
    for want in [
        "FROM_FILE=one two",
        "INDENTED=x",
        "EQ=a=b",
        "OVERRIDDEN=flag",
        "VIGIL_FLAGS_HOST=from-host",
    ] {
        assert!(lines.contains(&want), "{want} missing in\n{env}");
    }
    assert!(!env.contains("VIGIL_FLAGS_UNSET"), "{env}");
    assert!(!env.contains("comment"), "{env}");
}

/// `pids.max` of a running container's pids cgroup (cgroup v1 or v2).
fn pids_max(v: &Vigil, name: &str) -> String {
    let pid = v.inspect(name)["State"]["Pid"].as_i64().expect("pid");
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    let path = match cgroup.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        controllers.split(',').any(|c| c == "pids").then_some(path)
    }) {
        Some(p) => format!("/sys/fs/cgroup/pids{p}/pids.max"),
        None => {
            let p = cgroup
                .lines()
                .find_map(|l| l.strip_prefix("0::"))
                .expect("v2 path");
            format!("/sys/fs/cgroup{p}/pids.max")
        }
    };
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .to_string()
}

#[test]
fn pids_limit_sets_the_pids_cgroup() {
    let Some((v, rootfs)) = setup("pids_limit_sets_the_pids_cgroup") else {
        return;
    };
    for (name, flags, want, inspected) in [
        ("p20", &["--pids-limit", "20"][..], "20", 20),
        ("pdefault", &[][..], "2048", 2048),
        ("punlimited", &["--pids-limit", "-1"][..], "max", 0),
        ("pzero", &["--pids-limit", "0"][..], "max", 0),
    ] {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--rootfs", &rootfs, "sleep", "1000"]);
        v.ok(&args);
        assert_eq!(pids_max(&v, name), want, "{name}");
        assert_eq!(
            v.inspect(name)["HostConfig"]["PidsLimit"],
            inspected,
            "{name}: inspect shows the limit (unlimited as 0, like Podman)"
        );
        v.ok(&["rm", "-f", name]);
    }
    // The limit holds: of 30 background processes only some start (the
    // subshell dies at the first failed fork); builtins read the cgroup.
    let (code, out) = run_sh(
        &v,
        &rootfs,
        &["--pids-limit", "10"],
        "(for i in $(seq 30); do sleep 10 & done); \
         read n < /sys/fs/cgroup/pids/pids.current; echo current=$n; \
         read m < /sys/fs/cgroup/pids/pids.max; echo max=$m",
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("can't fork"), "{out}");
    assert!(out.contains("max=10\n"), "{out}");
    let current: u32 = out
        .split("current=")
        .nth(1)
        .and_then(|r| r.lines().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!((2..=10).contains(&current), "{current} processes\n{out}");
}

#[test]
fn ps_format_json_for_running_and_exited_containers() {
    let Some((v, rootfs)) = setup("ps_format_json_for_running_and_exited_containers") else {
        return;
    };
    let parse = |args: &[&str]| -> Vec<serde_json::Value> {
        serde_json::from_str(&v.ok(args)).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    };
    assert!(parse(&["ps", "--format", "json"]).is_empty());
    let running = v.ok(&[
        "run", "-d", "--name", "up", "--tmpfs", "/scr", "--rootfs", &rootfs, "sleep", "1000",
    ]);
    let running = running.trim();
    let code = v.run(&[
        "run", "--name", "down", "--rootfs", &rootfs, "sh", "-c", "exit 3",
    ]);
    assert_eq!(code.status.code(), Some(3));

    let list = parse(&["ps", "--format", "json"]);
    assert_eq!(list.len(), 1, "{list:?}");
    let all = parse(&["ps", "-a", "--format", "json"]);
    assert_eq!(all.len(), 2, "{all:?}");
    let by_name = |n: &str| {
        all.iter()
            .find(|c| c["Names"] == serde_json::json!([n]))
            .unwrap_or_else(|| panic!("no {n} in {all:?}"))
            .clone()
    };
    let up = by_name("up");
    assert_eq!(list[0]["Id"], running);
    assert_eq!(up["Id"], running);
    assert_eq!(up["State"], "running");
    assert!(up["Status"].as_str().unwrap().starts_with("Up "), "{up}");
    assert_eq!(up["Command"], serde_json::json!(["sleep", "1000"]));
    assert_eq!(up["Image"], rootfs.as_str());
    assert_eq!(up["Exited"], false);
    assert_eq!(up["ExitCode"], 0);
    assert_eq!(up["Pid"], v.inspect("up")["State"]["Pid"]);
    assert!(up["Pid"].as_i64().unwrap() > 0);
    assert_eq!(up["Mounts"], serde_json::json!(["/scr"]));
    assert_eq!(up["ExitedAt"], -62_135_596_800i64);

    let down = by_name("down");
    assert_eq!(down["State"], "exited");
    assert_eq!(down["Exited"], true);
    assert_eq!(down["ExitCode"], 3);
    assert_eq!(down["Pid"], 0);
    assert_eq!(down["Command"], serde_json::json!(["sh", "-c", "exit 3"]));
    assert!(
        down["Status"].as_str().unwrap().starts_with("Exited (3) "),
        "{down}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for c in [&up, &down] {
        for key in [
            "Id",
            "Names",
            "Image",
            "ImageID",
            "Command",
            "Created",
            "CreatedAt",
            "State",
            "Status",
            "ExitCode",
            "Exited",
            "Pid",
            "Labels",
            "StartedAt",
            "ExitedAt",
        ] {
            assert!(c.get(key).is_some(), "{key} missing in {c}");
        }
        let created = c["Created"].as_i64().unwrap();
        assert!((now - created).abs() < 120, "Created {created}, now {now}");
        assert!(c["CreatedAt"].as_str().unwrap().ends_with(" ago"), "{c}");
    }
    assert!(down["ExitedAt"].as_i64().unwrap() >= down["StartedAt"].as_i64().unwrap());

    // Go templates (issue #15): a bad one is the template's error.
    let out = v.run(&["ps", "--format", "{{.Names"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("template: ps:1"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_flags_fail_cleanly_and_leave_nothing_behind() {
    let Some((v, rootfs)) = setup("bad_flags_fail_cleanly_and_leave_nothing_behind") else {
        return;
    };
    let missing = v.dir.path().join("no-such-env-file");
    let missing = missing.to_str().unwrap();
    let cases: [(&[&str], &str); 10] = [
        (
            &["--cap-add", "CAP_BOGUS"],
            "unknown capability \"CAP_BOGUS\"",
        ),
        (&["--cap-drop", "chown,nope"], "unknown capability \"nope\""),
        (
            &["--cap-add", "chown", "--cap-drop", "CHOWN"],
            "cannot be dropped and added",
        ),
        (
            &["--cap-add", "ALL", "--cap-drop", "all"],
            "adding all caps and removing all caps",
        ),
        (&["--env-file", missing], "parsing env file"),
        (&["--tmpfs", "/x:bogus"], "unknown mount option \"bogus\""),
        (&["--tmpfs", "relative"], "must be an absolute path"),
        (&["--pids-limit", "abc"], "--pids-limit"),
        (
            &["-v", "/nonexistent-src:/x"],
            "statfs /nonexistent-src: no such file or directory",
        ),
        (&["--hostname", "a b"], "invalid --hostname"),
    ];
    for cmd in ["run", "create"] {
        for (flags, want) in &cases {
            let mut args = vec![cmd];
            args.extend_from_slice(flags);
            args.extend_from_slice(&["--rootfs", &rootfs, "true"]);
            let out = v.run(&args);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(125), "{args:?}: {err}");
            assert!(err.contains(want), "{args:?}: want {want:?} in {err:?}");
            assert!(!err.contains("panicked"), "{args:?}: {err}");
            assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
        }
    }
    assert_eq!(v.ok(&["ps", "-a", "-q"]), "");
    for dir in [v.root().join("containers"), v.runroot().join("containers")] {
        let left = e2e_support::entries_but_lock(&dir);
        assert!(left.is_empty(), "left in {}: {left:?}", dir.display());
    }
}

#[test]
fn inspect_shows_the_run_flags() {
    let Some((v, rootfs)) = setup("inspect_shows_the_run_flags") else {
        return;
    };
    v.ok(&[
        "create",
        "--name",
        "insp",
        "--cap-add",
        "sys_admin",
        "--cap-drop",
        "CAP_CHOWN",
        "--read-only",
        "--tmpfs",
        "/scratch:rw,size=1m",
        "--tmpfs",
        "/plain",
        "--rootfs",
        &rootfs,
        "true",
    ]);
    let host = &v.inspect("insp")["HostConfig"];
    assert_eq!(
        host["CapAdd"],
        serde_json::json!(["CAP_SYS_ADMIN"]),
        "{host}"
    );
    assert_eq!(host["CapDrop"], serde_json::json!(["CAP_CHOWN"]), "{host}");
    assert_eq!(host["ReadonlyRootfs"], true, "{host}");
    assert_eq!(
        host["Tmpfs"],
        serde_json::json!({"/scratch": "rw,size=1m", "/plain": ""}),
        "{host}"
    );
    v.ok(&["rm", "insp"]);
}

#[test]
fn init_runs_catatonit_as_pid_1_and_passes_the_exit_code() {
    let Some((v, rootfs)) = setup("init_runs_catatonit_as_pid_1_and_passes_the_exit_code") else {
        return;
    };
    assert!(
        vigil_runner::spec::find_init().is_some(),
        "catatonit is not installed (scripts/ci-setup installs it)"
    );
    let (code, out) = run_sh(
        &v,
        &rootfs,
        &["--init"],
        "tr '\\0' ' ' < /proc/1/cmdline; echo; echo shell-pid=$$; exit 3",
    );
    assert_eq!(code, Some(3), "{out}");
    assert!(out.starts_with("/run/vigil-init -- "), "{out}");
    assert!(!out.contains("shell-pid=1\n"), "{out}");
}
