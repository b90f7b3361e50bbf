//! The slirp4netns driver (runner-network §8): user-mode networking for a
//! namespace vigil created, started as Podman starts it, ready when it says
//! so on the ready pipe, gone when the exit pipe (held by the monitor)
//! closes. TCP ports go through vigil's forwarder (`forwarder`).

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::ifaddrs::getifaddrs;
use nix::mount::{mount, MsFlags};
use nix::net::if_::InterfaceFlags;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::error::NetworkError;
use super::spawn::{self, high_dup, pass_fds, pipe};
use super::{
    forwarder, helpers, Attached, Container, EtcInfo, NetEnv, NetworkConfig, NetworkState,
};

/// libslirp's defaults: the container's address, the host/gateway, the DNS forwarder.
pub const CHILD_IP: &str = "10.0.2.100";
pub const GATEWAY: &str = "10.0.2.2";
pub const DNS: &str = "10.0.2.3";
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The host's first non-loopback IPv4 address (`host.containers.internal`
/// where no bridge gateway can be used).
pub fn host_address() -> Option<String> {
    getifaddrs()
        .ok()?
        .filter(|a| !a.flags.contains(InterfaceFlags::IFF_LOOPBACK))
        .find_map(|a| Some(a.address?.as_sockaddr_in()?.ip().to_string()))
}

/// Stop a helper if it is still the process we started.
pub fn stop_helper(pid: i32, start: Option<u64>) {
    if crate::container::runtime::same_process(pid, start) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
}

fn check_tun() -> Result<(), NetworkError> {
    match fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
    {
        Ok(_) => Ok(()),
        Err(e) => Err(NetworkError::Start(format!(
            "rootless networking needs /dev/net/tun, which cannot be opened: \
             open(\"/dev/net/tun\"): {e}; make it accessible to users (mode 0666, as \
             distributions ship it) or use --network none or --network host"
        ))),
    }
}

/// Start slirp4netns (and the port forwarder) for the namespace at `netns`.
pub fn setup(
    env: &NetEnv,
    ctr: &Container<'_>,
    cfg: &NetworkConfig,
    netns: &Path,
    state: &mut NetworkState,
    persist: &mut dyn FnMut(&NetworkState) -> Result<(), NetworkError>,
) -> Result<Attached, NetworkError> {
    let search = env
        .search_path
        .clone()
        .unwrap_or_else(|| "/usr/bin:/bin".into());
    let binary = helpers::find_on_path(&search, "slirp4netns").ok_or_else(|| {
        NetworkError::Config(
            "could not find slirp4netns, the network namespace can't be configured: install \
             the slirp4netns package (or use --network none or host)"
                .into(),
        )
    })?;
    if let Some(other) = cfg
        .ports
        .iter()
        .find(|p| forwarder::Proto::parse(&p.protocol).is_none())
    {
        return Err(NetworkError::Config(format!(
            "publishing {} ports with slirp4netns is not supported by vigil (port {}): \
             only tcp and udp are forwarded",
            other.protocol, other.container_port
        )));
    }
    check_tun()?;
    // Bind the host ports first: a refusal costs nothing to undo.
    let mut listeners = Vec::new();
    for (ctr_port, proto, ip, host_port) in super::ports::expanded(&cfg.ports) {
        let proto = forwarder::Proto::parse(proto).unwrap_or(forwarder::Proto::Tcp);
        let bound = match proto {
            forwarder::Proto::Tcp => forwarder::listen_tcp(ip, host_port).map(OwnedFd::from),
            forwarder::Proto::Udp => forwarder::bind_udp(ip, host_port).map(OwnedFd::from),
        };
        let fd = bound.map_err(|e| {
            NetworkError::Start(forwarder::rootless_bind_error(&e, proto, ip, host_port))
        })?;
        listeners.push((fd, ctr_port, proto));
    }
    let (exit_r, exit_w) = pipe()?;
    let (ready_r, ready_w) = pipe()?;
    let log_path = ctr.dir.join("slirp4netns.log");
    let log = File::create(&log_path)
        .map_err(|e| NetworkError::io(format!("creating {}", log_path.display()), e))?;
    let mut cmd = Command::new(&binary);
    cmd.args([
        "--disable-host-loopback",
        "--mtu=65520",
        "--enable-sandbox",
        "--enable-seccomp",
        "-c",
        "-e",
        "3",
        "-r",
        "4",
        "--netns-type=path",
    ])
    .arg(netns)
    .arg("tap0")
    .stdin(Stdio::null())
    .stdout(
        log.try_clone()
            .map_err(|e| NetworkError::io("log file", e))?,
    )
    .stderr(log)
    .process_group(0);
    let exit_for_slirp = high_dup(&exit_r)?;
    let kept = pass_fds(&mut cmd, vec![exit_for_slirp, ready_w])?;
    // A mount namespace of its own, private all the way down (as Podman's
    // start of slirp4netns): its sandbox's pivot_root and unmounts must not
    // propagate to vigil's mounts, where they would unmount the namespace
    // files of the netns directory (a shared mount).
    // SAFETY: unshare and mount only (async-signal-safe system calls, no
    // allocation) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            unshare(CloneFlags::CLONE_NEWNS)?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )?;
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| NetworkError::io(format!("starting {}", binary.display()), e))?;
    drop(kept);
    let pid = child.id() as i32;
    state
        .helpers
        .push((pid, crate::container::runtime::start_time(pid)));
    persist(state)?;
    wait_ready(&mut child, ready_r, &log_path)?;
    if !listeners.is_empty() {
        spawn::start_forwarder(
            env, ctr, netns, CHILD_IP, listeners, &exit_r, state, persist,
        )?;
    }
    drop(exit_r);
    Ok(Attached {
        netns: None,
        monitor_fds: vec![exit_w],
        etc: EtcInfo {
            address: Some(CHILD_IP.into()),
            host_gateway: host_address(),
            network_dns: vec![DNS.into()],
            ..Default::default()
        },
        pending: None,
    })
}

/// Wait for slirp4netns's ready byte; if it exits first, its log is the error.
fn wait_ready(
    child: &mut std::process::Child,
    ready: OwnedFd,
    log: &Path,
) -> Result<(), NetworkError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let mut pfd = [PollFd::new(ready.as_fd(), PollFlags::POLLIN)];
        if poll(&mut pfd, PollTimeout::from(100u8)).is_ok_and(|r| r > 0) {
            let mut b = [0u8; 1];
            let mut f = File::from(ready);
            if f.read(&mut b).unwrap_or(0) == 1 {
                return Ok(());
            }
            break;
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(NetworkError::Start(format!(
                "slirp4netns did not become ready within {READY_TIMEOUT:?}"
            )));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = fs::read_to_string(log).unwrap_or_default();
    Err(NetworkError::Start(format!(
        "slirp4netns failed: {:?}",
        text.trim()
    )))
}
