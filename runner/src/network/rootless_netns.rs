//! The shared network namespace of rootless bridge networks, as rootless
//! Podman 4.3.1 has one per user ("rootless netns"): bridges, veths,
//! firewall rules and aardvark-dns of every rootless bridge network live
//! in it, one slirp4netns gives it the way out (10.0.2.100 on tap0), and
//! each container's own namespace hangs off a bridge in it. vigil's port
//! forwarder reaches a container at its bridge address from inside it.
//!
//! Lifetime: made by the first container setup that needs it, kept while
//! any container holds an address (vigil's IPAM), removed with its
//! slirp4netns and aardvark-dns when the last one leaves. The namespace
//! file is bind-mounted in the mount namespace of the user's pause process
//! (`rootless/`), so it outlives each `vigil` process. Every call here is
//! made with the network lock held; [`sweep`] removes what a killed `vigil`
//! left (a namespace no container uses, or one whose slirp4netns is gone).
//!
//! Its files: the namespace at `<netns dir>/rootless-netns`, and under
//! `<run dir>/rootless-netns/`: slirp4netns's pid file and log, and
//! netavark's `--config` directory (aardvark-dns's configuration), apart
//! from Podman's.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::error::NetworkError;
use super::{netns, slirp, NetEnv};

/// Where the shared namespace of `env`'s user is and what belongs to it.
#[derive(Clone, Debug)]
pub struct RootlessNetns {
    /// The namespace file.
    pub netns: PathBuf,
    /// Its state directory.
    pub dir: PathBuf,
}

/// slirp4netns of the namespace: pid and start time (so a reused pid is
/// never signalled).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SlirpPid {
    pid: i32,
    start: Option<u64>,
}

impl RootlessNetns {
    pub fn of(env: &NetEnv) -> RootlessNetns {
        RootlessNetns {
            netns: env.netns_dir.join("rootless-netns"),
            dir: env.run_dir.join("rootless-netns"),
        }
    }

    /// netavark's `--config` inside it (aardvark-dns's files).
    pub fn netavark_config(&self) -> PathBuf {
        self.dir.join("netavark")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("slirp4netns.pid")
    }

