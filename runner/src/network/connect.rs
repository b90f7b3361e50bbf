//! `network connect` / `network disconnect`: a container joins or leaves a
//! bridge network. A stopped container only has its settings changed (the
//! next start sets everything up); a running one also gets the network set
//! up or torn down in its namespace by netavark, as Podman 4.3.1 does it:
//! the container's port mappings go with every netavark call, and the
//! options of the networks now attached are kept in one record, so the
//! final teardown undoes all of them.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::error::NetworkError;
use super::{
    netavark, valid_dns_name, Attachment, Container, Mode, NetEnv, NetworkConfig, NetworkDef,
    NetworkState, PerNetworkConfig,
};

/// What `network connect` asks for.
#[derive(Clone, Debug, Default)]
pub struct ConnectRequest {
    pub network: String,
    pub aliases: Vec<String>,
    pub ip: Option<Ipv4Addr>,
    pub ip6: Option<Ipv6Addr>,
    pub mac: Option<String>,
}

/// Add the network to the container's settings (checks first). The
/// network's definition is returned.
pub fn connect_config(
    env: &NetEnv,
    cfg: &mut NetworkConfig,
    ctr: &Container<'_>,
    req: &ConnectRequest,
) -> Result<NetworkDef, NetworkError> {
    let def = env.store.get(&req.network)?;
    if cfg.mode != Mode::Bridge {
        // Podman 4.3.1's words, then why: a rootless container's slirp4netns
        // namespace (or none/host/ns:) has no bridge to add an interface for.
        return Err(NetworkError::Config(format!(
            "{:?} is not supported: invalid network mode (container {} is not on a bridge \
             network; only such containers can be connected to another one)",
            cfg.mode.name(),
            ctr.name
        )));
    }
    if cfg.networks.contains(&def.name) {
        return Err(NetworkError::Config(format!(
            "container {} is already connected to network {:?}: network is already connected",
            ctr.id, def.name
        )));
    }
    if def.dns_enabled {
        for dns_name in std::iter::once(ctr.name).chain(req.aliases.iter().map(String::as_str)) {
            if !valid_dns_name(dns_name) {
                return Err(NetworkError::Config(format!(
                    "{dns_name:?} is not a valid DNS name, and network {} has DNS enabled: \
                     use letters, digits and '-'",
                    def.name
                )));
            }
        }
    }
    let refuse = |ip: &dyn std::fmt::Display| {
        NetworkError::Config(format!(
            "requested static ip {ip} not in any subnet on network {}",
            def.name
        ))
    };
    if let Some(ip) = req.ip {
        if !def.ipv4()?.is_some_and(|(subnet, _)| subnet.contains(ip)) {
            return Err(refuse(&ip));
        }
    }
    if let Some(ip) = req.ip6 {
        if !def.ipv6()?.is_some_and(|(subnet, _)| subnet.contains(ip)) {
            return Err(refuse(&ip));
        }
    }
    cfg.networks.push(def.name.clone());
    let wanted = PerNetworkConfig {
        ip: req.ip,
        ip6: req.ip6,
        mac: req.mac.clone(),
        aliases: req.aliases.clone(),
    };
    if wanted != PerNetworkConfig::default() {
        cfg.per_network.insert(def.name.clone(), wanted);
    }
    Ok(def)
}

