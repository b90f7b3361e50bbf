//! inspect's `NetworkSettings` as Podman 4.3.1 prints it (runner-network §7).

use serde_json::{json, Map, Value};

use crate::container::{Record, Status};
use crate::network::{ports, Attachment, Mode};

fn endpoint(a: Option<&Attachment>) -> Map<String, Value> {
    let a = a.cloned().unwrap_or_default();
    let mut m = Map::new();
    m.insert("EndpointID".into(), "".into());
    m.insert("Gateway".into(), a.gateway.into());
    m.insert("IPAddress".into(), a.ip.into());
    m.insert("IPPrefixLen".into(), a.prefix.into());
    m.insert("IPv6Gateway".into(), a.ipv6_gateway.into());
    m.insert("GlobalIPv6Address".into(), a.ipv6.into());
    m.insert("GlobalIPv6PrefixLen".into(), a.ipv6_prefix.into());
    m.insert("MacAddress".into(), a.mac.into());
    m
}

/// The `NetworkSettings` object of a container.
pub fn network_settings(rec: &Record) -> Value {
    let running = rec.status == Status::Running;
    let net = &rec.config.net;
    let state = &rec.net_state;
    let attached = |name: &str| {
        if running {
            state.attachments.get(name)
        } else {
            None
        }
    };
    // Podman 4.3.1 fills the top-level fields only for a container on just
    // the default network; on a created network they stay empty.
    let only = (net.networks.len() == 1 && net.networks[0] == crate::network::DEFAULT_NETWORK)
        .then(|| net.networks[0].as_str());
    let mut top = endpoint(only.and_then(attached));
    top.insert("Bridge".into(), "".into());
    top.insert("SandboxID".into(), "".into());
    top.insert("HairpinMode".into(), false.into());
    top.insert("LinkLocalIPv6Address".into(), "".into());
    top.insert("LinkLocalIPv6PrefixLen".into(), 0.into());
    let published = running && matches!(net.mode, Mode::Bridge | Mode::Slirp4netns);
    top.insert(
        "Ports".into(),
        if published {
            ports::inspect_ports(&net.ports)
        } else {
            json!({})
        },
    );
    let sandbox = match (&state.netns, running) {
        (Some(p), true) => p.display().to_string(),
        _ => String::new(),
    };
    top.insert("SandboxKey".into(), sandbox.into());
    if net.mode == Mode::Bridge {
        let mut networks = Map::new();
        for name in &net.networks {
            let mut e = endpoint(attached(name));
            e.insert("NetworkID".into(), name.clone().into());
            e.insert("DriverOpts".into(), Value::Null);
            e.insert("IPAMConfig".into(), Value::Null);
            e.insert("Links".into(), Value::Null);
            let mut aliases = net.aliases.clone();
            if let Some(per) = net.per_network.get(name) {
                aliases.extend(per.aliases.iter().cloned());
            }
            aliases.push(rec.short_id().to_string());
            e.insert("Aliases".into(), aliases.into());
            networks.insert(name.clone(), Value::Object(e));
        }
        top.insert("Networks".into(), Value::Object(networks));
    }
    Value::Object(top)
}
