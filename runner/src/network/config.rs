//! Network definitions: the default network, created networks in vigil's own
//! directory (`<dir>/<name>.json`, the format of Podman's network files,
//! runner-network §2.1), and the choice of subnets and bridge names that
//! collide with nothing: not with each other, not with Podman's networks
//! (its default 10.88.0.0/16, its files), not with the host's routes.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::NetworkError;
use super::lock::FileLock;
use super::subnet::{self, Ipv4Net};
use super::subnet6::Ipv6Net;

/// The network a container joins when `--network` does not say.
pub const DEFAULT_NETWORK: &str = "vigil";
/// Its bridge and subnet: outside Podman's default (10.88.0.0/16) and its
/// subnet pools (10.89.0.0/16 and up).
pub const DEFAULT_INTERFACE: &str = "vigil0";
pub const DEFAULT_SUBNET: &str = "10.77.0.0/16";
/// Created networks take the next free /24 from here (10.78.0.0/24, ...).
pub const POOL: &str = "10.78.0.0/15";
/// Podman's default network and subnet pools (containers.conf defaults),
/// never chosen for a vigil network.
pub const PODMAN_RESERVED: &[&str] = &["10.88.0.0/16", "10.89.0.0/16"];
/// Bridge names of created networks: `vigil1`, `vigil2`, ...
pub const BRIDGE_PREFIX: &str = "vigil";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetDef {
    pub subnet: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamOptions {
    pub driver: String,
}

/// A network, as in the file and as netavark takes it in `network_info`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDef {
    pub name: String,
    pub id: String,
    pub driver: String,
    pub network_interface: String,
    pub created: String,
    pub subnets: Vec<SubnetDef>,
    pub ipv6_enabled: bool,
    pub internal: bool,
    pub dns_enabled: bool,
    /// `network create --label` (Podman's `labels`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, String>>,
    pub ipam_options: IpamOptions,
}

impl NetworkDef {
    /// The first IPv6 subnet and its gateway, if the network has one.
    pub fn ipv6(&self) -> Result<Option<(Ipv6Net, Ipv6Addr)>, NetworkError> {
        let Some(s) = self.subnets.iter().find(|s| s.subnet.contains(':')) else {
            return Ok(None);
        };
        let net: Ipv6Net = s.subnet.parse().map_err(NetworkError::Config)?;
        let gw = match &s.gateway {
            Some(g) => g.parse().map_err(|_| {
                NetworkError::Config(format!("network {}: invalid gateway {g:?}", self.name))
            })?,
            None => net.nth(1).unwrap_or(net.network()),
        };
        Ok(Some((net, gw)))
    }

    /// The first IPv4 subnet and its gateway (None: an IPv6-only network).
    pub fn ipv4(&self) -> Result<Option<(Ipv4Net, Ipv4Addr)>, NetworkError> {
        let Some(s) = self.subnets.iter().find(|s| !s.subnet.contains(':')) else {
            return Ok(None);
        };
        let net: Ipv4Net = s.subnet.parse().map_err(NetworkError::Config)?;
        let gw = match &s.gateway {
            Some(g) => g.parse().map_err(|_| {
                NetworkError::Config(format!("network {}: invalid gateway {g:?}", self.name))
            })?,
            None => net.nth(1).unwrap_or(net.network()),
        };
        Ok(Some((net, gw)))
    }

    /// The name netavark gets: the default network as is, created ones with
    /// a `vigil-` prefix, so that netavark's per-network firewall chains
    /// (named after a hash of the name) never meet a Podman network's.
    pub fn netavark_name(&self) -> String {
        if self.name == DEFAULT_NETWORK {
            self.name.clone()
        } else {
            format!("vigil-{}", self.name)
        }
    }

    /// The definition netavark is given (its own name inside).
    pub fn for_netavark(&self) -> NetworkDef {
        NetworkDef {
            name: self.netavark_name(),
            ..self.clone()
        }
    }
}

