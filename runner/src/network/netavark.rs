//! The netavark driver: `netavark --config DIR --rootless=B
//! --aardvark-binary=P setup|teardown NETNS` with the container's network
//! options as JSON on stdin, as Podman 4.3.1 drives it (runner-network §1).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::config::NetworkDef;
use super::error::NetworkError;
use super::ports::PortMapping;

/// One network a container joins (`networks` in the options).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerNetwork {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    pub interface_name: String,
    /// `--mac-address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_mac: Option<String>,
}

/// netavark's stdin (NetworkOptions of netavark 1.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    pub container_id: String,
    pub container_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    pub networks: BTreeMap<String, PerNetwork>,
    pub network_info: BTreeMap<String, NetworkDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_servers: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetAddress {
    pub gateway: Option<String>,
    pub ipnet: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetInterface {
    pub mac_address: String,
    #[serde(default)]
    pub subnets: Vec<NetAddress>,
}

/// What setup reports per network.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusBlock {
    #[serde(default)]
    pub dns_search_domains: Vec<String>,
    #[serde(default)]
    pub dns_server_ips: Vec<String>,
    #[serde(default)]
    pub interfaces: BTreeMap<String, NetInterface>,
}

/// How to run netavark.
#[derive(Clone, Debug)]
pub struct Netavark {
    pub binary: PathBuf,
    pub aardvark: Option<PathBuf>,
    /// netavark's `--config`: aardvark-dns's files and lock.
    pub config_dir: PathBuf,
    pub rootless: bool,
    /// PATH for netavark (see `helpers::netavark_path`).
    pub path: OsString,
    pub debug: bool,
    /// Rootless: the shared namespace netavark runs in (its bridges and
    /// aardvark-dns live there; see `rootless_netns`). None: vigil's own.
    pub host_netns: Option<PathBuf>,
}

impl Netavark {
    fn run(&self, verb: &str, netns: &Path, opts: &Options) -> Result<Vec<u8>, NetworkError> {
        let input = serde_json::to_vec(opts).map_err(|e| NetworkError::Config(e.to_string()))?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--config")
            .arg(&self.config_dir)
            .arg(format!("--rootless={}", self.rootless));
        if let Some(a) = &self.aardvark {
            cmd.arg(format!("--aardvark-binary={}", a.display()));
        }
        cmd.arg(verb)
            .arg(netns)
            .env("PATH", &self.path)
            .env(
                "RUST_LOG",
                if self.debug {
                    "netavark=debug"
                } else {
                    "netavark=warn"
                },
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let _netns = match &self.host_netns {
            Some(ns) => Some(super::rootless_netns::enter_on_spawn(&mut cmd, ns)?),
            None => None,
        };
        let mut child = cmd
            .spawn()
            .map_err(|e| NetworkError::io(format!("running {}", self.binary.display()), e))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(&input);
        }
        let out = child
            .wait_with_output()
            .map_err(|e| NetworkError::io(format!("running {}", self.binary.display()), e))?;
        if !out.stderr.is_empty() && (self.debug || !out.status.success()) {
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
        }
        if out.status.success() {
            return Ok(out.stdout);
        }
        #[derive(Deserialize)]
        struct ErrorLine {
            error: String,
        }
        let message = serde_json::from_slice::<ErrorLine>(&out.stdout)
            .map(|e| e.error)
            .unwrap_or_else(|_| format!(": {}", String::from_utf8_lossy(&out.stdout).trim()));
        let text = format!("netavark: {message}");
        Err(if message.contains("No such file or directory") {
            NetworkError::NotFound(text)
        } else {
            NetworkError::Start(text)
        })
    }

    pub fn setup(
        &self,
        netns: &Path,
        opts: &Options,
    ) -> Result<BTreeMap<String, StatusBlock>, NetworkError> {
        let out = self.run("setup", netns, opts)?;
        // The bridges of the rootless netns are not in vigil's namespace
        // (nor its /sys): left as netavark made them.
        for def in opts.network_info.values() {
            if def.driver == "bridge" && self.host_netns.is_none() {
                super::bridge_mac::pin(&def.network_interface);
            }
        }
        serde_json::from_slice(&out).map_err(|e| {
            NetworkError::Start(format!(
                "netavark: unexpected setup output {:?}: {e}",
                String::from_utf8_lossy(&out)
            ))
        })
    }

    pub fn teardown(&self, netns: &Path, opts: &Options) -> Result<(), NetworkError> {
        self.run("teardown", netns, opts).map(drop)
    }
}
