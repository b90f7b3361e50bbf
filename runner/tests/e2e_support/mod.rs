//! Shared by runner_e2e.rs and podman_parity.rs: a private vigil installation
//! (real binary, real monitor, runc), a private Podman (its own configuration
//! and storage under a temporary directory, never /etc's or the machine's),
//! the offline test images, a file-tree manifest with a readable diff, and a
//! real pseudo-terminal to drive `-t` sessions.
//!
//! Environment: `VIGIL_BINARY`, `CONMON_BINARY` (set by scripts/test; default
//! `<workspace>/target/release/{vigil,conmon}`), `VIGIL_TEST_IMAGES`
//! (scripts/make-test-images, default `<workspace>/target/test-images`),
//! `VIGIL_E2E_IMAGES` (make-images.sh beside this file, default
//! `<workspace>/target/test-images-e2e`), `VIGIL_E2E_DEBOOTSTRAP=0` to use the
//! minbase-like image instead of running debootstrap.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

pub fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Run `cmd` to completion, killing it after `limit`.
pub fn run_bounded(cmd: &mut Command, stdin: &[u8], limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = wait_bounded(child, limit, &format!("{cmd:?}"));
    let _ = feeder.join();
    out
}

/// Collect `child`'s output, killing it (and failing) after `limit`.
pub fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> Output {
    let collect = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = collect(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = collect(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let (o, e) = (
                out.join().unwrap_or_default(),
                err.join().unwrap_or_default(),
            );
            panic!(
                "{what} did not finish within {limit:?}\nstdout: {}\nstderr: {}",
                text(&o),
                text(&e)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Asserts that a command failed as Podman's do (exit 125) with `message`
/// in its stderr; the stderr.
#[track_caller]
pub fn assert_failed(out: &Output, message: &str) -> String {
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(125),
        "want exit 125 and {message:?}\nstdout: {}\nstderr: {err}",
        text(&out.stdout)
    );
    assert!(err.contains(message), "want {message:?} in stderr: {err}");
    err
}

// ---- vigil ---------------------------------------------------------------

/// A private vigil installation: binaries plus temporary store and state dirs.
pub struct Vigil {
    pub bin: PathBuf,
    pub conmon: PathBuf,
    pub dir: tempfile::TempDir,
}

/// Binaries, or why the end-to-end tests cannot run here.
pub fn vigil_binaries() -> Result<(PathBuf, PathBuf), String> {
    if !is_root() {
        return Err("not root".into());
    }
    if which("runc").is_none() {
        return Err("runc not found on PATH".into());
    }
    let bin = env_path("VIGIL_BINARY").unwrap_or_else(|| workspace().join("target/release/vigil"));
    let conmon =
        env_path("CONMON_BINARY").unwrap_or_else(|| workspace().join("target/release/conmon"));
    for b in [&bin, &conmon] {
        if !b.is_file() {
            return Err(format!(
                "{} not built (set VIGIL_BINARY / CONMON_BINARY)",
                b.display()
            ));
        }
    }
    Ok((bin, conmon))
}

impl Vigil {
    pub fn new() -> Result<Vigil, String> {
        let (bin, conmon) = vigil_binaries()?;
        let dir = tempfile::Builder::new()
            .prefix("vigil-e2e-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        Ok(Vigil { bin, conmon, dir })
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn runroot(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// `vigil --root R --runroot S --conmon C ARGS...`
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root")
            .arg(self.root())
            .arg("--runroot")
            .arg(self.runroot())
            .arg("--conmon")
            .arg(&self.conmon)
            .args(args);
        c
    }

    /// Run with `stdin`, bounded by 120 s.
    pub fn run_input(&self, args: &[&str], stdin: &[u8]) -> Output {
        run_bounded(&mut self.command(args), stdin, Duration::from_secs(120))
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_input(args, b"")
    }

    /// Run, asserting exit code 0; stdout as text.
    pub fn ok(&self, args: &[&str]) -> String {
        ok_stdout(&self.run(args), args)
    }

    /// Runs with stdout on a terminal: script(1) runs the command line, so
    /// that what vigil does for a terminal (refusing to write an archive
    /// there) shows; stdin is empty. The terminal's output is `stdout`.
    pub fn run_on_terminal(&self, args: &[&str]) -> Output {
        let quote = |a: &str| format!("'{}'", a.replace('\'', "'\\''"));
        let mut line = vec![
            quote(&self.bin.display().to_string()),
            "--root".into(),
            quote(&self.root().display().to_string()),
            "--runroot".into(),
            quote(&self.runroot().display().to_string()),
        ];
        line.extend(args.iter().map(|a| quote(a)));
        run_bounded(
            Command::new("script").args(["-qec", &line.join(" "), "/dev/null"]),
            b"",
            Duration::from_secs(60),
        )
    }

    /// `vigil load -i` of an archive or an OCI layout directory (like
    /// Podman, `-i DIR` reads a layout; `--layout DIR` is tested in image_load.rs).
    pub fn load(&self, image: &Path) -> String {
        let p = image.to_str().expect("utf-8 path");
        self.ok(&["load", "-i", p])
    }

    /// Wait until `check` holds (polling every 20 ms), or panic after `limit`.
    pub fn wait_for(&self, what: &str, limit: Duration, mut check: impl FnMut(&Vigil) -> bool) {
        let deadline = Instant::now() + limit;
        while !check(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `inspect` of one container, as JSON.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_str(&self.ok(&["inspect", name])).expect("inspect JSON");
        v[0].clone()
    }
}

impl Drop for Vigil {
    fn drop(&mut self) {
        let ids = self.run(&["ps", "-a", "-q", "--no-trunc"]);
        for id in text(&ids.stdout).lines() {
            let _ = self.run(&["rm", "-f", id]);
        }
        unmount_below(self.dir.path());
    }
}

/// Lazily unmount everything mounted below `dir` (deepest first).
pub fn unmount_below(dir: &Path) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let base = format!("{}/", dir.display());
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&base))
        .map(|m| m.replace("\\040", " "))
        .collect();
    points.sort();
    points.dedup();
    for m in points.iter().rev() {
        if let Ok(c) = CString::new(m.as_bytes()) {
            // SAFETY: valid C string.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

// ---- Podman --------------------------------------------------------------

/// Podman with private configuration and storage: runc, cgroupfs, no
/// network unless asked (netavark then, network files in its directory), no events, `--pull never` wherever it could reach a registry.
pub struct Podman {
    pub dir: tempfile::TempDir,
    pub driver: String,
}

impl Podman {
    /// A private Podman with storage driver `driver` ("vfs" or "overlay").
    pub fn new(driver: &str) -> Result<Podman, String> {
        if !is_root() {
            return Err("not root".into());
        }
        if which("podman").is_none() {
            return Err("podman not found".into());
        }
        let dir = tempfile::Builder::new()
            .prefix("vigil-podman-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let d = dir.path();
        for sub in ["store", "run", "tmp"] {
            fs::create_dir_all(d.join(sub)).map_err(|e| e.to_string())?;
        }
        fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"{driver}\"\ngraphroot = \"{0}/store\"\nrunroot = \"{0}/run\"\n",
                d.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        fs::write(
            d.join("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
                 netns = \"none\"\n[network]\nnetwork_backend = \"netavark\"\n\
                 network_config_dir = \"{0}/networks\"\n[engine]\nruntime = \"runc\"\n\
                 cgroup_manager = \"cgroupfs\"\nevents_logger = \"none\"\ntmp_dir = \"{0}/tmp\"\n",
                d.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        fs::write(
            d.join("registries.conf"),
            "unqualified-search-registries = []\n",
        )
        .map_err(|e| e.to_string())?;
        let p = Podman {
            dir,
            driver: driver.to_string(),
        };
        let out = p.run(&["info", "--format", "{{.Store.GraphDriverName}}"]);
        if !out.status.success() || text(&out.stdout).trim() != driver {
            return Err(format!(
                "podman with the {driver} driver does not work here: {}",
                text(&out.stderr).trim()
            ));
        }
        Ok(p)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
            .env("TMPDIR", d.join("tmp"))
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run_bounded(&mut self.command(args), b"", Duration::from_secs(300))
    }

    pub fn ok(&self, args: &[&str]) -> String {
        podman_ok_stdout(&self.run(args), args)
    }
}

/// The stdout of `podman ARGS` as text, asserting it succeeded (its status
/// and stderr shown otherwise); shared by the root and rootless Podmans.
pub fn podman_ok_stdout(out: &Output, args: &[&str]) -> String {
    assert!(
        out.status.success(),
        "podman {args:?}: {}\n{}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-a", "-f", "-t", "0"]);
        let _ = self.run(&["image", "unmount", "-a", "-f"]);
        let _ = self.run(&["rmi", "-a", "-f"]);
        unmount_below(self.dir.path());
    }
}

// ---- Test images ---------------------------------------------------------

/// scripts/make-test-images' directory (built on first use), or why not.
pub fn test_images() -> Result<PathBuf, String> {
    let dir =
        env_path("VIGIL_TEST_IMAGES").unwrap_or_else(|| workspace().join("target/test-images"));
    if !dir.join("MANIFEST").is_file() {
        let _ = Command::new("bash")
            .arg(workspace().join("scripts/make-test-images"))
            .arg(&dir)
            .status();
    }
    if dir.join("MANIFEST").is_file() {
        Ok(dir)
    } else {
        Err(format!(
            "{} not built by scripts/make-test-images",
            dir.display()
        ))
    }
}

/// `docker.tar` of scripts/make-test-images (built on first use), or why not.
pub fn test_image_archive() -> Result<PathBuf, String> {
    Ok(test_images()?.join("docker.tar"))
}

/// make-images.sh's directory (built on first use; the script locks), or why not.
pub fn e2e_images() -> Result<PathBuf, String> {
    let dir =
        env_path("VIGIL_E2E_IMAGES").unwrap_or_else(|| workspace().join("target/test-images-e2e"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e_support/make-images.sh");
    let out = run_bounded(
        Command::new("bash").arg(&script).arg(&dir),
        b"",
        Duration::from_secs(900),
    );
    if out.status.success() && dir.join("MANIFEST").is_file() {
        Ok(dir)
    } else {
        Err(format!(
            "{} failed: {}",
            script.display(),
            text(&out.stderr).trim()
        ))
    }
}

/// Is `name` listed in `dir`/MANIFEST (built by its script)?
pub fn built(dir: &Path, name: &str) -> bool {
    fs::read_to_string(dir.join("MANIFEST"))
        .map(|m| m.lines().skip(1).any(|l| l == name))
        .unwrap_or(false)
}

// ---- File-tree manifests -------------------------------------------------

/// What is compared of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// f d l c b p s
    pub kind: char,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Regular files and symlinks.
    pub size: Option<u64>,
    pub target: Option<String>,
    pub sha256: Option<String>,
    /// Devices: (major, minor).
    pub rdev: Option<(u32, u32)>,
    /// Sorted `name=hex(value)`; security.selinux is left out.
    pub xattrs: Vec<String>,
    /// Regular files with more than one name in the tree: the smallest name.
    pub hardlink_group: Option<String>,
    /// Seconds and nanoseconds.
    pub mtime: (i64, i64),
}

impl Entry {
    /// One line, as compared.
    pub fn describe(&self, opts: &Compare) -> String {
        let mut s = format!("{} {:04o} {}:{}", self.kind, self.mode, self.uid, self.gid);
        if let Some(n) = self.size {
            s += &format!(" size={n}");
        }
        if let Some(t) = &self.target {
            s += &format!(" -> {t}");
        }
        if let Some(h) = &self.sha256 {
            s += &format!(" sha256={}", &h[..16]);
        }
        if let Some((ma, mi)) = self.rdev {
            s += &format!(" dev={ma},{mi}");
        }
        if !self.xattrs.is_empty() {
            s += &format!(" xattrs=[{}]", self.xattrs.join(" "));
        }
        if let Some(g) = &self.hardlink_group {
            s += &format!(" hardlink-of={g}");
        }
        match opts.fresh_after {
            _ if self.kind == 'd' && !opts.dir_mtimes => {}
            Some(t) if self.mtime.0 >= t => s += " mtime=unpack-time",
            _ => s += &format!(" mtime={}.{:09}", self.mtime.0, self.mtime.1),
        }
        s
    }
}

pub type Manifest = BTreeMap<String, Entry>;

/// How manifests are compared.
#[derive(Clone, Copy, Debug)]
pub struct Compare {
    /// Mtimes at or after this (Unix seconds) were set by the unpacking
    /// itself (e.g. a directory whose entries changed): they compare equal.
    pub fresh_after: Option<i64>,
    /// Compare directory mtimes.
    pub dir_mtimes: bool,
}

fn xattrs_of(path: &Path) -> Vec<String> {
    let c = CString::new(path.as_os_str().as_bytes()).expect("path without NUL");
    let mut names = vec![0u8; 65536];
    // SAFETY: valid path and buffer.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for name in names[..n as usize]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
    {
        let name_s = String::from_utf8_lossy(name).into_owned();
        if name_s == "security.selinux" {
            continue;
        }
        let cname = CString::new(name).expect("xattr name");
        let mut value = vec![0u8; 65536];
        // SAFETY: valid strings and buffer.
        let len = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        let value = if len >= 0 {
            &value[..len as usize]
        } else {
            &[][..]
        };
        out.push(format!("{name_s}={}", hex::encode(value)));
    }
    out.sort();
    out
}

fn sha256_file(path: &Path) -> String {
    let mut f = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}

/// Everything under `root` (not crossing into other mounts), by relative path;
/// the root itself is ".".
pub fn manifest(root: &Path) -> Manifest {
    let mut out = Manifest::new();
    let mut inodes: HashMap<(u64, u64), Vec<String>> = HashMap::new();
    let root_dev = fs::symlink_metadata(root).expect("root").dev();
    let mut stack = vec![(root.to_path_buf(), ".".to_string())];
    while let Some((path, rel)) = stack.pop() {
        let meta =
            fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_symlink() {
            'l'
        } else if ft.is_file() {
            'f'
        } else if ft.is_char_device() {
            'c'
        } else if ft.is_block_device() {
            'b'
        } else if ft.is_fifo() {
            'p'
        } else {
            's'
        };
        let rdev = meta.rdev();
        let entry = Entry {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            size: matches!(kind, 'f' | 'l').then_some(meta.size()),
            target: (kind == 'l').then(|| {
                text(
                    fs::read_link(&path)
                        .expect("readlink")
                        .as_os_str()
                        .as_bytes(),
                )
            }),
            sha256: (kind == 'f').then(|| sha256_file(&path)),
            rdev: matches!(kind, 'c' | 'b')
                .then(|| (libc::major(rdev) as u32, libc::minor(rdev) as u32)),
            xattrs: xattrs_of(&path),
            hardlink_group: None,
            mtime: (meta.mtime(), meta.mtime_nsec()),
        };
        if kind == 'f' {
            inodes
                .entry((meta.dev(), meta.ino()))
                .or_default()
                .push(rel.clone());
        }
        if kind == 'd' && (meta.dev() == root_dev || rel == ".") {
            for e in fs::read_dir(&path).expect("read_dir") {
                let e = e.expect("dir entry");
                let name = text(e.file_name().as_bytes());
                let child = if rel == "." {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                stack.push((e.path(), child));
            }
        }
        out.insert(rel, entry);
    }
    for names in inodes.values().filter(|n| n.len() > 1) {
        let leader = names.iter().min().expect("non-empty").clone();
        for n in names {
            out.get_mut(n).expect("listed").hardlink_group = Some(leader.clone());
        }
    }
    out
}

/// Differences between two manifests, one line each (empty if equal).
pub fn diff(a_name: &str, a: &Manifest, b_name: &str, b: &Manifest, opts: &Compare) -> Vec<String> {
    let mut out = Vec::new();
    for (path, ea) in a {
        match b.get(path) {
            None => out.push(format!("only in {a_name}: {path}  [{}]", ea.describe(opts))),
            Some(eb) => {
                let (da, db) = (ea.describe(opts), eb.describe(opts));
                if da != db {
                    out.push(format!(
                        "differs: {path}\n    {a_name:>8}: {da}\n    {b_name:>8}: {db}"
                    ));
                }
            }
        }
    }
    for (path, eb) in b {
        if !a.contains_key(path) {
            out.push(format!("only in {b_name}: {path}  [{}]", eb.describe(opts)));
        }
    }
    out
}

// ---- A real pseudo-terminal ------------------------------------------------

/// The master side of a pty; what the other side writes is collected by a thread.
pub struct Pty {
    master: OwnedFd,
    slave: PathBuf,
    output: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Pty {
    /// A new pty of `rows` x `cols`.
    pub fn open(rows: u16, cols: u16) -> Pty {
        // SAFETY: plain libc pty calls; the fd is owned from here on.
        let master = unsafe {
            let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
            assert_eq!(libc::grantpt(fd), 0, "grantpt");
            assert_eq!(libc::unlockpt(fd), 0, "unlockpt");
            OwnedFd::from_raw_fd(fd)
        };
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: buffer of the given length.
        let r = unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) };
        assert_eq!(r, 0, "ptsname_r");
        // SAFETY: ptsname_r wrote a NUL-terminated string.
        let slave = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
        let slave = PathBuf::from(std::ffi::OsStr::from_bytes(slave.to_bytes()));
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ with a valid winsize.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        let output = Arc::new(Mutex::new(Vec::new()));
        let reader_fd = master.try_clone().expect("dup master");
        let sink = Arc::clone(&output);
        let reader = std::thread::spawn(move || {
            let mut f = fs::File::from(reader_fd);
            let mut buf = [0u8; 4096];
            loop {
                match f.read(&mut buf) {
                    Ok(0) | Err(_) => return, // EIO once every slave fd is closed
                    Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
                }
            }
        });
        Pty {
            master,
            slave,
            output,
            reader: Some(reader),
        }
    }

    /// Spawn `cmd` with the slave as its controlling terminal and stdio.
    pub fn spawn(&self, mut cmd: Command) -> Child {
        let open = || {
            fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOCTTY)
                .open(&self.slave)
                .expect("open pty slave")
        };
        cmd.stdin(Stdio::from(open()))
            .stdout(Stdio::from(open()))
            .stderr(Stdio::from(open()));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on pty");
        drop(cmd); // closes our copies of the slave
        child
    }

    /// Wait until the program on the terminal has put it in raw mode (no
    /// echo, no canonical input): from then on it reads what is typed.
    pub fn wait_raw(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            // SAFETY: tcgetattr on the master reports the terminal's settings.
            let raw = unsafe {
                let mut t: libc::termios = std::mem::zeroed();
                libc::tcgetattr(self.master.as_raw_fd(), &mut t) == 0
                    && t.c_lflag & (libc::ECHO | libc::ICANON) == 0
            };
            if raw {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the terminal was not put in raw mode within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Set the terminal's size (the program on it gets SIGWINCH).
    pub fn resize(&self, rows: u16, cols: u16) {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ with a valid winsize.
        let r = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        assert_eq!(r, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
    }

    /// Type `bytes` (as if on the keyboard).
    pub fn write(&self, bytes: &[u8]) {
        let mut f = fs::File::from(self.master.try_clone().expect("dup master"));
        f.write_all(bytes).expect("write to pty master");
    }

    /// Everything read so far.
    pub fn output(&self) -> Vec<u8> {
        self.output.lock().unwrap().clone()
    }

    /// Wait until the output contains `needle` (after `from` bytes); panics after `limit`.
    /// Returns the output length just past the match.
    pub fn expect(&self, needle: &[u8], from: usize, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            let out = self.output();
            if let Some(i) = out
                .get(from..)
                .and_then(|s| s.windows(needle.len()).position(|w| w == needle))
            {
                return from + i + needle.len();
            }
            assert!(
                Instant::now() < deadline,
                "pty: no {:?} within {limit:?}; got {:?}",
                text(needle),
                text(&out)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything the other side wrote, once every slave fd is closed (the
    /// reader sees EIO) or after `limit`.
    pub fn finish(mut self, limit: Duration) -> Vec<u8> {
        let deadline = Instant::now() + limit;
        if let Some(r) = self.reader.take() {
            while !r.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if r.is_finished() {
                let _ = r.join();
            }
        }
        self.output()
    }
}

use std::os::unix::fs::OpenOptionsExt;

// ---- A program on pipes ------------------------------------------------------

/// A child with piped stdin and stdout (collected by a thread as it comes)
/// and stderr (collected at the end).
pub struct Piped {
    pub child: Child,
    stdin: Option<std::process::ChildStdin>,
    output: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Piped {
    pub fn spawn(mut cmd: Command) -> Piped {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("stdout");
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&output);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Piped {
            child,
            stdin,
            output,
            reader: Some(reader),
        }
    }

    /// Write `bytes` to its stdin (one write).
    pub fn write(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write to stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Everything read from its stdout so far.
    pub fn output(&self) -> Vec<u8> {
        self.output.lock().unwrap().clone()
    }

    /// Wait until stdout contains `needle`; panics after `limit`.
    pub fn expect(&self, needle: &[u8], limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.output().windows(needle.len()).any(|w| w == needle) {
            assert!(
                Instant::now() < deadline,
                "no {:?} within {limit:?}; got {:?}",
                text(needle),
                text(&self.output())
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kill it (SIGKILL), reap it, and return all it wrote to stdout.
    pub fn kill(mut self) -> Vec<u8> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.output()
    }

    /// End of its input.
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// Wait for it to exit (killing it and failing after `limit`; its stdin
    /// stays open meanwhile unless closed); its status, all of its stdout,
    /// and its stderr.
    pub fn finish(mut self, limit: Duration, what: &str) -> Output {
        let stdin = self.stdin.take();
        let mut out = wait_bounded(self.child, limit, what);
        drop(stdin);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        out.stdout = self.output.lock().unwrap().clone();
        out
    }
}

/// The busybox image of the command tests, as `import` makes it.
pub const BUSYBOX_IMAGE: &str = "localhost/bb:latest";

/// A tar stream of a root directory (for `import`).
pub fn rootfs_tar(rootfs: &str) -> Vec<u8> {
    let tar = run_bounded(
        Command::new("tar").args(["-C", rootfs, "-cf", "-", "."]),
        b"",
        Duration::from_secs(60),
    );
    assert!(tar.status.success(), "tar of {rootfs}");
    tar.stdout
}

/// [`vigil_and_busybox_rootfs`] with the rootfs imported as
/// [`BUSYBOX_IMAGE`] (so every test using it exercises `import`).
pub fn vigil_with_busybox_image(test: &str) -> Option<(Vigil, String)> {
    let (v, rootfs) = vigil_and_busybox_rootfs(test)?;
    let out = v.run_input(&["import", "-q", "-", "localhost/bb"], &rootfs_tar(&rootfs));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    Some((v, rootfs))
}

/// The stdout of `vigil ARGS` as text, asserting it exited 0 (both streams
/// shown otherwise).
pub fn ok_stdout(out: &Output, args: &[&str]) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "vigil {args:?}\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The names in `dir` but its `.lock` (none when it cannot be read): what
/// is left of containers in a store or state directory.
pub fn entries_but_lock(dir: &Path) -> Vec<std::ffi::OsString> {
    fs::read_dir(dir)
        .map(|e| {
            e.filter_map(|e| e.ok())
                .map(|e| e.file_name())
                .filter(|n| n != ".lock")
                .collect()
        })
        .unwrap_or_default()
}

/// A private vigil, or None after saying why `test` is skipped.
pub fn vigil_or_skip(test: &str) -> Option<Vigil> {
    Vigil::new()
        .map_err(|why| eprintln!("skipping {test}: {why}"))
        .ok()
}

/// A private Podman with storage `driver`, or None after saying why `test`
/// is skipped.
pub fn podman_or_skip(test: &str, driver: &str) -> Option<Podman> {
    Podman::new(driver)
        .map_err(|why| eprintln!("skipping {test}: {why}"))
        .ok()
}

/// `file` of the e2e image set (make-images.sh) if its image `base` is
/// built, or None after saying why `test` is skipped.
pub fn e2e_image_file(test: &str, base: &str, file: &str) -> Option<PathBuf> {
    match e2e_images() {
        Ok(dir) if built(&dir, base) => Some(dir.join(file)),
        Ok(dir) => {
            eprintln!("skipping {test}: {base} not built in {}", dir.display());
            None
        }
        Err(why) => {
            eprintln!("skipping {test}: {why}");
            None
        }
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Runs scripts/make-test-rootfs for `dir` (a no-op when it is complete);
/// true when `dir` then holds busybox.
pub fn make_busybox_rootfs(dir: &Path) -> bool {
    if !dir.join("bin/busybox").is_file() {
        let _ = Command::new("bash")
            .arg(workspace().join("scripts/make-test-rootfs"))
            .arg(dir)
            .stdout(Stdio::null())
            .status();
    }
    dir.join("bin/busybox").is_file()
}

/// A private vigil and the busybox test rootfs for `--rootfs` (built by
/// scripts/make-test-rootfs if missing), or None after saying why `test`
/// is skipped.
pub fn vigil_and_busybox_rootfs(test: &str) -> Option<(Vigil, String)> {
    let v = vigil_or_skip(test)?;
    let rootfs = env_path("VIGIL_TEST_ROOTFS")
        .unwrap_or_else(|| workspace().join("target/test-rootfs/busybox"));
    if !make_busybox_rootfs(&rootfs) {
        eprintln!(
            "skipping {test}: no busybox rootfs at {} (scripts/make-test-rootfs)",
            rootfs.display()
        );
        return None;
    }
    Some((v, rootfs.to_str().expect("utf-8 rootfs path").to_string()))
}