/// Set the network up in the running container's namespace (after
/// [`connect_config`]). `persist` saves `state` before netavark runs, so a
/// crash leaves what teardown needs.
pub fn connect_running(
    env: &NetEnv,
    ctr: &Container<'_>,
    cfg: &NetworkConfig,
    def: &NetworkDef,
    state: &mut NetworkState,
    persist: &mut dyn FnMut(&NetworkState) -> Result<(), NetworkError>,
) -> Result<Attachment, NetworkError> {
    let Some(netns) = state.netns.clone() else {
        return Err(NetworkError::Start(format!(
            "container {} has no network namespace to connect",
            ctr.id
        )));
    };
    let driver = env.netavark(def.dns_enabled)?;
    let lock = env.lock()?;
    let ipam = env.ipam();
    let wanted = cfg.per_network.get(&def.name).cloned().unwrap_or_default();
    let ip = ipam.allocate(def, ctr.id, wanted.ip)?;
    let ip6 = match ipam.allocate6(def, ctr.id, wanted.ip6) {
        Ok(a) => a,
        Err(e) => {
            let _ = ipam.release_on(&def.name, ctr.id);
            return Err(e);
        }
    };
    let has_ipv4 = ip.is_some();
    let base = state.netavark.get_or_insert_with(|| netavark::Options {
        container_id: ctr.id.into(),
        container_name: ctr.name.into(),
        port_mappings: super::ports::for_netavark(&cfg.ports, has_ipv4),
        networks: Default::default(),
        network_info: Default::default(),
        dns_servers: Vec::new(),
    });
    // The first interface name no attached network uses.
    let interface_name = (0..)
        .map(|i| format!("eth{i}"))
        .find(|n| !base.networks.values().any(|p| &p.interface_name == n))
        .unwrap_or_default();
    let short = &ctr.id[..ctr.id.len().min(12)];
    let mut aliases = cfg.aliases.clone();
    aliases.extend(wanted.aliases.iter().cloned());
    aliases.push(short.to_string());
    let per = netavark::PerNetwork {
        static_ips: ip
            .map(|a| a.to_string())
            .into_iter()
            .chain(ip6.map(|a| a.to_string()))
            .collect(),
        aliases,
        interface_name: interface_name.clone(),
        static_mac: wanted.mac.clone(),
    };
    let nv = def.netavark_name();
    let mut opts = base.clone();
    opts.networks = [(nv.clone(), per.clone())].into();
    opts.network_info = [(nv.clone(), def.for_netavark())].into();
    opts.dns_servers = if def.dns_enabled {
        cfg.dns.clone()
    } else {
        Vec::new()
    };
    let mut attachment = Attachment::planned(def, ip, ip6)?;
    base.networks.insert(nv.clone(), per);
    base.network_info.insert(nv.clone(), def.for_netavark());
    state
        .attachments
        .insert(def.name.clone(), attachment.clone());
    persist(state)?;
    match driver.setup(&netns, &opts) {
        Ok(status) => {
            if let Some(iface) = status
                .get(&nv)
                .and_then(|b| b.interfaces.get(&interface_name))
            {
                attachment.mac = iface.mac_address.clone();
            }
            state
                .attachments
                .insert(def.name.clone(), attachment.clone());
            persist(state)?;
            drop(lock);
            Ok(attachment)
        }
        Err(e) => {
            // netavark rolled its part back; the address and the record
            // entries are ours to undo.
            forget(state, &def.name, &nv);
            let _ = ipam.release_on(&def.name, ctr.id);
            let _ = persist(state);
            Err(e)
        }
    }
}

/// Remove the network from the container's settings.
pub fn disconnect_config(
    env: &NetEnv,
    cfg: &mut NetworkConfig,
    ctr: &Container<'_>,
    network: &str,
) -> Result<NetworkDef, NetworkError> {
    let def = env.store.get(network)?;
    let Some(at) = cfg.networks.iter().position(|n| n == &def.name) else {
        return Err(NetworkError::Config(format!(
            "container {} is not connected to network {}",
            ctr.name, def.name
        )));
    };
    cfg.networks.remove(at);
    cfg.per_network.remove(&def.name);
    Ok(def)
}

/// Tear the network down in the running container's namespace and release
/// its address; the attachment it had, if it had one.
pub fn disconnect_running(
    env: &NetEnv,
    ctr: &Container<'_>,
    def: &NetworkDef,
    state: &mut NetworkState,
    persist: &mut dyn FnMut(&NetworkState) -> Result<(), NetworkError>,
) -> Result<Option<Attachment>, NetworkError> {
    let nv = def.netavark_name();
    let lock = env.lock()?;
    let one = state.netavark.as_ref().and_then(|base| {
        let per = base.networks.get(&nv)?.clone();
        let mut opts = base.clone();
        opts.networks = [(nv.clone(), per)].into();
        opts.network_info = [(nv.clone(), base.network_info.get(&nv)?.clone())].into();
        Some(opts)
    });
    if let (Some(opts), Some(netns)) = (one, state.netns.as_deref()) {
        if netns.exists() {
            env.netavark(def.dns_enabled)?.teardown(netns, &opts)?;
        }
    }
    let attachment = state.attachments.get(&def.name).cloned();
    forget(state, &def.name, &nv);
    env.ipam().release_on(&def.name, ctr.id)?;
    drop(lock);
    persist(state)?;
    Ok(attachment)
}

/// Drop network `name` (netavark's `nv`) from what `state` says is set up.
fn forget(state: &mut NetworkState, name: &str, nv: &str) {
    if let Some(base) = state.netavark.as_mut() {
        base.networks.remove(nv);
        base.network_info.remove(nv);
        if base.networks.is_empty() {
            state.netavark = None;
        }
    }
    state.attachments.remove(name);
}
