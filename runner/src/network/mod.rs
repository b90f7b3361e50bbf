//! Container networking (runner-network.md): the default bridge network and
//! created networks through netavark (vigil's own IPAM and network files),
//! rootless networking through slirp4netns with vigil's port forwarder,
//! rootless bridge networks in one shared namespace per user
//! ([`rootless_netns`]),
//! published ports, and the `/etc/hosts` and `/etc/resolv.conf` contents.
//!
//! `container/` uses three calls: [`configure`] at create (flags -> the
//! [`NetworkConfig`] kept in the record), [`setup`] before the monitor starts
//! (namespace, addresses, ports, helpers -> [`Attached`]), and [`teardown`]
//! whenever the container is cleaned up (idempotent: it undoes whatever
//! [`NetworkState`] says was done, also after a crash half-way).

pub mod bridge_mac;
pub mod config;
pub mod connect;
pub mod error;
pub mod etc_files;
pub mod forwarder;
pub mod helpers;
pub mod ipam;
pub mod lock;
pub mod netavark;
pub mod netns;
pub mod ports;
pub mod rootless_netns;
pub mod slirp;
pub mod spawn;
pub mod subnet;
pub mod subnet6;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use config::{NetworkDef, NetworkStore, DEFAULT_NETWORK};
pub use error::NetworkError;
pub use etc_files::EtcInfo;
pub use ports::PortMapping;

/// How a container is networked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A private namespace with only loopback.
    #[default]
    None,
    /// The host's namespace.
    Host,
    /// Bridge networks through netavark (`networks` names them).
    Bridge,
    /// Rootless-style user-mode networking.
    Slirp4netns,
    /// Join an existing namespace (`ns:PATH`).
    Namespace(PathBuf),
}

impl Mode {
    /// inspect's `HostConfig.NetworkMode`.
    pub fn name(&self) -> String {
        match self {
            Mode::None => "none".into(),
            Mode::Host => "host".into(),
            Mode::Bridge => "bridge".into(),
            Mode::Slirp4netns => "slirp4netns".into(),
            Mode::Namespace(p) => format!("ns:{}", p.display()),
        }
    }
}

/// The network flags of `create`/`run`.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// `--network` values (each may be a comma-separated list).
    pub network: Vec<String>,
    pub publish: Vec<String>,
    pub publish_all: bool,
    pub expose: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub add_host: Vec<String>,
    pub aliases: Vec<String>,
    /// `--ip`: the address on the (single) bridge network.
    pub ip: Option<String>,
    /// `--ip6`: the IPv6 address on the (single) bridge network.
    pub ip6: Option<String>,
    /// `--mac-address`: the MAC address on the (single) bridge network.
    pub mac_address: Option<String>,
}

/// What a container asked for on one network: `--ip`/`--ip6`/`--mac-address`
/// at create, `network connect --ip --ip6 --mac-address --alias`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerNetworkConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<std::net::Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<std::net::Ipv6Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Aliases on this network only (`connect --alias`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// The container's network settings, decided at create (kept in the record).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkConfig {
    pub mode: Mode,
    /// Bridge networks joined, in order (eth0, eth1, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortMapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_hosts: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// By network name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub per_network: BTreeMap<String, PerNetworkConfig>,
}

/// One network the running container is attached to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub ip: String,
    pub prefix: u8,
    pub gateway: String,
    pub mac: String,
    #[serde(default)]
    pub dns_servers: Vec<String>,
    #[serde(default)]
    pub dns_search: Vec<String>,
    /// On a network with an IPv6 subnet: the address, prefix length, gateway.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipv6: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ipv6_prefix: u8,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipv6_gateway: String,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

impl Attachment {
    /// What netavark will report for the addresses (runner-network §1.4),
    /// known before it runs; the MAC address comes with its result. A
    /// network has an IPv4 subnet, an IPv6 one, or both.
    fn planned(
        def: &NetworkDef,
        ip: Option<std::net::Ipv4Addr>,
        ip6: Option<std::net::Ipv6Addr>,
    ) -> Result<Attachment, NetworkError> {
        let mut a = Attachment::default();
        if let (Some(ip), Some((subnet, gw))) = (ip, def.ipv4()?) {
            a.ip = ip.to_string();
            a.prefix = subnet.prefix();
            a.gateway = gw.to_string();
        }
        if let (Some(ip6), Some((subnet6, gw6))) = (ip6, def.ipv6()?) {
            a.ipv6 = ip6.to_string();
            a.ipv6_prefix = subnet6.prefix();
            a.ipv6_gateway = gw6.to_string();
        }
        if def.dns_enabled {
            // aardvark-dns listens on the gateway (the IPv4 one if there is one).
            a.dns_servers = vec![a.main_gateway().to_string()];
            a.dns_search = vec!["dns.podman".to_string()];
        }
        Ok(a)
    }