/// The default network, made in memory like Podman's `podman` network.
pub fn default_network() -> NetworkDef {
    NetworkDef {
        name: DEFAULT_NETWORK.into(),
        id: hex::encode(Sha256::digest(DEFAULT_NETWORK.as_bytes())),
        driver: "bridge".into(),
        network_interface: DEFAULT_INTERFACE.into(),
        created: crate::container::record::format_rfc3339(crate::container::record::now_nanos()),
        subnets: vec![SubnetDef {
            subnet: DEFAULT_SUBNET.into(),
            gateway: Some("10.77.0.1".into()),
        }],
        ipv6_enabled: false,
        internal: false,
        dns_enabled: false,
        labels: None,
        options: None,
        ipam_options: IpamOptions {
            driver: "host-local".into(),
        },
    }
}

/// What `network create` asks for.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    pub name: Option<String>,
    /// `--subnet`: at most one IPv4 and one IPv6 (unique local) subnet.
    pub subnets: Vec<String>,
    /// `--gateway`: of the IPv4 or the IPv6 subnet, by its family.
    pub gateway: Option<String>,
    /// `--ipv6`: an IPv6 subnet too (a random ULA /64 unless given).
    pub ipv6: bool,
    pub internal: bool,
    pub disable_dns: bool,
    /// `--label KEY[=VALUE]`.
    pub labels: BTreeMap<String, String>,
}

/// The network files: definitions in `dir`, Podman's (for collisions) in `podman_dir`.
#[derive(Clone, Debug)]
pub struct NetworkStore {
    pub dir: PathBuf,
    pub podman_dir: PathBuf,
}

