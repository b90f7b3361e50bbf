//! Rootless vigil end to end: the real `vigil` binary run as an unprivileged
//! user with subordinate IDs, with the real monitor and runc.
//!
//! Needs root (to switch to the user) and the user made by
//! `scripts/rootless-setup` (default `vigiltest`, or `$VIGIL_ROOTLESS_USER`)
//! with ranges in /etc/subuid and /etc/subgid. Each test gets its own
//! directory under /tmp with copies of the binaries and the test image (so
//! the workspace need not be readable by the user), and its own
//! `$XDG_DATA_HOME` and `$XDG_RUNTIME_DIR`; at the end its containers are
//! removed and its pause process is killed.
//!
//! Environment: `VIGIL_BINARY`, `CONMON_BINARY` (default
//! `<workspace>/target/release/{vigil,conmon}`), `VIGIL_TEST_IMAGES` (default
//! `<workspace>/target/test-images`, made by scripts/make-test-images).
//! With `CI` set, a missing user is created by running scripts/rootless-setup.

mod rootless_support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rootless_support::*;

fn uid_of(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .uid()
}

/// Every file named `name` in the image store's layer directories.
fn find_in_layers(store: &Path, rel: &str) -> Vec<PathBuf> {
    fs::read_dir(store.join("layers"))
        .map(|e| {
            e.filter_map(|e| e.ok())
                .map(|e| e.path().join("rootfs").join(rel))
                .filter(|p| p.symlink_metadata().is_ok())
                .collect()
        })
        .unwrap_or_default()
}

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (ma, mi) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (ma, mi) >= (major, minor)
}