    /// The address /etc/hosts names the container by: IPv4 if it has one.
    pub fn main_ip(&self) -> &str {
        if self.ip.is_empty() {
            &self.ipv6
        } else {
            &self.ip
        }
    }

    /// The gateway of [`Attachment::main_ip`].
    pub fn main_gateway(&self) -> &str {
        if self.gateway.is_empty() {
            &self.ipv6_gateway
        } else {
            &self.gateway
        }
    }
}

/// What is set up for a container right now (in its record), so teardown
/// can undo exactly that.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<PathBuf>,
    /// The options netavark was (or was about to be) given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netavark: Option<netavark::Options>,
    /// By network name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attachments: BTreeMap<String, Attachment>,
    /// slirp4netns and the port forwarder: (pid, start time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub helpers: Vec<(i32, Option<u64>)>,
}

impl NetworkState {
    pub fn is_empty(&self) -> bool {
        *self == NetworkState::default()
    }
}

/// Where the network files live and how to run the helpers.
#[derive(Clone, Debug)]
pub struct NetEnv {
    pub store: NetworkStore,
    /// IPAM file, lock, netavark's `--config` (aardvark-dns files).
    pub run_dir: PathBuf,
    pub netns_dir: PathBuf,
    pub helper_dirs: Vec<PathBuf>,
    pub search_path: Option<OsString>,
    pub rootless: bool,
    pub debug: bool,
    /// The vigil binary and global flags, to start the port forwarder.
    pub forwarder_command: Vec<OsString>,
}

impl NetEnv {
    fn lock(&self) -> Result<lock::FileLock, NetworkError> {
        lock::FileLock::exclusive(&self.run_dir.join("network.lock"))
    }

    fn ipam(&self) -> ipam::Ipam {
        ipam::Ipam {
            path: self.run_dir.join("ipam.json"),
        }
    }

    fn netavark(&self, dns: bool) -> Result<netavark::Netavark, NetworkError> {
        let binary = helpers::find_helper(
            &self.helper_dirs,
            "netavark",
            "netavark",
            "bridge networks need it",
        )?;
        let aardvark = if dns {
            Some(helpers::find_helper(
                &self.helper_dirs,
                "aardvark-dns",
                "aardvark-dns",
                "DNS on networks needs it; or create the network with --disable-dns",
            )?)
        } else {
            helpers::find_helper(&self.helper_dirs, "aardvark-dns", "aardvark-dns", "").ok()
        };
        let path = helpers::netavark_path(
            self.search_path.as_ref(),
            &self.run_dir.join("bin"),
            self.rootless,
        );
        if helpers::find_on_path(&path, "iptables").is_none() {
            return Err(NetworkError::NotFound(
                "iptables not found: install the iptables package (netavark sets up bridge \
                 networks with it)"
                    .into(),
            ));
        }
        // Rootless: netavark works inside the user's shared namespace,
        // with its own aardvark-dns files.
        let (config_dir, host_netns) = if self.rootless {
            let shared = rootless_netns::RootlessNetns::of(self);
            (shared.netavark_config(), Some(shared.netns))
        } else {
            (self.run_dir.join("netavark"), None)
        };
        Ok(netavark::Netavark {
            binary,
            aardvark,
            config_dir,
            rootless: self.rootless,
            path,
            debug: self.debug,
            host_netns,
        })
    }
}

