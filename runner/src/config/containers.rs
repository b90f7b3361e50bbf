//! `containers.conf`: engine defaults shared with Podman.
//!
//! Files, later ones overriding earlier ones key by key:
//! `/usr/share/containers/containers.conf`, `/etc/containers/containers.conf`,
//! `/etc/containers/containers.conf.d/*.conf`, the user's
//! `~/.config/containers/containers.conf` (or `$XDG_CONFIG_HOME/...`) and its
//! `containers.conf.d/*.conf`. `CONTAINERS_CONF=FILE` replaces the whole list
//! with that one file (Podman 4.3). vigil reads the user's file as root too.
//!
//! What vigil uses: `[containers] env, default_ulimits, default_capabilities`,
//! `[engine] runtime, conmon_path, runtimes, helper_binaries_dir`, and `[network]` (typed here for
//! the network code). Podman's other keys are accepted silently; a key
//! neither knows is warned about.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{drop_ins, read_layer, search_path, ConfigError};

/// The variable that replaces the file list.
pub const OVERRIDE_VAR: &str = "CONTAINERS_CONF";
/// The file name looked for in each directory.
pub const FILE_NAME: &str = "containers.conf";

/// One `default_ulimits` entry: `nofile=20000:20000`, `nproc=-1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ulimit {
    /// Lower case without `RLIMIT_`: `nofile`, `nproc`, `core`...
    pub name: String,
    /// `u64::MAX` is unlimited (`-1`).
    pub soft: u64,
    pub hard: u64,
}

/// Resource names `default_ulimits` (and `--ulimit`) accept.
#[rustfmt::skip]
pub const ULIMIT_NAMES: [&str; 16] = [
    "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
    "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
];

impl Ulimit {
    /// Parses `NAME=SOFT[:HARD]` (`-1` or `unlimited`: no limit).
    pub fn parse(text: &str) -> Result<Ulimit, String> {
        let bad = |why: &str| format!("invalid ulimit {text:?}: {why}");
        let (name, limits) = text
            .split_once('=')
            .ok_or_else(|| bad("want NAME=SOFT[:HARD]"))?;
        let name = name.trim().to_ascii_lowercase();
        let name = name.strip_prefix("rlimit_").unwrap_or(&name).to_string();
        if !ULIMIT_NAMES.contains(&name.as_str()) {
            return Err(bad("unknown resource"));
        }
        let value = |v: &str| match v.trim() {
            "-1" | "unlimited" => Ok(u64::MAX),
            n => n
                .parse::<u64>()
                .map_err(|_| bad("limits must be numbers or -1")),
        };
        let (soft, hard) = match limits.split_once(':') {
            Some((s, h)) => (value(s)?, value(h)?),
            None => (value(limits)?, value(limits)?),
        };
        if soft > hard {
            return Err(bad("the soft limit is above the hard limit"));
        }
        Ok(Ulimit { name, soft, hard })
    }

    /// The OCI spec's type name: `RLIMIT_NOFILE`.
    pub fn oci_type(&self) -> String {
        format!("RLIMIT_{}", self.name.to_ascii_uppercase())
    }
}

/// `[containers]` as vigil uses it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainersSection {
    /// Set in every container before the image's and `--env`'s.
    pub env: Vec<String>,
    pub default_ulimits: Vec<Ulimit>,
    /// Replaces the built-in default set; `None`: vigil's (Podman's) default.
    pub default_capabilities: Option<Vec<String>>,
}

/// `[engine]` as vigil uses it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineSection {
    /// Runtime name or path; `None`: runc.
    pub runtime: Option<String>,
    /// Candidate monitor paths; the first existing one is used.
    pub conmon_path: Vec<PathBuf>,
    /// `[engine.runtimes]`: name -> candidate paths.
    pub runtimes: BTreeMap<String, Vec<PathBuf>>,
    /// Where netavark, aardvark-dns and the other helpers are looked for, in
    /// order; empty: Podman's default directories.
    pub helper_binaries_dir: Vec<PathBuf>,
}

/// `default_subnet_pools` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct SubnetPool {
    pub base: String,
    pub size: u8,
}

/// `[network]`, typed for the network code; vigil itself does not use it yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkSection {
    /// `netavark` or `cni`.
    pub network_backend: Option<String>,
    /// Default `podman`.
    pub default_network: Option<String>,
    /// Default `10.88.0.0/16`.
    pub default_subnet: Option<String>,
    pub default_subnet_pools: Vec<SubnetPool>,
    pub network_config_dir: Option<PathBuf>,
    pub netavark_plugin_dirs: Vec<PathBuf>,
    pub cni_plugin_dirs: Vec<PathBuf>,
    pub dns_bind_port: Option<u16>,
}

