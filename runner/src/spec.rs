//! The OCI runtime spec of a container, from the image config and the
//! `create`/`run` flags, with Podman's defaults (shared/spec/runner-notes.md §3).
//!
//! Everything here is pure (the caller reads files and the host's limits), so
//! the defaults are unit-tested.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Box as ConsoleBox, BoxBuilder};
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder,
    LinuxIdMappingBuilder, LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder,
    PosixRlimitBuilder, PosixRlimitType, Process, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder,
};
use serde::{Deserialize, Serialize};

use crate::error::RunnerError;
use crate::rootless::idmap::IdMap;

/// `PATH` every container starts with.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// containers.conf `default_capabilities`.
pub const DEFAULT_CAPABILITIES: [Capability; 11] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::NetBindService,
    Capability::Setfcap,
    Capability::Setgid,
    Capability::Setpcap,
    Capability::Setuid,
    Capability::SysChroot,
];
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
/// containers.conf `pids_limit`.
pub const PIDS_LIMIT: i64 = 2048;
/// Podman's NOFILE/NPROC target before clamping.
pub const RLIMIT_TARGET: u64 = 1_048_576;

/// The network namespace mode (`--network`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Network {
    /// A private namespace with only loopback (also `private`: vigil has no bridge).
    None,
    /// The host's namespace.
    Host,
    /// Join the namespace at this path (`ns:PATH`).
    Path(PathBuf),
}

impl Network {
    /// Parse a `--network` value; `None` for the default.
    pub fn parse(value: Option<&str>) -> Result<Network, RunnerError> {
        match value {
            None | Some("none") | Some("private") | Some("bridge") => Ok(Network::None),
            Some("host") => Ok(Network::Host),
            Some(v) => match v.strip_prefix("ns:") {
                Some(p) if p.starts_with('/') => Ok(Network::Path(p.into())),
                _ => Err(RunnerError::Engine(format!(
                    "unsupported network mode {v:?} (none, host, ns:PATH)"
                ))),
            },
        }
    }

    /// The name shown by `inspect`.
    pub fn name(&self) -> String {
        match self {
            Network::None => "none".into(),
            Network::Host => "host".into(),
            Network::Path(p) => format!("ns:{}", p.display()),
        }
    }
}

/// A resolved process user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// From the passwd entry, else `/`.
    pub home: String,
}

/// A bind mount (`-v` or one of the per-container `/etc` files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub options: Vec<String>,
}

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
    /// `--cap-add`, `--cap-drop`, `--tmpfs`, `--read-only`, `--pids-limit`.
    pub flags: SpecFlags,
}

/// The `create`/`run` flags that only shape the runtime spec; kept in the
/// container record, validated by `create` (see [`SpecFlags::validate`]).
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

/// Where `--init`'s binary appears in the container (Podman: /run/podman-init).
pub const INIT_PATH: &str = "/run/vigil-init";