#[test]
fn rootless_errors_are_actionable() {
    let Some(mut r) = setup("rootless_errors_are_actionable") else {
        return;
    };
    let scratch = r.dir.path().join("scratch");
    fs::create_dir(&scratch).unwrap();
    fs::set_permissions(&scratch, fs::Permissions::from_mode(0o755)).unwrap();
    // Each case uses a fresh state directory: no pause process to join yet.
    let fresh = |r: &Rootless, n: &str| -> String {
        let d = r.home().join(format!("run-{n}"));
        fs::create_dir(&d).unwrap();
        std::os::unix::fs::chown(&d, Some(r.uid), Some(r.gid)).unwrap();
        format!("--runroot={}", d.display())
    };
    let expect_error = |r: &Rootless, args: &[&str], wanted: &[&str]| {
        let out = r.run(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{args:?}: {err}");
        for w in wanted {
            assert!(err.contains(w), "{args:?}: expected {w:?} in: {err}");
        }
    };

    // No subuid entry for the user: the usermod hint.
    let other = scratch.join("subuid-other");
    fs::write(&other, "someoneelse:100000:65536\n").unwrap();
    r.extra_env = vec![("VIGIL_SUBUID_FILE".into(), other.clone().into())];
    let runroot = fresh(&r, "nosub");
    let hint = format!(
        "add a range with `usermod --add-subuids 100000-165535 {}`",
        user_name()
    );
    expect_error(&r, &[&runroot, "images"], &["no subordinate IDs", &hint]);
    // Same for subgid.
    r.extra_env = vec![("VIGIL_SUBGID_FILE".into(), other.into())];
    let runroot = fresh(&r, "nosubgid");
    let hint = format!("usermod --add-subgids 100000-165535 {}", user_name());
    expect_error(&r, &[&runroot, "images"], &[&hint]);

    // A malformed file: the line is named.
    let bad = scratch.join("subuid-bad");
    fs::write(
        &bad,
        format!("{}:100000:65536\n# fine\nbroken-line\n", user_name()),
    )
    .unwrap();
    r.extra_env = vec![("VIGIL_SUBUID_FILE".into(), bad.clone().into())];
    let runroot = fresh(&r, "bad");
    expect_error(
        &r,
        &[&runroot, "images"],
        &[&format!(
            "{} is malformed: line 3 \"broken-line\"",
            bad.display()
        )],
    );

    // newuidmap missing from PATH.
    let empty = scratch.join("empty-bin");
    fs::create_dir(&empty).unwrap();
    fs::set_permissions(&empty, fs::Permissions::from_mode(0o755)).unwrap();
    r.extra_env = vec![("PATH".into(), empty.clone().into())];
    let runroot = fresh(&r, "nohelper");
    expect_error(
        &r,
        &[&runroot, "images"],
        &["newuidmap not found on PATH", "apt-get install uidmap"],
    );

    // newuidmap present but not setuid (a plain copy).
    let plain = scratch.join("plain-bin");
    fs::create_dir(&plain).unwrap();
    fs::set_permissions(&plain, fs::Permissions::from_mode(0o755)).unwrap();
    for helper in ["newuidmap", "newgidmap"] {
        let src = Command::new("sh")
            .args(["-c", &format!("command -v {helper}")])
            .output()
            .unwrap();
        let src = text(&src.stdout).trim().to_string();
        assert!(!src.is_empty(), "{helper} not installed");
        fs::copy(&src, plain.join(helper)).unwrap();
        fs::set_permissions(plain.join(helper), fs::Permissions::from_mode(0o755)).unwrap();
    }
    r.extra_env = vec![("PATH".into(), plain.clone().into())];
    let runroot = fresh(&r, "nosetuid");
    expect_error(
        &r,
        &[&runroot, "images"],
        &[
            &format!(
                "newuidmap ({}) is not setuid root",
                plain.join("newuidmap").display()
            ),
            "chmod u+s",
        ],
    );
    r.extra_env.clear();

    // Root and rootless stores never mix, and nobody uses another's store.
    let roots = scratch.join("root-owned");
    fs::create_dir(&roots).unwrap();
    fs::set_permissions(&roots, fs::Permissions::from_mode(0o755)).unwrap();
    let runroot = fresh(&r, "stores");
    let root_arg = format!("--root={}", roots.display());
    expect_error(
        &r,
        &[&root_arg, &runroot, "images"],
        &["belongs to uid 0", "never uses root's store"],
    );
    // The user's own store is refused to root (vigil run as root here).
    r.ok(&["images"]);
    let user_store = r.data_home().join("vigil");
    let out = Command::new(r.bin("vigil"))
        .arg("--root")
        .arg(&user_store)
        .arg("--runroot")
        .arg(scratch.join("root-run"))
        .arg("images")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains(&format!("belongs to uid {}", r.uid)) && err.contains("root never uses"),
        "{err}"
    );
    // keep-id is rootless only.
    let out = Command::new(r.bin("vigil"))
        .arg("--root")
        .arg(scratch.join("root-store"))
        .arg("--runroot")
        .arg(scratch.join("root-run"))
        .args(["create", "--userns=keep-id", "--rootfs", "/", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("only supported rootless"),
        "{}",
        text(&out.stderr)
    );

    // Without XDG_RUNTIME_DIR the state goes to /tmp/vigil-<uid>, private.
    let fallback = PathBuf::from(format!("/tmp/vigil-{}", r.uid));
    let out = r
        .command(&["ps", "-a"])
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let meta = fs::metadata(&fallback).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (r.uid, 0o700));
    if let Some(pid) = fs::read_to_string(fallback.join("pause.pid"))
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
    {
        // SAFETY: the pause process this test just made.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }

    // Explicit mappings that leave out the user cannot reach the store.
    if let Some(image) = r.load_image() {
        let out = r.run(&["run", "--rm", "--uidmap", "0:1:1000", image, "-c", "true"]);
        assert_eq!(out.status.code(), Some(125));
        assert!(
            text(&out.stderr).contains("must map uid 0 of the rootless user namespace"),
            "{}",
            text(&out.stderr)
        );
        let out = r.run(&[
            "run",
            "--rm",
            "--uidmap",
            "0:1:99999999",
            image,
            "-c",
            "true",
        ]);
        assert_eq!(out.status.code(), Some(125));
        assert!(
            text(&out.stderr).contains("has uids 0 to"),
            "{}",
            text(&out.stderr)
        );
    }
    r.assert_clean();
}

#[test]
fn rootless_run_maps_owners_on_both_sides() {
    let Some(r) = setup("rootless_run_maps_owners_on_both_sides") else {
        return;
    };
    let Some(image) = r.load_image() else { return };

    // The layers were unpacked inside the user namespace: the image's uid
    // 1000 file is owned by the mapped subordinate ID on the host, the
    // device node was skipped (Podman), the opaque marker is a user xattr.
    let store = r.data_home().join("vigil");
    let owned = find_in_layers(&store, "home/app/owned");
    assert_eq!(owned.len(), 1, "{owned:?}");
    assert_eq!(uid_of(&owned[0]), r.mapped_uid(1000));
    assert_eq!(
        uid_of(owned[0].parent().unwrap().parent().unwrap()),
        r.uid,
        "/home: container root"
    );
    assert!(find_in_layers(&store, "dev/null-test").is_empty());

    // Container root writes into a volume: the file belongs to the user.
    let vol = r.user_dir("vol");
    let v = format!("{}:/vol", vol.display());
    let out = r.run(&[
        "run",
        "--rm",
        "-u",
        "0",
        "-v",
        &v,
        image,
        "-c",
        "id -u; stat -c %u /home/app/owned; echo data > /vol/by-root; head -1 /proc/self/uid_map",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[..2], ["0", "1000"], "{stdout}");
    let map: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(map, ["0", &r.uid.to_string(), "1"], "{stdout}");
    assert_eq!(uid_of(&vol.join("by-root")), r.uid);
    assert_eq!(fs::read_to_string(vol.join("by-root")).unwrap(), "data\n");

    // The image's user (1000) writes into a world-writable volume: the
    // file carries the mapped subordinate ID on the host.
    let shared = r.user_dir("shared");
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    let s = format!("{}:/shared", shared.display());
    let out = r.run(&[
        "run",
        "--rm",
        "-v",
        &s,
        image,
        "-c",
        "id -u; touch /shared/by-1000",
    ]);
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("1000\n", Some(0)),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(uid_of(&shared.join("by-1000")), r.mapped_uid(1000));

    // --memory is ignored with a warning; --network host works (/sys bound).
    let out = r.run(&[
        "run",
        "--rm",
        "--memory",
        "64m",
        "--network",
        "host",
        image,
        "-c",
        "test -e /sys/class/net/lo && echo sys-ok",
    ]);
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("sys-ok\n", Some(0)),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("--memory is ignored"),
        "{}",
        text(&out.stderr)
    );
    // --network none: loopback only; the default (slirp4netns) adds tap0.
    let out = r.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        image,
        "-c",
        "ls /sys/class/net",
    ]);
    assert_eq!(text(&out.stdout), "lo\n", "{}", text(&out.stderr));
    let out = r.run(&["run", "--rm", image, "-c", "ls /sys/class/net"]);
    assert_eq!(text(&out.stdout), "lo\ntap0\n", "{}", text(&out.stderr));
    r.assert_clean();
}