/// A DNS name: labels of letters, digits and '-' (not at either end).
pub fn valid_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Decide the container's network settings from its flags (at create).
/// `name` is the container's name when the user chose it ("" otherwise):
/// on a network with DNS it must be a DNS name.
pub fn configure(
    env: &NetEnv,
    req: &Request,
    image_exposed: &[String],
    name: &str,
) -> Result<NetworkConfig, NetworkError> {
    let values: Vec<String> = req
        .network
        .iter()
        .flat_map(|v| v.split(',').map(str::to_string))
        .filter(|v| !v.is_empty())
        .collect();
    let mut cfg = NetworkConfig::default();
    let default_mode = if env.rootless {
        Mode::Slirp4netns
    } else {
        Mode::Bridge
    };
    match values.as_slice() {
        [] => cfg.mode = default_mode,
        [one] => match one.as_str() {
            "none" => cfg.mode = Mode::None,
            "host" => cfg.mode = Mode::Host,
            "private" | "bridge" => cfg.mode = default_mode,
            "slirp4netns" => cfg.mode = Mode::Slirp4netns,
            v if v.starts_with("ns:") => {
                let p = &v[3..];
                if !p.starts_with('/') {
                    return Err(NetworkError::Config(format!(
                        "--network {v}: the namespace path must be absolute"
                    )));
                }
                if env.rootless {
                    return Err(NetworkError::Config(format!(
                        "--network {v}: a rootless container cannot join a network namespace \
                         it does not own; use --network none or host"
                    )));
                }
                cfg.mode = Mode::Namespace(p.into());
            }
            _ => {
                cfg.mode = Mode::Bridge;
                cfg.networks.push(one.clone());
            }
        },
        many => {
            for v in many {
                if ["none", "host", "private", "bridge", "slirp4netns"].contains(&v.as_str())
                    || v.starts_with("ns:")
                {
                    return Err(NetworkError::Config(format!(
                        "--network {v} cannot be combined with other networks"
                    )));
                }
            }
            cfg.mode = Mode::Bridge;
            cfg.networks = many.to_vec();
        }
    }
    if cfg.mode == Mode::Bridge {
        if cfg.networks.is_empty() {
            cfg.networks.push(DEFAULT_NETWORK.into());
        }
        let mut seen = Vec::new();
        for n in &cfg.networks {
            let def = env.store.get(n)?;
            if seen.contains(&def.name) {
                return Err(NetworkError::Config(format!("network {n} given twice")));
            }
            if def.dns_enabled {
                let names = std::iter::once(name).filter(|n| !n.is_empty());
                for dns_name in names.chain(req.aliases.iter().map(String::as_str)) {
                    if !valid_dns_name(dns_name) {
                        return Err(NetworkError::Config(format!(
                            "{dns_name:?} is not a valid DNS name, and network {} has DNS \
                             enabled: use letters, digits and '-' (or a network created with \
                             --disable-dns)",
                            def.name
                        )));
                    }
                }
            }
            seen.push(def.name);
        }
        cfg.networks = seen;
        cfg.aliases = req.aliases.clone();
    } else if !req.aliases.is_empty() {
        return Err(NetworkError::Config(
            "--network-alias needs a bridge network".into(),
        ));
    }
    let ip = req.ip.as_deref().map(parse_static_ip).transpose()?;
    let ip6 = req.ip6.as_deref().map(parse_static_ip6).transpose()?;
    let mac = req.mac_address.as_deref().map(parse_mac).transpose()?;
    for (flag, given) in [
        ("--ip", ip.is_some()),
        ("--ip6", ip6.is_some()),
        ("--mac-address", mac.is_some()),
    ] {
        if !given {
            continue;
        }
        if cfg.mode != Mode::Bridge {
            return Err(NetworkError::Config(format!(
                "{flag} can only be set when the network mode is bridge: invalid argument"
            )));
        }
        if cfg.networks.len() > 1 {
            return Err(NetworkError::Config(format!(
                "{flag} can only be set for a single network: invalid argument"
            )));
        }
    }
    if ip.is_some() || ip6.is_some() || mac.is_some() {
        cfg.per_network.insert(
            cfg.networks[0].clone(),
            PerNetworkConfig {
                ip,
                ip6,
                mac,
                aliases: Vec::new(),
            },
        );
    }
    for p in &req.publish {
        cfg.ports.extend(ports::parse_publish(p)?);
    }
    if req.publish_all {
        let mut exposed = image_exposed.to_vec();
        exposed.extend(req.expose.iter().cloned());
        ports::publish_exposed(&exposed, &mut cfg.ports)?;
    }
    if !cfg.ports.is_empty() && matches!(cfg.mode, Mode::None | Mode::Host | Mode::Namespace(_)) {
        eprintln!(
            "Port mappings have been discarded as one of the Host, Container, Pod, and None \
             network modes are in use"
        );
        cfg.ports.clear();
    }
    ports::assign_random_ports(&mut cfg.ports)?;
    for d in &req.dns {
        if d.parse::<std::net::IpAddr>().is_err() {
            return Err(NetworkError::Config(format!(
                "invalid --dns {d:?}: not an IP address"
            )));
        }
    }
    cfg.dns = req.dns.clone();
    cfg.dns_search = req.dns_search.clone();
    cfg.add_hosts = req
        .add_host
        .iter()
        .map(|h| etc_files::parse_add_host(h).map_err(NetworkError::Config))
        .collect::<Result<_, _>>()?;
    Ok(cfg)
}