/// The init binary for `--init`: catatonit where Podman keeps it, else on PATH.
pub fn find_init() -> Option<PathBuf> {
    let fixed = [
        "/usr/libexec/podman/catatonit",
        "/usr/local/libexec/podman/catatonit",
    ]
    .into_iter()
    .map(PathBuf::from);
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("catatonit"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    fixed.chain(on_path).find(|p| p.is_file())
}

fn init_binary() -> Result<PathBuf, RunnerError> {
    find_init().ok_or_else(|| {
        RunnerError::Engine(
            "--init: no init binary: install catatonit (looked for \
             /usr/libexec/podman/catatonit and catatonit on PATH)"
                .into(),
        )
    })
}

impl SpecFlags {
    /// Everything `build` would refuse, checked before the record is written.
    pub fn validate(&self) -> Result<(), RunnerError> {
        merge_capabilities(
            &DEFAULT_CAPABILITIES,
            &self.cap_add,
            &self.cap_drop,
            &all_capabilities(None),
        )?;
        let mut seen = HashSet::new();
        for t in &self.tmpfs {
            let m = parse_tmpfs(t)?;
            if !seen.insert(m.destination().clone()) {
                return Err(RunnerError::Engine(format!(
                    "invalid --tmpfs {t:?}: duplicate mount destination"
                )));
            }
        }
        pids_limit(self.pids_limit)?;
        if self.init {
            init_binary()?;
        }
        Ok(())
    }
}

/// Every capability vigil knows, as the spec spells them, in the kernel's
/// order: the index is the capability's bit in `/proc/<pid>/status` masks.
pub const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Normalise `--cap-add`/`--cap-drop` values: comma-separated lists,
/// case-insensitive, `CAP_` optional, `ALL` kept as `ALL`. Unknown names
/// are an error.
pub fn parse_capabilities(values: &[String]) -> Result<Vec<String>, RunnerError> {
    let mut out: Vec<String> = Vec::new();
    for v in values.iter().flat_map(|v| v.split(',')) {
        let upper = v.trim().to_ascii_uppercase();
        let name = if upper == "ALL" {
            upper
        } else {
            let full = if upper.starts_with("CAP_") {
                upper
            } else {
                format!("CAP_{upper}")
            };
            if !ALL_CAPABILITIES.contains(&full.as_str()) {
                return Err(RunnerError::Engine(format!(
                    "unknown capability {v:?} (expected a name such as CAP_CHOWN or NET_RAW, or ALL)"
                )));
            }
            full
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

fn capability(name: &str) -> Result<Capability, RunnerError> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map_err(|_| RunnerError::Engine(format!("unknown capability {name:?}")))
}

fn capability_name(c: &Capability) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// What `ALL` means: every capability in `bounding` (a `CapBnd` mask, like
/// Podman's `BoundingSet()`), or every one vigil knows without a mask.
pub fn all_capabilities(bounding: Option<u64>) -> Vec<String> {
    let mask = bounding.unwrap_or(u64::MAX);
    ALL_CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1u64 << bit) != 0)
        .map(|(_, s)| s.to_string())
        .collect()
}

/// vigil's own capability bounding set (`CapBnd` of /proc/self/status).
pub fn bounding_set() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Podman's `MergeCapabilities`: `base` minus `drop` plus `add` (both
/// normalised); `--cap-add ALL` starts from `all` (see [`all_capabilities`]),
/// `--cap-drop ALL` keeps only `add`; a capability both added and dropped is
/// an error.
pub fn merge_capabilities(
    base: &[Capability],
    add: &[String],
    drop: &[String],
    all: &[String],
) -> Result<Vec<String>, RunnerError> {
    let add = parse_capabilities(add)?;
    let drop = parse_capabilities(drop)?;
    let has_all = |v: &[String]| v.iter().any(|c| c == "ALL");
    if has_all(&drop) {
        if has_all(&add) {
            return Err(RunnerError::Engine(
                "adding all caps and removing all caps not allowed".into(),
            ));
        }
        let mut caps = add;
        caps.sort();
        return Ok(caps);
    }
    let (base, add): (Vec<String>, Vec<String>) = if has_all(&add) {
        (all.to_vec(), Vec::new())
    } else {
        (base.iter().map(capability_name).collect(), add)
    };
    if let Some(c) = add.iter().find(|c| drop.contains(c)) {
        return Err(RunnerError::Engine(format!(
            "capability {c:?} cannot be dropped and added"
        )));
    }
    let mut caps: Vec<String> = base.into_iter().filter(|c| !drop.contains(c)).collect();
    for c in add {
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    caps.sort();
    Ok(caps)
}

/// Parse `--tmpfs DEST[:OPTIONS]` into a tmpfs mount with Podman 4.3.1's
/// options: the given ones, then `rw`, `rprivate`, `nosuid`, `nodev` and
/// `tmpcopyup` unless the user chose otherwise (observed `config.json`).
pub fn parse_tmpfs(value: &str) -> Result<Mount, RunnerError> {
    let (dest, opts) = value.split_once(':').unwrap_or((value, ""));
    let bad = |why: String| RunnerError::Engine(format!("invalid --tmpfs {value:?}: {why}"));
    if !dest.starts_with('/') {
        return Err(bad("the destination must be an absolute path".into()));
    }
    let dest = Path::new(dest)
        .components()
        .collect::<PathBuf>()
        .to_string_lossy()
        .into_owned();
    if dest.split('/').any(|c| c == "..") {
        return Err(bad("the destination must not contain \"..\"".into()));
    }
    let mut options: Vec<String> = Vec::new();
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let key = o.split_once('=').map_or(o, |(k, _)| k);
        let valid = match key {
            "size" | "mode" | "uid" | "gid" | "nr_inodes" | "nr_blocks" => {
                o.contains('=') && !o.ends_with('=')
            }
            _ => !tmpfs_option_group(o).is_empty() && !o.contains('='),
        };
        if !valid {
            return Err(bad(format!("unknown mount option {o:?}")));
        }
        if !options.iter().any(|x| x == o) {
            options.push(o.to_string());
        }
    }
    for (group, default) in [
        ("rw", "rw"),
        ("propagation", "rprivate"),
        ("suid", "nosuid"),
        ("dev", "nodev"),
        ("copyup", "tmpcopyup"),
    ] {
        if !options.iter().any(|o| tmpfs_option_group(o) == group) {
            options.push(default.into());
        }
    }
    let opts: Vec<&str> = options.iter().map(String::as_str).collect();
    mount(&dest, "tmpfs", "tmpfs", &opts)
}

/// Which choice a flag-like tmpfs option makes ("" for none or a key=value).
fn tmpfs_option_group(o: &str) -> &'static str {
    match o {
        "rw" | "ro" => "rw",
        "exec" | "noexec" => "exec",
        "suid" | "nosuid" => "suid",
        "dev" | "nodev" => "dev",
        "atime" | "noatime" | "relatime" | "strictatime" | "nodiratime" => "atime",
        "sync" | "async" | "dirsync" => "sync",
        "tmpcopyup" | "notmpcopyup" => "copyup",
        "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
        | "runbindable" => "propagation",
        _ => "",
    }
}

/// `linux.resources.pids.limit` for `--pids-limit` (`None`: the default;
/// 0 or -1: unlimited, written as -1).
pub fn pids_limit(flag: Option<i64>) -> Result<i64, RunnerError> {
    match flag {
        None => Ok(PIDS_LIMIT),
        Some(-1 | 0) => Ok(-1),
        Some(n) if n > 0 => Ok(n),
        Some(n) => Err(RunnerError::Engine(format!(
            "invalid --pids-limit {n}: expected a positive number, or 0 or -1 for unlimited"
        ))),
    }
}

fn err(e: impl std::fmt::Display) -> RunnerError {
    RunnerError::Engine(format!("building the runtime spec: {e}"))
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, RunnerError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(err)
}

/// How the default mounts differ for a rootless container (runner-notes §3.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MountRules {
    /// `/sys` cannot be a fresh sysfs (no network namespace of the
    /// container's own in a user namespace): bind the host's, read-only, and
    /// bind `/sys/fs/cgroup` the same way (Podman's `canMountSys`).
    pub bind_sys: bool,
    /// gid 5 (tty) is not mapped in the container: no `gid=5` for devpts.
    pub no_tty_gid: bool,
}

/// Podman's default mounts (runner-notes §3.2), then `binds`.
pub fn mounts(binds: &[BindMount]) -> Result<Vec<Mount>, RunnerError> {
    mounts_with(binds, MountRules::default())
}