/// The effective `containers.conf`: every file merged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainersConf {
    pub containers: ContainersSection,
    pub engine: EngineSection,
    pub network: NetworkSection,
    /// The files that were read, in order.
    pub files: Vec<PathBuf>,
}

// ---- one file, as written ---------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct Layer {
    #[serde(default)]
    containers: ContainersLayer,
    #[serde(default)]
    engine: EngineLayer,
    #[serde(default)]
    network: NetworkLayer,
}

#[derive(Debug, Default, Deserialize)]
struct ContainersLayer {
    env: Option<Vec<String>>,
    default_ulimits: Option<Vec<String>>,
    default_capabilities: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
struct EngineLayer {
    runtime: Option<String>,
    conmon_path: Option<Vec<PathBuf>>,
    runtimes: Option<BTreeMap<String, Vec<PathBuf>>>,
    helper_binaries_dir: Option<Vec<PathBuf>>,
}

#[derive(Debug, Default, Deserialize)]
struct NetworkLayer {
    network_backend: Option<String>,
    default_network: Option<String>,
    default_subnet: Option<String>,
    default_subnet_pools: Option<Vec<SubnetPool>>,
    network_config_dir: Option<PathBuf>,
    netavark_plugin_dirs: Option<Vec<PathBuf>>,
    cni_plugin_dirs: Option<Vec<PathBuf>>,
    dns_bind_port: Option<u16>,
}

/// Podman 4.3's `[containers]` keys vigil does not use (no warning for them).
const PODMAN_CONTAINERS_KEYS: &[&str] = &[
    "annotations",
    "apparmor_profile",
    "base_hosts_file",
    "cgroupns",
    "cgroups",
    "default_mounts_file",
    "default_sysctls",
    "devices",
    "dns_options",
    "dns_searches",
    "dns_servers",
    "env_host",
    "host_containers_internal_ip",
    "http_proxy",
    "init",
    "init_path",
    "ipcns",
    "keyring",
    "label",
    "label_users",
    "log_driver",
    "log_size_max",
    "log_tag",
    "mounts",
    "netns",
    "no_hosts",
    "oom_score_adj",
    "pidns",
    "pids_limit",
    "prepare_volume_on_create",
    "privileged",
    "read_only",
    "seccomp_profile",
    "shm_size",
    "tz",
    "umask",
    "userns",
    "userns_size",
    "utsns",
    "volumes",
];

/// Podman 4.3's `[engine]` keys vigil does not use.
const PODMAN_ENGINE_KEYS: &[&str] = &[
    "active_service",
    "add_compression",
    "cgroup_check",
    "cgroup_manager",
    "chown_copied_files",
    "compat_api_enforce_docker_hub",
    "compression_format",
    "compression_level",
    "conmon_env_vars",
    "conmon_rs_path",
    "database_backend",
    "detach_keys",
    "enable_port_reservation",
    "env",
    "events_container_create_inspect_data",
    "events_logfile_max_size",
    "events_logfile_path",
    "events_logger",
    "exit_command_delay",
    "healthcheck_events",
    "hooks_dir",
    "image_build_format",
    "image_copy_tmp_dir",
    "image_default_format",
    "image_default_transport",
    "image_parallel_copies",
    "image_volume_mode",
    "infra_command",
    "infra_image",
    "kube_generate_type",
    "lock_type",
    "machine_enabled",
    "multi_image_archive",
    "namespace",
    "network_cmd_options",
    "network_cmd_path",
    "no_pivot_root",
    "num_locks",
    "platform_to_oci_runtime",
    "pod_exit_policy",
    "pull_policy",
    "remote",
    "remote_uri",
    "remote_identity",
    "retry",
    "retry_delay",
    "runtime_supports_json",
    "runtime_supports_kvm",
    "runtime_supports_nocgroups",
    "service_destinations",
    "service_timeout",
    "ssh_config",
    "static_dir",
    "stop_timeout",
    "tmp_dir",
    "volume_path",
    "volume_plugin_timeout",
    "volume_plugins",
];

/// Podman 4.3's `[network]` keys vigil does not use.
const PODMAN_NETWORK_KEYS: &[&str] = &[
    "default_rootless_network_cmd",
    "firewall_driver",
    "network_cmd_options",
    "pasta_options",
];

/// Podman's tables whose keys vigil accepts without using them.
const PODMAN_TABLES: &[&str] = &["secrets", "machine", "farms", "podmansh"];

/// Every key Podman knows that vigil does not use, as `section.key` paths.
fn podman_keys() -> Vec<String> {
    let mut keys: Vec<String> = PODMAN_TABLES.iter().map(|t| t.to_string()).collect();
    for (section, names) in [
        ("containers", PODMAN_CONTAINERS_KEYS),
        ("engine", PODMAN_ENGINE_KEYS),
        ("network", PODMAN_NETWORK_KEYS),
    ] {
        keys.extend(names.iter().map(|k| format!("{section}.{k}")));
    }
    keys
}

impl ContainersConf {
    /// Every file of the search path (see the module comment), merged.
    pub fn load<E, W>(env: &E, warn: &mut W) -> Result<ContainersConf, ConfigError>
    where
        E: Fn(&str) -> Option<OsString>,
        W: FnMut(String),
    {
        let mut files = Vec::new();
        let overridden = env(OVERRIDE_VAR).is_some_and(|v| !v.is_empty());
        for file in search_path(FILE_NAME, OVERRIDE_VAR, env) {
            let drop_in_dir = file.with_extension("conf.d");
            files.push(file);
            if !overridden {
                files.extend(drop_ins(&drop_in_dir));
            }
        }
        Self::load_files(&files, warn)
    }

