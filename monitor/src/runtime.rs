//! The OCI runtime call: argv in conmon's exact order (conmon-interface §2.4),
//! the runtime child between fork and exec (§2.5), waiting for it, and reading
//! the container pid it wrote (§2.7).

use crate::config::{Config, Mode};
use crate::diag::Fatal;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::ffi::CString;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Build the runtime argv (argv[0] is the runtime path).
pub fn build_argv(cfg: &Config, console_socket: Option<&str>) -> Vec<String> {
    let o = &cfg.opts;
    let mut argv = vec![cfg.runtime.clone()];
    let bundle = cfg
        .bundle
        .as_ref()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pidfile = cfg.container_pidfile.to_string_lossy().into_owned();
    match &cfg.mode {
        Mode::Create | Mode::Restore { .. } => {
            if o.systemd_cgroup {
                argv.push("--systemd-cgroup".into());
            }
            argv.extend(o.runtime_args.iter().cloned());
            let sub = if matches!(cfg.mode, Mode::Create) {
                "create"
            } else {
                "restore"
            };
            argv.extend([
                sub.into(),
                "--bundle".into(),
                bundle.clone(),
                "--pid-file".into(),
                pidfile,
            ]);
            if o.no_pivot {
                argv.push("--no-pivot".into());
            }
            if o.no_new_keyring {
                argv.push("--no-new-keyring".into());
            }
            if let Mode::Restore { image_path } = &cfg.mode {
                argv.extend([
                    "--detach".into(),
                    "--image-path".into(),
                    image_path.clone(),
                    "--work-path".into(),
                    bundle,
                ]);
            }
        }
        Mode::Exec { process_spec } => {
            argv.extend(o.runtime_args.iter().cloned());
            argv.extend([
                "exec".into(),
                "--pid-file".into(),
                pidfile,
                "--process".into(),
                process_spec.clone(),
                "--detach".into(),
            ]);
        }
    }
    argv.extend(o.runtime_opts.iter().cloned());
    if let Some(sock) = console_socket {
        argv.extend(["--console-socket".into(), sock.into()]);
    }
    argv.push(cfg.cid.clone());
    argv
}

/// Everything the runtime child needs, prepared before fork so the child
/// only makes raw system calls.
pub struct ChildSetup {
    pub argv: Vec<CString>,
    /// Targets for fds 0, 1, 2; `None` leaves the inherited fd (passthrough).
    pub stdio: [Option<RawFd>; 3],
    /// fds among 0-2 that are pipes: made 0777 so a non-root container user
    /// can reopen /dev/stdout.
    pub chmod_stdio: [bool; 3],
    pub replace_listen_pid: bool,
    /// Second start-pipe read before exec (`--exec-attach`).
    pub start_pipe: Option<RawFd>,
    pub saved_oom_score_adj: Vec<u8>,
    pub sigmask: nix::sys::signal::SigSet,
}

/// Fork and exec the runtime; returns its pid.
pub fn spawn(setup: &ChildSetup) -> Result<libc::pid_t, Fatal> {
    let mut ptrs: Vec<*const libc::c_char> = setup.argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: the monitor is single-threaded; the child only calls
    // async-signal-safe functions (plus setenv, safe without other threads).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Fatal::errno("Failed to fork the create command"));
    }
    if pid == 0 {
        // SAFETY: we are the child; every pointer was prepared before fork.
        unsafe { child(setup, &ptrs) };
    }
    Ok(pid)
}

/// The runtime child. Never returns.
///
/// # Safety
/// Only in the child of `fork` of the single-threaded monitor, with `argv`
/// NUL-terminated pointers that stay valid until `execv`.
unsafe fn child(setup: &ChildSetup, argv: &[*const libc::c_char]) -> ! {
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
    let _ = setup.sigmask.thread_set_mask();
    libc::signal(libc::SIGTERM, libc::SIG_DFL);
    for (target, src) in setup.stdio.iter().enumerate() {
        if let Some(src) = src {
            if libc::dup2(*src, target as RawFd) < 0 {
                libc::_exit(127);
            }
        }
        if setup.chmod_stdio[target] {
            libc::fchmod(target as RawFd, 0o777);
        }
    }
    if let Err(msg) = fix_listen_pid(setup.replace_listen_pid) {
        let _ = libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(1);
    }
    if let Some(fd) = setup.start_pipe {
        let mut buf = [0u8; 8192];
        libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
    }
    crate::daemon::restore_oom_score_adj(&setup.saved_oom_score_adj);
    libc::execv(argv[0], argv.as_ptr());
    libc::_exit(127);
}

