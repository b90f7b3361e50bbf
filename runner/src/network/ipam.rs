//! vigil's own address allocation (runner-network §2.4): one JSON file per
//! user, changed only under the network lock (held by the caller across
//! "allocate + netavark setup" and "netavark teardown + release"), written
//! by temp file + rename. Like Podman it hands out addresses after the last
//! one given (so a released address is not reused at once), never the
//! network, gateway or broadcast address.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::config::NetworkDef;
use super::error::NetworkError;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Pool {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last: Option<Ipv4Addr>,
    /// Address -> container id.
    #[serde(default)]
    allocated: BTreeMap<Ipv4Addr, String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Pool6 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last: Option<Ipv6Addr>,
    /// Address -> container id.
    #[serde(default)]
    allocated: BTreeMap<Ipv6Addr, String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Db {
    /// Network name -> its pool.
    #[serde(default)]
    networks: BTreeMap<String, Pool>,
    /// Network name -> its IPv6 pool (networks with an IPv6 subnet).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    networks6: BTreeMap<String, Pool6>,
}

/// The allocation file. Every method reads and writes it whole: call them
/// with the network lock held.
pub struct Ipam {
    pub path: PathBuf,
}

impl Ipam {
    fn load(&self) -> Result<Db, NetworkError> {
        match fs::read(&self.path) {
            Ok(b) if b.is_empty() => Ok(Db::default()),
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                NetworkError::Config(format!("address allocations {}: {e}", self.path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Db::default()),
            Err(e) => Err(NetworkError::io(
                format!("reading {}", self.path.display()),
                e,
            )),
        }
    }

    fn save(&self, db: &Db) -> Result<(), NetworkError> {
        let tmp = self.path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            if let Some(dir) = self.path.parent() {
                fs::create_dir_all(dir)?;
            }
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec(db).unwrap_or_default())?;
            fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| NetworkError::io(format!("writing {}", self.path.display()), e))
    }

    /// An address of `net` for container `id`: `wanted` (`--ip`), else the
    /// one it already has, else the next free one (None: the network has
    /// no IPv4 subnet).
    pub fn allocate(
        &self,
        net: &NetworkDef,
        id: &str,
        wanted: Option<Ipv4Addr>,
    ) -> Result<Option<Ipv4Addr>, NetworkError> {
        let Some((subnet, gateway)) = net.ipv4()? else {
            return match wanted {
                Some(ip) => Err(not_in_subnet(&ip.to_string(), net)),
                None => Ok(None),
            };
        };
        self.allocate_in(net, subnet, gateway, id, wanted).map(Some)
    }

    fn allocate_in(
        &self,
        net: &NetworkDef,
        subnet: super::subnet::Ipv4Net,
        gateway: Ipv4Addr,
        id: &str,
        wanted: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, NetworkError> {
        let mut db = self.load()?;
        let pool = db.networks.entry(net.name.clone()).or_default();
        if let Some(ip) = wanted {
            let refuse = |why: &str| {
                NetworkError::Start(format!(
                    "requested static ip {ip} {why} on network {}",
                    net.name
                ))
            };
            if !subnet.contains(ip) {
                return Err(not_in_subnet(&ip.to_string(), net));
            }
            // Podman 4.3.1 hands these out and the container gets an
            // address it cannot use; refused here.
            if ip == gateway {
                return Err(refuse("is the gateway"));
            }
            if ip == subnet.network() || ip == subnet.broadcast() {
                return Err(refuse("is the network or broadcast address"));
            }
            match pool.allocated.get(&ip) {
                Some(holder) if holder != id => {
                    return Err(NetworkError::Start(format!(
                        "IPAM error: requested ip address {ip} is already allocated to \
                         container ID {holder}"
                    )))
                }
                Some(_) => return Ok(ip),
                None => {}
            }
            pool.allocated.retain(|_, c| c != id);
            pool.allocated.insert(ip, id.to_string());
            self.save(&db)?;
            return Ok(ip);
        }
        if let Some((ip, _)) = pool.allocated.iter().find(|(_, c)| c.as_str() == id) {
            return Ok(*ip);
        }
        let first = subnet.nth(1).unwrap_or(subnet.network());
        let last = Ipv4Addr::from(u32::from(subnet.broadcast()).saturating_sub(1));
        let size = u32::from(last) - u32::from(first) + 1;
        let start = pool.last.filter(|ip| subnet.contains(*ip)).map_or(0, |ip| {
            (u32::from(ip).saturating_sub(u32::from(first)) + 1) % size
        });
        let chosen = (0..size)
            .map(|i| Ipv4Addr::from(u32::from(first) + (start + i) % size))
            .find(|ip| *ip != gateway && !pool.allocated.contains_key(ip))
            .ok_or_else(|| {
                NetworkError::Start(format!(
                    "IPAM error: failed to find free IP in range: {first} - {last}"
                ))
            })?;
        pool.allocated.insert(chosen, id.to_string());
        pool.last = Some(chosen);
        self.save(&db)?;
        Ok(chosen)
    }

    /// An IPv6 address of `net` for container `id` (None: the network has
    /// no IPv6 subnet): `wanted` (`--ip6`), else the one it has, else the
    /// next free one after the last given, never the subnet-router anycast
    /// address or the gateway.
    pub fn allocate6(
        &self,
        net: &NetworkDef,
        id: &str,
        wanted: Option<Ipv6Addr>,
    ) -> Result<Option<Ipv6Addr>, NetworkError> {
        let Some((subnet, gateway)) = net.ipv6()? else {
            return match wanted {
                Some(ip) => Err(not_in_subnet(&ip.to_string(), net)),
                None => Ok(None),
            };
        };
        let mut db = self.load()?;
        let pool = db.networks6.entry(net.name.clone()).or_default();
        if let Some(ip) = wanted {
            if !subnet.contains(ip) {
                return Err(not_in_subnet(&ip.to_string(), net));
            }
            // Podman 4.3.1 passes these to netavark, which then fails to
            // set the default route (gateway) or gives an unusable address.
            let refuse = |why: &str| {
                NetworkError::Start(format!(
                    "requested static ip {ip} {why} on network {}",
                    net.name
                ))
            };
            if ip == gateway {
                return Err(refuse("is the gateway"));
            }
            if ip == subnet.network() {
                return Err(refuse("is the subnet-router anycast address"));
            }
            match pool.allocated.get(&ip) {
                Some(holder) if holder != id => {
                    return Err(NetworkError::Start(format!(
                        "IPAM error: requested ip address {ip} is already allocated to \
                         container ID {holder}"
                    )))
                }
                Some(_) => return Ok(Some(ip)),
                None => {}
            }
            pool.allocated.retain(|_, c| c != id);
            pool.allocated.insert(ip, id.to_string());
            self.save(&db)?;
            return Ok(Some(ip));
        }
        if let Some((ip, _)) = pool.allocated.iter().find(|(_, c)| c.as_str() == id) {
            return Ok(Some(*ip));
        }
        let first = u128::from(subnet.nth(1).unwrap_or(subnet.network()));
        let start = pool
            .last
            .filter(|ip| subnet.contains(*ip))
            .map_or(first, |ip| u128::from(ip) + 1);
        // Taken addresses are few: at most that many + 2 candidates are tried.
        let chosen = (0..pool.allocated.len() as u128 + 3)
            .map(|i| Ipv6Addr::from(start.wrapping_add(i)))
            .map(|ip| {
                if subnet.contains(ip) {
                    ip
                } else {
                    Ipv6Addr::from(first)
                }
            })
            .find(|ip| {
                *ip != gateway && *ip != subnet.network() && !pool.allocated.contains_key(ip)
            })
            .ok_or_else(|| {
                NetworkError::Start(format!(
                    "IPAM error: failed to find free IPv6 address in {subnet}"
                ))
            })?;
        pool.allocated.insert(chosen, id.to_string());
        pool.last = Some(chosen);
        self.save(&db)?;
        Ok(Some(chosen))
    }

    /// Release every address of container `id`; true if it had any.
    pub fn release(&self, id: &str) -> Result<bool, NetworkError> {
        Ok(!self.release_where(|c| c == id)?.is_empty())
    }

    /// Release the addresses of every container that `exists` does not
    /// know: what a vigil killed between removing a container and
    /// releasing its addresses left. Returns their ids.
    pub fn release_missing(
        &self,
        exists: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, NetworkError> {
        self.release_where(|c| !exists(c))
    }

    /// Release the addresses of the containers `pick` picks; their ids.
    fn release_where(&self, pick: impl Fn(&str) -> bool) -> Result<Vec<String>, NetworkError> {
        let mut db = self.load()?;
        let mut gone: Vec<String> = Vec::new();
        let mut note = |c: &String| {
            let picked = pick(c);
            if picked && !gone.contains(c) {
                gone.push(c.clone());
            }
            !picked
        };
        for pool in db.networks.values_mut() {
            pool.allocated.retain(|_, c| note(c));
        }
        for pool in db.networks6.values_mut() {
            pool.allocated.retain(|_, c| note(c));
        }
        if !gone.is_empty() {
            self.save(&db)?;
        }
        Ok(gone)
    }

    /// Release container `id`'s address on network `name` only
    /// (`network disconnect`).
    pub fn release_on(&self, name: &str, id: &str) -> Result<(), NetworkError> {
        let mut db = self.load()?;
        let mut changed = false;
        if let Some(pool) = db.networks.get_mut(name) {
            let before = pool.allocated.len();
            pool.allocated.retain(|_, c| c != id);
            changed |= pool.allocated.len() != before;
        }
        if let Some(pool) = db.networks6.get_mut(name) {
            let before = pool.allocated.len();
            pool.allocated.retain(|_, c| c != id);
            changed |= pool.allocated.len() != before;
        }
        if changed {
            self.save(&db)?;
        }
        Ok(())
    }

    /// Container ids holding addresses on network `name`.
    /// Does any container hold an address on any network?
    pub fn in_use(&self) -> Result<bool, NetworkError> {
        let db = self.load()?;
        Ok(db.networks.values().any(|p| !p.allocated.is_empty())
            || db.networks6.values().any(|p| !p.allocated.is_empty()))
    }

    pub fn holders(&self, name: &str) -> Result<Vec<String>, NetworkError> {
        let db = self.load()?;
        let mut ids: Vec<String> = db
            .networks
            .get(name)
            .map(|p| p.allocated.values().cloned().collect())
            .unwrap_or_default();
        if let Some(p) = db.networks6.get(name) {
            ids.extend(
                p.allocated
                    .values()
                    .filter(|c| !ids.contains(c))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
        }
        Ok(ids)
    }
}

/// Podman's refusal of a static address outside the network's subnets.
fn not_in_subnet(ip: &str, net: &NetworkDef) -> NetworkError {
    NetworkError::Start(format!(
        "requested static ip {ip} not in any subnet on network {}",
        net.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_of_missing_containers_are_released() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam {
            path: dir.path().join("ipam.json"),
        };
        let text = r#"{"networks":{"a":{"allocated":{"10.89.0.2":"kept","10.89.0.3":"gone"}},
            "b":{"allocated":{"10.89.1.2":"gone"}}},
            "networks6":{"b":{"allocated":{"fd00::2":"gone","fd00::3":"kept"}}}}"#;
        fs::write(&ipam.path, text).unwrap();
        let gone = ipam.release_missing(|id| id == "kept").unwrap();
        assert_eq!(gone, ["gone"]);
        assert!(ipam.in_use().unwrap());
        assert_eq!(ipam.holders("a").unwrap(), ["kept"]);
        assert_eq!(ipam.holders("b").unwrap(), ["kept"]);
        // Nothing else to release: the file is left as it is.
        assert!(ipam.release_missing(|id| id == "kept").unwrap().is_empty());
        assert!(ipam.release("kept").unwrap());
        assert!(!ipam.in_use().unwrap());
    }

    #[test]
    fn allocates_in_order_skipping_gateway_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam {
            path: dir.path().join("ipam.json"),
        };
        let mut net = super::super::config::default_network();
        net.subnets[0].subnet = "10.99.0.0/29".into();
        net.subnets[0].gateway = Some("10.99.0.1".into());
        let a = ipam.allocate(&net, "a", None).unwrap().unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 99, 0, 2));
        assert_eq!(
            ipam.allocate(&net, "a", None).unwrap(),
            Some(a),
            "same container, same address"
        );
        assert_eq!(
            ipam.allocate(&net, "b", None).unwrap(),
            Some(Ipv4Addr::new(10, 99, 0, 3))
        );
        assert!(ipam.release("a").unwrap());
        assert!(!ipam.release("a").unwrap());
        assert_eq!(
            ipam.allocate(&net, "c", None).unwrap(),
            Some(Ipv4Addr::new(10, 99, 0, 4))
        );
        for id in ["d", "e", "f"] {
            ipam.allocate(&net, id, None).unwrap();
        }
        // .2 was released: the only free host address left.
        let e = ipam.allocate(&net, "g", None).unwrap_err();
        assert!(
            e.to_string()
                .contains("failed to find free IP in range: 10.99.0.1 - 10.99.0.6"),
            "{e}"
        );
        assert_eq!(ipam.holders(&net.name).unwrap().len(), 5);
    }

    #[test]
    fn static_addresses_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam {
            path: dir.path().join("ipam.json"),
        };
        let mut net = super::super::config::default_network();
        net.subnets[0].subnet = "10.99.0.0/24".into();
        net.subnets[0].gateway = Some("10.99.0.1".into());
        let ip = |s: &str| Some(s.parse::<Ipv4Addr>().unwrap());
        assert_eq!(
            ipam.allocate(&net, "a", ip("10.99.0.7")).unwrap(),
            Some(Ipv4Addr::new(10, 99, 0, 7))
        );
        let err = |id, wanted| ipam.allocate(&net, id, wanted).unwrap_err().to_string();
        assert_eq!(
            err("b", ip("10.99.0.7")),
            "IPAM error: requested ip address 10.99.0.7 is already allocated to container ID a"
        );
        assert_eq!(
            err("b", ip("10.98.0.7")),
            "requested static ip 10.98.0.7 not in any subnet on network vigil"
        );
        assert!(err("b", ip("10.99.0.1")).contains("is the gateway"));
        assert!(err("b", ip("10.99.0.255")).contains("broadcast"));
        ipam.release_on("vigil", "a").unwrap();
        assert_eq!(ipam.holders("vigil").unwrap().len(), 0);
    }

    #[test]
    fn ipv6_addresses_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam {
            path: dir.path().join("ipam.json"),
        };
        let mut net = super::super::config::default_network();
        assert_eq!(
            ipam.allocate6(&net, "a", None).unwrap(),
            None,
            "no IPv6 subnet"
        );
        net.subnets.push(super::super::config::SubnetDef {
            subnet: "fd99:1:2:3::/64".into(),
            gateway: Some("fd99:1:2:3::1".into()),
        });
        let v6 = |s: &str| Some(s.parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            ipam.allocate6(&net, "a", None).unwrap(),
            v6("fd99:1:2:3::2")
        );
        assert_eq!(
            ipam.allocate6(&net, "a", None).unwrap(),
            v6("fd99:1:2:3::2")
        );
        assert_eq!(
            ipam.allocate6(&net, "b", None).unwrap(),
            v6("fd99:1:2:3::3")
        );
        assert!(ipam.release("a").unwrap());
        assert_eq!(
            ipam.allocate6(&net, "c", None).unwrap(),
            v6("fd99:1:2:3::4")
        );
        // --ip6: checked against the IPv6 subnet.
        assert_eq!(
            ipam.allocate6(&net, "d", v6("fd99:1:2:3::20")).unwrap(),
            v6("fd99:1:2:3::20")
        );
        let err = |id, wanted| ipam.allocate6(&net, id, wanted).unwrap_err().to_string();
        assert_eq!(
            err("e", v6("fd99:1:2:3::20")),
            "IPAM error: requested ip address fd99:1:2:3::20 is already allocated to container ID d"
        );
        assert_eq!(
            err("e", v6("fd99:1:2:9::5")),
            "requested static ip fd99:1:2:9::5 not in any subnet on network vigil"
        );
        assert!(err("e", v6("fd99:1:2:3::1")).contains("is the gateway"));
        assert!(err("e", v6("fd99:1:2:3::")).contains("anycast"));
        // An IPv6-only network: no IPv4 address, --ip refused.
        net.subnets.remove(0);
        assert_eq!(ipam.allocate(&net, "f", None).unwrap(), None);
        assert_eq!(
            ipam.allocate(&net, "f", Some(Ipv4Addr::new(10, 1, 2, 3)))
                .unwrap_err()
                .to_string(),
            "requested static ip 10.1.2.3 not in any subnet on network vigil"
        );
        assert!(ipam.holders("vigil").unwrap().contains(&"d".to_string()));
        ipam.release_on("vigil", "b").unwrap();
        ipam.release_on("vigil", "c").unwrap();
        assert!(!ipam.release("b").unwrap());
    }
}