/// An `--ip` value (IPv4: vigil's networks have no IPv6 addresses to give).
pub fn parse_static_ip(value: &str) -> Result<std::net::Ipv4Addr, NetworkError> {
    match value.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => Ok(ip),
        Ok(std::net::IpAddr::V6(_)) => Err(NetworkError::Config(format!(
            "--ip {value}: an IPv4 address is needed here"
        ))),
        Err(_) => Err(NetworkError::Config(format!(
            "{value:?} is not an ip address"
        ))),
    }
}

/// An `--ip6` value (`flag` names it in errors): an IPv6 address; an IPv4
/// one is refused here, where Podman 4.3.1 passes it on to fail in IPAM
/// as "not in any subnet".
pub fn parse_static_ip6(value: &str) -> Result<std::net::Ipv6Addr, NetworkError> {
    match value.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(ip)) => Ok(ip),
        Ok(std::net::IpAddr::V4(_)) => Err(NetworkError::Config(format!(
            "--ip6 {value}: an IPv6 address is needed here"
        ))),
        Err(_) => Err(NetworkError::Config(format!(
            "{value:?} is not an ip address"
        ))),
    }
}

/// A `--mac-address` value: six hex octets, unicast, written lower-case.
pub fn parse_mac(value: &str) -> Result<String, NetworkError> {
    let octets: Vec<&str> = value.split([':', '-']).collect();
    let bytes: Option<Vec<u8>> = octets
        .iter()
        .map(|o| {
            (o.len() == 2)
                .then(|| u8::from_str_radix(o, 16).ok())
                .flatten()
        })
        .collect();
    match bytes {
        Some(b) if b.len() == 6 && b[0] & 1 == 0 => Ok(value.replace('-', ":").to_lowercase()),
        Some(b) if b.len() == 6 => Err(NetworkError::Config(format!(
            "address {value}: a multicast MAC address cannot be a container's"
        ))),
        _ => Err(NetworkError::Config(format!(
            "address {value}: invalid MAC address"
        ))),
    }
}

/// The container a setup is for.
pub struct Container<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// Its state directory (logs of helpers).
    pub dir: &'a Path,
}

/// The result of [`setup`].
#[derive(Debug, Default)]
pub struct Attached {
    /// The namespace the runtime joins (None: see the mode).
    pub netns: Option<PathBuf>,
    /// Given to the monitor, which holds them while the container lives:
    /// host port reservations, the helpers' exit pipe.
    pub monitor_fds: Vec<OwnedFd>,
    /// For the /etc files.
    pub etc: EtcInfo,
    /// netavark's setup, still running: [`finish`] it before the start.
    pub pending: Option<PendingSetup>,
}

