//! The OCI runtime spec of a container, from the image config and the
//! `create`/`run` flags, with Podman's defaults (shared/spec/runner-notes.md §3).
//!
//! Everything here is pure (the caller reads files and the host's limits), so
//! the defaults are unit-tested. One file per part of the spec: [`process`]
//! (with [`command`], [`user`] and [`capabilities`]), [`mounts`] (with
//! [`tmpfs`]), [`namespaces`], [`resources`], and what [`rootless`] changes.

use std::collections::HashSet;
use std::path::PathBuf;

use oci_spec::runtime::{LinuxBuilder, RootBuilder, Spec, SpecBuilder};
use serde::{Deserialize, Serialize};

use crate::error::RunnerError;
use crate::rootless::idmap::IdMap;

pub mod capabilities;
pub mod command;
pub mod mounts;
pub mod namespaces;
pub mod process;
pub mod resources;
pub mod rootless;
pub mod tmpfs;
pub mod user;

pub use capabilities::{
    all_capabilities, bounding_set, merge_capabilities, parse_capabilities, ALL_CAPABILITIES,
    DEFAULT_CAPABILITIES,
};
pub use command::{command, environment, DEFAULT_PATH};
pub use mounts::{mounts, mounts_with, parse_volume, BindMount, MountRules, READ_ONLY_TMPFS};
pub use namespaces::Network;
pub use process::{
    console_box, find_init, process, rlimit_value, terminal_size, INIT_PATH, RLIMIT_TARGET,
};
pub use resources::{pids_limit, PIDS_LIMIT};
pub use tmpfs::{parse_tmpfs, TmpfsMount};
pub use user::{resolve_user, User};

/// containers.conf masked paths.
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/interrupts",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
    "/sys/fs/selinux",
];
/// containers.conf read-only paths.
pub const READONLY_PATHS: [&str; 6] = [
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Everything the spec is made from.
#[derive(Clone, Debug)]
pub struct SpecOptions {
    pub rootfs: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: User,
    pub terminal: bool,
    /// `process.consoleSize` (rows, columns) for a terminal: the user's
    /// terminal size, like Podman, so the container does not start at 0x0.
    pub console_size: Option<(u16, u16)>,
    pub hostname: String,
    pub network: Network,
    pub cgroups_path: String,
    /// Bind mounts, after the default file systems, in order.
    pub binds: Vec<BindMount>,
    pub memory_limit: Option<i64>,
    /// Soft and hard limit for NOFILE (see [`rlimit_value`]).
    pub rlimit_nofile: u64,
    /// Soft and hard limit for NPROC (see [`rlimit_value`]).
    pub rlimit_nproc: u64,
    /// Mount a cgroup namespace (cgroup v2 hosts).
    pub cgroup_ns: bool,
    /// Rootless (runner-notes §3.6): no cgroup settings, Podman's `/sys` rules.
    pub rootless: bool,
    /// A user namespace of the container's own: uid and gid mappings
    /// (`--userns=keep-id`, `--uidmap`), in IDs of the namespace vigil runs in.
    pub userns: Option<(IdMap, IdMap)>,
    /// `--tmpfs`, parsed.
    pub tmpfs: Vec<TmpfsMount>,
    /// `linux.resources.pids.limit` (see [`pids_limit`]).
    pub pids_limit: i64,
    /// `--cap-add`, `--cap-drop`, `--read-only`, `--read-only-tmpfs`,
    /// `--init` (the tmpfs and pids limit come parsed, above).
    pub flags: SpecFlags,
}

/// The `create`/`run` flags that only shape the runtime spec, as given;
/// kept in the container record, checked and parsed by `create` (see
/// [`SpecFlags::parse`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpecFlags {
    /// `--cap-add` values, normalised by [`parse_capabilities`].
    pub cap_add: Vec<String>,
    /// `--cap-drop` values, normalised by [`parse_capabilities`].
    pub cap_drop: Vec<String>,
    /// `--tmpfs DEST[:OPTIONS]`, as given.
    pub tmpfs: Vec<String>,
    /// `--read-only`: `root.readonly`.
    pub read_only: bool,
    /// `--read-only-tmpfs` (Podman's default true): with `--read-only`,
    /// tmpfs on /run, /tmp and /var/tmp.
    pub read_only_tmpfs: bool,
    /// `--pids-limit`: `None` = [`PIDS_LIMIT`]; 0 or -1 = unlimited.
    pub pids_limit: Option<i64>,
    /// `--init`: catatonit ([`find_init`]) bind-mounted read-only at
    /// [`INIT_PATH`] runs as PID 1 and starts the command, like Podman's.
    pub init: bool,
}

