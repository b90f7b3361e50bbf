//! Issue #15's image commands and configuration end to end, as root:
//! `save` in every format read back by `vigil load` and by a private Podman
//! (`podman load`, `podman run`), `history`, the errors of `save`; the
//! containers.conf/storage.conf precedence (the user's file over the system
//! one, `CONTAINERS_CONF`/`CONTAINERS_STORAGE_CONF` over both; tests never
//! touch /etc: they point HOME/XDG_CONFIG_HOME at a temporary directory),
//! fuse-overlayfs as storage.conf's mount_program, and scripts/docker-habits.

mod e2e_support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use e2e_support::{
    podman_or_skip, run_bounded, text, vigil_and_busybox_rootfs, vigil_with_busybox_image as setup,
    which, workspace, Vigil, BUSYBOX_IMAGE,
};

const IMAGE: &str = BUSYBOX_IMAGE;

/// `vigil` with extra environment (configuration files), bounded.
fn run_env(v: &Vigil, env: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut c = v.command(args);
    for (k, val) in env {
        c.env(k, val);
    }
    run_bounded(&mut c, b"", Duration::from_secs(120))
}

fn tar_names(path: &Path) -> Vec<String> {
    let out = run_bounded(
        Command::new("tar").arg("tf").arg(path),
        b"",
        Duration::from_secs(30),
    );
    text(&out.stdout).lines().map(String::from).collect()
}

#[test]
fn save_round_trips_through_vigil_load() {
    let Some((v, _)) = setup("save_round_trips_through_vigil_load") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let hex = regex::Regex::new("^[0-9a-f]{64}").unwrap();

    v.ok(&["save", "-o", &p("a.tar"), IMAGE]);
    let names = tar_names(&dir.path().join("a.tar"));
    assert_eq!(names.len(), 7, "{names:?}");
    assert!(
        names.contains(&"manifest.json".to_string()) && names.contains(&"repositories".to_string())
    );
    let manifest = run_bounded(
        Command::new("tar").args(["xOf", &p("a.tar"), "manifest.json"]),
        b"",
        Duration::from_secs(30),
    );
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.stdout).unwrap();
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!([IMAGE]));
    assert!(hex.is_match(manifest[0]["Config"].as_str().unwrap()));
    // A saved image's layers reproduce: saving it again keeps its id.
    let other = Vigil::new().unwrap();
    assert_eq!(
        other.load(&dir.path().join("a.tar")),
        format!("Loaded image: {IMAGE}\n")
    );
    let id = other.ok(&["images", "-q", "--no-trunc"]);
    other.ok(&["save", "-o", &p("again.tar"), IMAGE]);
    let third = Vigil::new().unwrap();
    third.load(&dir.path().join("again.tar"));
    assert_eq!(
        third.ok(&["images", "-q", "--no-trunc"]),
        id,
        "same image id after a second round trip"
    );
    assert_eq!(
        third
            .ok(&["run", "--rm", IMAGE, "cat", "/etc/hostname"])
            .is_empty(),
        false
    );

    for format in ["oci-archive", "oci-dir", "docker-dir"] {
        let out = p(format);
        v.ok(&["save", "--format", format, "-o", &out, IMAGE]);
        if format == "docker-dir" {
            assert_eq!(
                fs::read_to_string(Path::new(&out).join("version")).unwrap(),
                "Directory Transport Version: 1.1\n"
            );
            continue;
        }
        let fresh = Vigil::new().unwrap();
        assert_eq!(
            fresh.load(Path::new(&out)),
            format!("Loaded image: {IMAGE}\n"),
            "{format}"
        );
        assert_eq!(
            fresh.ok(&["run", "--rm", IMAGE, "echo", "ok"]),
            "ok\n",
            "{format}"
        );
    }
    // -m: one entry per image.
    v.ok(&["tag", IMAGE, "localhost/bb:two"]);
    v.ok(&["import", "-q", &p("a.tar"), "localhost/tarball:1"]);
    v.ok(&[
        "save",
        "-m",
        "-o",
        &p("m.tar"),
        IMAGE,
        "localhost/tarball:1",
    ]);
    let fresh = Vigil::new().unwrap();
    let loaded = fresh.load(&dir.path().join("m.tar"));
    assert_eq!(loaded.lines().count(), 2, "{loaded}");

    // Errors: nothing half-written.
    let fails = |args: &[&str], message: &str| {
        let out = v.run(args);
        assert_eq!(out.status.code(), Some(125), "{args:?}");
        assert!(
            text(&out.stderr).contains(message),
            "{args:?}: {}",
            text(&out.stderr)
        );
    };
    fails(
        &["save", "--format", "bogus", "-o", &p("x"), IMAGE],
        "format value must be one of oci-dir oci-archive docker-dir docker-archive",
    );
    fails(
        &["save", "--compress", "-o", &p("x"), IMAGE],
        "--compress can only be set when --format is 'docker-dir'",
    );
    fails(
        &[
            "save",
            "-m",
            "--format",
            "oci-archive",
            "-o",
            &p("x"),
            IMAGE,
        ],
        "only docker-archive",
    );
    fails(
        &["save", "-o", &p("x"), "nosuch"],
        "nosuch: image not known",
    );
    let ro = dir.path().join("ro");
    fs::create_dir(&ro).unwrap();
    fails(
        &["save", "-o", "/proc/vigil-test/a.tar", IMAGE],
        "/proc/vigil-test/a.tar",
    );
    assert!(!Path::new(&p("x")).exists());
    assert_eq!(
        fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".vigil"))
            .count(),
        0,
        "temporary files left"
    );
    let tty = v.run_on_terminal(&["save", IMAGE]);
    assert!(
        text(&tty.stdout).contains("refusing to save to terminal. Use -o flag or redirect"),
        "{}",
        text(&tty.stdout)
    );

    let history = v.ok(&["history", IMAGE]);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>()[..3],
        ["ID", "CREATED", "CREATED"]
    );
    assert!(
        lines[1].contains("/bin/sh -c #(nop) ADD file:") && lines[1].contains("..."),
        "{history}"
    );
    assert!(
        lines[1].trim_end().ends_with("imported from tarball"),
        "{history}"
    );
}

