//! `-p/--publish` and `-P`: parsing every form Podman 4.3.1 takes, random
//! host ports, and the ways `port`, `ps` and `inspect` show them
//! (runner-network §4.1).

use std::collections::BTreeMap;
use std::net::{IpAddr, TcpListener, UdpSocket};

use serde::{Deserialize, Serialize};

use super::error::NetworkError;

/// One published port (range), as netavark's `port_mappings` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// "" for all interfaces.
    pub host_ip: String,
    pub container_port: u16,
    /// 0 until a random port is chosen ([`assign_random_ports`]).
    pub host_port: u16,
    /// Number of consecutive ports (>= 1).
    pub range: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
}

fn bad(value: &str, why: &str) -> NetworkError {
    NetworkError::Config(format!("invalid -p/--publish value {value:?}: {why}"))
}

/// `N` or `N-M` (inclusive) as (first, count).
fn port_range(value: &str, part: &str) -> Result<(u16, u16), NetworkError> {
    let num = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(value, &format!("{s:?} is not a port number (1-65535)")))
    };
    match part.split_once('-') {
        None => Ok((num(part)?, 1)),
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            if b < a {
                return Err(bad(value, &format!("range {part:?} ends before it starts")));
            }
            Ok((a, b - a + 1))
        }
    }
}

/// Parse one `-p` value: `[[IP:][HOSTPORT]:]CONTAINERPORT[/PROTOCOL]`, ports
/// or ranges, IPv6 host addresses in brackets. A missing host port is 0
/// (random); a random host port for a container range becomes one mapping
/// per port.
pub fn parse_publish(value: &str) -> Result<Vec<PortMapping>, NetworkError> {
    let (spec, protocol) = match value.rsplit_once('/') {
        Some((s, p)) => (s, p.to_ascii_lowercase()),
        None => (value, "tcp".to_string()),
    };
    if !["tcp", "udp", "sctp"].contains(&protocol.as_str()) {
        return Err(bad(
            value,
            &format!("unknown protocol {protocol:?} (tcp, udp, sctp)"),
        ));
    }
    // An IPv6 host address is bracketed: [::1]:8080:80.
    let (host_ip, rest) = if let Some(after) = spec.strip_prefix('[') {
        let (ip, rest) = after
            .split_once(']')
            .ok_or_else(|| bad(value, "unclosed '[' around the host IP"))?;
        let rest = rest
            .strip_prefix(':')
            .ok_or_else(|| bad(value, "expected ':' after the host IP"))?;
        (Some(ip.to_string()), rest.to_string())
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.len() {
            1 | 2 => (None, spec.to_string()),
            3 => (
                Some(parts[0].to_string()),
                format!("{}:{}", parts[1], parts[2]),
            ),
            _ => return Err(bad(value, "too many ':' (IPv6 addresses go in brackets)")),
        }
    };
    if let Some(ip) = &host_ip {
        if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
            return Err(bad(value, &format!("{ip:?} is not an IP address")));
        }
    }
    let (host, ctr) = match rest.split_once(':') {
        Some((h, c)) => (h, c),
        None => ("", rest.as_str()),
    };
    if ctr.is_empty() {
        return Err(bad(value, "no container port"));
    }
    let (ctr_port, ctr_count) = port_range(value, ctr)?;
    let host_ip = host_ip.unwrap_or_default();
    if host.is_empty() {
        return Ok((0..ctr_count)
            .map(|i| PortMapping {
                host_ip: host_ip.clone(),
                container_port: ctr_port + i,
                host_port: 0,
                range: 1,
                protocol: protocol.clone(),
            })
            .collect());
    }
    let (host_port, host_count) = port_range(value, host)?;
    if host_count != ctr_count {
        return Err(bad(
            value,
            "the host and container port ranges must have the same length",
        ));
    }
    Ok(vec![PortMapping {
        host_ip,
        container_port: ctr_port,
        host_port,
        range: ctr_count,
        protocol,
    }])
}

