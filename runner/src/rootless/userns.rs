//! The rootless user namespace (runner-notes §4.2, §4.4).
//!
//! A "pause" process holds a user namespace (mapped with newuidmap and
//! newgidmap: container 0 = the user, then the subordinate IDs) and a mount
//! namespace owned by it. Every rootless `vigil` command joins both with
//! `setns` before doing anything else, so image layers are unpacked with
//! their real owners, overlay mounts (with `userxattr`) made by one command
//! are seen by the next, and the monitor and runc run as root of that
//! namespace. This is Podman's design; its pid is kept in
//! `<runroot>/pause.pid`.
//!
//! `setns(CLONE_NEWUSER)` needs a single-threaded process, so [`join`] and
//! [`create_pause`] must run before any thread exists (first thing in `main`).

use std::ffi::{CString, OsStr};
use std::fs;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::prctl;
use nix::sys::signal::{self, SigHandler, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::{self, ForkResult, Pid};

use super::idmap::IdMap;
use crate::error::RunnerError;
use crate::paths::find_executable;

/// The pause process's name (`comm`), checked before joining.
pub const PAUSE_COMM: &str = "vigil-pause";

/// Finds `newuidmap`/`newgidmap` on `search_path` and checks it can do its
/// job: a regular executable that is setuid root or has file capabilities.
pub fn find_helper(name: &str, search_path: Option<&OsStr>) -> Result<PathBuf, RunnerError> {
    let path = find_executable(Path::new(name), search_path).ok_or_else(|| {
        RunnerError::Engine(format!(
            "{name} not found on PATH: rootless containers need newuidmap and newgidmap to map \
             subordinate IDs; install them (Debian/Ubuntu: `apt-get install uidmap`, \
             Fedora: `dnf install shadow-utils`)"
        ))
    })?;
    check_helper(name, &path)?;
    Ok(path)
}

/// Is `path` usable as `name` (setuid root, or file capabilities)?
pub fn check_helper(name: &str, path: &Path) -> Result<(), RunnerError> {
    let meta = fs::metadata(path)
        .map_err(|e| RunnerError::io(format!("inspecting {}", path.display()), e))?;
    let setuid_root = meta.uid() == 0 && meta.permissions().mode() & 0o4000 != 0;
    if setuid_root || has_file_caps(path) {
        return Ok(());
    }
    Err(RunnerError::Engine(format!(
        "{name} ({path}) is not setuid root (mode {mode:04o}, owner uid {owner}) and has no file \
         capabilities, so it cannot map subordinate IDs: as root, run \
         `chown root {path} && chmod u+s {path}` or reinstall it \
         (Debian/Ubuntu: `apt-get install --reinstall uidmap`)",
        path = path.display(),
        mode = meta.permissions().mode() & 0o7777,
        owner = meta.uid()
    )))
}

fn has_file_caps(path: &Path) -> bool {
    // getxattr(2) follows symlinks: resolve them, then ask for the size.
    let Some(c) = fs::canonicalize(path)
        .ok()
        .and_then(|p| CString::new(p.into_os_string().into_encoded_bytes()).ok())
    else {
        return false;
    };
    matches!(crate::fsroot::sys::lgetxattr(&c, c"security.capability", &mut []), Ok(n) if n > 0)
}

fn pipe() -> Result<(OwnedFd, OwnedFd), RunnerError> {
    unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| RunnerError::io("creating a pipe", e.into()))
}

fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match unistd::read(fd, &mut buf[got..]) {
            Err(Errno::EINTR) => continue,
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got
}

fn write_all(fd: &OwnedFd, buf: &[u8]) -> bool {
    // Pipes of a few bytes are written atomically.
    unistd::write(fd, buf) == Ok(buf.len())
}

/// Which process returned from [`fork_detached`].
enum Forked {
    /// The caller, with the pid of the intermediate child to reap.
    Parent(Pid),
    /// The grandchild, in a new session; it must end with [`exit_child`].
    Grandchild,
    /// The intermediate child, whose second fork failed; it must end with
    /// [`exit_child`].
    SecondForkFailed(Errno),
}