/// Set up the container's network. `state` is saved through `persist` at
/// each step that creates something, so a crash leaves enough for
/// [`teardown`]. On error everything done is undone.
pub fn setup(
    env: &NetEnv,
    ctr: &Container<'_>,
    cfg: &NetworkConfig,
    state: &mut NetworkState,
    persist: &mut dyn FnMut(&NetworkState) -> Result<(), NetworkError>,
) -> Result<Attached, NetworkError> {
    let mut etc = EtcInfo {
        dns: cfg.dns.clone(),
        dns_search: cfg.dns_search.clone(),
        add_hosts: cfg.add_hosts.clone(),
        ..Default::default()
    };
    match &cfg.mode {
        Mode::None => {
            etc.host_gateway = slirp::host_address();
            return Ok(Attached {
                etc,
                ..Default::default()
            });
        }
        Mode::Host => {
            etc.host_network = true;
            etc.host_gateway = slirp::host_address();
            return Ok(Attached {
                etc,
                ..Default::default()
            });
        }
        Mode::Namespace(p) => {
            return Ok(Attached {
                netns: Some(p.clone()),
                etc,
                ..Default::default()
            })
        }
        Mode::Bridge | Mode::Slirp4netns => {}
    }
    // Whatever an earlier, interrupted start left.
    teardown(env, ctr.id, state);
    let result = (|| {
        let path = netns::new_path(&env.netns_dir)?;
        state.netns = Some(path.clone());
        persist(state)?;
        netns::create(&path)?;
        let mut attached = if cfg.mode == Mode::Bridge {
            bridge_setup(env, ctr, cfg, &path, state, persist)?
        } else {
            slirp::setup(env, ctr, cfg, &path, state, persist)?
        };
        attached.netns = Some(path);
        attached.etc.dns = cfg.dns.clone();
        attached.etc.dns_search = cfg.dns_search.clone();
        attached.etc.add_hosts = cfg.add_hosts.clone();
        Ok(attached)
    })();
    if result.is_err() {
        teardown(env, ctr.id, state);
        let _ = persist(state);
    }
    result
}

fn bridge_setup(
    env: &NetEnv,
    ctr: &Container<'_>,
    cfg: &NetworkConfig,
    netns_path: &Path,
    state: &mut NetworkState,
    persist: &mut dyn FnMut(&NetworkState) -> Result<(), NetworkError>,
) -> Result<Attached, NetworkError> {
    let defs: Vec<NetworkDef> = cfg
        .networks
        .iter()
        .map(|n| env.store.get(n))
        .collect::<Result<_, _>>()?;
    if defs.is_empty() {
        // Disconnected from every network: loopback only, as Podman.
        return Ok(Attached::default());
    }
    let driver = env.netavark(defs.iter().any(|d| d.dns_enabled))?;
    // Hold the host ports, so nobody else takes them while the container
    // lives (the monitor keeps these sockets; traffic goes through DNAT).
    // Bound first: a taken port fails before anything else is made.
    // The container's address on its first network is IPv4 unless that
    // network is IPv6-only.
    // Rootless: every port goes through the forwarder, which connects to
    // the container's bridge address from inside the shared namespace.
    let has_ipv4 = defs[0].ipv4()?.is_some();
    let kernel_ports = if env.rootless {
        Vec::new()
    } else {
        ports::for_netavark(&cfg.ports, has_ipv4)
    };
    let mut monitor_fds = reserve_ports(&kernel_ports)?;
    let user_space: Vec<PortMapping> = cfg
        .ports
        .iter()
        .filter(|m| env.rootless || ports::forwarded_in_user_space(m, has_ipv4))
        .cloned()
        .collect();
    let forwarded = bind_forwarded(&user_space, env.rootless)?;
    let lock = env.lock()?;
    let shared_netns = if env.rootless {
        let shared = rootless_netns::RootlessNetns::of(env);
        shared.ensure(env)?;
        Some(shared.netns)
    } else {
        None
    };
    let ipam = env.ipam();
    let mut opts = netavark::Options {
        container_id: ctr.id.into(),
        container_name: ctr.name.into(),
        port_mappings: kernel_ports,
        networks: BTreeMap::new(),
        network_info: BTreeMap::new(),
        dns_servers: Vec::new(),
    };
    let short = &ctr.id[..ctr.id.len().min(12)];
    let mut etc = EtcInfo::default();
    for (i, def) in defs.iter().enumerate() {
        let wanted = cfg.per_network.get(&def.name).cloned().unwrap_or_default();
        let ip = ipam.allocate(def, ctr.id, wanted.ip)?;
        let ip6 = ipam.allocate6(def, ctr.id, wanted.ip6)?;
        let mut aliases = cfg.aliases.clone();
        aliases.extend(wanted.aliases.iter().cloned());
        aliases.push(short.to_string());
        let nv = def.netavark_name();
        opts.networks.insert(
            nv.clone(),
            netavark::PerNetwork {
                static_ips: ip
                    .map(|a| a.to_string())
                    .into_iter()
                    .chain(ip6.map(|a| a.to_string()))
                    .collect(),
                aliases,
                interface_name: format!("eth{i}"),
                static_mac: wanted.mac.clone(),
            },
        );
        opts.network_info.insert(nv, def.for_netavark());
        if def.dns_enabled {
            opts.dns_servers = cfg.dns.clone();
        }
        // Known now, so the /etc files are written while netavark works;
        // the MAC address comes with its result ([`finish`]).
        let a = Attachment::planned(def, ip, ip6)?;
        if i == 0 {
            etc.address = Some(a.main_ip().to_string());
            etc.host_gateway = Some(a.main_gateway().to_string());
        } else {
            etc.more_addresses.push(a.main_ip().to_string());
        }
        etc.network_dns.extend(a.dns_servers.iter().cloned());
        etc.network_search.extend(a.dns_search.iter().cloned());
        state.attachments.insert(def.name.clone(), a);
    }
    if env.rootless {
        // The gateway is inside the shared namespace: the host is reached
        // at its own address, through slirp4netns (as rootless Podman).
        etc.host_gateway = slirp::host_address();
    }
    state.netavark = Some(opts.clone());
    persist(state)?;
    if !forwarded.is_empty() {
        // To the container's first address, inside its namespace; it
        // serves connections once netavark has set the address up.
        let child_ip = etc.address.clone().unwrap_or_default();
        let (exit_r, exit_w) = spawn::pipe()?;
        let forward_from = shared_netns.as_deref().unwrap_or(netns_path);
        spawn::start_forwarder(
            env,
            ctr,
            forward_from,
            &child_ip,
            forwarded,
            &exit_r,
            state,
            persist,
        )?;
        monitor_fds.push(exit_w);
    }
    std::fs::create_dir_all(&driver.config_dir)
        .map_err(|e| NetworkError::io(format!("creating {}", driver.config_dir.display()), e))?;
    // netavark runs (under the network lock) while the runtime creates the
    // container in the same namespace: it only has to be done before start.
    let ns = netns_path.to_path_buf();
    let names: Vec<(String, String)> = defs
        .iter()
        .map(|d| (d.name.clone(), d.netavark_name()))
        .collect();
    let handle = std::thread::spawn(move || {
        let _lock = lock;
        driver.setup(&ns, &opts)
    });
    Ok(Attached {
        netns: None,
        monitor_fds,
        etc,
        pending: Some(PendingSetup { handle, names }),
    })
}

