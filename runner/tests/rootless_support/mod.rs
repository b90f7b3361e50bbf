//! The rootless test harness shared by rootless_lifecycle.rs and
//! network_rootless.rs: the real `vigil` binary run as the unprivileged test
//! user (scripts/rootless-setup) with private directories, and cleanup.

#![allow(dead_code)]

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use vigil_runner::rootless::idmap;

#[path = "../e2e_support/mod.rs"]
pub mod e2e_support;

pub use e2e_support::{env_path, test_image_archive, text, workspace};

pub fn user_name() -> String {
    std::env::var("VIGIL_ROOTLESS_USER").unwrap_or_else(|_| "vigiltest".into())
}

/// uid, gid and home of `name` from /etc/passwd.
pub fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 4 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// A private rootless installation for one test.
pub struct Rootless {
    pub uid: u32,
    pub gid: u32,
    /// Root-owned, world-traversable: `bin/` (vigil, conmon, docker.tar).
    pub dir: tempfile::TempDir,
    /// Extra environment for every call (tests of the error paths).
    pub extra_env: Vec<(String, OsString)>,
}

pub fn setup(test: &str) -> Option<Rootless> {
    let skip = |why: String| {
        eprintln!("skipping {test}: {why}");
        None
    };
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return skip("not root (needed to run vigil as the test user)".into());
    }
    let name = user_name();
    if lookup_user(&name).is_none() && std::env::var_os("CI").is_some() {
        let _ = Command::new("bash")
            .arg(workspace().join("scripts/rootless-setup"))
            .status();
    }
    let Some((uid, gid)) = lookup_user(&name) else {
        return skip(format!(
            "no user {name:?}: run scripts/rootless-setup as root (creates it with subordinate IDs)"
        ));
    };
    let subuid = fs::read_to_string(idmap::SUBUID_FILE).unwrap_or_default();
    if idmap::parse_subid(&subuid, idmap::SUBUID_FILE, false, &name, uid).is_err() {
        return skip(format!(
            "user {name:?} has no usable range in /etc/subuid: run scripts/rootless-setup"
        ));
    }
    let bin = env_path("VIGIL_BINARY").unwrap_or_else(|| workspace().join("target/release/vigil"));
    let conmon =
        env_path("CONMON_BINARY").unwrap_or_else(|| workspace().join("target/release/conmon"));
    for b in [&bin, &conmon] {
        if !b.is_file() {
            return skip(format!(
                "{} not built (set VIGIL_BINARY / CONMON_BINARY)",
                b.display()
            ));
        }
    }
    let dir = tempfile::Builder::new()
        .prefix("vigil-rl-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let chmod = |p: &Path, mode: u32| {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod")
    };
    chmod(dir.path(), 0o755);
    let bindir = dir.path().join("bin");
    fs::create_dir(&bindir).unwrap();
    chmod(&bindir, 0o755);
    for (src, name) in [(&bin, "vigil"), (&conmon, "conmon")] {
        let dst = bindir.join(name);
        fs::copy(src, &dst).expect("copy binary");
        chmod(&dst, 0o755);
    }
    for sub in ["home", "run"] {
        let p = dir.path().join(sub);
        fs::create_dir(&p).unwrap();
        std::os::unix::fs::chown(&p, Some(uid), Some(gid)).expect("chown");
        chmod(&p, 0o700);
    }
    let r = Rootless {
        uid,
        gid,
        dir,
        extra_env: Vec::new(),
    };
    // The namespace must work here at all (runuser-free check: vigil itself).
    let out = r.run(&["ps", "-a"]);
    if out.status.code() != Some(0) {
        let err = text(&out.stderr);
        if err.contains("cannot create a user namespace") {
            return skip(format!("no unprivileged user namespaces here: {err}"));
        }
        panic!("rootless `vigil ps -a` failed: {err}");
    }
    Some(r)
}

impl Rootless {
    pub fn bin(&self, name: &str) -> PathBuf {
        self.dir.path().join("bin").join(name)
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn data_home(&self) -> PathBuf {
        self.home().join("data")
    }

    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// `$XDG_RUNTIME_DIR/vigil`: vigil's state directory for the user.
    pub fn state(&self) -> PathBuf {
        self.runtime_dir().join("vigil")
    }

    /// A directory owned by the user (for volumes).
    pub fn user_dir(&self, name: &str) -> PathBuf {
        let p = self.home().join(name);
        fs::create_dir_all(&p).unwrap();
        std::os::unix::fs::chown(&p, Some(self.uid), Some(self.gid)).unwrap();
        p
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.bin("vigil"));
        c.args(args)
            .env_clear()
            .env("HOME", self.home())
            .env("USER", user_name())
            .env("LOGNAME", user_name())
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("XDG_DATA_HOME", self.data_home())
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            .current_dir(self.home())
            .uid(self.uid)
            .gid(self.gid);
        for (k, v) in &self.extra_env {
            c.env(k, v);
        }
        c
    }