    fn slirp(&self) -> Option<SlirpPid> {
        let text = fs::read(self.pid_file()).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// A namespace is mounted on the file (in this mount namespace: after
    /// the pause process was lost, the file is there but empty).
    fn mounted(&self) -> bool {
        nix::sys::statfs::statfs(&self.netns)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
    }

    fn slirp_running(&self) -> bool {
        self.slirp()
            .is_some_and(|s| crate::container::runtime::same_process(s.pid, s.start))
    }

    /// Make the namespace and start its slirp4netns, unless both are there.
    /// A namespace whose slirp4netns died (killed) keeps its bridges and
    /// containers and gets a new one.
    pub fn ensure(&self, env: &NetEnv) -> Result<(), NetworkError> {
        if self.mounted() {
            if self.slirp_running() {
                return Ok(());
            }
            return self.start_slirp(env);
        }
        // Whatever a killed vigil or a lost pause process left.
        self.remove();
        let made = self.create(env);
        if made.is_err() {
            self.remove();
        }
        made
    }

    fn create(&self, env: &NetEnv) -> Result<(), NetworkError> {
        fs::create_dir_all(self.netavark_config())
            .map_err(|e| NetworkError::io(format!("creating {}", self.dir.display()), e))?;
        netns::create(&self.netns)?;
        self.start_slirp(env)
    }

    fn start_slirp(&self, env: &NetEnv) -> Result<(), NetworkError> {
        let binary = slirp::find_binary(env)?;
        let log = self.dir.join("slirp4netns.log");
        let (mut child, ready) = slirp::start(&binary, &self.netns, &log, None)?;
        let pid = child.id() as i32;
        let record = SlirpPid {
            pid,
            start: crate::container::runtime::start_time(pid),
        };
        let written = serde_json::to_vec(&record)
            .map_err(|e| NetworkError::Config(e.to_string()))
            .and_then(|b| {
                fs::write(self.pid_file(), b).map_err(|e| {
                    NetworkError::io(format!("writing {}", self.pid_file().display()), e)
                })
            });
        if let Err(e) = written {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        slirp::wait_ready(&mut child, ready, &log)?;
        // Not waited for: it runs on after this vigil, and is stopped by
        // pid (`remove`); its exit is reaped by the pause process or init.
        drop(child);
        Ok(())
    }

    /// Stop its slirp4netns and any aardvark-dns still serving from its
    /// configuration, unmount and remove the namespace and its files.
    /// Never fails; what is already gone is fine.
    pub fn remove(&self) {
        if let Some(s) = self.slirp() {
            slirp::stop_helper(s.pid, s.start);
        }
        // A vigil killed between spawning slirp4netns and writing its pid
        // left one that no record names: found by the namespace on its
        // command line (only our own user's processes can be signalled).
        for pid in slirp_processes_of(&self.netns) {
            slirp::stop_helper(pid, crate::container::runtime::start_time(pid));
        }
        let aardvark_pid = self.netavark_config().join("aardvark-dns/aardvark.pid");
        if let Some(pid) = fs::read_to_string(&aardvark_pid)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        {
            // Only an aardvark-dns started with this configuration.
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let ours = self.netavark_config().join("aardvark-dns");
            if String::from_utf8_lossy(&cmdline).contains(&*ours.to_string_lossy()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        if let Err(e) = netns::remove(&self.netns) {
            log::error!("removing the rootless network namespace: {e}");
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                log::error!("removing {}: {e}", self.dir.display());
            }
        }
    }
}

/// Pids of the slirp4netns processes whose command line names `netns`.
fn slirp_processes_of(netns: &Path) -> Vec<i32> {
    let wanted = netns.to_string_lossy().into_owned();
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let mut args = cmdline.split(|&b| b == 0);
            let is_slirp = args.next().is_some_and(|a| a.ends_with(b"slirp4netns"));
            is_slirp && args.any(|a| a == wanted.as_bytes())
        })
        .collect()
}

/// Remove the shared namespace if no container holds an address any more
/// (after a container's teardown, and for what a killed vigil left).
pub fn sweep(env: &NetEnv) {
    let ns = RootlessNetns::of(env);
    if !ns.netns.exists() && !ns.dir.exists() {
        return;
    }
    match env.ipam().in_use() {
        Ok(false) => ns.remove(),
        Ok(true) => {}
        Err(e) => log::error!("rootless network namespace: {e}"),
    }
}

/// [`sweep`] for a command that starts: takes the network lock, but only
/// when something of a shared namespace is there at all. First releases
/// the addresses of containers that no longer exist (`container_ids`: the
/// ids of every container with a record, listed with the lock held, so a
/// container made meanwhile cannot have an address yet), which would keep
/// the namespace and its slirp4netns alive for good.
pub fn sweep_leftovers(env: &NetEnv, container_ids: impl FnOnce() -> Result<Vec<String>, String>) {
    let ns = RootlessNetns::of(env);
    if !ns.netns.exists() && !ns.dir.exists() {
        return;
    }
    let _lock = match env.lock() {
        Ok(lock) => lock,
        Err(e) => {
            log::error!("rootless network namespace: {e}");
            return;
        }
    };
    match container_ids() {
        Ok(ids) => match env.ipam().release_missing(|id| ids.iter().any(|i| i == id)) {
            Ok(gone) => {
                for id in gone {
                    log::info!("released the addresses of {id}, a container that is gone");
                }
            }
            Err(e) => log::error!("rootless network namespace: {e}"),
        },
        // Without the list, nothing can be told stale: keep every address.
        Err(e) => log::error!("rootless network namespace: listing containers: {e}"),
    }
    sweep(env);
}

/// Have `cmd` run in the namespace at `netns` (its network namespace only).
/// The returned file must stay open until `cmd` is spawned.
pub fn enter_on_spawn(cmd: &mut Command, netns: &Path) -> Result<fs::File, NetworkError> {
    use std::os::unix::process::CommandExt;
    let file = fs::File::open(netns)
        .map_err(|e| NetworkError::io(format!("opening {}", netns.display()), e))?;
    let fd = file.as_raw_fd();
    // SAFETY: only setns (an async-signal-safe system call) between fork
    // and exec, on an fd that stays open until the spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(file)
}