/// [`mounts`] with the rootless differences of `rules`.
pub fn mounts_with(binds: &[BindMount], rules: MountRules) -> Result<Vec<Mount>, RunnerError> {
    let devpts: &[&str] = if rules.no_tty_gid {
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
        ]
    } else {
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]
    };
    let sys = if rules.bind_sys {
        mount(
            "/sys",
            "bind",
            "/sys",
            &["rbind", "nosuid", "noexec", "nodev", "ro"],
        )?
    } else {
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?
    };
    let cgroup = if rules.bind_sys {
        mount(
            "/sys/fs/cgroup",
            "bind",
            "/sys/fs/cgroup",
            &["rprivate", "nosuid", "noexec", "nodev", "ro", "rbind"],
        )?
    } else {
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["rprivate", "nosuid", "noexec", "nodev", "relatime", "ro"],
        )?
    };
    let mut all = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "noexec", "strictatime", "mode=755", "size=65536k"],
        )?,
        sys,
        mount("/dev/pts", "devpts", "devpts", devpts)?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        cgroup,
    ];
    all.extend(bind_mounts(binds)?);
    Ok(all)
}

fn bind_mounts(binds: &[BindMount]) -> Result<Vec<Mount>, RunnerError> {
    binds
        .iter()
        .map(|b| {
            let source = b.source.to_string_lossy();
            let opts: Vec<&str> = b.options.iter().map(String::as_str).collect();
            mount(&b.destination, "bind", &source, &opts)
        })
        .collect()
}

/// Directories a `--read-only` container keeps writable with tmpfs (with
/// `--read-only-tmpfs`; /dev and /dev/shm are tmpfs anyway).
pub const READ_ONLY_TMPFS: [&str; 3] = ["/tmp", "/run", "/var/tmp"];

/// The default mounts, then tmpfs (`--read-only` ones, `--tmpfs`) and the
/// binds, shallowest destination first. A `--tmpfs` on a default mount's
/// destination replaces it. With
/// `--read-only` the per-container /etc files (plain `bind`, where volumes
/// are `rbind`) are read-only too, like Podman's.
fn all_mounts(opts: &SpecOptions, rules: MountRules) -> Result<Vec<Mount>, RunnerError> {
    let f = &opts.flags;
    let user_tmpfs = f
        .tmpfs
        .iter()
        .map(|t| parse_tmpfs(t))
        .collect::<Result<Vec<_>, _>>()?;
    let taken = |dest: &str| {
        user_tmpfs
            .iter()
            .any(|m| m.destination() == Path::new(dest))
            || opts.binds.iter().any(|b| b.destination == dest)
    };
    let mut all = mounts_with(&[], rules)?;
    all.retain(|m| {
        !user_tmpfs
            .iter()
            .any(|t| t.destination() == m.destination())
    });
    let mut extra = Vec::new();
    if f.read_only && f.read_only_tmpfs {
        for dest in READ_ONLY_TMPFS.iter().filter(|d| !taken(d)) {
            extra.push(mount(
                dest,
                "tmpfs",
                "tmpfs",
                &["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"],
            )?);
        }
    }
    extra.extend(user_tmpfs);
    if f.init {
        let init = init_binary()?;
        extra.push(mount(
            INIT_PATH,
            "bind",
            &init.to_string_lossy(),
            &["bind", "rprivate", "ro"],
        )?);
    }
    let binds: Vec<BindMount> = opts
        .binds
        .iter()
        .cloned()
        .map(|mut b| {
            if f.read_only && b.options.first().is_some_and(|o| o == "bind") {
                b.options
                    .extend(["ro", "nosuid", "noexec", "nodev"].map(String::from));
            }
            b
        })
        .collect();
    extra.extend(bind_mounts(&binds)?);
    // Parents before children, so that no mount hides a deeper one (Podman
    // sorts its mounts the same way); stable, so equal depths keep their order.
    extra.sort_by_key(|m| m.destination().components().count());
    all.extend(extra);
    Ok(all)
}

fn namespace(typ: LinuxNamespaceType, path: Option<&Path>) -> Result<LinuxNamespace, RunnerError> {
    let b = LinuxNamespaceBuilder::default().typ(typ);
    match path {
        Some(p) => b.path(p).build(),
        None => b.build(),
    }
    .map_err(err)
}

/// The process part: args, env, cwd, user, terminal, capabilities, rlimits.
pub fn process(opts: &SpecOptions) -> Result<Process, RunnerError> {
    let set = |names: Vec<String>| {
        names
            .iter()
            .map(|n| capability(n))
            .collect::<Result<HashSet<Capability>, _>>()
    };
    let f = &opts.flags;
    let all = all_capabilities(bounding_set());
    let caps = set(merge_capabilities(
        &DEFAULT_CAPABILITIES,
        &f.cap_add,
        &f.cap_drop,
        &all,
    )?)?;
    // Root gets the whole set; another user only what --cap-add names (and
    // vigil has), in every set so that it survives the exec (Podman's
    // security_linux.go).
    let (given, ambient) = if opts.user.uid == 0 {
        (caps.clone(), HashSet::new())
    } else {
        let added: Vec<String> = merge_capabilities(&[], &f.cap_add, &[], &all)?
            .into_iter()
            .filter(|c| all.contains(c))
            .collect();
        let added = set(added)?;
        (added.clone(), added)
    };
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps)
        .effective(given.clone())
        .permitted(given)
        .inheritable(ambient.clone())
        .ambient(ambient)
        .build()
        .map_err(err)?;
    let rlimits = [
        (PosixRlimitType::RlimitNofile, opts.rlimit_nofile),
        (PosixRlimitType::RlimitNproc, opts.rlimit_nproc),
    ]
    .into_iter()
    .map(|(typ, v)| {
        PosixRlimitBuilder::default()
            .typ(typ)
            .soft(v)
            .hard(v)
            .build()
            .map_err(err)
    })
    .collect::<Result<Vec<_>, _>>()?;
    let user = UserBuilder::default()
        .uid(opts.user.uid)
        .gid(opts.user.gid)
        .additional_gids(opts.user.additional_gids.clone())
        .umask(0o022u32)
        .build()
        .map_err(err)?;
    let mut process = ProcessBuilder::default()
        .terminal(opts.terminal)
        .user(user)
        .args(if opts.flags.init {
            // catatonit runs the command after `--` and passes its exit status on.
            [INIT_PATH.to_string(), "--".to_string()]
                .into_iter()
                .chain(opts.args.iter().cloned())
                .collect()
        } else {
            opts.args.clone()
        })
        .env(opts.env.clone())
        .cwd(opts.cwd.clone())
        .capabilities(capabilities)
        .rlimits(rlimits)
        .no_new_privileges(false)
        .build()
        .map_err(err)?;
    process.set_console_size(console_box(opts.terminal, opts.console_size)?);
    Ok(process)
}

