//! OOM detection (conmon-interface §9). The container's memory cgroup is
//! found through `/proc/<pid>/cgroup` and `/proc/self/mountinfo`, so nested
//! and namespaced cgroup mounts work.
//!
//! cgroup v1: an eventfd registered on `memory.oom_control`; a removed cgroup
//! is not an OOM. cgroup v2: inotify on `memory.events`, `oom`/`oom_kill`
//! counters. Both: a last check when the container has exited, because the
//! exit is often noticed before the OOM event (the kernel counter `oom_kill`
//! tells the truth either way).
//!
//! On OOM: empty files `<bundle>/oom` and `<persist-dir>/oom`.

use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

enum Watch {
    V1 {
        eventfd: OwnedFd,
        dir: PathBuf,
        oom_kill_at_start: u64,
    },
    V2 {
        inotify: OwnedFd,
        events: PathBuf,
        last_oom: u64,
        last_oom_kill: u64,
    },
}

pub struct OomMonitor {
    watch: Option<Watch>,
    targets: Vec<PathBuf>,
    reported: bool,
}

impl OomMonitor {
    /// Start watching the memory cgroup of `pid`. `targets` are the dirs that
    /// get an `oom` file (bundle, persist dir).
    pub fn new(pid: libc::pid_t, targets: Vec<PathBuf>) -> OomMonitor {
        let watch = if is_cgroup2() {
            setup_v2(pid)
        } else {
            setup_v1(pid)
        };
        OomMonitor {
            watch,
            targets,
            reported: false,
        }
    }

    /// The fd to poll for readability, if watching.
    pub fn fd(&self) -> Option<RawFd> {
        match &self.watch {
            Some(Watch::V1 { eventfd, .. }) => Some(eventfd.as_raw_fd()),
            Some(Watch::V2 { inotify, .. }) => Some(inotify.as_raw_fd()),
            None => None,
        }
    }

    /// The watched fd became readable.
    pub fn on_event(&mut self) {
        match &mut self.watch {
            Some(Watch::V1 { eventfd, dir, .. }) => {
                let mut buf = [0u8; 8];
                if nix::unistd::read(&eventfd, &mut buf) != Ok(8) {
                    return;
                }
                let count = u64::from_ne_bytes(buf);
                if count == 0 {
                    crate::warn!("Failed to read oom eventfd: zero count");
                    return;
                }
                if count == 1 && !dir.join("cgroup.event_control").exists() {
                    crate::debug!("Memory cgroup removed, stopping OOM monitoring");
                    self.watch = None;
                    return;
                }
                self.report();
            }
            Some(Watch::V2 { inotify, .. }) => {
                let mut buf = [0u8; 1024];
                while matches!(nix::unistd::read(&inotify, &mut buf), Ok(n) if n > 0) {}
                self.check_v2();
            }
            None => {}
        }
    }

    /// After the container exited: one last look at the counters.
    pub fn final_check(&mut self) {
        match &self.watch {
            Some(Watch::V1 {
                dir,
                oom_kill_at_start,
                eventfd,
            }) => {
                let mut buf = [0u8; 8];
                // Non-blocking read of the eventfd counter.
                let pending = nix::unistd::read(&eventfd, &mut buf) == Ok(8);
                let kills = read_counter(&dir.join("memory.oom_control"), "oom_kill");
                if (pending
                    && u64::from_ne_bytes(buf) > 0
                    && dir.join("cgroup.event_control").exists())
                    || kills.is_some_and(|k| k > *oom_kill_at_start)
                {
                    self.report();
                }
            }
            Some(Watch::V2 { .. }) => self.check_v2(),
            None => {}
        }
    }

    fn check_v2(&mut self) {
        let Some(Watch::V2 {
            events,
            last_oom,
            last_oom_kill,
            ..
        }) = &mut self.watch
        else {
            return;
        };
        if !events.exists() {
            crate::debug!("Cgroup appears to have been removed, stopping OOM monitoring");
            self.watch = None;
            return;
        }
        let mut oom = false;
        for (key, last) in [("oom", last_oom), ("oom_kill", last_oom_kill)] {
            if let Some(v) = read_counter(events, key) {
                if v != 0 && v != *last {
                    *last = v;
                    oom = true;
                }
            }
        }
        if oom {
            self.report();
        }
    }

    fn report(&mut self) {
        if self.reported {
            return;
        }
        self.reported = true;
        crate::info!("OOM received");
        for dir in &self.targets {
            let res = OpenOptions::new()
                .write(true)
                .create(true)
                .mode(0o666)
                .custom_flags(libc::O_CLOEXEC)
                .open(dir.join("oom"));
            if res.is_err() {
                crate::warn!("Failed to write oom file to the {} path", dir.display());
            }
        }
    }
}

