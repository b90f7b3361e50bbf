//! cgroup resources: devices, the pids limit (`--pids-limit`) and memory.

use oci_spec::runtime::{
    LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder,
};

use super::{err, SpecOptions};
use crate::error::RunnerError;

/// containers.conf `pids_limit`.
pub const PIDS_LIMIT: i64 = 2048;

/// `linux.resources.pids.limit` for `--pids-limit` (`None`: the default;
/// 0 or -1: unlimited, written as -1).
pub fn pids_limit(flag: Option<i64>) -> Result<i64, RunnerError> {
    match flag {
        None => Ok(PIDS_LIMIT),
        // Podman passes any negative number on; the kernel reads it as no limit.
        Some(n) if n <= 0 => Ok(-1),
        Some(n) => Ok(n),
    }
}

/// Podman's resources: every device denied (runc adds the default ones),
/// the pids limit, and the memory limit if one was given.
pub fn resources(opts: &SpecOptions) -> Result<LinuxResources, RunnerError> {
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .map_err(err)?;
    let mut resources = LinuxResourcesBuilder::default()
        .devices(vec![deny_all])
        .pids(
            LinuxPidsBuilder::default()
                .limit(opts.pids_limit)
                .build()
                .map_err(err)?,
        );
    if let Some(limit) = opts.memory_limit {
        resources = resources.memory(
            LinuxMemoryBuilder::default()
                .limit(limit)
                .build()
                .map_err(err)?,
        );
    }
    resources.build().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_limits() {
        assert_eq!(pids_limit(None).unwrap(), PIDS_LIMIT);
        assert_eq!(pids_limit(Some(20)).unwrap(), 20);
        assert_eq!(pids_limit(Some(0)).unwrap(), -1);
        assert_eq!(pids_limit(Some(-1)).unwrap(), -1);
        assert_eq!(pids_limit(Some(-5)).unwrap(), -1);
    }
}