/// `LISTEN_PID` must name the runtime itself when socket activation is passed
/// through. Parsed like conmon: `strtol`, failing on errno or a value <= 0.
///
/// # Safety
/// `getenv`/`setenv` with no other thread running (the forked runtime child).
unsafe fn fix_listen_pid(replace: bool) -> Result<(), String> {
    let val = libc::getenv(b"LISTEN_PID\0".as_ptr().cast());
    if val.is_null() {
        return Ok(());
    }
    *libc::__errno_location() = 0;
    // conmon stores strtol's long in an int.
    let listen_pid = libc::strtol(val, std::ptr::null_mut(), 10) as libc::c_int;
    let errno = *libc::__errno_location();
    if errno != 0 || listen_pid <= 0 {
        let text = std::ffi::CStr::from_ptr(val).to_bytes();
        let shown = String::from_utf8_lossy(&text[..text.len().min(10)]).into_owned();
        return Err(format!(
            "[conmon:e]: Invalid LISTEN_PID {shown} {}\n",
            crate::diag::strerror(errno)
        ));
    }
    if replace || listen_pid == libc::getppid() {
        let pid = CString::new(libc::getpid().to_string()).unwrap_or_default();
        libc::setenv(b"LISTEN_PID\0".as_ptr().cast(), pid.as_ptr(), 1);
    }
    Ok(())
}

/// How waiting for the runtime ended.
pub enum RuntimeWait {
    Exited(i32),
    /// Still running after the timeout; it was killed and reaped.
    TimedOut,
}

/// Wait for the runtime to exit; with a timeout (vigil extension
/// `--runtime-timeout`), a hanging runtime is killed instead of blocking the
/// engine forever.
pub fn wait(pid: libc::pid_t, timeout: Option<std::time::Duration>) -> Result<RuntimeWait, Fatal> {
    if let Some(limit) = timeout {
        if let Some(pidfd) = pidfd_open(pid) {
            let deadline = std::time::Instant::now() + limit;
            let exited = loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let ms = left.as_millis().min(i32::MAX as u128) as i32;
                let mut p = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
                match poll(
                    &mut p,
                    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
                ) {
                    Ok(n) if n > 0 => break true,
                    Err(Errno::EINTR) => {}
                    _ => break false,
                }
            };
            drop(pidfd);
            if !exited {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                let _ = waitpid(Pid::from_raw(pid), None);
                return Ok(RuntimeWait::TimedOut);
            }
        }
    }
    loop {
        let mut status = 0;
        // Raw waitpid: the caller wants the wait status word itself.
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(RuntimeWait::Exited(status));
        }
        if r < 0 && crate::diag::last_errno() != libc::EINTR {
            let f = Fatal::errno("Failed to wait for `runtime create`");
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            return Err(f);
        }
    }
}

/// A pidfd for our own child (None on kernels without pidfd_open).
fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: pidfd_open returns a new fd we own, or -1; the OwnedFd is
    // made only from a successful return.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
        (fd >= 0).then(|| OwnedFd::from_raw_fd(fd as RawFd))
    }
}

/// Read the container pid like C `atoi` (garbage gives 0).
pub fn read_pidfile(path: &Path) -> Result<libc::pid_t, String> {
    let data = std::fs::read(path).map_err(|e| {
        format!(
            "Failed to open file \u{201c}{}\u{201d}: {}",
            path.display(),
            crate::diag::strerror(e.raw_os_error().unwrap_or(libc::EIO))
        )
    })?;
    // An empty or garbage pidfile (CRI-O creates it in advance) means the
    // runtime failed; pid 0 would otherwise make us wait forever.
    match atoi(&data) {
        pid if pid > 0 => Ok(pid),
        _ => Err(format!(
            "pidfile \u{201c}{}\u{201d} holds no valid pid",
            path.display()
        )),
    }
}

fn atoi(s: &[u8]) -> libc::pid_t {
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    let neg = i < s.len() && s[i] == b'-';
    if i < s.len() && (s[i] == b'-' || s[i] == b'+') {
        i += 1;
    }
    let mut v: i64 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        v = (v * 10 + i64::from(s[i] - b'0')).min(i64::from(i32::MAX) + 1);
        i += 1;
    }
    (if neg { -v } else { v }) as libc::pid_t
}

#[cfg(test)]
mod tests {
    use super::atoi;

    #[test]
    fn atoi_like_c() {
        assert_eq!(atoi(b" 123\n"), 123);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(atoi(b"-5"), -5);
    }
}