fn is_cgroup2() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|st| st.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// `key N` from a flat-keyed cgroup file.
fn read_counter(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The host path of `pid`'s cgroup: for v1 the hierarchy with `controller`,
/// for v2 (`controller` None) the unified one.
pub fn cgroup_dir(
    pid: libc::pid_t,
    controller: Option<&str>,
    cgroup_file: &str,
    mountinfo: &str,
) -> Option<PathBuf> {
    let _ = pid;
    let rel = cgroup_file.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (id, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = match controller {
            Some(c) => ctrls.split(',').any(|x| x == c),
            None => id == "0" && ctrls.is_empty(),
        };
        hit.then(|| path.to_string())
    })?;
    for line in mountinfo.lines() {
        // id parent major:minor root mountpoint opts [optional...] - fstype source superopts
        let (pre, post) = line.split_once(" - ")?;
        let f: Vec<&str> = pre.split(' ').collect();
        let p: Vec<&str> = post.split(' ').collect();
        if f.len() < 5 || p.len() < 3 {
            continue;
        }
        let (root, mount) = (unescape(f[3]), unescape(f[4]));
        let matches = match controller {
            Some(c) => p[0] == "cgroup" && p[2].split(',').any(|o| o == c),
            None => p[0] == "cgroup2",
        };
        if !matches {
            continue;
        }
        let sub = if root == "/" {
            rel.as_str()
        } else if let Some(s) = rel.strip_prefix(root.as_str()) {
            s
        } else {
            continue;
        };
        return Some(PathBuf::from(mount).join(sub.trim_start_matches('/')));
    }
    None
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

fn read_proc(pid: libc::pid_t) -> Option<(String, String)> {
    Some((
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?,
        std::fs::read_to_string("/proc/self/mountinfo").ok()?,
    ))
}

fn setup_v1(pid: libc::pid_t) -> Option<Watch> {
    let (cg, mi) = read_proc(pid)?;
    let dir = cgroup_dir(pid, Some("memory"), &cg, &mi)?;
    let control = dir.join("cgroup.event_control");
    let mut ctl = match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&control)
    {
        Ok(f) => f,
        Err(_) => {
            crate::warn!("Failed to open {}", control.display());
            return None;
        }
    };
    let oom_path = dir.join("memory.oom_control");
    let oom_file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&oom_path)
    {
        Ok(f) => f,
        Err(_) => {
            crate::warn!("Failed to open {}", oom_path.display());
            return None;
        }
    };
    let flags = EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK;
    let Ok(eventfd) = EventFd::from_flags(flags).map(OwnedFd::from) else {
        crate::warn!("Failed to create eventfd for OOM monitoring");
        return None;
    };
    if ctl
        .write_all(format!("{} {}", eventfd.as_raw_fd(), oom_file.as_raw_fd()).as_bytes())
        .is_err()
    {
        crate::warn!("Failed to write to cgroup.event_control");
    }
    let oom_kill_at_start = read_counter(&oom_path, "oom_kill").unwrap_or(0);
    crate::debug!("OOM monitoring via {}", dir.display());
    Some(Watch::V1 {
        eventfd,
        dir,
        oom_kill_at_start,
    })
}

fn setup_v2(pid: libc::pid_t) -> Option<Watch> {
    let (cg, mi) = read_proc(pid)?;
    let dir = cgroup_dir(pid, None, &cg, &mi)?;
    let events = dir.join("memory.events");
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok()?;
    if inotify
        .add_watch(&events, AddWatchFlags::IN_MODIFY)
        .is_err()
    {
        crate::debug!(
            "memory.events file does not exist at {}, skipping OOM monitoring",
            events.display()
        );
        return None;
    }
    Some(Watch::V2 {
        inotify: OwnedFd::from(inotify),
        events,
        last_oom: 0,
        last_oom_kill: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::{cgroup_dir, read_counter, OomMonitor, Watch};
    use nix::sys::eventfd::{EfdFlags, EventFd};
    use std::os::fd::OwnedFd;

    use std::path::PathBuf;

    /// cgroup v2 `memory.events` on fake files: separate oom/oom_kill
    /// counters, zero counters, malformed values, a removed cgroup.
    #[test]
    fn v2_memory_events_parsing() {
        let dir = std::env::temp_dir().join(format!("vigil-oom-v2-{}", std::process::id()));
        let out = dir.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let events = dir.join("memory.events");
        std::fs::write(&events, "low 0\nhigh 0\nmax 4\noom 0\noom_kill 0\n").unwrap();
        assert_eq!(read_counter(&events, "max"), Some(4));
        assert_eq!(read_counter(&events, "oom"), Some(0));
        assert_eq!(read_counter(&events, "nope"), None);
        // A placeholder fd.
        let fd = OwnedFd::from(EventFd::from_flags(EfdFlags::EFD_CLOEXEC).unwrap());
        let mut m = OomMonitor {
            watch: Some(Watch::V2 {
                inotify: fd,
                events: events.clone(),
                last_oom: 0,
                last_oom_kill: 0,
            }),
            targets: vec![out.clone()],
            reported: false,
        };
        m.check_v2();
        assert!(!out.join("oom").exists(), "zero counters are not an OOM");
        std::fs::write(&events, "oom x\noom_kill\n").unwrap();
        m.check_v2();
        assert!(!out.join("oom").exists(), "malformed values are ignored");
        std::fs::write(&events, "oom 0\noom_kill 1\n").unwrap();
        m.check_v2();
        assert!(out.join("oom").exists(), "oom_kill going up is an OOM");
        std::fs::remove_file(&events).unwrap();
        m.check_v2();
        assert!(m.watch.is_none(), "a removed cgroup stops monitoring");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resolves_v1_and_v2() {
        let cg = "12:memory:/libpod_parent/libpod-abc\n11:cpu,cpuacct:/x\n0::/user.slice/x\n";
        let mi = "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                  40 31 0:40 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup_dir(1, Some("memory"), cg, mi),
            Some(PathBuf::from(
                "/sys/fs/cgroup/memory/libpod_parent/libpod-abc"
            ))
        );
        assert_eq!(
            cgroup_dir(1, None, cg, mi),
            Some(PathBuf::from("/sys/fs/cgroup/unified/user.slice/x"))
        );
        // A namespaced mount whose root is the container's own cgroup.
        let mi2 = "35 31 0:32 /libpod_parent /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(
            cgroup_dir(1, Some("memory"), cg, mi2),
            Some(PathBuf::from("/sys/fs/cgroup/memory/libpod-abc"))
        );
        assert_eq!(cgroup_dir(1, Some("pids"), cg, mi), None);
    }
}