#[test]
fn podman_loads_what_vigil_saves() {
    let test = "podman_loads_what_vigil_saves";
    let Some((v, _)) = setup(test) else {
        return;
    };
    let Some(podman) = podman_or_skip(test, "vfs") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for format in ["docker-archive", "oci-archive"] {
        let out = dir.path().join(format!("{format}.tar"));
        v.ok(&[
            "save",
            "--format",
            format,
            "-o",
            out.to_str().unwrap(),
            IMAGE,
        ]);
        let loaded = podman.ok(&["load", "-i", out.to_str().unwrap()]);
        assert!(
            loaded.contains("Loaded image") && loaded.contains("localhost/bb"),
            "{format}: {loaded}"
        );
        let ran = podman.ok(&[
            "run",
            "--rm",
            "--pull",
            "never",
            "--network",
            "none",
            IMAGE,
            "echo",
            "from-vigil",
        ]);
        assert_eq!(ran, "from-vigil\n", "{format}");
        podman.ok(&["rmi", "-f", IMAGE]);
    }
}

#[test]
fn config_files_take_effect_in_podmans_order() {
    let Some((v, rootfs)) = setup("config_files_take_effect_in_podmans_order") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let xdg = dir.path().join("xdg");
    fs::create_dir_all(xdg.join("containers")).unwrap();
    // The user's file over the system one (/usr/share/containers sets
    // default_capabilities): here only CHOWN, plus an env and a ulimit.
    fs::write(
        xdg.join("containers/containers.conf"),
        "[containers]\nenv = [\"FROM_USER_CONF=1\"]\ndefault_capabilities = [\"CHOWN\"]\n\
         default_ulimits = [\"nofile=20000:20000\"]\n[engine]\nruntime = \"runc\"\n",
    )
    .unwrap();
    let user = [("XDG_CONFIG_HOME", xdg.as_path())];
    let script = "echo $FROM_USER_CONF; ulimit -n; grep CapEff /proc/self/status";
    let out = run_env(
        &v,
        &user,
        &["run", "--rm", "--rootfs", &rootfs, "sh", "-c", script],
    );
    assert_eq!(
        text(&out.stdout),
        "1\n20000\nCapEff:\t0000000000000001\n",
        "{}",
        text(&out.stderr)
    );
    // --env and the image still win over the configured env.
    let out = run_env(
        &v,
        &user,
        &[
            "run",
            "--rm",
            "-e",
            "FROM_USER_CONF=2",
            "--rootfs",
            &rootfs,
            "sh",
            "-c",
            "echo $FROM_USER_CONF",
        ],
    );
    assert_eq!(text(&out.stdout), "2\n");

    // CONTAINERS_CONF replaces the whole list: the user's file is not read.
    let only = dir.path().join("only.conf");
    fs::write(&only, "[containers]\nenv = [\"FROM_ENV_CONF=1\"]\n").unwrap();
    let env = [
        ("XDG_CONFIG_HOME", xdg.as_path()),
        ("CONTAINERS_CONF", only.as_path()),
    ];
    let out = run_env(
        &v,
        &env,
        &[
            "run",
            "--rm",
            "--rootfs",
            &rootfs,
            "sh",
            "-c",
            "echo ${FROM_USER_CONF:-unset} $FROM_ENV_CONF; grep CapEff /proc/self/status",
        ],
    );
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("unset 1"), "{}", text(&out.stderr));
    let caps = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("");
    let caps = u64::from_str_radix(caps, 16).unwrap_or(0);
    assert_eq!(caps.count_ones(), 11, "vigil's own default set: {caps:#x}");

    // A runtime name from [engine.runtimes]; one that is not installed is a clear error.
    fs::write(&only, "[engine]\nruntime = \"myrunc\"\n[engine.runtimes]\nmyrunc = [\"/nonexistent/runc\", \"/usr/sbin/runc\", \"/usr/bin/runc\"]\n").unwrap();
    let out = run_env(
        &v,
        &[("CONTAINERS_CONF", only.as_path())],
        &["info", "--format", "{{.Host.OCIRuntime.Path}}"],
    );
    assert!(
        text(&out.stdout).trim().ends_with("/runc"),
        "{}",
        text(&out.stdout)
    );
    let out = run_env(
        &v,
        &[("CONTAINERS_CONF", only.as_path())],
        &["run", "--rm", "--rootfs", &rootfs, "true"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run_env(
        &v,
        &[],
        &[
            "--runtime",
            "crun-not-here",
            "run",
            "--rm",
            "--rootfs",
            &rootfs,
            "true",
        ],
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("crun-not-here"),
        "{}",
        text(&out.stderr)
    );

    // Unknown keys are warned about; a malformed file names file and line.
    fs::write(&only, "[engine]\nruntme = \"runc\"\n").unwrap();
    let out = run_env(&v, &[("CONTAINERS_CONF", only.as_path())], &["ps"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains(&format!(
            "{}: unknown key \"engine.runtme\" ignored",
            only.display()
        )),
        "{}",
        text(&out.stderr)
    );
    fs::write(&only, "[containers]\n\nenv = [\"A=1\"\n").unwrap();
    let out = run_env(&v, &[("CONTAINERS_CONF", only.as_path())], &["ps"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains(&format!("{}: line 3", only.display())),
        "{}",
        text(&out.stderr)
    );

    // storage.conf: vfs copies, and graphroot/runroot move the store.
    let storage = dir.path().join("storage.conf");
    fs::write(
        &storage,
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/g\"\nrunroot = \"{0}/r\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let mut c = Command::new(&v.bin);
    c.env("CONTAINERS_STORAGE_CONF", &storage).args([
        "--conmon",
        v.conmon.to_str().unwrap(),
        "run",
        "--rm",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "grep ' / ' /proc/self/mountinfo | grep -c overlay",
    ]);
    let out = run_bounded(&mut c, b"", Duration::from_secs(120));
    assert_eq!(
        text(&out.stdout),
        "0\n",
        "a copy, not an overlay: {}",
        text(&out.stderr)
    );
    assert!(
        dir.path().join("g/containers").is_dir(),
        "store under graphroot"
    );
    let mut c = Command::new(&v.bin);
    c.env("CONTAINERS_STORAGE_CONF", &storage).args([
        "info",
        "--format",
        "{{.Store.GraphDriverName}} {{.Store.GraphRoot}}",
    ]);
    let out = run_bounded(&mut c, b"", Duration::from_secs(60));
    assert_eq!(
        text(&out.stdout),
        format!("vfs {}/g\n", dir.path().display())
    );
}

#[test]
fn fuse_overlayfs_as_the_mount_program() {
    let test = "fuse_overlayfs_as_the_mount_program";
    let Some((v, rootfs)) = vigil_and_busybox_rootfs(test) else {
        return;
    };
    let Some(program) = which("fuse-overlayfs") else {
        eprintln!("skipping {test}: fuse-overlayfs not installed (scripts/ci-setup)");
        return;
    };
    if !Path::new("/dev/fuse").exists() {
        eprintln!("skipping {test}: no /dev/fuse");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage.conf");
    fs::write(
        &storage,
        format!(
            "[storage]\ndriver = \"overlay\"\n[storage.options.overlay]\nmount_program = \"{}\"\n",
            program.display()
        ),
    )
    .unwrap();
    let env = [("CONTAINERS_STORAGE_CONF", storage.as_path())];
    let out = run_env(
        &v,
        &env,
        &[
            "run",
            "-d",
            "--name",
            "f",
            "--rootfs",
            &rootfs,
            "sh",
            "-c",
            "echo data > /root/new; sleep 1000",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_string();
    let merged = format!("{}/containers/{id}/merged", v.root().display());
    let fstype = || {
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(merged.as_str()))
            .and_then(|l| {
                l.split(" - ")
                    .nth(1)
                    .map(|t| t.split(' ').next().unwrap_or("").to_string())
            })
    };
    assert_eq!(fstype().as_deref(), Some("fuse.fuse-overlayfs"));
    v.wait_for("the write", Duration::from_secs(20), |v| {
        v.run(&["exec", "f", "cat", "/root/new"]).stdout == b"data\n"
    });
    // The write landed in the container's upper layer, not in the rootfs.
    assert!(!Path::new(&rootfs).join("root/new").exists());
    let out = run_env(&v, &env, &["rm", "-f", "f"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(fstype(), None, "unmounted");
}

#[test]
fn docker_habits_script_passes() {
    let test = "docker_habits_script_passes";
    let Some((v, rootfs)) = vigil_and_busybox_rootfs(test) else {
        return;
    };
    if which("script").is_none() {
        eprintln!("skipping {test}: script(1) missing");
        return;
    }
    let out = run_bounded(
        Command::new("bash")
            .arg(workspace().join("scripts/docker-habits"))
            .arg(&v.bin)
            .arg(&rootfs),
        b"",
        Duration::from_secs(300),
    );
    let report = text(&out.stdout);
    assert!(out.status.success(), "{report}\n{}", text(&out.stderr));
    assert!(report.trim_end().ends_with(" passed, 0 failed"), "{report}");
}