/// Names Podman accepts for networks (and containers).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl NetworkStore {
    fn lock(&self) -> Result<FileLock, NetworkError> {
        FileLock::exclusive(&self.dir.join(".lock"))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Every created network, sorted by name (not the default).
    pub fn created(&self) -> Result<Vec<NetworkDef>, NetworkError> {
        read_dir_defs(&self.dir)
    }

    /// The default network first, then the created ones.
    pub fn list(&self) -> Result<Vec<NetworkDef>, NetworkError> {
        let mut all = vec![default_network()];
        all.extend(self.created()?);
        Ok(all)
    }

    /// A network by name, full id or unique id prefix.
    pub fn get(&self, name: &str) -> Result<NetworkDef, NetworkError> {
        let all = self.list()?;
        if let Some(n) = all.iter().find(|n| n.name == name || n.id == name) {
            return Ok(n.clone());
        }
        let by_prefix: Vec<&NetworkDef> = all
            .iter()
            .filter(|n| name.len() >= 3 && n.id.starts_with(name))
            .collect();
        match by_prefix.as_slice() {
            [one] => Ok((*one).clone()),
            _ => Err(NetworkError::Config(format!(
                "unable to find network with name or ID {name}: network not found"
            ))),
        }
    }

    /// Write a new network file: the subnet and bridge checked against all
    /// that exist (vigil's, Podman's, the host's routes and links).
    pub fn create(&self, opts: &CreateOptions) -> Result<NetworkDef, NetworkError> {
        fs::create_dir_all(&self.dir)
            .map_err(|e| NetworkError::io(format!("creating {}", self.dir.display()), e))?;
        let _lock = self.lock()?;
        let existing = self.list()?;
        let name = match &opts.name {
            Some(n) => n.clone(),
            None => (1..)
                .map(|i| format!("{BRIDGE_PREFIX}{i}"))
                .find(|n| !existing.iter().any(|e| &e.name == n))
                .unwrap_or_default(),
        };
        if !valid_name(&name) {
            return Err(NetworkError::Config(format!(
                "invalid network name {name:?}: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*"
            )));
        }
        if existing.iter().any(|e| e.name == name) {
            return Err(NetworkError::Config(format!(
                "network name {name} already used: network already exists"
            )));
        }
        let mut used: Vec<Ipv4Net> = existing
            .iter()
            .filter_map(|n| n.ipv4().ok().flatten().map(|(s, _)| s))
            .collect();
        used.extend(
            read_dir_defs(&self.podman_dir)
                .unwrap_or_default()
                .iter()
                .filter_map(|n| n.ipv4().ok().flatten().map(|(s, _)| s)),
        );
        used.extend(
            PODMAN_RESERVED
                .iter()
                .filter_map(|s| s.parse::<Ipv4Net>().ok()),
        );
        // Our own bridges' routes are our networks, already in the list.
        used.extend(
            subnet::host_routes()
                .into_iter()
                .filter(|(dev, _)| !dev.starts_with(BRIDGE_PREFIX))
                .map(|(_, net)| net),
        );
        let mut v4_given: Option<&String> = None;
        let mut v6_given: Option<Ipv6Net> = None;
        for s in &opts.subnets {
            let slot_taken = if s.contains(':') {
                let net: Ipv6Net = s.parse().map_err(NetworkError::Config)?;
                if !net.is_unique_local() {
                    return Err(NetworkError::Config(format!(
                        "subnet {net}: vigil gives containers only unique local IPv6 \
                         addresses (fc00::/7, e.g. fd00:1:2:3::/64)"
                    )));
                }
                if net.prefix() > 120 {
                    return Err(NetworkError::Config(format!(
                        "subnet {net} is too small for containers (at most /120)"
                    )));
                }
                v6_given.replace(net).is_some()
            } else {
                v4_given.replace(s).is_some()
            };
            if slot_taken {
                return Err(NetworkError::Config(
                    "a vigil network has at most one IPv4 and one IPv6 subnet".into(),
                ));
            }
        }
        let (gateway_v4, gateway_v6) = match opts.gateway.as_deref() {
            None => (None, None),
            Some(g) => match g.parse::<IpAddr>() {
                Ok(IpAddr::V4(ip)) => (Some(ip), None),
                Ok(IpAddr::V6(ip)) => (None, Some(ip)),
                Err(_) => {
                    return Err(NetworkError::Config(format!(
                        "invalid gateway {g:?}: not an IP address"
                    )))
                }
            },
        };
        let subnet6 = if let Some(net) = v6_given {
            Some(net)
        } else if opts.ipv6 {
            let mut random = [0u8; 7];
            let hex = random_hex(7)?;
            for (i, b) in random.iter_mut().enumerate() {
                *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0);
            }
            Some(Ipv6Net::random_ula(random))
        } else {
            None
        };
        let subnet6 = match subnet6 {
            None => None,
            Some(net) => {
                let used6: Vec<Ipv6Net> = existing
                    .iter()
                    .chain(read_dir_defs(&self.podman_dir).unwrap_or_default().iter())
                    .filter_map(|n| n.ipv6().ok().flatten().map(|(s, _)| s))
                    .collect();
                if used6.iter().any(|u| u.overlaps(&net)) {
                    return Err(NetworkError::Config(format!(
                        "subnet {net} is already used on the host or by another config"
                    )));
                }
                let gw = match gateway_v6 {
                    Some(ip) if !net.contains(ip) || ip == net.network() => {
                        return Err(NetworkError::Config(format!(
                            "gateway {ip} is not a host address of subnet {net}"
                        )))
                    }
                    Some(ip) => ip,
                    None => net.nth(1).unwrap_or(net.network()),
                };
                Some((net, gw))
            }
        };
        // As Podman 4.3.1: subnets given and none of them IPv4, without
        // --ipv6, make an IPv6-only network; otherwise an IPv4 subnet is
        // given or chosen.
        let ipv6_only = v4_given.is_none() && v6_given.is_some() && !opts.ipv6;
        let subnet = match v4_given {
            _ if ipv6_only => None,
            Some(s) => {
                let net: Ipv4Net = s.parse().map_err(NetworkError::Config)?;
                if used.iter().any(|u| u.overlaps(&net)) {
                    return Err(NetworkError::Config(format!(
                        "subnet {net} is already used on the host or by another config"
                    )));
                }
                Some(net)
            }
            None => {
                let pool: Ipv4Net = POOL.parse().map_err(NetworkError::Config)?;
                let mut candidate = Ipv4Net::new(pool.network(), 24);
                Some(loop {
                    let Some(c) = candidate.filter(|c| pool.contains(c.network())) else {
                        return Err(NetworkError::Config(format!(
                            "could not find a free subnet in {POOL}: remove unused networks"
                        )));
                    };
                    if !used.iter().any(|u| u.overlaps(&c)) {
                        break c;
                    }
                    candidate = c.next();
                })
            }
        };
        let subnet = match (subnet, gateway_v4) {
            (None, Some(ip)) => {
                return Err(NetworkError::Config(format!(
                    "gateway {ip} is an IPv4 address, and the network has no IPv4 subnet"
                )))
            }
            (None, None) => None,
            (Some(subnet), Some(ip)) => {
                if !subnet.contains(ip) || ip == subnet.network() || ip == subnet.broadcast() {
                    return Err(NetworkError::Config(format!(
                        "gateway {ip} is not a host address of subnet {subnet}"
                    )));
                }
                Some((subnet, ip))
            }
            (Some(subnet), None) => Some((subnet, subnet.nth(1).unwrap_or(subnet.network()))),
        };
        let interface = (1..)
            .map(|i| format!("{BRIDGE_PREFIX}{i}"))
            .find(|b| {
                !existing.iter().any(|e| &e.network_interface == b)
                    && !Path::new("/sys/class/net").join(b).exists()
            })
            .unwrap_or_default();
        let def = NetworkDef {
            name: name.clone(),
            id: random_hex(32)?,
            driver: "bridge".into(),
            network_interface: interface,
            created: crate::container::record::format_rfc3339(crate::container::record::now_nanos()),
            subnets: subnet
                .map(|(net, gw)| SubnetDef {
                    subnet: net.to_string(),
                    gateway: Some(gw.to_string()),
                })
                .into_iter()
                .chain(subnet6.map(|(net, gw)| SubnetDef {
                    subnet: net.to_string(),
                    gateway: Some(gw.to_string()),
                }))
                .collect(),
            ipv6_enabled: subnet6.is_some(),
            internal: opts.internal,
            dns_enabled: !opts.disable_dns,
            labels: (!opts.labels.is_empty()).then(|| opts.labels.clone()),
            options: None,
            ipam_options: IpamOptions {
                driver: "host-local".into(),
            },
        };
        let path = self.file(&name);
        let tmp = self.dir.join(format!(".{name}.json.tmp"));
        let mut f = fs::File::create(&tmp)
            .map_err(|e| NetworkError::io(format!("writing {}", tmp.display()), e))?;
        f.write_all(format!("{}\n", to_json_5(&def)).as_bytes())
            .and_then(|_| f.sync_all())
            .and_then(|_| fs::rename(&tmp, &path))
            .map_err(|e| NetworkError::io(format!("writing {}", path.display()), e))?;
        Ok(def)
    }

    /// Delete a created network's file (the caller checked it is unused).
    pub fn remove(&self, name: &str) -> Result<(), NetworkError> {
        if name == DEFAULT_NETWORK {
            return Err(NetworkError::Config(format!(
                "default network {DEFAULT_NETWORK} cannot be removed"
            )));
        }
        let _lock = self.lock()?;
        fs::remove_file(self.file(name))
            .map_err(|e| NetworkError::io(format!("removing network {name}"), e))
    }
}