    /// `files` in order, later keys overriding earlier ones; missing files
    /// are skipped.
    pub fn load_files<W>(files: &[PathBuf], warn: &mut W) -> Result<ContainersConf, ConfigError>
    where
        W: FnMut(String),
    {
        let quiet_keys = podman_keys();
        let quiet: Vec<&str> = quiet_keys.iter().map(String::as_str).collect();
        let mut conf = ContainersConf::default();
        for file in files {
            if let Some(layer) = read_layer::<Layer, W>(file, &quiet, warn)? {
                conf.apply(file, layer)?;
                conf.files.push(file.clone());
            }
        }
        Ok(conf)
    }

    fn apply(&mut self, file: &Path, layer: Layer) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError {
            file: file.to_path_buf(),
            reason: message,
        };
        let c = layer.containers;
        if let Some(env) = c.env {
            if let Some(bad) = env
                .iter()
                .find(|e| e.split('=').next().unwrap_or("").is_empty())
            {
                return Err(invalid(format!("containers.env: invalid variable {bad:?}")));
            }
            self.containers.env = env;
        }
        if let Some(limits) = c.default_ulimits {
            self.containers.default_ulimits = limits
                .iter()
                .map(|l| {
                    Ulimit::parse(l)
                        .map_err(|e| invalid(format!("containers.default_ulimits: {e}")))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(caps) = c.default_capabilities {
            self.containers.default_capabilities = Some(caps);
        }

        let e = layer.engine;
        if let Some(runtime) = e.runtime.filter(|r| !r.is_empty()) {
            self.engine.runtime = Some(runtime);
        }
        if let Some(paths) = e.conmon_path {
            self.engine.conmon_path = paths;
        }
        if let Some(dirs) = e.helper_binaries_dir {
            self.engine.helper_binaries_dir = dirs;
        }
        for (name, paths) in e.runtimes.unwrap_or_default() {
            self.engine.runtimes.insert(name, paths);
        }

        let n = layer.network;
        let net = &mut self.network;
        macro_rules! take {
            ($($field:ident),*) => {$(
                if let Some(v) = n.$field { net.$field = v.into(); }
            )*};
        }
        take!(default_subnet_pools, netavark_plugin_dirs, cni_plugin_dirs);
        macro_rules! take_opt {
            ($($field:ident),*) => {$(
                if n.$field.is_some() { net.$field = n.$field; }
            )*};
        }
        take_opt!(
            network_backend,
            default_network,
            default_subnet,
            network_config_dir,
            dns_bind_port
        );
        Ok(())
    }

    /// The runtime to use: `--runtime` if given, else `[engine] runtime`,
    /// else runc; a name listed in `[engine.runtimes]` becomes the first of
    /// its paths that exists (else the name is looked up on PATH).
    pub fn runtime_for(&self, flag: Option<&Path>) -> PathBuf {
        let chosen = match flag {
            Some(p) => p.to_path_buf(),
            None => PathBuf::from(self.engine.runtime.as_deref().unwrap_or("runc")),
        };
        let name = chosen.to_string_lossy();
        match self.engine.runtimes.get(name.as_ref()) {
            Some(paths) => paths
                .iter()
                .find(|p| p.is_file())
                .cloned()
                .unwrap_or(chosen),
            None => chosen,
        }
    }

    /// The first `conmon_path` entry that exists.
    pub fn conmon(&self) -> Option<PathBuf> {
        self.engine
            .conmon_path
            .iter()
            .find(|p| p.is_file())
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn later_files_override_key_by_key() {
        let d = tempfile::tempdir().unwrap();
        let system = write(
            d.path(),
            "system.conf",
            "[containers]\nenv = [\"A=1\"]\ndefault_ulimits = [\"nofile=20000:20000\"]\n\
             default_sysctls = []\n[engine]\nruntime = \"crun\"\n\
             helper_binaries_dir = [\"/opt/podman-helpers\", \"/usr/lib/podman\"]\n\
             [engine.runtimes]\ncrun = [\"/nonexistent/crun\"]\n[secrets]\n[machine]\n",
        );
        let user = write(
            d.path(),
            "user.conf",
            "[engine]\nruntime = \"runc\"\nconmon_path = [\"/nope\", \"/bin/sh\"]\n\
             [network]\ndefault_subnet = \"10.99.0.0/16\"\n\
             default_subnet_pools = [{base = \"10.100.0.0/16\", size = 24}]\n",
        );
        let mut warnings = Vec::new();
        let conf = ContainersConf::load_files(
            &[system.clone(), d.path().join("missing.conf"), user.clone()],
            &mut |w| warnings.push(w),
        )
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(conf.files, [system, user]);
        assert_eq!(conf.containers.env, ["A=1"]);
        assert_eq!(
            conf.containers.default_ulimits,
            [Ulimit {
                name: "nofile".into(),
                soft: 20000,
                hard: 20000
            }]
        );
        assert_eq!(conf.engine.runtime.as_deref(), Some("runc"));
        assert_eq!(conf.runtime_for(None), Path::new("runc"));
        // A listed runtime whose paths are all missing stays a name for PATH.
        assert_eq!(conf.runtime_for(Some(Path::new("crun"))), Path::new("crun"));
        assert_eq!(conf.conmon(), Some(PathBuf::from("/bin/sh")));
        assert_eq!(
            conf.engine.helper_binaries_dir,
            [
                Path::new("/opt/podman-helpers"),
                Path::new("/usr/lib/podman")
            ]
        );
        assert_eq!(conf.network.default_subnet.as_deref(), Some("10.99.0.0/16"));
        assert_eq!(conf.network.default_subnet_pools[0].size, 24);
    }

    #[test]
    fn unknown_keys_warn_and_bad_values_name_the_file() {
        let d = tempfile::tempdir().unwrap();
        let f = write(
            d.path(),
            "c.conf",
            "[engine]\nruntme = \"runc\"\ntmp_dir = \"/t\"\n[bogus]\nx = 1\n",
        );
        let mut warnings = Vec::new();
        ContainersConf::load_files(std::slice::from_ref(&f), &mut |w| warnings.push(w)).unwrap();
        assert_eq!(
            warnings,
            [
                format!("{}: unknown key \"bogus\" ignored", f.display()),
                format!("{}: unknown key \"engine.runtme\" ignored", f.display()),
            ]
        );

        let f = write(d.path(), "c.conf", "[engine]\n\nruntime = 5\n");
        let err = ContainersConf::load_files(std::slice::from_ref(&f), &mut |_| {}).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{}: line 3:", f.display())),
            "{err}"
        );

        let f = write(
            d.path(),
            "c.conf",
            "[containers]\ndefault_ulimits = [\"nofile=x\"]\n",
        );
        let err = ContainersConf::load_files(&[f], &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("nofile=x"), "{err}");
    }

    #[test]
    fn ulimits_parse() {
        assert_eq!(
            Ulimit::parse("nproc=-1").unwrap(),
            Ulimit {
                name: "nproc".into(),
                soft: u64::MAX,
                hard: u64::MAX
            }
        );
        assert_eq!(
            Ulimit::parse("core=0:10").unwrap().oci_type(),
            "RLIMIT_CORE"
        );
        for bad in ["nofile", "bogus=1", "nofile=2:1", "nofile=a:b"] {
            assert!(Ulimit::parse(bad).is_err(), "{bad}");
        }
    }
}