/// What `create` made of the mount and limit flags; kept in the container
/// record, so that `start`, `ps` and `inspect` never parse the flags again.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedFlags {
    /// `-v`, in order.
    pub volumes: Vec<BindMount>,
    /// `--tmpfs`, in order.
    pub tmpfs: Vec<TmpfsMount>,
    /// `linux.resources.pids.limit` for `--pids-limit` (-1: unlimited).
    pub pids_limit: i64,
}

impl SpecFlags {
    /// Checks everything `build` would refuse, before the record is
    /// written, and parses the mounts (`volumes`: `-v` values) and limits.
    pub fn parse(&self, volumes: &[String]) -> Result<ParsedFlags, RunnerError> {
        let volumes = volumes
            .iter()
            .map(|v| parse_volume(v))
            .collect::<Result<Vec<_>, _>>()?;
        let mut destinations = HashSet::new();
        for v in &volumes {
            if !destinations.insert(v.destination.trim_end_matches('/')) {
                return Err(RunnerError::Engine(format!(
                    "{}: duplicate mount destination",
                    v.destination
                )));
            }
        }
        merge_capabilities(
            &DEFAULT_CAPABILITIES,
            &self.cap_add,
            &self.cap_drop,
            &all_capabilities(None),
        )?;
        let mut seen = HashSet::new();
        let mut tmpfs = Vec::new();
        for t in &self.tmpfs {
            let m = parse_tmpfs(t)?;
            if !seen.insert(m.destination.clone()) {
                return Err(RunnerError::Engine(format!(
                    "invalid --tmpfs {t:?}: duplicate mount destination"
                )));
            }
            tmpfs.push(m);
        }
        let pids_limit = pids_limit(self.pids_limit)?;
        if self.init {
            process::init_binary()?;
        }
        Ok(ParsedFlags {
            volumes,
            tmpfs,
            pids_limit,
        })
    }
}

fn err(e: impl std::fmt::Display) -> RunnerError {
    RunnerError::Engine(format!("building the runtime spec: {e}"))
}

/// The whole spec.
pub fn build(opts: &SpecOptions) -> Result<Spec, RunnerError> {
    rootless::check(opts)?;
    // Rootless: the user has no cgroup of their own here, so no resources
    // and no cgroups path (runc then skips cgroups it cannot write).
    let mut masked: Vec<String> = MASKED_PATHS.iter().map(|s| s.to_string()).collect();
    if rootless::binds_sys(opts) {
        masked.push("/sys/kernel".into());
    }
    let mut linux = LinuxBuilder::default().namespaces(namespaces::namespaces(opts)?);
    if !opts.rootless {
        linux = linux
            .resources(resources::resources(opts)?)
            .cgroups_path(PathBuf::from(&opts.cgroups_path));
    }
    if let Some((uids, gids)) = &opts.userns {
        linux = linux
            .uid_mappings(namespaces::id_mappings(uids)?)
            .gid_mappings(namespaces::id_mappings(gids)?);
    }
    let mut linux = linux
        .masked_paths(masked)
        .readonly_paths(
            READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .build()
        .map_err(err)?;
    if opts.rootless {
        // The builder's default resources would still be written.
        linux.set_resources(None);
    }
    SpecBuilder::default()
        .version("1.0.2-dev")
        .root(
            RootBuilder::default()
                .path(&opts.rootfs)
                .readonly(opts.flags.read_only)
                .build()
                .map_err(err)?,
        )
        .process(process(opts)?)
        .hostname(opts.hostname.clone())
        .mounts(mounts::all_mounts(opts, rootless::mount_rules(opts))?)
        .linux(linux)
        .build()
        .map_err(err)
}

#[cfg(test)]
mod tests;