/// Forks a grandchild in a new session (so it is not our child); the
/// intermediate child exits at once.
///
/// The process must be single-threaded (the caller's contract: before any
/// thread exists), so the children may run any code of ours; they make
/// system calls only and end with [`exit_child`].
fn fork_detached() -> Result<Forked, RunnerError> {
    // SAFETY: single-threaded process (see above): the child inherits no
    // lock another thread held.
    let first = unsafe { unistd::fork() }
        .map_err(|e| RunnerError::io("forking the pause process", e.into()))?;
    if let ForkResult::Parent { child } = first {
        return Ok(Forked::Parent(child));
    }
    let _ = unistd::setsid();
    // SAFETY: the child is single-threaded as well.
    match unsafe { unistd::fork() } {
        Ok(ForkResult::Child) => Ok(Forked::Grandchild),
        Ok(ForkResult::Parent { .. }) => exit_child(0),
        Err(errno) => Ok(Forked::SecondForkFailed(errno)),
    }
}

/// Ends a child of [`fork_detached`].
fn exit_child(code: i32) -> ! {
    // SAFETY: `_exit` ends the child without running the parent's atexit
    // handlers or flushing stdio buffers copied from it.
    unsafe { libc::_exit(code) }
}

/// What unsharing the user namespace failed with, for the user.
fn unshare_error(errno: i32) -> RunnerError {
    let err = io::Error::from_raw_os_error(errno);
    let hint = match errno {
        libc::EPERM | libc::ENOSPC | libc::EUSERS => {
            " (unprivileged user namespaces are disabled or exhausted here: as root check \
             `sysctl user.max_user_namespaces` (must be > 0) and, on Debian kernels, \
             `sysctl kernel.unprivileged_userns_clone=1`)"
        }
        libc::EINVAL => " (vigil was started multi-threaded; this is a bug)",
        _ => "",
    };
    RunnerError::Engine(format!("cannot create a user namespace: {err}{hint}"))
}

/// Runs `helper PID <map>`; its stderr is the error.
fn apply_map(helper: &Path, pid: i32, map: &IdMap, file: &str) -> Result<(), RunnerError> {
    let out = Command::new(helper)
        .arg(pid.to_string())
        .args(map.helper_args())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| RunnerError::io(format!("running {}", helper.display()), e))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(RunnerError::Engine(format!(
        "{} {} {} failed ({}): {}; check that {file} grants these IDs to you",
        helper.display(),
        pid,
        map.helper_args().join(" "),
        out.status,
        if stderr.is_empty() {
            "no message"
        } else {
            &stderr
        }
    )))
}

/// Creates the pause process: a grandchild (so it is not our child) that
/// unshares a user and a mount namespace, is mapped by `newuidmap` /
/// `newgidmap` with `uid_map` / `gid_map`, then sleeps forever with its
/// standard streams on /dev/null and no other descriptor open. Returns its pid.
pub fn create_pause(
    uid_map: &IdMap,
    gid_map: &IdMap,
    newuidmap: &Path,
    newgidmap: &Path,
) -> Result<i32, RunnerError> {
    let (sync_r, sync_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    let first = match fork_detached()? {
        Forked::Parent(first) => first,
        Forked::Grandchild => {
            drop(sync_r);
            drop(go_w);
            exit_child(pause_child(&sync_w, &go_r))
        }
        Forked::SecondForkFailed(errno) => {
            write_all(
                &sync_w,
                &[0i32.to_ne_bytes(), (errno as i32).to_ne_bytes()].concat(),
            );
            exit_child(0)
        }
    };
    drop(sync_w);
    drop(go_r);
    let _ = waitpid(first, None);
    let mut msg = [0u8; 8];
    if read_full(&sync_r, &mut msg) != 8 {
        return Err(RunnerError::Engine(
            "the pause process died before creating its namespace".into(),
        ));
    }
    let pid = i32::from_ne_bytes(msg[..4].try_into().expect("4 bytes"));
    let errno = i32::from_ne_bytes(msg[4..].try_into().expect("4 bytes"));
    if pid <= 0 {
        return Err(RunnerError::io(
            "forking the pause process",
            io::Error::from_raw_os_error(errno),
        ));
    }
    if errno != 0 {
        return Err(unshare_error(errno));
    }
    let mapped = apply_map(newuidmap, pid, uid_map, super::idmap::SUBUID_FILE)
        .and_then(|()| apply_map(newgidmap, pid, gid_map, super::idmap::SUBGID_FILE));
    if let Err(e) = mapped {
        let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        return Err(e);
    }
    if !write_all(&go_w, b"g") {
        return Err(RunnerError::Engine(
            "the pause process died while being mapped".into(),
        ));
    }
    Ok(pid)
}

/// Starts a pause process in the namespaces this process is in (after
/// joining them through another process, when the old pause process is
/// gone). Returns its pid.
pub fn spawn_pause_here() -> Result<i32, RunnerError> {
    let (sync_r, sync_w) = pipe()?;
    let first = match fork_detached()? {
        Forked::Parent(first) => first,
        Forked::Grandchild => {
            drop(sync_r);
            write_all(&sync_w, &unistd::getpid().as_raw().to_ne_bytes());
            drop(sync_w);
            become_pause()
        }
        Forked::SecondForkFailed(_) => exit_child(0),
    };
    drop(sync_w);
    let _ = waitpid(first, None);
    let mut msg = [0u8; 4];
    if read_full(&sync_r, &mut msg) != 4 {
        return Err(RunnerError::Engine(
            "the pause process did not start".into(),
        ));
    }
    Ok(i32::from_ne_bytes(msg))
}

/// The pause process itself: unshares, reports, waits to be mapped, then
/// pauses forever. Returns only the exit status of a failure.
fn pause_child(sync_w: &OwnedFd, go_r: &OwnedFd) -> i32 {
    let pid = unistd::getpid().as_raw();
    let mut errno = 0;
    match unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS) {
        Err(e) => errno = e as i32,
        Ok(()) => {
            // Receive the host's mount changes, never send ours (they could not
            // propagate out of a less privileged namespace anyway).
            let _ = mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_SLAVE,
                None::<&str>,
            );
        }
    }
    let msg = [pid.to_ne_bytes(), errno.to_ne_bytes()].concat();
    write_all(sync_w, &msg);
    if errno != 0 {
        return 1;
    }
    let mut go = [0u8; 1];
    if read_full(go_r, &mut go) != 1 || go[0] != b'g' {
        return 1;
    }
    become_pause()
}