#[test]
fn rootless_keep_id_and_explicit_mappings() {
    let Some(r) = setup("rootless_keep_id_and_explicit_mappings") else {
        return;
    };
    let Some(image) = r.load_image() else { return };
    let vol = r.user_dir("vol");
    let v = format!("{}:/vol", vol.display());
    let out = r.run(&[
        "run",
        "--rm",
        "--userns=keep-id",
        "-v",
        &v,
        image,
        "-c",
        "id -u; id -g; stat -c %u /home/app/owned; stat -c %u /vol; echo kept > /vol/keep-id; \
         id -un; echo $HOME",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (uid, gid) = (r.uid.to_string(), r.gid.to_string());
    // Like Podman, the user gets a passwd entry (name and home of the host).
    let home = fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(&format!("{}:", user_name())))
        .map(|l| l.split(':').nth(5).unwrap_or("/").to_string())
        .unwrap();
    let name = user_name();
    assert_eq!(
        text(&out.stdout).lines().collect::<Vec<_>>(),
        [
            uid.as_str(),
            gid.as_str(),
            "1000",
            uid.as_str(),
            name.as_str(),
            home.as_str()
        ]
    );
    let meta = fs::metadata(vol.join("keep-id")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (r.uid, r.gid));

    // Explicit mappings (IDs of the rootless namespace: 0 is the user).
    let out = r.run(&[
        "run",
        "--rm",
        "--uidmap",
        "0:1:1000",
        "--uidmap",
        "1000:0:1",
        "--uidmap",
        "1001:1001:100",
        "-v",
        &v,
        image,
        "-c",
        "id -u; stat -c %u /home/app/owned; echo mapped > /vol/uidmap; cat /proc/self/uid_map",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[..2], ["1000", "1000"], "{stdout}");
    assert_eq!(uid_of(&vol.join("uidmap")), r.uid, "{stdout}");
    r.assert_clean();
}

#[test]
fn rootless_detached_lifecycle_exec_logs_attach_stop_rm() {
    let Some(r) = setup("rootless_detached_lifecycle_exec_logs_attach_stop_rm") else {
        return;
    };
    let Some(image) = r.load_image() else { return };
    // The image's user is 1000 (a subordinate ID on the host): stopping it
    // needs the namespace's privileges over it.
    let script = "trap 'echo got-int; exit 0' INT; echo up; while :; do sleep 0.1; done";
    let id = r
        .ok(&["run", "-d", "--name", "web", image, "-c", script])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    let ps = r.ok(&["ps"]);
    assert!(ps.contains("web") && ps.contains("Up "), "{ps}");
    let record: serde_json::Value = serde_json::from_slice(
        &fs::read(r.state().join("containers").join(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    let expected = if kernel_at_least(5, 11) {
        "overlay"
    } else {
        "copy"
    };
    assert_eq!(
        record["mounted"], expected,
        "rootless overlay with userxattr"
    );
    let spec: serde_json::Value = serde_json::from_slice(
        &fs::read(r.state().join("containers").join(&id).join("config.json")).unwrap(),
    )
    .unwrap();
    assert!(spec["linux"].get("resources").is_none());
    assert!(spec["linux"].get("cgroupsPath").is_none());

    let deadline = Instant::now() + Duration::from_secs(10);
    while r.ok(&["logs", "web"]) != "up\n" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(r.ok(&["logs", "web"]), "up\n");

    let out = r.run(&["exec", "web", "sh", "-c", "id -u; echo e >&2; exit 4"]);
    assert_eq!(
        (
            text(&out.stdout).as_str(),
            text(&out.stderr).as_str(),
            out.status.code()
        ),
        ("1000\n", "e\n", Some(4))
    );
    let out = r.run(&["exec", "-u", "0", "web", "id", "-u"]);
    assert_eq!(text(&out.stdout), "0\n", "{}", text(&out.stderr));
    let out = r.run_input(&["exec", "-i", "web", "cat"], b"piped\n");
    assert_eq!(text(&out.stdout), "piped\n", "{}", text(&out.stderr));

    assert_eq!(r.ok(&["stop", "web"]), "web\n");
    assert_eq!(r.ok(&["wait", "web"]), "0\n");
    assert_eq!(r.ok(&["logs", "web"]), "up\ngot-int\n");
    assert!(r.ok(&["ps", "-a"]).contains("Exited (0)"));
    assert_eq!(r.ok(&["rm", "web"]), format!("{id}\n"));

    // attach: output of a running container, then its exit code.
    let out = r.run(&[
        "run",
        "-d",
        "--name",
        "att",
        image,
        "-c",
        "sleep 2; echo late; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = r.run(&["attach", "--no-stdin", "att"]);
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("late\n", Some(3)),
        "{}",
        text(&out.stderr)
    );
    r.ok(&["rm", "att"]);

    // kill, and rm -f of a running container.
    r.ok(&["run", "-d", "--name", "k", image, "-c", "sleep 1000"]);
    r.ok(&["kill", "k"]);
    assert_eq!(r.ok(&["wait", "k"]), "137\n");
    r.ok(&["run", "-d", "--name", "f", image, "-c", "sleep 1000"]);
    r.ok(&["rm", "-f", "f"]);
    r.ok(&["rm", "k"]);

    // A detached --rm container removes itself (the monitor's exit command
    // runs vigil inside the namespace).
    let gone = r
        .ok(&["run", "-d", "--rm", "--name", "gone", image, "-c", "true"])
        .trim()
        .to_string();
    let dirs = [
        r.state().join("containers").join(&gone),
        r.data_home().join("vigil/containers").join(&gone),
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    while dirs.iter().any(|d| d.exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(r.ok(&["ps", "-a", "-q"]), "");

    // A terminal.
    let out = r.run(&["run", "--rm", "-t", image, "-c", "tty; exit 2"]);
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("/dev/pts/0\r\n", Some(2)),
        "{}",
        text(&out.stderr)
    );

    // The pause process dies while a container runs: the next command
    // rejoins the namespace through the container's monitor (the overlay
    // mount and the container's processes are there) and starts a new one.
    r.ok(&["run", "-d", "--name", "orphan", image, "-c", "sleep 1000"]);
    let old = r.pause_pid().expect("pause.pid");
    // SAFETY: killing the test's own pause process.
    unsafe { libc::kill(old, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while fs::read_to_string(format!("/proc/{old}/comm")).is_ok_and(|c| c.trim() == "vigil-pause")
        && fs::read_to_string(format!("/proc/{old}/stat")).is_ok_and(|s| !s.contains(") Z "))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = r.run(&["exec", "orphan", "id", "-u"]);
    assert_eq!(text(&out.stdout), "1000\n", "{}", text(&out.stderr));
    let new = r.pause_pid().expect("pause.pid");
    assert_ne!(new, old);
    assert_eq!(r.ok(&["stop", "-t", "1", "orphan"]), "orphan\n");
    assert_eq!(r.ok(&["rm", "orphan"]).len(), 65);

    // Foreground run with stdin and exit codes.
    let out = r.run_input(
        &[
            "run",
            "--rm",
            "-i",
            image,
            "-c",
            "read x; echo got:$x; exit 7",
        ],
        b"hello\n",
    );
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("got:hello\n", Some(7)),
        "{}",
        text(&out.stderr)
    );
    r.assert_clean();

    // Everything ran in one namespace held by one pause process.
    let pid = r.pause_pid().expect("pause.pid");
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert_eq!(comm.trim(), "vigil-pause");
    assert_eq!(uid_of(Path::new(&format!("/proc/{pid}"))), r.uid);
    let rmi = r.run(&["rmi", image]);
    assert_eq!(rmi.status.code(), Some(0), "{}", text(&rmi.stderr));
    assert!(find_in_layers(&r.data_home().join("vigil"), "bin").is_empty());
}

#[test]
fn rootless_copy_fallback_when_overlay_cannot_mount() {
    let Some(r) = setup("rootless_copy_fallback_when_overlay_cannot_mount") else {
        return;
    };
    // A store path with a comma cannot be written in overlay's mount
    // options: vigil falls back to a flat copy, made inside the namespace.
    let data = r.home().join("da,ta");
    let data_arg = data.to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let out = r
            .command(args)
            .env("XDG_DATA_HOME", &data_arg)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (text(&out.stdout), text(&out.stderr), out.status.code())
    };
    let archive = match test_image_archive() {
        Ok(a) => a,
        Err(why) => return eprintln!("skipping: {why}"),
    };
    let copy = r.bin("docker.tar");
    fs::copy(&archive, &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o644)).unwrap();
    let (_, err, code) = run(&["load", "-q", "-i", copy.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let vol = r.user_dir("vol");
    let v = format!("{}:/vol", vol.display());
    let (out, err, code) = run(&[
        "run",
        "-d",
        "--name",
        "c",
        "-u",
        "0",
        "-v",
        &v,
        "localhost/test:multi",
        "-c",
        "stat -c %u /home/app/owned; ls /opq; ls /dir1; echo x > /vol/f; sleep 1000",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let id = out.trim().to_string();
    let record: serde_json::Value = serde_json::from_slice(
        &fs::read(r.state().join("containers").join(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["mounted"], "copy");
    let merged = data.join("vigil/containers").join(&id).join("merged");
    assert_eq!(uid_of(&merged.join("home/app/owned")), r.mapped_uid(1000));
    assert_eq!(uid_of(&merged.join("bin/busybox")), r.uid);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !vol.join("f").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (logs, err, _) = run(&["logs", "c"]);
    // Layer 2 removed dir1/todelete and dir1/sub; layer 3 made /opq opaque.
    assert_eq!(
        logs, "1000\nnew\nadded\nfifo\nfile\nhardlink\nhl-to-lower\nrel-link\n",
        "{err}"
    );
    assert_eq!(uid_of(&vol.join("f")), r.uid);
    let (_, err, code) = run(&["rm", "-f", "c"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!data.join("vigil/containers").join(&id).exists());
}

/// Healthchecks rootless: the monitor runs them through runc in the user's
/// namespace; healthy, `healthcheck run` exit codes, unhealthy after the
/// retries, then the on-failure action (stop: the image's SIGINT) and the
/// restart path (the monitor's exit command starts it again).
#[test]
fn rootless_healthchecks_and_on_failure_actions() {
    let Some(r) = setup("rootless_healthchecks_and_on_failure_actions") else {
        return;
    };
    let Some(image) = r.load_image() else { return };
    let wait = |what: &str, check: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let inspect = |name: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&r.ok(&["inspect", name])).unwrap()[0].clone()
    };
    let script =
        "trap 'echo int; exit 0' INT; echo up; echo ok > /tmp/ok; while :; do sleep 0.1; done";
    for action in ["stop", "restart"] {
        let name = format!("rl-{action}");
        r.ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--health-cmd",
            "test -s /tmp/ok",
            "--health-interval",
            "1s",
            "--health-retries",
            "2",
            "--health-on-failure",
            action,
            image,
            "-c",
            script,
        ]);
        wait("healthy", &|| {
            inspect(&name)["State"]["Health"]["Status"] == "healthy"
        });
        let out = r.run(&["healthcheck", "run", &name]);
        assert_eq!(
            (out.status.code(), text(&out.stdout)),
            (Some(0), String::new())
        );
        assert!(r.ok(&["ps"]).contains("(healthy)"));
        let pid = inspect(&name)["State"]["Pid"].clone();
        // The image has few applets: emptying the file fails `test -s`.
        r.ok(&["exec", &name, "sh", "-c", ": > /tmp/ok"]);
        let out = r.run(&["healthcheck", "run", &name]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        if action == "stop" {
            wait("stopped", &|| inspect(&name)["State"]["Status"] == "exited");
            let c = inspect(&name);
            assert_eq!(c["State"]["ExitCode"], 0, "{c}");
            assert_eq!(c["State"]["Health"]["Status"], "unhealthy");
            assert_eq!(r.ok(&["logs", &name]), "up\nint\n");
        } else {
            wait("restarted", &|| {
                let c = inspect(&name);
                c["State"]["Status"] == "running" && c["State"]["Pid"] != pid
            });
            wait("healthy again", &|| {
                inspect(&name)["State"]["Health"]["Status"] == "healthy"
            });
            assert_eq!(r.ok(&["logs", &name]), "up\nint\nup\n");
        }
        r.ok(&["rm", "-f", &name]);
    }
}

/// Issue #15 as a user: `top`, `cp` (owners: the container user's, in the
/// user namespace) and `export` of a rootless container, and
/// fuse-overlayfs as storage.conf's mount_program.
#[test]
fn rootless_top_cp_export_and_fuse_overlayfs() {
    let test = "rootless_top_cp_export_and_fuse_overlayfs";
    let Some(mut r) = setup(test) else {
        return;
    };
    let Some(image) = r.load_image() else { return };
    r.ok(&["run", "-d", "--name", "c", image, "-c", "sleep 1000"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut top = String::new();
    while Instant::now() < deadline {
        top = r.ok(&["top", "c", "user", "pid", "args"]);
        if top.contains("sleep 1000") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let lines: Vec<&str> = top.lines().collect();
    assert_eq!(lines[0], "USER        PID         COMMAND", "{top}");
    assert!(lines.iter().any(|l| l.contains("sleep 1000")), "{top}");
    assert!(lines[1].split_whitespace().nth(1) == Some("1"), "{top}");

    let home = r.user_dir("cp");
    let host = home.join("h.txt");
    fs::write(&host, "hello\n").unwrap();
    std::os::unix::fs::chown(&host, Some(r.uid), Some(r.gid)).unwrap();
    r.ok(&["cp", host.to_str().unwrap(), "c:/tmp/"]);
    // The image's user is 1000: --archive gives the copy that user's ids.
    let out = r.run(&["exec", "c", "stat", "-c", "%u %g", "/tmp/h.txt"]);
    assert_eq!(text(&out.stdout), "1000 1000\n", "{}", text(&out.stderr));
    let back = home.join("back.txt");
    r.ok(&["cp", "c:/tmp/h.txt", back.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(&back).unwrap(), "hello\n");
    assert_eq!(uid_of(&back), r.uid, "the caller owns what it copied out");

    let tar = home.join("x.tar");
    r.ok(&["export", "-o", tar.to_str().unwrap(), "c"]);
    let list = Command::new("tar").arg("tf").arg(&tar).output().unwrap();
    assert!(
        text(&list.stdout).lines().any(|l| l == "tmp/h.txt"),
        "{}",
        text(&list.stdout)
    );
    r.ok(&["rm", "-f", "c"]);

    let fuse = Path::new("/usr/bin/fuse-overlayfs");
    if !fuse.exists() || !Path::new("/dev/fuse").exists() {
        eprintln!("{test}: fuse part skipped (no fuse-overlayfs or /dev/fuse)");
        return;
    }
    let conf = home.join("storage.conf");
    fs::write(
        &conf,
        "[storage]\ndriver = \"overlay\"\n[storage.options.overlay]\nmount_program = \"/usr/bin/fuse-overlayfs\"\n",
    )
    .unwrap();
    r.extra_env
        .push(("CONTAINERS_STORAGE_CONF".into(), conf.into_os_string()));
    r.ok(&[
        "run",
        "-d",
        "--name",
        "f",
        image,
        "-c",
        "echo data > /tmp/new; sleep 1000",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut root_fs = String::new();
    while Instant::now() < deadline {
        let out = r.run(&["exec", "f", "cat", "/proc/self/mountinfo"]);
        root_fs = text(&out.stdout)
            .lines()
            .find(|l| l.split(' ').nth(4) == Some("/"))
            .and_then(|l| l.split(" - ").nth(1))
            .unwrap_or("")
            .to_string();
        if !root_fs.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        root_fs.starts_with("fuse.fuse-overlayfs "),
        "root mount: {root_fs:?}"
    );
    assert_eq!(
        text(&r.run(&["exec", "f", "cat", "/tmp/new"]).stdout),
        "data\n"
    );
    r.ok(&["rm", "-f", "f"]);
    r.assert_clean();
}

#[test]
fn rootless_build_keeps_owners_inside_the_image() {
    let Some(r) = setup("rootless_build_keeps_owners_inside_the_image") else {
        return;
    };
    let Some(image) = r.load_image() else {
        return;
    };
    // The context belongs to the user; RUN runs in the rootless namespace
    // through the monitor and runc; COPY writes root-owned files.
    let ctx = r.user_dir("ctx");
    fs::write(ctx.join("a.txt"), "hi\n").unwrap();
    fs::write(
        ctx.join("Containerfile"),
        format!(
            "FROM {image}\nUSER root\nRUN mkdir /built && echo x > /built/f && chown 1000:1000 /built/f && rm -rf /dir1\nCOPY a.txt /copied/\n"
        ),
    )
    .unwrap();
    for f in ["a.txt", "Containerfile"] {
        std::os::unix::fs::chown(ctx.join(f), Some(r.uid), Some(r.gid)).unwrap();
    }
    let out = r.run(&["build", "-t", "rl-built", ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Successfully tagged localhost/rl-built:latest"));
    let owners = r.ok(&[
        "run",
        "--rm",
        "-u",
        "0",
        "--entrypoint",
        "/bin/sh",
        "rl-built",
        "-c",
        "stat -c '%n %u:%g' /built /built/f /copied/a.txt /bin/busybox; ls /dir1 2>&1 | head -c 0",
    ]);
    assert_eq!(
        owners,
        "/built 0:0\n/built/f 1000:1000\n/copied/a.txt 0:0\n/bin/busybox 0:0\n"
    );
    // On disk the layers hold the mapped host IDs: root is the user.
    let store = r.data_home().join("vigil");
    let built = find_in_layers(&store, "built/f");
    assert_eq!(built.len(), 1, "{built:?}");
    assert_eq!(uid_of(&built[0]), r.mapped_uid(1000));
    let copied = find_in_layers(&store, "copied/a.txt");
    assert_eq!(copied.len(), 1);
    assert_eq!(uid_of(&copied[0]), r.uid);
    // The deletion is a whiteout in the RUN layer, and a rebuild is cached.
    let again = r.ok(&["build", ctx.to_str().unwrap()]);
    assert_eq!(again.matches("--> Using cache").count(), 3, "{again}");
    r.assert_clean();
}
