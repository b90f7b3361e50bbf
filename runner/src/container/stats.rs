//! Resource usage of a container from its cgroup (v1: the controllers'
//! `vigil/vigil-<id>` directories; v2: the unified one) and its network
//! namespace, as `stats` shows it.

use std::fs;
use std::path::PathBuf;

use super::record::{Record, Status};

/// One sample.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// CPU time used, nanoseconds.
    pub cpu_nanos: u64,
    pub mem_usage: u64,
    /// The container's memory limit, else the host's memory.
    pub mem_limit: u64,
    pub net_in: u64,
    pub net_out: u64,
    pub block_read: u64,
    pub block_write: u64,
    pub pids: u64,
}

fn read_u64(path: PathBuf) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn host_memory() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The cgroup path vigil gives containers (see `spec`'s `cgroups_path`).
pub fn cgroup_rel(id: &str) -> String {
    format!("vigil/vigil-{id}")
}

/// Reads the container's counters now. A container that is not running
/// reads as zeros (Podman shows `0B / 0B`).
pub fn sample(rec: &Record) -> Sample {
    if !matches!(rec.status, Status::Running | Status::Paused) {
        return Sample::default();
    }
    let rel = cgroup_rel(&rec.id);
    let base = PathBuf::from("/sys/fs/cgroup");
    let mut s = Sample::default();
    if super::lifecycle::is_cgroup2() {
        let dir = base.join(&rel);
        s.cpu_nanos = fs::read_to_string(dir.join("cpu.stat"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(0, |us| us * 1000);
        s.mem_usage = read_u64(dir.join("memory.current")).unwrap_or(0);
        s.pids = read_u64(dir.join("pids.current")).unwrap_or(0);
        for line in fs::read_to_string(dir.join("io.stat"))
            .unwrap_or_default()
            .lines()
        {
            for field in line.split_whitespace() {
                if let Some(v) = field.strip_prefix("rbytes=") {
                    s.block_read += v.parse::<u64>().unwrap_or(0);
                } else if let Some(v) = field.strip_prefix("wbytes=") {
                    s.block_write += v.parse::<u64>().unwrap_or(0);
                }
            }
        }
    } else {
        s.cpu_nanos = read_u64(base.join("cpuacct").join(&rel).join("cpuacct.usage")).unwrap_or(0);
        s.mem_usage =
            read_u64(base.join("memory").join(&rel).join("memory.usage_in_bytes")).unwrap_or(0);
        s.pids = read_u64(base.join("pids").join(&rel).join("pids.current")).unwrap_or(0);
        let blkio = base
            .join("blkio")
            .join(&rel)
            .join("blkio.throttle.io_service_bytes_recursive");
        for line in fs::read_to_string(blkio).unwrap_or_default().lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if let [_, op, n] = f.as_slice() {
                let n = n.parse::<u64>().unwrap_or(0);
                match *op {
                    "Read" => s.block_read += n,
                    "Write" => s.block_write += n,
                    _ => {}
                }
            }
        }
    }
    let host = host_memory();
    s.mem_limit = rec
        .memory_limit
        .map(|m| m as u64)
        .filter(|m| *m > 0 && *m < host)
        .unwrap_or(host);
    if let Some(pid) = rec.pid {
        // The container's network namespace, seen through its init process.
        for line in fs::read_to_string(format!("/proc/{pid}/net/dev"))
            .unwrap_or_default()
            .lines()
            .skip(2)
        {
            let Some((iface, counters)) = line.split_once(':') else {
                continue;
            };
            if iface.trim() == "lo" {
                continue;
            }
            let f: Vec<u64> = counters
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            if f.len() >= 9 {
                // Podman's order: what the container sent, then received.
                s.net_in += f[8];
                s.net_out += f[0];
            }
        }
    }
    s
}