/// A `netavark setup` still running (see [`finish`]).
#[derive(Debug)]
pub struct PendingSetup {
    handle: std::thread::JoinHandle<Result<BTreeMap<String, netavark::StatusBlock>, NetworkError>>,
    /// (network name, netavark's name), in interface order.
    names: Vec<(String, String)>,
}

/// Wait for netavark's setup and record what it reported (MAC addresses).
/// On failure netavark has rolled back: only the caller's [`teardown`]
/// (namespace, addresses) remains to be done.
pub fn finish(pending: PendingSetup, state: &mut NetworkState) -> Result<(), NetworkError> {
    let status = pending
        .handle
        .join()
        .unwrap_or_else(|_| Err(NetworkError::Start("netavark setup thread panicked".into())))
        .inspect_err(|_| state.netavark = None)?;
    for (i, (name, nv)) in pending.names.iter().enumerate() {
        let iface = status
            .get(nv)
            .and_then(|b| b.interfaces.get(&format!("eth{i}")))
            .cloned()
            .unwrap_or_default();
        if let Some(a) = state.attachments.get_mut(name) {
            a.mac = iface.mac_address;
            for (ip, prefix) in iface.subnets.iter().filter_map(|s| s.ipnet.split_once('/')) {
                if ip.contains(':') {
                    a.ipv6 = ip.to_string();
                    a.ipv6_prefix = prefix.parse().unwrap_or(a.ipv6_prefix);
                } else {
                    a.ip = ip.to_string();
                    a.prefix = prefix.parse().unwrap_or(a.prefix);
                }
            }
        }
    }
    Ok(())
}