/// `-P`: each exposed port (`80`, `80/tcp`, `53/udp`) not already published
/// gets a random host port on all interfaces.
pub fn publish_exposed(
    exposed: &[String],
    mappings: &mut Vec<PortMapping>,
) -> Result<(), NetworkError> {
    for e in exposed {
        let (port, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
        let (first, count) = port_range(e, port)?;
        for p in first..first + count {
            let taken = mappings.iter().any(|m| {
                m.protocol == proto && (m.container_port..m.container_port + m.range).contains(&p)
            });
            if !taken {
                mappings.push(PortMapping {
                    host_ip: String::new(),
                    container_port: p,
                    host_port: 0,
                    range: 1,
                    protocol: proto.to_ascii_lowercase(),
                });
            }
        }
    }
    Ok(())
}

/// Choose a free host port (the kernel's pick for port 0) for every mapping
/// that has none, at create time like Podman, so they stay across restarts.
pub fn assign_random_ports(mappings: &mut [PortMapping]) -> Result<(), NetworkError> {
    let mut used: Vec<(String, u16)> = Vec::new();
    for m in mappings.iter().filter(|m| m.host_port != 0) {
        for p in m.host_port..m.host_port + m.range {
            used.push((m.protocol.clone(), p));
        }
    }
    for m in mappings.iter_mut().filter(|m| m.host_port == 0) {
        let ip = if m.host_ip.is_empty() {
            "0.0.0.0"
        } else {
            &m.host_ip
        };
        let mut chosen = None;
        for _ in 0..32 {
            let port = random_port(ip, &m.protocol).map_err(|e| {
                NetworkError::io(format!("choosing a random {} port", m.protocol), e)
            })?;
            if !used.contains(&(m.protocol.clone(), port)) {
                chosen = Some(port);
                break;
            }
        }
        let port = chosen.ok_or_else(|| NetworkError::Config("no free random host port".into()))?;
        used.push((m.protocol.clone(), port));
        m.host_port = port;
    }
    Ok(())
}

fn random_port(ip: &str, protocol: &str) -> std::io::Result<u16> {
    let addr = if ip.contains(':') {
        format!("[{ip}]:0")
    } else {
        format!("{ip}:0")
    };
    if protocol == "udp" {
        Ok(UdpSocket::bind(addr)?.local_addr()?.port())
    } else {
        Ok(TcpListener::bind(addr)?.local_addr()?.port())
    }
}

fn shown_ip(ip: &str) -> &str {
    if ip.is_empty() {
        "0.0.0.0"
    } else {
        ip
    }
}

/// One mapping per port, ranges expanded: (container port, protocol, host ip, host port).
pub fn expanded(mappings: &[PortMapping]) -> Vec<(u16, &str, &str, u16)> {
    let mut out = Vec::new();
    for m in mappings {
        for i in 0..m.range {
            out.push((
                m.container_port + i,
                m.protocol.as_str(),
                m.host_ip.as_str(),
                m.host_port + i,
            ));
        }
    }
    out
}

/// Is this mapping served by vigil's port forwarder rather than by
/// netavark's firewall rules? Those on an IPv6 host address: the kernel does
/// not DNAT connections from `::1` (IPv6 has no `route_localnet`), and
/// netavark adds no rule at all for a container without an IPv6 address.
/// And every mapping of a container without an IPv4 address (its first
/// network is IPv6-only): netavark cannot send IPv4 traffic to it.
pub fn forwarded_in_user_space(m: &PortMapping, container_has_ipv4: bool) -> bool {
    m.host_ip.contains(':') || !container_has_ipv4
}

/// The mappings netavark is given (the others go through the forwarder).
pub fn for_netavark(mappings: &[PortMapping], container_has_ipv4: bool) -> Vec<PortMapping> {
    mappings
        .iter()
        .filter(|m| !forwarded_in_user_space(m, container_has_ipv4))
        .cloned()
        .collect()
}

/// `vigil port CTR`: `80/tcp -> 127.0.0.1:18080` lines, in mapping order.
pub fn port_lines(mappings: &[PortMapping]) -> Vec<String> {
    expanded(mappings)
        .into_iter()
        .map(|(c, proto, ip, h)| format!("{c}/{proto} -> {}:{h}", shown_ip(ip)))
        .collect()
}

/// `vigil port CTR 80[/tcp]`: the host addresses of that container port.
pub fn port_lookup(mappings: &[PortMapping], query: &str) -> Result<Vec<String>, NetworkError> {
    let (port, proto) = query.split_once('/').unwrap_or((query, "tcp"));
    let port: u16 = port
        .parse()
        .map_err(|_| NetworkError::Config(format!("invalid port {query:?}")))?;
    Ok(expanded(mappings)
        .into_iter()
        .filter(|(c, p, _, _)| *c == port && *p == proto)
        .map(|(_, _, ip, h)| format!("{}:{h}", shown_ip(ip)))
        .collect())
}

/// The PORTS column of `ps`: `127.0.0.1:18100-18102->80-82/tcp, 0.0.0.0:46775->81/tcp`.
pub fn ps_column(mappings: &[PortMapping]) -> String {
    mappings
        .iter()
        .map(|m| {
            let ip = shown_ip(&m.host_ip);
            if m.range > 1 {
                format!(
                    "{ip}:{}-{}->{}-{}/{}",
                    m.host_port,
                    m.host_port + m.range - 1,
                    m.container_port,
                    m.container_port + m.range - 1,
                    m.protocol
                )
            } else {
                format!("{ip}:{}->{}/{}", m.host_port, m.container_port, m.protocol)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// inspect's `Ports`: `{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"18080"}]}`.
pub fn inspect_ports(mappings: &[PortMapping]) -> serde_json::Value {
    let mut map: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for (c, proto, ip, h) in expanded(mappings) {
        map.entry(format!("{c}/{proto}"))
            .or_default()
            .push(serde_json::json!({"HostIp": ip, "HostPort": h.to_string()}));
    }
    serde_json::to_value(map).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: &str) -> PortMapping {
        let mut m = parse_publish(v).unwrap();
        assert_eq!(m.len(), 1, "{v}");
        m.remove(0)
    }

    #[test]
    fn every_publish_form() {
        let m = one("18080:80");
        assert_eq!(
            (m.host_ip.as_str(), m.host_port, m.container_port, m.range),
            ("", 18080, 80, 1)
        );
        let m = one("127.0.0.1:18080:80");
        assert_eq!((m.host_ip.as_str(), m.host_port), ("127.0.0.1", 18080));
        let m = one("127.0.0.1::8080");
        assert_eq!(
            (m.host_ip.as_str(), m.host_port, m.container_port),
            ("127.0.0.1", 0, 8080)
        );
        let m = one("81");
        assert_eq!(
            (m.host_port, m.container_port, m.protocol.as_str()),
            (0, 81, "tcp")
        );
        let m = one("127.0.0.1:18100-18102:80-82");
        assert_eq!((m.host_port, m.container_port, m.range), (18100, 80, 3));
        assert_eq!(one("18090:90/udp").protocol, "udp");
        assert_eq!(one("127.0.0.1:18120:80/sctp").protocol, "sctp");
        let m = one("[::1]:8080:80");
        assert_eq!((m.host_ip.as_str(), m.host_port), ("::1", 8080));
        assert_eq!(parse_publish("80-82").unwrap().len(), 3);
        for badv in [
            "",
            "x",
            "80:",
            "1-2:80",
            "0:80",
            "70000",
            "80/icmp",
            "a:b:c:d",
            "1.2.3:80:80",
            "[::1:80:80",
            "90-80:80-90",
        ] {
            let e = parse_publish(badv).unwrap_err();
            assert!(e.to_string().contains(&format!("{badv:?}")), "{e}");
            assert_eq!(e.exit_code(), 125);
        }
    }

    #[test]
    fn shown_like_podman() {
        let mut m = parse_publish("127.0.0.1:18100-18102:80-82").unwrap();
        m.extend(parse_publish("18090:90/udp").unwrap());
        assert_eq!(
            port_lines(&m),
            [
                "80/tcp -> 127.0.0.1:18100",
                "81/tcp -> 127.0.0.1:18101",
                "82/tcp -> 127.0.0.1:18102",
                "90/udp -> 0.0.0.0:18090"
            ]
        );
        assert_eq!(
            ps_column(&m),
            "127.0.0.1:18100-18102->80-82/tcp, 0.0.0.0:18090->90/udp"
        );
        assert_eq!(port_lookup(&m, "81").unwrap(), ["127.0.0.1:18101"]);
        assert_eq!(port_lookup(&m, "90/udp").unwrap(), ["0.0.0.0:18090"]);
        assert_eq!(
            inspect_ports(&m)["90/udp"],
            serde_json::json!([{"HostIp": "", "HostPort": "18090"}])
        );
    }

    #[test]
    fn random_and_exposed_ports() {
        let mut m = parse_publish("127.0.0.1::8080").unwrap();
        publish_exposed(&["8080/tcp".into(), "9000-9001/udp".into()], &mut m).unwrap();
        assert_eq!(m.len(), 3, "8080 already published: {m:?}");
        assign_random_ports(&mut m).unwrap();
        assert!(m.iter().all(|p| p.host_port != 0));
    }
}
