//! Starting network helper processes (slirp4netns, vigil's port forwarder)
//! with exactly the fds they need as 3, 4, ..., and the port forwarder
//! itself, which both rootless networking and rootful IPv6 host addresses
//! use.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::unistd::pipe2;

use super::error::NetworkError;
use super::{forwarder, Container, NetEnv, NetworkState};

/// A close-on-exec pipe (read end, write end).
pub fn pipe() -> Result<(OwnedFd, OwnedFd), NetworkError> {
    pipe2(OFlag::O_CLOEXEC).map_err(|e| NetworkError::io("creating a pipe", e.into()))
}

/// `fd` duplicated to a number >= 10 (close-on-exec), so that placing the
/// child's fds 3, 4, ... with dup2 can never clobber a source.
pub fn high_dup(fd: &OwnedFd) -> Result<OwnedFd, NetworkError> {
    let n = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(10))
        .map_err(|e| NetworkError::io("duplicating an fd", e.into()))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns (nix
    // returns it raw).
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// Have `cmd` get `fds` as 3, 4, ... (nothing else is inherited: the rest is
/// close-on-exec).
pub fn pass_fds(cmd: &mut Command, fds: Vec<OwnedFd>) -> Result<Vec<OwnedFd>, NetworkError> {
    let high: Vec<OwnedFd> = fds.iter().map(high_dup).collect::<Result<_, _>>()?;
    let raw: Vec<RawFd> = high.iter().map(AsRawFd::as_raw_fd).collect();
    // SAFETY: only dup2 (async-signal-safe) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            for (i, fd) in raw.iter().enumerate() {
                if libc::dup2(*fd, 3 + i as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    // Kept open until the command is spawned.
    Ok(high)
}

/// Start `vigil internal-port-forward` for the namespace at `netns`: it gets
/// the bound host sockets `listeners` (socket, container port, protocol)
/// and connects inside the namespace to `child_ip`; it exits when the write
/// end of `exit_r`'s pipe (held by the monitor) closes. Recorded in
/// `state.helpers` so that teardown stops it.
#[allow(clippy::too_many_arguments)]
pub fn start_forwarder(
    env: &NetEnv,
    ctr: &Container<'_>,
    netns: &Path,
    child_ip: &str,
    listeners: Vec<(OwnedFd, u16, forwarder::Proto)>,
    exit_r: &OwnedFd,
    state: &mut NetworkState,
    persist: &mut dyn FnMut(&NetworkState) -> Result<(), NetworkError>,
) -> Result<(), NetworkError> {
    let log_path = ctr.dir.join("port-forward.log");
    let log = File::create(&log_path)
        .map_err(|e| NetworkError::io(format!("creating {}", log_path.display()), e))?;
    let mut cmd = Command::new(&env.forwarder_command[0]);
    cmd.args(&env.forwarder_command[1..])
        .arg("internal-port-forward")
        .arg(netns)
        .arg(child_ip)
        .args(
            listeners
                .iter()
                .map(|(_, port, proto)| format!("{port}/{}", proto.name())),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        // Not vigil's stderr: a caller reading it to the end would wait
        // for the forwarder to exit.
        .stderr(log)
        .process_group(0);
    let mut fds = vec![high_dup(exit_r)?];
    fds.extend(listeners.into_iter().map(|(fd, _, _)| fd));
    let kept = pass_fds(&mut cmd, fds)?;
    let fwd = cmd
        .spawn()
        .map_err(|e| NetworkError::io("starting the port forwarder", e))?;
    drop(kept);
    let pid = fwd.id() as i32;
    state
        .helpers
        .push((pid, crate::container::runtime::start_time(pid)));
    persist(state)
}