/// Name, standard streams on /dev/null, no other descriptor, terminal and
/// job-control signals ignored, then sleep until killed. Only in a freshly
/// forked child (see [`fork_detached`]).
fn become_pause() -> ! {
    let _ = prctl::set_name(c"vigil-pause");
    let _ = unistd::chdir("/");
    if let Ok(null) = fcntl::open("/dev/null", OFlag::O_RDWR, Mode::empty()) {
        let _ = unistd::dup2_stdin(&null);
        let _ = unistd::dup2_stdout(&null);
        let _ = unistd::dup2_stderr(&null);
    }
    // Nothing of the caller's stays open (pipes of a test harness, locks).
    // SAFETY: no object of ours owns an fd >= 3 that is used after this
    // (the child only pauses from here on).
    unsafe {
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
            for fd in 3..4096 {
                libc::close(fd);
            }
        }
    }
    for sig in [
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGPIPE,
        Signal::SIGTSTP,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        // SAFETY: SIG_IGN installs no handler, so no code runs in signal context.
        let _ = unsafe { signal::signal(sig, SigHandler::SigIgn) };
    }
    loop {
        unistd::pause();
    }
}

/// Is `pid` a live pause process of ours? (`comm`, owner, and it is in
/// another user namespace than we are.)
pub fn is_our_pause(pid: i32, uid: u32) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let comm = fs::read_to_string(proc.join("comm")).unwrap_or_default();
    if comm.trim_end() != PAUSE_COMM || !alive(&proc) {
        return false;
    }
    if fs::metadata(&proc).map(|m| m.uid()).ok() != Some(uid) {
        return false;
    }
    let ino = |p: &Path| fs::metadata(p).map(|m| m.ino()).ok();
    match (
        ino(&proc.join("ns/user")),
        ino(Path::new("/proc/self/ns/user")),
    ) {
        (Some(theirs), Some(ours)) => theirs != ours,
        _ => false,
    }
}

/// A live monitor of one of the containers under `state` that runs in a
/// user namespace of ours other than the current one: the namespace to
/// rejoin when its pause process is gone (Podman does the same through
/// conmon's pid file). Returns its pid.
pub fn monitor_in_namespace(state: &Path, uid: u32) -> Option<i32> {
    let ours = fs::metadata("/proc/self/ns/user").ok()?.ino();
    let entries = fs::read_dir(state.join("containers")).ok()?;
    entries.filter_map(|e| e.ok()).find_map(|e| {
        let bytes = fs::read(e.path().join("state.json")).ok()?;
        let record: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let pid = i32::try_from(record.get("monitor_pid")?.as_i64()?).ok()?;
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let comm = fs::read_to_string(proc.join("comm")).ok()?;
        let owned = fs::metadata(&proc).ok()?.uid() == uid && alive(&proc);
        let other_ns = fs::metadata(proc.join("ns/user")).ok()?.ino() != ours;
        let map = IdMap::parse_proc(&fs::read_to_string(proc.join("uid_map")).ok()?)?;
        let in_userns = map.0
            != [super::idmap::IdMapping {
                container: 0,
                host: 0,
                size: u32::MAX,
            }];
        (comm.trim_end() == crate::context::MONITOR_NAME && owned && other_ns && in_userns)
            .then_some(pid)
    })
}