fn read_dir_defs(dir: &Path) -> Result<Vec<NetworkDef>, NetworkError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(NetworkError::io(format!("reading {}", dir.display()), e)),
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        let text = fs::read_to_string(&path)
            .map_err(|e| NetworkError::io(format!("reading {}", path.display()), e))?;
        let def: NetworkDef = serde_json::from_str(&text)
            .map_err(|e| NetworkError::Config(format!("network file {}: {e}", path.display())))?;
        out.push(def);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// JSON with 5-space indentation, as Podman writes and prints networks.
pub fn to_json_5<T: Serialize>(value: &T) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"     ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    let _ = value.serialize(&mut ser);
    String::from_utf8_lossy(&buf).into_owned()
}

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> Result<String, NetworkError> {
    let mut buf = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .map_err(|e| NetworkError::io("reading /dev/urandom", e))?;
    Ok(hex::encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_picks_free_subnets_and_refuses_overlaps() {
        let dir = tempfile::tempdir().unwrap();
        let podman = tempfile::tempdir().unwrap();
        fs::write(
            podman.path().join("p.json"),
            r#"{"name":"p","id":"x","driver":"bridge","network_interface":"podman1","created":"","subnets":[{"subnet":"10.78.0.0/24","gateway":"10.78.0.1"}],"ipv6_enabled":false,"internal":false,"dns_enabled":true,"ipam_options":{"driver":"host-local"}}"#,
        )
        .unwrap();
        let store = NetworkStore {
            dir: dir.path().join("nets"),
            podman_dir: podman.path().into(),
        };
        let a = store
            .create(&CreateOptions {
                name: Some("a".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            a.subnets[0].subnet, "10.78.1.0/24",
            "10.78.0.0/24 is Podman's"
        );
        assert_eq!(a.subnets[0].gateway.as_deref(), Some("10.78.1.1"));
        assert!(a.dns_enabled && a.network_interface.starts_with("vigil"));
        let b = store.create(&CreateOptions::default()).unwrap();
        assert_eq!(b.subnets[0].subnet, "10.78.2.0/24");
        assert_ne!(a.network_interface, b.network_interface);
        for s in ["10.78.1.128/25", "10.88.5.0/24", "10.77.0.0/24"] {
            let e = store
                .create(&CreateOptions {
                    name: Some("c".into()),
                    subnets: vec![s.into()],
                    ..Default::default()
                })
                .unwrap_err();
            assert!(
                e.to_string()
                    .contains("is already used on the host or by another config"),
                "{e}"
            );
        }
        // IPv6: a random unique local /64 with --ipv6, or the one given.
        let six = store
            .create(&CreateOptions {
                name: Some("six".into()),
                ipv6: true,
                ..Default::default()
            })
            .unwrap();
        assert!(six.ipv6_enabled && six.subnets.len() == 2, "{six:?}");
        let (net6, gw6) = six.ipv6().unwrap().unwrap();
        assert!(net6.is_unique_local() && net6.prefix() == 64);
        assert_eq!(gw6, net6.nth(1).unwrap());
        let given = store
            .create(&CreateOptions {
                name: Some("given".into()),
                subnets: vec!["fd99:1:2:3::/64".into()],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(given.subnets[0].subnet, "fd99:1:2:3::/64");
        assert_eq!(given.subnets[0].gateway.as_deref(), Some("fd99:1:2:3::1"));
        assert!(given.ipv4().unwrap().is_none(), "IPv6 only, as Podman");
        assert!(given.ipv6_enabled && given.subnets.len() == 1, "{given:?}");
        let both = store
            .create(&CreateOptions {
                name: Some("both".into()),
                subnets: vec!["fd99:1:2:4::/64".into()],
                ipv6: true,
                ..Default::default()
            })
            .unwrap();
        assert!(both.ipv4().unwrap().is_some(), "--ipv6: an IPv4 subnet too");
        for (s, wanted) in [
            ("fd99:1:2:3::/64", "is already used"),
            ("2001:db8::/64", "only unique local IPv6"),
        ] {
            let e = store
                .create(&CreateOptions {
                    name: Some("c".into()),
                    subnets: vec![s.into()],
                    ..Default::default()
                })
                .unwrap_err();
            assert!(e.to_string().contains(wanted), "{e}");
        }
        let e = store
            .create(&CreateOptions {
                name: Some("a".into()),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "network name a already used: network already exists"
        );
        assert_eq!(store.get("a").unwrap(), a);
        assert_eq!(store.get(&a.id[..12]).unwrap().name, "a");
        assert!(store
            .get("nosuch")
            .unwrap_err()
            .to_string()
            .contains("network not found"));
        assert_eq!(store.list().unwrap().len(), 6);
        store.remove("a").unwrap();
        assert!(store.remove(DEFAULT_NETWORK).is_err());
        let text = fs::read_to_string(store.file(&b.name)).unwrap();
        assert!(text.starts_with("{\n     \"name\": "), "{text}");
    }
}