/// Bind every published host port (TCP listen, UDP bind), with Podman's
/// message when one is taken.
fn reserve_ports(mappings: &[PortMapping]) -> Result<Vec<OwnedFd>, NetworkError> {
    let mut fds = Vec::new();
    for (_, proto, ip, port) in ports::expanded(mappings) {
        let fd = match proto {
            "tcp" => forwarder::listen_tcp(ip, port).map(OwnedFd::from),
            "udp" => forwarder::bind_udp(ip, port).map(OwnedFd::from),
            _ => continue,
        };
        let fd = fd.map_err(|e| {
            let shown = if ip.is_empty() {
                String::new()
            } else {
                ip.to_string()
            };
            NetworkError::Start(format!(
                "cannot listen on the {} port: listen {}4 {shown}:{port}: bind: {}",
                proto.to_uppercase(),
                proto,
                forwarder::go_error_text(&e)
            ))
        })?;
        fds.push(fd);
    }
    Ok(fds)
}

/// Bind the host sockets of the mappings vigil's forwarder serves (see
/// [`ports::forwarded_in_user_space`]), with the address and port named
/// when one is refused.
fn bind_forwarded(
    mappings: &[PortMapping],
    rootless: bool,
) -> Result<Vec<(OwnedFd, u16, forwarder::Proto)>, NetworkError> {
    let mut out = Vec::new();
    for (ctr_port, proto_name, ip, port) in ports::expanded(mappings) {
        let Some(proto) = forwarder::Proto::parse(proto_name) else {
            if rootless {
                return Err(NetworkError::Config(format!(
                    "publishing {proto_name} ports of a rootless container is not supported by \
                     vigil (port {ctr_port}): only tcp and udp are forwarded"
                )));
            }
            return Err(NetworkError::Config(format!(
                "publishing {proto_name} port {ctr_port} on an IPv6 host address or to a \
                 container without an IPv4 address is not supported by vigil: only tcp and udp \
                 are forwarded there"
            )));
        };
        let bound = match proto {
            forwarder::Proto::Tcp => forwarder::listen_tcp(ip, port).map(OwnedFd::from),
            forwarder::Proto::Udp => forwarder::bind_udp(ip, port).map(OwnedFd::from),
        };
        let fd = bound.map_err(|e| {
            if rootless {
                // rootlessport's words, with the privileged-port hint.
                return NetworkError::Start(forwarder::rootless_bind_error(&e, proto, ip, port));
            }
            let (family, shown) = if ip.contains(':') {
                ("6", format!("[{ip}]"))
            } else {
                ("4", ip.to_string())
            };
            NetworkError::Start(format!(
                "cannot listen on the {} port: listen {proto_name}{family} {shown}:{port}: bind: {}",
                proto_name.to_uppercase(),
                forwarder::go_error_text(&e)
            ))
        })?;
        out.push((fd, ctr_port, proto));
    }
    Ok(out)
}

/// Undo whatever `state` says is set up: stop the helpers, netavark
/// teardown, release the addresses, remove the namespace. Never fails:
/// problems are reported and the rest still undone. Leaves `state` empty.
pub fn teardown(env: &NetEnv, id: &str, state: &mut NetworkState) {
    for (pid, start) in state.helpers.drain(..) {
        slirp::stop_helper(pid, start);
    }
    let opts = state.netavark.take();
    if opts.is_some() || state.netns.is_some() {
        // Addresses are released by container id, so also those allocated
        // just before an interrupted setup recorded its options.
        let lock = env.lock();
        if let (Some(ns), Some(opts)) = (state.netns.as_deref(), opts) {
            if ns.exists() {
                let dns = opts.network_info.values().any(|d| d.dns_enabled);
                match env.netavark(dns) {
                    Ok(driver) => {
                        if let Err(e) = driver.teardown(ns, &opts) {
                            log::error!("network teardown of {id}: {e}");
                        }
                    }
                    Err(e) => log::error!("network teardown of {id}: {e}"),
                }
            }
        }
        if env.ipam().path.exists() {
            if let Err(e) = env.ipam().release(id) {
                log::error!("releasing the addresses of {id}: {e}");
            }
        }
        if env.rootless {
            // The last container of the shared namespace takes it along.
            rootless_netns::sweep(env);
        }
        drop(lock);
    }
    if let Some(ns) = state.netns.take() {
        if let Err(e) = netns::remove(&ns) {
            log::error!("removing network namespace of {id}: {e}");
        }
    }
    state.attachments.clear();
}

/// Is network `name` used by an existing container? (addresses held)
pub fn network_users(env: &NetEnv, name: &str) -> Result<Vec<String>, NetworkError> {
    let _lock = env.lock()?;
    env.ipam().holders(name)
}