/// Not a zombie (a killed pause process nobody reaped yet).
fn alive(proc: &Path) -> bool {
    let stat = fs::read_to_string(proc.join("stat")).unwrap_or_default();
    // `pid (comm) S ...`: the state follows the last ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| !matches!(state, "Z" | "X" | "x"))
}

/// Joins the user and mount namespaces of process `pid`, keeping the
/// current directory. The process must be single-threaded.
pub fn join(pid: i32) -> Result<(), RunnerError> {
    let cwd = std::env::current_dir().ok();
    // nix has no pidfd_open.
    // SAFETY: pidfd_open with no flags returns a new fd, owned by nobody
    // else, or -1.
    let pidfd = unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
        (fd >= 0).then(|| OwnedFd::from_raw_fd(fd as i32))
    };
    if let Some(pidfd) = pidfd {
        // Both namespaces at once, of exactly the process checked before.
        match setns(&pidfd, CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS) {
            Ok(()) => {
                restore_cwd(cwd);
                return Ok(());
            }
            // Kernels before 5.8 take only namespace files.
            Err(Errno::EINVAL) => {}
            Err(e) => {
                return Err(RunnerError::io(
                    format!("joining the namespaces of process {pid}"),
                    e.into(),
                ))
            }
        }
    }
    for (ns, flag) in [
        ("user", CloneFlags::CLONE_NEWUSER),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ] {
        let path = format!("/proc/{pid}/ns/{ns}");
        let f = fs::File::open(&path).map_err(|e| RunnerError::io(format!("opening {path}"), e))?;
        setns(&f, flag).map_err(|e| RunnerError::io(format!("joining {path}"), e.into()))?;
    }
    restore_cwd(cwd);
    Ok(())
}

/// Back to the directory we were in (by path: the mount namespace changed).
/// Like Podman, one the namespace cannot see falls back to `/`.
fn restore_cwd(cwd: Option<PathBuf>) {
    if let Some(cwd) = cwd {
        if std::env::set_current_dir(&cwd).is_err() {
            let _ = std::env::set_current_dir("/");
        }
    }
}

/// Is this process in a user namespace other than the initial one?
pub fn in_user_namespace() -> bool {
    match fs::read_to_string("/proc/self/uid_map") {
        Ok(text) => IdMap::parse_proc(&text)
            .map(|m| {
                m.0 != [super::idmap::IdMapping {
                    container: 0,
                    host: 0,
                    size: u32::MAX,
                }]
            })
            .unwrap_or(true),
        Err(_) => false,
    }
}

/// The IDs of the current user namespace as seen from inside (`0..len`).
pub fn current_map(kind: &str) -> Option<IdMap> {
    IdMap::parse_proc(&fs::read_to_string(format!("/proc/self/{kind}_map")).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn helpers_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let err = find_helper("newuidmap", Some(dir.path().as_os_str())).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("newuidmap not found"), "{msg}");
        assert!(msg.contains("apt-get install uidmap"), "{msg}");
        assert_eq!(err.exit_code(), 125);
    }

    #[test]
    fn helpers_must_be_setuid() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("newgidmap");
        fs::write(&fake, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        let msg = find_helper("newgidmap", Some(dir.path().as_os_str()))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("is not setuid root"), "{msg}");
        assert!(
            msg.contains(&format!("chmod u+s {}", fake.display())),
            "{msg}"
        );
        assert!(msg.contains("mode 0755"), "{msg}");
    }

    #[test]
    fn setuid_root_helpers_are_accepted() {
        if !unistd::geteuid().is_root() {
            return eprintln!("skipping: needs root to make a setuid-root file");
        }
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("newuidmap");
        fs::write(&fake, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o4755)).unwrap();
        assert_eq!(
            find_helper("newuidmap", Some(dir.path().as_os_str())).unwrap(),
            fake
        );
    }

    #[test]
    fn our_own_process_is_not_a_pause_process() {
        let (pid, uid) = (unistd::getpid().as_raw(), unistd::geteuid().as_raw());
        assert!(!is_our_pause(pid, uid));
        assert!(!is_our_pause(i32::MAX, uid));
    }
}
