//! Rootless pull and run: `vigil` as the unprivileged test user (made by
//! scripts/rootless-setup, default `vigiltest`) pulls from a docker-registry
//! on 127.0.0.1 into its own store and runs the image.

mod registry_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use registry_support::e2e_support::{run_bounded, vigil_binaries, workspace};
use registry_support::{oci_src, seed, text, Fixture, Registry, RegistryConfig};

fn user() -> Option<(String, u32, u32)> {
    let name = std::env::var("VIGIL_ROOTLESS_USER").unwrap_or_else(|_| "vigiltest".into());
    let find = || {
        fs::read_to_string("/etc/passwd")
            .ok()?
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 4 && f[0] == name)
                    .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
            })
    };
    if find().is_none() && std::env::var_os("CI").is_some() {
        let _ = Command::new("bash")
            .arg(workspace().join("scripts/rootless-setup"))
            .status();
    }
    let (uid, gid) = find()?;
    fs::read_to_string("/etc/subuid")
        .ok()?
        .lines()
        .any(|l| l.starts_with(&format!("{name}:")))
        .then_some((name, uid, gid))
}

#[test]
fn rootless_pull_and_run() {
    crate::require_registry!();
    let Some((name, uid, gid)) = user() else {
        eprintln!("skipped: no rootless test user (scripts/rootless-setup)");
        return;
    };
    let fx = Fixture::new();
    let reg = Registry::start(&fx, "a", &RegistryConfig::default());
    let image = format!("{}/test/multi:1", reg.addr);
    seed(&fx, &oci_src("multi"), &image, false, false);

    // The user's world: binaries, home, runtime dir, registries.conf.
    let (bin, conmon) = vigil_binaries().unwrap();
    let dir = tempfile::Builder::new()
        .prefix("vigil-rl-reg-")
        .tempdir_in("/tmp")
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let bindir = dir.path().join("bin");
    fs::create_dir(&bindir).unwrap();
    for (src, n) in [(&bin, "vigil"), (&conmon, "conmon")] {
        fs::copy(src, bindir.join(n)).unwrap();
    }
    let chown = |p: &Path| std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
    for sub in ["home", "run"] {
        fs::create_dir(dir.path().join(sub)).unwrap();
        chown(&dir.path().join(sub));
    }
    let conf = dir.path().join("home/registries.conf");
    fs::write(
        &conf,
        format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
            reg.addr
        ),
    )
    .unwrap();
    chown(&conf);
    let vigil = |args: &[&str]| {
        let mut c = Command::new(bindir.join("vigil"));
        c.args(args)
            .env_clear()
            .env("HOME", dir.path().join("home"))
            .env("USER", &name)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("XDG_DATA_HOME", dir.path().join("home/data"))
            .env("XDG_RUNTIME_DIR", dir.path().join("run"))
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .env("VIGIL_REGISTRIES_CONF_DIR", dir.path().join("home/none"))
            .current_dir(dir.path().join("home"))
            .uid(uid)
            .gid(gid);
        run_bounded(&mut c, b"", Duration::from_secs(120))
    };
    let out = vigil(&["pull", "-q", &image]);
    if text(&out.stderr).contains("cannot create a user namespace") {
        eprintln!("skipped: no unprivileged user namespaces here");
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let id = text(&out.stdout);
    assert_eq!(id.trim().len(), 64);
    // The store is the user's, below XDG_DATA_HOME.
    let store = dir.path().join("home/data/vigil");
    assert!(store
        .join("images")
        .join(format!("{}.json", id.trim()))
        .exists());
    let out = vigil(&["run", "--rm", &image]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi\n");
    // Clean up the user's pause process and files.
    let _ = vigil(&["rm", "-a", "-f"]);
    if let Ok(pid) = fs::read_to_string(dir.path().join("run/vigil/pause.pid")) {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            // SAFETY: signalling the test user's own pause process by pid.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let _ = Command::new("rm")
        .arg("-rf")
        .arg(dir.path().join("home"))
        .status();
}