/// The `consoleSize` of a process: only for a terminal of a known size.
pub fn console_box(
    terminal: bool,
    size: Option<(u16, u16)>,
) -> Result<Option<ConsoleBox>, RunnerError> {
    match size {
        Some((rows, cols)) if terminal && rows > 0 && cols > 0 => BoxBuilder::default()
            .height(u64::from(rows))
            .width(u64::from(cols))
            .build()
            .map(Some)
            .map_err(err),
        _ => Ok(None),
    }
}

/// The size (rows, columns) of the user's terminal on stdin or stdout, if any.
pub fn terminal_size() -> Option<(u16, u16)> {
    for fd in [0, 1] {
        // SAFETY: TIOCGWINSZ with a valid out-pointer.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0
            && ws.ws_row > 0
            && ws.ws_col > 0
        {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

fn id_mappings(map: &IdMap) -> Result<Vec<oci_spec::runtime::LinuxIdMapping>, RunnerError> {
    map.0
        .iter()
        .map(|m| {
            LinuxIdMappingBuilder::default()
                .container_id(m.container)
                .host_id(m.host)
                .size(m.size)
                .build()
                .map_err(err)
        })
        .collect()
}

/// The whole spec.
pub fn build(opts: &SpecOptions) -> Result<Spec, RunnerError> {
    // A rootless container joins only namespaces vigil made for it (its
    // slirp4netns namespace); `--network ns:PATH` is refused at create
    // (`network::configure`).
    let mut namespaces = vec![namespace(LinuxNamespaceType::Pid, None)?];
    match &opts.network {
        Network::None => namespaces.push(namespace(LinuxNamespaceType::Network, None)?),
        Network::Host => {}
        Network::Path(p) => namespaces.push(namespace(LinuxNamespaceType::Network, Some(p))?),
    }
    namespaces.push(namespace(LinuxNamespaceType::Ipc, None)?);
    namespaces.push(namespace(LinuxNamespaceType::Uts, None)?);
    namespaces.push(namespace(LinuxNamespaceType::Mount, None)?);
    if opts.cgroup_ns {
        namespaces.push(namespace(LinuxNamespaceType::Cgroup, None)?);
    }
    if opts.userns.is_some() {
        namespaces.push(namespace(LinuxNamespaceType::User, None)?);
    }
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .map_err(err)?;
    let mut resources = LinuxResourcesBuilder::default()
        .devices(vec![deny_all])
        .pids(
            LinuxPidsBuilder::default()
                .limit(pids_limit(opts.flags.pids_limit)?)
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
    // Rootless: the user has no cgroup of their own here, so no resources
    // and no cgroups path (runc then skips cgroups it cannot write), and
    // with the host's network `/sys` is a read-only bind (runner-notes §3.6).
    // A container with a user namespace of its own cannot mount sysfs for a
    // network namespace made outside it (vigil's bridge or slirp4netns
    // namespace) either (Podman's `canMountSys`).
    let bind_sys = (opts.rootless && opts.network == Network::Host)
        || (opts.userns.is_some() && matches!(opts.network, Network::Path(_)));
    let mut masked: Vec<String> = MASKED_PATHS.iter().map(|s| s.to_string()).collect();
    if bind_sys {
        masked.push("/sys/kernel".into());
    }
    let mut linux = LinuxBuilder::default().namespaces(namespaces);
    if !opts.rootless {
        linux = linux
            .resources(resources.build().map_err(err)?)
            .cgroups_path(PathBuf::from(&opts.cgroups_path));
    }
    if let Some((uids, gids)) = &opts.userns {
        linux = linux
            .uid_mappings(id_mappings(uids)?)
            .gid_mappings(id_mappings(gids)?);
    }
    let no_tty_gid = match &opts.userns {
        Some((_, gids)) => gids.to_host(5).is_none(),
        None => {
            opts.rootless
                && crate::rootless::userns::current_map("gid")
                    .is_some_and(|m| m.to_host(5).is_none())
        }
    };
    let rules = MountRules {
        bind_sys,
        no_tty_gid,
    };
    let linux = linux
        .masked_paths(masked)
        .readonly_paths(
            READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .build()
        .map_err(err)?;
    let mut linux = linux;
    if opts.rootless {
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
        .mounts(all_mounts(opts, rules)?)
        .linux(linux)
        .build()
        .map_err(err)
}

/// NOFILE/NPROC for the container: Podman's 1048576, clamped to `nr_open`
/// (NOFILE) and, without CAP_SYS_RESOURCE, to the caller's hard limit.
pub fn rlimit_value(can_raise: bool, nr_open: Option<u64>, current_hard: u64) -> u64 {
    let mut v = RLIMIT_TARGET;
    if let Some(max) = nr_open {
        v = v.min(max);
    }
    if !can_raise {
        v = v.min(current_hard);
    }
    v
}

/// The command: `--entrypoint` (a JSON array or one word) replaces the image's
/// entrypoint and drops its Cmd; a command given on the line replaces Cmd.
pub fn command(
    entrypoint_flag: Option<&str>,
    image_entrypoint: &[String],
    image_cmd: &[String],
    user_cmd: &[String],
) -> Result<Vec<String>, RunnerError> {
    let (entrypoint, cmd): (Vec<String>, &[String]) = match entrypoint_flag {
        Some(flag) => {
            let ep = if flag.trim_start().starts_with('[') {
                serde_json::from_str::<Vec<String>>(flag).map_err(|e| {
                    RunnerError::Engine(format!("invalid --entrypoint {flag:?}: {e}"))
                })?
            } else if flag.is_empty() {
                Vec::new()
            } else {
                vec![flag.to_string()]
            };
            (ep, user_cmd)
        }
        None => (
            image_entrypoint.to_vec(),
            if user_cmd.is_empty() {
                image_cmd
            } else {
                user_cmd
            },
        ),
    };
    let mut args = entrypoint;
    args.extend(cmd.iter().cloned());
    if args.is_empty() {
        return Err(RunnerError::Engine(
            "no command or entrypoint specified".into(),
        ));
    }
    Ok(args)
}

/// The environment, by Podman's precedence: defaults < image < `-e` (a bare
/// `NAME` takes vigil's value, or is dropped if unset); then `TERM` (terminal),
/// `HOSTNAME` and `HOME` if still unset. Order: first definition wins the slot.
pub fn environment(
    image_env: &[String],
    flags: &[String],
    lookup: impl Fn(&str) -> Option<String>,
    terminal: bool,
    hostname: &str,
    home: &str,
) -> Vec<String> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| match env.iter_mut().find(|(name, _)| name == k) {
        Some(slot) => slot.1 = v.to_string(),
        None => env.push((k.to_string(), v.to_string())),
    };
    set("PATH", &DEFAULT_PATH[5..]);
    set("container", "vigil");
    for e in image_env {
        let (k, v) = e.split_once('=').unwrap_or((e, ""));
        set(k, v);
    }
    for e in flags {
        match e.split_once('=') {
            Some((k, v)) => set(k, v),
            None => {
                if let Some(v) = lookup(e) {
                    set(e, &v);
                }
            }
        }
    }
    let mut add_default = |k: &str, v: &str| {
        if !env.iter().any(|(name, _)| name == k) {
            env.push((k.to_string(), v.to_string()));
        }
    };
    if terminal {
        add_default("TERM", "xterm");
    }
    add_default("HOSTNAME", hostname);
    add_default("HOME", home);
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Resolve `USER[:GROUP]` (names or numbers) against the container's
/// `/etc/passwd` and `/etc/group` contents. An empty spec is root.
pub fn resolve_user(spec: &str, passwd: &str, group: &str) -> Result<User, RunnerError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let entry = passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 {
            return None;
        }
        let matches = f[0] == user_part || f[2] == user_part;
        matches.then(|| {
            (
                f[0].to_string(),
                f[2].parse::<u32>().ok(),
                f[3].parse::<u32>().ok(),
                f[5].to_string(),
            )
        })
    });
    let (name, uid, mut gid, home) = match (entry, user_part.parse::<u32>()) {
        (Some((name, Some(uid), gid, home)), _) => (Some(name), uid, gid.unwrap_or(0), home),
        (_, Ok(uid)) => (None, uid, uid, "/".to_string()),
        _ => {
            return Err(RunnerError::Engine(format!(
                "unable to find user {user_part}: no matching entries in passwd file"
            )))
        }
    };
    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .lines()
                .find_map(|line| {
                    let f: Vec<&str> = line.split(':').collect();
                    (f.len() >= 3 && f[0] == g)
                        .then(|| f[2].parse::<u32>().ok())
                        .flatten()
                })
                .ok_or_else(|| {
                    RunnerError::Engine(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    let mut additional_gids = vec![gid];
    if let Some(name) = name {
        for line in group.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse::<u32>() {
                    if !additional_gids.contains(&g) {
                        additional_gids.push(g);
                    }
                }
            }
        }
    }
    let home = if home.is_empty() { "/".into() } else { home };
    Ok(User {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// Parse `-v SRC:DEST[:OPTIONS]` (bind mounts of absolute host paths only).
pub fn parse_volume(spec: &str) -> Result<BindMount, RunnerError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dest, opts) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => {
            return Err(RunnerError::Engine(format!(
                "invalid volume {spec:?}: expected SRC:DEST[:OPTIONS]"
            )))
        }
    };
    if !src.starts_with('/') {
        return Err(RunnerError::Engine(format!(
            "invalid volume {spec:?}: named volumes are not supported, use an absolute host path"
        )));
    }
    if !dest.starts_with('/') {
        return Err(RunnerError::Engine(format!(
            "invalid volume {spec:?}: the destination must be absolute"
        )));
    }
    let mut options = vec!["rbind".to_string()];
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "rw" | "nosuid" | "nodev" | "noexec" | "suid" | "dev" | "exec" => {
                options.push(o.into())
            }
            "z" | "Z" => {}
            "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave" => {
                options.push(o.into())
            }
            _ => {
                return Err(RunnerError::Engine(format!(
                    "invalid volume option {o:?} in {spec:?}"
                )))
            }
        }
    }
    if !options
        .iter()
        .any(|o| o.ends_with("private") || o.ends_with("shared") || o.ends_with("slave"))
    {
        options.push("rprivate".into());
    }
    Ok(BindMount {
        source: src.into(),
        destination: dest.into(),
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `destination` of every mount in a serialised spec, in order.
    fn mount_destinations(json: &serde_json::Value) -> Vec<&str> {
        json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect()
    }

    fn opts() -> SpecOptions {
        SpecOptions {
            rootfs: "/r".into(),
            args: vec!["sh".into()],
            env: vec![DEFAULT_PATH.into()],
            cwd: "/".into(),
            user: User {
                uid: 0,
                gid: 0,
                additional_gids: vec![0],
                home: "/root".into(),
            },
            terminal: false,
            console_size: None,
            hostname: "abc".into(),
            network: Network::None,
            cgroups_path: "/vigil/x".into(),
            binds: vec![BindMount {
                source: "/h".into(),
                destination: "/etc/hosts".into(),
                options: vec!["rbind".into()],
            }],
            memory_limit: Some(1 << 20),
            rlimit_nofile: 1024,
            rlimit_nproc: 2048,
            cgroup_ns: false,
            rootless: false,
            userns: None,
            flags: SpecFlags::default(),
        }
    }

    fn mount_of<'a>(json: &'a serde_json::Value, dest: &str) -> &'a serde_json::Value {
        json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == dest)
            .unwrap_or_else(|| panic!("no mount {dest}"))
    }

    #[test]
    fn rootless_specs_have_no_cgroup_settings_and_podmans_sys_rules() {
        let mut o = opts();
        o.rootless = true;
        let json = serde_json::to_value(build(&o).unwrap()).unwrap();
        assert!(
            json["linux"].get("resources").is_none(),
            "{}",
            json["linux"]
        );
        assert!(
            json["linux"].get("cgroupsPath").is_none(),
            "{}",
            json["linux"]
        );
        assert!(json["linux"].get("uidMappings").is_none());
        // A private network namespace: a fresh sysfs and a cgroup mount.
        assert_eq!(mount_of(&json, "/sys")["type"], "sysfs");
        assert_eq!(mount_of(&json, "/sys/fs/cgroup")["type"], "cgroup");

        o.network = Network::Host;
        let json = serde_json::to_value(build(&o).unwrap()).unwrap();
        let sys = mount_of(&json, "/sys");
        assert_eq!(
            (sys["type"].as_str(), sys["source"].as_str()),
            (Some("bind"), Some("/sys"))
        );
        assert!(sys["options"].as_array().unwrap().iter().any(|o| o == "ro"));
        assert!(sys["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "rbind"));
        let cg = mount_of(&json, "/sys/fs/cgroup");
        assert_eq!(
            (cg["type"].as_str(), cg["source"].as_str()),
            (Some("bind"), Some("/sys/fs/cgroup"))
        );
        assert!(json["linux"]["maskedPaths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "/sys/kernel"));
        let ns: Vec<&str> = json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["pid", "ipc", "uts", "mount"]);

        o.network = Network::Path("/run/user/1000/netns/netns-x".into());
        let json = serde_json::to_value(build(&o).unwrap()).unwrap();
        assert_eq!(
            json["linux"]["namespaces"][1]["path"],
            "/run/user/1000/netns/netns-x"
        );
    }

    #[test]
    fn a_container_user_namespace_has_its_mappings() {
        use crate::rootless::idmap::{keep_id_mapping, IdMapping};
        let mut o = opts();
        o.rootless = true;
        let uids = keep_id_mapping(1000, 65537).unwrap();
        o.userns = Some((uids.clone(), uids));
        let json = serde_json::to_value(build(&o).unwrap()).unwrap();
        assert_eq!(
            json["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .last()
                .unwrap()["type"],
            "user"
        );
        assert_eq!(
            json["linux"]["uidMappings"][1],
            serde_json::json!({"containerID": 1000, "hostID": 0, "size": 1})
        );
        assert_eq!(json["linux"]["gidMappings"].as_array().unwrap().len(), 3);
        let pts = mount_of(&json, "/dev/pts");
        assert!(pts["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "gid=5"));
        // gid 5 unmapped: devpts without gid=5 (runner-notes §3.2).
        let small = crate::rootless::idmap::IdMap(vec![IdMapping {
            container: 0,
            host: 0,
            size: 1,
        }]);
        o.userns = Some((small.clone(), small));
        let json = serde_json::to_value(build(&o).unwrap()).unwrap();
        let pts = mount_of(&json, "/dev/pts");
        assert!(
            !pts["options"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o == "gid=5"),
            "{pts}"
        );
    }

    #[test]
    fn spec_has_podman_defaults() {
        let spec = build(&opts()).unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        let ns: Vec<&str> = json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["pid", "network", "ipc", "uts", "mount"]);
        let dests = mount_destinations(&json);
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/sys",
                "/dev/pts",
                "/dev/mqueue",
                "/dev/shm",
                "/sys/fs/cgroup",
                "/etc/hosts"
            ]
        );
        assert_eq!(
            json["process"]["capabilities"]["effective"]
                .as_array()
                .unwrap()
                .len(),
            11
        );
        assert_eq!(
            json["process"]["rlimits"][0],
            serde_json::json!({"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024})
        );
        assert_eq!(json["linux"]["resources"]["pids"]["limit"], 2048);
        assert_eq!(json["linux"]["resources"]["memory"]["limit"], 1 << 20);
        assert_eq!(json["linux"]["maskedPaths"].as_array().unwrap().len(), 12);
        assert_eq!(json["root"]["path"], "/r");
        assert_eq!(json["hostname"], "abc");

        let mut o = opts();
        o.network = Network::Host;
        o.user.uid = 1000;
        let json = serde_json::to_value(build(&o).unwrap()).unwrap();
        assert_eq!(json["linux"]["namespaces"].as_array().unwrap().len(), 4);
        assert!(json["process"]["capabilities"]["effective"]
            .as_array()
            .unwrap()
            .is_empty());
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn capabilities_parse_and_merge_like_podman() {
        assert_eq!(
            parse_capabilities(&strings(&["sys_admin,CAP_NET_RAW", "Chown", "all"])).unwrap(),
            ["CAP_SYS_ADMIN", "CAP_NET_RAW", "CAP_CHOWN", "ALL"]
        );
        let e = parse_capabilities(&strings(&["CHOWN,BOGUS"])).unwrap_err();
        assert!(
            e.to_string().contains("unknown capability \"BOGUS\""),
            "{e}"
        );
        assert_eq!(e.exit_code(), 125);
        assert!(parse_capabilities(&strings(&["CAP_"])).is_err());

        let merged = |add: &[&str], drop: &[&str]| {
            let all = all_capabilities(None);
            merge_capabilities(&DEFAULT_CAPABILITIES, &strings(add), &strings(drop), &all)
        };
        let m = merged(&["sys_admin"], &["chown", "CAP_KILL"]).unwrap();
        assert_eq!(m.len(), 10);
        assert!(m.contains(&"CAP_SYS_ADMIN".into()));
        assert!(!m.contains(&"CAP_CHOWN".into()) && !m.contains(&"CAP_KILL".into()));
        assert_eq!(merged(&[], &[]).unwrap().len(), 11);
        assert_eq!(merged(&["ALL"], &[]).unwrap().len(), ALL_CAPABILITIES.len());
        assert_eq!(merged(&["all"], &["chown"]).unwrap().len(), 40);
        assert_eq!(merged(&["net_raw"], &["ALL"]).unwrap(), ["CAP_NET_RAW"]);
        assert!(merged(&[], &["ALL"]).unwrap().is_empty());
        assert!(merged(&["ALL"], &["ALL"]).is_err());
        assert!(merged(&["chown"], &["CAP_CHOWN"]).is_err());
        // Every name vigil knows is one oci-spec knows.
        for c in ALL_CAPABILITIES {
            capability(c).unwrap();
        }
        // ALL is what the bounding set has (bit = kernel number).
        assert_eq!(ALL_CAPABILITIES[21], "CAP_SYS_ADMIN");
        assert_eq!(ALL_CAPABILITIES[40], "CAP_CHECKPOINT_RESTORE");
        assert_eq!(
            all_capabilities(Some((1 << 0) | (1 << 21) | (1 << 63))),
            ["CAP_CHOWN", "CAP_SYS_ADMIN"]
        );
        assert_eq!(all_capabilities(Some(0x1ff_feff_ffff)).len(), 40);
        assert!(bounding_set().is_some());
    }

    #[test]
    fn tmpfs_options_follow_podman() {
        let opts = |v: &str| parse_tmpfs(v).map(|m| m.options().clone().unwrap());
        assert_eq!(
            opts("/scratch").unwrap(),
            ["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"]
        );
        assert_eq!(
            opts("/s:size=1m,mode=700,exec,ro,notmpcopyup").unwrap(),
            [
                "size=1m",
                "mode=700",
                "exec",
                "ro",
                "notmpcopyup",
                "rprivate",
                "nosuid",
                "nodev"
            ]
        );
        assert_eq!(
            parse_tmpfs("/a/./b/").unwrap().destination(),
            Path::new("/a/b")
        );
        for bad in [
            "scratch", "/x:bogus", "/x:size", "/x:size=", "/x:rw=1", "/a/../b", "",
        ] {
            let e = parse_tmpfs(bad).unwrap_err();
            assert!(e.to_string().contains("invalid --tmpfs"), "{bad}: {e}");
        }
        let dup = SpecFlags {
            tmpfs: strings(&["/x", "/x/:size=1m"]),
            ..Default::default()
        };
        assert!(dup.validate().is_err());
    }

    #[test]
    fn pids_limits() {
        assert_eq!(pids_limit(None).unwrap(), PIDS_LIMIT);
        assert_eq!(pids_limit(Some(20)).unwrap(), 20);
        assert_eq!(pids_limit(Some(0)).unwrap(), -1);
        assert_eq!(pids_limit(Some(-1)).unwrap(), -1);
        assert!(pids_limit(Some(-2)).is_err());
        let mut o = opts();
        o.flags.pids_limit = Some(20);
        let json = serde_json::to_value(build(&o).unwrap()).unwrap();
        assert_eq!(json["linux"]["resources"]["pids"]["limit"], 20);
    }

    #[test]
    fn flags_shape_the_spec() {
        let mut o = opts();
        o.binds.insert(
            0,
            BindMount {
                source: "/v".into(),
                destination: "/tmp/a/b".into(),
                options: strings(&["rbind", "rprivate"]),
            },
        );
        o.binds.push(BindMount {
            source: "/s/hostname".into(),
            destination: "/etc/hostname".into(),
            options: strings(&["bind", "rprivate"]),
        });
        o.flags = SpecFlags {
            cap_add: strings(&["SYS_ADMIN"]),
            cap_drop: strings(&["CHOWN"]),
            tmpfs: strings(&["/scratch:size=1m", "/dev/shm:size=2m", "/tmp"]),
            read_only: true,
            read_only_tmpfs: true,
            pids_limit: None,
            init: false,
        };
        let json = serde_json::to_value(build(&o).unwrap()).unwrap();
        assert_eq!(json["root"]["readonly"], true);
        let dests = mount_destinations(&json);
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/sys",
                "/dev/pts",
                "/dev/mqueue",
                "/sys/fs/cgroup",
                "/run",
                "/scratch",
                "/tmp",
                "/var/tmp",
                "/dev/shm",
                "/etc/hosts",
                "/etc/hostname",
                "/tmp/a/b"
            ]
        );
        assert_eq!(
            mount_of(&json, "/run")["options"],
            serde_json::json!(["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"])
        );
        assert_eq!(mount_of(&json, "/dev/shm")["options"][0], "size=2m");
        // Generated /etc files turn read-only, volumes (rbind) keep theirs.
        assert_eq!(
            mount_of(&json, "/etc/hostname")["options"],
            serde_json::json!(["bind", "rprivate", "ro", "nosuid", "noexec", "nodev"])
        );
        assert_eq!(
            mount_of(&json, "/etc/hosts")["options"],
            serde_json::json!(["rbind"])
        );
        let caps = &json["process"]["capabilities"];
        let has = |set: &str, c: &str| caps[set].as_array().unwrap().iter().any(|x| x == c);
        assert!(has("bounding", "CAP_SYS_ADMIN") && has("effective", "CAP_SYS_ADMIN"));
        assert!(!has("bounding", "CAP_CHOWN") && !has("effective", "CAP_CHOWN"));
        assert!(caps["ambient"].as_array().unwrap().is_empty());

        // A non-root user gets only the added capabilities, in every set.
        o.user.uid = 1000;
        o.flags.read_only_tmpfs = false;
        let json = serde_json::to_value(build(&o).unwrap()).unwrap();
        let caps = &json["process"]["capabilities"];
        for set in ["effective", "permitted", "inheritable", "ambient"] {
            assert_eq!(caps[set], serde_json::json!(["CAP_SYS_ADMIN"]), "{set}");
        }
        assert_eq!(caps["bounding"].as_array().unwrap().len(), 11);
        assert!(json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["destination"] != "/run"));
    }

    #[test]
    fn console_size_only_for_a_sized_terminal() {
        let json = |terminal, console_size| {
            let mut o = opts();
            o.terminal = terminal;
            o.console_size = console_size;
            serde_json::to_value(build(&o).unwrap()).unwrap()["process"].clone()
        };
        assert_eq!(
            json(true, Some((37, 111)))["consoleSize"],
            serde_json::json!({"height": 37, "width": 111})
        );
        assert!(json(true, None).get("consoleSize").is_none());
        assert!(json(true, Some((0, 0))).get("consoleSize").is_none());
        assert!(json(false, Some((37, 111))).get("consoleSize").is_none());
    }

    #[test]
    fn commands_follow_podman() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            command(None, &s(&["/ep"]), &s(&["a"]), &[]).unwrap(),
            s(&["/ep", "a"])
        );
        assert_eq!(
            command(None, &s(&["/ep"]), &s(&["a"]), &s(&["b"])).unwrap(),
            s(&["/ep", "b"])
        );
        assert_eq!(
            command(Some("/x"), &s(&["/ep"]), &s(&["a"]), &[]).unwrap(),
            s(&["/x"])
        );
        assert_eq!(
            command(Some("[\"/x\",\"-c\"]"), &[], &s(&["a"]), &s(&["y"])).unwrap(),
            s(&["/x", "-c", "y"])
        );
        assert_eq!(command(None, &[], &[], &[]).unwrap_err().exit_code(), 125);
        assert!(command(Some("[bad"), &[], &[], &[]).is_err());
    }

    #[test]
    fn environment_precedence() {
        let env = environment(
            &["PATH=/img".into(), "A=1".into()],
            &["A=2".into(), "B".into(), "C".into()],
            |k| (k == "B").then(|| "host".to_string()),
            true,
            "h",
            "/root",
        );
        assert_eq!(
            env,
            [
                "PATH=/img",
                "container=vigil",
                "A=2",
                "B=host",
                "TERM=xterm",
                "HOSTNAME=h",
                "HOME=/root"
            ]
        );
    }

    #[test]
    fn users_resolve_from_the_container_files() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n";
        let group = "root:x:0:\napp:x:1001:\nwheel:x:10:app,other\n";
        assert_eq!(
            resolve_user("", passwd, group).unwrap(),
            User {
                uid: 0,
                gid: 0,
                additional_gids: vec![0],
                home: "/root".into()
            }
        );
        assert_eq!(
            resolve_user("app", passwd, group).unwrap(),
            User {
                uid: 1000,
                gid: 1001,
                additional_gids: vec![1001, 10],
                home: "/home/app".into()
            }
        );
        assert_eq!(resolve_user("1000:wheel", passwd, group).unwrap().gid, 10);
        assert_eq!(
            resolve_user("4242:7", passwd, group).unwrap(),
            User {
                uid: 4242,
                gid: 7,
                additional_gids: vec![7],
                home: "/".into()
            }
        );
        assert!(resolve_user("nobody", passwd, group).is_err());
        assert!(resolve_user("app:nogroup", passwd, group).is_err());
    }

    #[test]
    fn volumes_and_networks_parse() {
        let v = parse_volume("/src:/dst:ro,Z").unwrap();
        assert_eq!(v.options, ["rbind", "ro", "rprivate"]);
        assert!(parse_volume("named:/dst").is_err());
        assert!(parse_volume("/a").is_err());
        assert!(parse_volume("/a:/b:bogus").is_err());
        assert_eq!(Network::parse(Some("host")).unwrap(), Network::Host);
        assert_eq!(Network::parse(None).unwrap(), Network::None);
        assert_eq!(
            Network::parse(Some("ns:/proc/1/ns/net")).unwrap(),
            Network::Path("/proc/1/ns/net".into())
        );
        assert!(Network::parse(Some("slirp4netns")).is_err());
        assert_eq!(rlimit_value(true, Some(1 << 30), 10), RLIMIT_TARGET);
        assert_eq!(rlimit_value(false, None, 20000), 20000);
        assert_eq!(rlimit_value(true, Some(65536), 10), 65536);
    }
}