    /// Run vigil as the user with `stdin`, bounded by 90 s.
    pub fn run_input(&self, args: &[&str], stdin: &[u8]) -> Output {
        // Another test copying its binaries may briefly hold a written file
        // open in a forked child: ETXTBSY is retried.
        let mut attempts = 0;
        let mut child = loop {
            match self
                .command(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
            {
                Ok(child) => break child,
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempts < 50 => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("spawn vigil: {e}"),
            }
        };
        let mut input = child.stdin.take().expect("stdin");
        let _ = input.write_all(stdin);
        drop(input);
        let deadline = Instant::now() + Duration::from_secs(90);
        while child.try_wait().expect("try_wait").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                panic!("vigil {args:?} timed out; stderr: {}", text(&out.stderr));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("output")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_input(args, b"")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        e2e_support::ok_stdout(&self.run(args), args)
    }

    /// Load the multi-layer test image; its name.
    pub fn load_image(&self) -> Option<&'static str> {
        let archive = match test_image_archive() {
            Ok(a) => a,
            Err(why) => {
                eprintln!("skipping: {why}");
                return None;
            }
        };
        let copy = self.bin("docker.tar");
        fs::copy(&archive, &copy).expect("copy image");
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o644)).unwrap();
        self.ok(&["load", "-q", "-i", copy.to_str().unwrap()]);
        Some("localhost/test:multi")
    }

    /// The host uid the rootless mapping gives container uid `id`.
    pub fn mapped_uid(&self, id: u32) -> u32 {
        let text = fs::read_to_string(idmap::SUBUID_FILE).unwrap();
        let ranges =
            idmap::parse_subid(&text, idmap::SUBUID_FILE, false, &user_name(), self.uid).unwrap();
        idmap::rootless_mapping(self.uid, &ranges)
            .to_host(id)
            .expect("mapped")
    }

    pub fn pause_pid(&self) -> Option<i32> {
        fs::read_to_string(self.state().join("pause.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Nothing of the containers is left in the store or the state.
    pub fn assert_clean(&self) {
        for d in [
            self.state().join("containers"),
            self.data_home().join("vigil/containers"),
        ] {
            let left = e2e_support::entries_but_lock(&d);
            assert!(left.is_empty(), "left in {}: {left:?}", d.display());
        }
    }
}

impl Drop for Rootless {
    fn drop(&mut self) {
        self.extra_env.clear();
        let ids = self.run(&["ps", "-a", "-q", "--no-trunc"]);
        for id in text(&ids.stdout).lines() {
            let _ = self.run(&["rm", "-f", id]);
        }
        if let Some(pid) = self.pause_pid() {
            // SAFETY: killing the test's own pause process.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Rootless Podman as the same test user, for comparisons: its own
/// configuration (runc, vfs storage, no registries), runtime directory and
/// store under the test's directory, never the user's or Podman's defaults.
/// Dropping it removes its containers and networks and ends its pause
/// process.
pub struct RootlessPodman<'a> {
    pub user: &'a Rootless,
    pub dir: PathBuf,
}

impl<'a> RootlessPodman<'a> {
    /// None (with the reason printed) where podman is not installed.
    pub fn new(user: &'a Rootless) -> Option<RootlessPodman<'a>> {
        if e2e_support::which("podman").is_none() {
            eprintln!("podman not installed: no comparison");
            return None;
        }
        let dir = user.dir.path().join("podman");
        for sub in ["", "home", "run", "store", "runroot", "tmp"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).unwrap();
            std::os::unix::fs::chown(&p, Some(user.uid), Some(user.gid)).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o700)).unwrap();
        }
        let d = dir.display();
        let files = [
            (
                "storage.conf",
                format!(
                    "[storage]\ndriver = \"vfs\"\ngraphroot = \"{d}/store\"\nrunroot = \"{d}/runroot\"\n"
                ),
            ),
            (
                "containers.conf",
                format!(
                    "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
                     [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n\
                     events_logger = \"none\"\ntmp_dir = \"{d}/tmp\"\n"
                ),
            ),
            ("registries.conf", "unqualified-search-registries = []\n".into()),
        ];
        for (name, body) in files {
            fs::write(dir.join(name), body).unwrap();
            fs::set_permissions(dir.join(name), fs::Permissions::from_mode(0o644)).unwrap();
        }
        let podman = RootlessPodman { user, dir };
        let out = podman.run(&["info", "--format", "{{.Store.GraphDriverName}}"]);
        if !out.status.success() || text(&out.stdout).trim() != "vfs" {
            eprintln!(
                "rootless podman does not work here: no comparison: {}",
                text(&out.stderr).trim()
            );
            return None;
        }
        Some(podman)
    }

    /// `$XDG_RUNTIME_DIR` of this Podman.
    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.args(args)
            .env_clear()
            .env("HOME", self.dir.join("home"))
            .env("USER", user_name())
            .env("LOGNAME", user_name())
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            .env("XDG_CONFIG_HOME", self.dir.join("home/.config"))
            .env("XDG_DATA_HOME", self.dir.join("home/.local/share"))
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.dir.join("registries.conf"),
            )
            .env("TMPDIR", self.dir.join("tmp"))
            .current_dir(self.dir.join("home"))
            .uid(self.user.uid)
            .gid(self.user.gid);
        c
    }

    /// Run podman as the user, bounded by 90 s.
    pub fn run(&self, args: &[&str]) -> Output {
        e2e_support::run_bounded(&mut self.command(args), b"", Duration::from_secs(90))
    }

    pub fn ok(&self, args: &[&str]) -> String {
        e2e_support::podman_ok_stdout(&self.run(args), args)
    }

    /// Podman's pause process (it holds its user namespace): its pid file
    /// is in the engine's `tmp_dir`, set in our containers.conf.
    fn pause_pid(&self) -> Option<i32> {
        [
            self.dir.join("tmp/pause.pid"),
            self.runtime_dir().join("libpod/tmp/pause.pid"),
        ]
        .iter()
        .find_map(|f| fs::read_to_string(f).ok()?.trim().parse().ok())
    }
}

impl Drop for RootlessPodman<'_> {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-a", "-f", "-t", "0"]);
        let _ = self.run(&["network", "prune", "-f"]);
        if let Some(pid) = self.pause_pid() {
            // SAFETY: killing this Podman's own pause process.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}
