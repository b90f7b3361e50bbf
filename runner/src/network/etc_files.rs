//! `/etc/hosts` and `/etc/resolv.conf` contents for a container, as Podman
//! 4.3.1 writes them (runner-network §5).

/// What the files depend on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EtcInfo {
    /// The container's own address (None: loopback for a private
    /// namespace, no entry with the host's network).
    pub address: Option<String>,
    /// Its addresses on further networks (one hosts line each, as Podman).
    pub more_addresses: Vec<String>,
    /// `host.containers.internal` (None: no entry).
    pub host_gateway: Option<String>,
    /// The host's network: hosts and resolv.conf are the host's.
    pub host_network: bool,
    /// Name servers that come first (aardvark's, slirp4netns's forwarder).
    pub network_dns: Vec<String>,
    pub network_search: Vec<String>,
    /// `--dns`, `--dns-search`: replace the rest.
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    /// `--add-host NAME:IP`.
    pub add_hosts: Vec<(String, String)>,
}

/// Parse `--add-host HOST:IP` (IPv6 addresses may contain ':').
pub fn parse_add_host(value: &str) -> Result<(String, String), String> {
    let (host, ip) = value
        .split_once(':')
        .ok_or_else(|| format!("invalid --add-host {value:?}: expected HOST:IP"))?;
    if host.is_empty() || ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid --add-host {value:?}: expected HOST:IP"));
    }
    Ok((host.to_string(), ip.to_string()))
}

/// The hosts file: `--add-host` entries, the host's entries (comments and
/// blank lines dropped, fields joined by a tab), `host.containers.internal`,
/// then `<address>\t<hostname> <name>` (the name only when it differs).
pub fn hosts_file(host_hosts: &str, info: &EtcInfo, hostname: &str, name: &str) -> String {
    let mut out = String::new();
    for (host, ip) in &info.add_hosts {
        out.push_str(&format!("{ip}\t{host}\n"));
    }
    for line in host_hosts.lines() {
        let line = line.split('#').next().unwrap_or("");
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() >= 2 {
            out.push_str(&fields.join("\t"));
            out.push('\n');
        }
    }
    if let Some(gw) = &info.host_gateway {
        out.push_str(&format!("{gw}\thost.containers.internal\n"));
    }
    if info.host_network {
        return out;
    }
    let address = info.address.as_deref().unwrap_or("127.0.0.1");
    for a in std::iter::once(address).chain(info.more_addresses.iter().map(String::as_str)) {
        out.push_str(&container_line(a, hostname, name));
    }
    out
}

/// The hosts line of the container at `address`.
fn container_line(address: &str, hostname: &str, name: &str) -> String {
    if hostname == name {
        format!("{address}\t{hostname}\n")
    } else {
        format!("{address}\t{hostname} {name}\n")
    }
}

/// A running container's hosts file after it joined a network at `address`.
pub fn hosts_add_address(hosts: &str, address: &str, hostname: &str, name: &str) -> String {
    let mut out = hosts.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&container_line(address, hostname, name));
    out
}

/// A running container's hosts file after it left the network where it had
/// `address` (only the container's own line goes).
pub fn hosts_remove_address(hosts: &str, address: &str, hostname: &str, name: &str) -> String {
    let own = container_line(address, hostname, name);
    let mut out = String::new();
    for line in hosts.split_inclusive('\n') {
        if line != own && line.trim_end() != own.trim_end() {
            out.push_str(line);
        }
    }
    out
}

/// A running container's resolv.conf after it joined a network with DNS
/// (`server`, `search`): the server first, as Podman puts it. Unchanged when
/// `--dns` chose the servers.
pub fn resolv_add_network(resolv: &str, info: &EtcInfo, server: &str, search: &str) -> String {
    if !info.dns.is_empty() || info.host_network {
        return resolv.to_string();
    }
    let mut out = String::new();
    let mut server_written = false;
    let mut search_written = !info.dns_search.is_empty();
    for line in resolv.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("search") => {
                let domains: Vec<&str> = words.collect();
                if domains.contains(&search) || search_written {
                    out.push_str(line);
                } else {
                    out.push_str(&format!("search {search} {}", domains.join(" ")));
                }
                search_written = true;
                out.push('\n');
                continue;
            }
            Some("nameserver") if !server_written => {
                if !search_written {
                    out.push_str(&format!("search {search}\n"));
                    search_written = true;
                }
                if words.next() != Some(server) {
                    out.push_str(&format!("nameserver {server}\n"));
                }
                server_written = true;
            }
            _ => {}
        }
        out.push_str(line);
        out.push('\n');
    }
    if !server_written {
        out.push_str(&format!("nameserver {server}\n"));
    }
    out
}

/// A running container's resolv.conf after it left the network whose DNS
/// server was `server`.
pub fn resolv_remove_server(resolv: &str, server: &str) -> String {
    let mut out = String::new();
    for line in resolv.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") && words.next() == Some(server) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// resolv.conf: the host's for the host's network; otherwise `--dns` alone
/// if given, else the network's servers first, then the host's without
/// loopback ones (Google's if none remain); search domains likewise
/// (`--dns-search`, else the host's after the network's unless `--dns`).
pub fn resolv_conf(host: &str, info: &EtcInfo) -> String {
    if info.host_network {
        return host.to_string();
    }
    let mut search: Vec<String> = Vec::new();
    let mut servers: Vec<String> = Vec::new();
    let mut others: Vec<String> = Vec::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                let addr = words.next().unwrap_or("");
                if !(addr.starts_with("127.")
                    || addr == "::1"
                    || addr.contains(':')
                    || addr.is_empty())
                {
                    servers.push(addr.to_string());
                }
            }
            Some("search") | Some("domain") => search.extend(words.map(String::from)),
            Some(_) => others.push(line.to_string()),
            None => {}
        }
    }
    if servers.is_empty() {
        servers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    let servers: Vec<String> = if !info.dns.is_empty() {
        info.dns.clone()
    } else {
        info.network_dns.iter().cloned().chain(servers).collect()
    };
    let search: Vec<String> = if !info.dns_search.is_empty() {
        info.dns_search
            .iter()
            .filter(|s| s.as_str() != ".")
            .cloned()
            .collect()
    } else if !info.dns.is_empty() {
        // Podman 4.3.1: `--dns` replaces the network's server and its
        // search domain (dns.podman) alike; the host's stay.
        search
    } else {
        info.network_search.iter().cloned().chain(search).collect()
    };
    let mut out = String::new();
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    for o in others {
        out.push_str(&o);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &str = "127.0.0.1 localhost\n# comment\n\n127.0.0.1   runsc # x\n";

    #[test]
    fn hosts_like_podman() {
        let info = EtcInfo {
            address: Some("10.77.0.12".into()),
            host_gateway: Some("10.77.0.1".into()),
            add_hosts: vec![("db".into(), "10.1.2.3".into())],
            ..Default::default()
        };
        assert_eq!(
            hosts_file(HOSTS, &info, "429a15c08667", "web"),
            "10.1.2.3\tdb\n127.0.0.1\tlocalhost\n127.0.0.1\trunsc\n10.77.0.1\thost.containers.internal\n10.77.0.12\t429a15c08667 web\n"
        );
        let none = EtcInfo::default();
        assert!(hosts_file(HOSTS, &none, "h", "n").ends_with("runsc\n127.0.0.1\th n\n"));
        let host = EtcInfo {
            host_network: true,
            ..Default::default()
        };
        assert!(hosts_file(HOSTS, &host, "h", "n").ends_with("runsc\n"));
        assert_eq!(
            parse_add_host("db:10.1.2.3").unwrap(),
            ("db".into(), "10.1.2.3".into())
        );
        assert_eq!(parse_add_host("v6:fd00::1").unwrap().1, "fd00::1");
        assert!(parse_add_host("db").is_err() && parse_add_host("db:x").is_err());
    }

    #[test]
    fn connect_and_disconnect_edit_the_files() {
        let hosts = "127.0.0.1\tlocalhost\n10.77.0.5\tabc web\n";
        let added = hosts_add_address(hosts, "10.78.0.2", "abc", "web");
        assert_eq!(added, format!("{hosts}10.78.0.2\tabc web\n"));
        assert_eq!(
            hosts_remove_address(&added, "10.78.0.2", "abc", "web"),
            hosts
        );
        let info = EtcInfo::default();
        let resolv = "search example.org\nnameserver 10.255.255.53\n";
        let joined = resolv_add_network(resolv, &info, "10.78.0.1", "dns.podman");
        assert_eq!(
            joined,
            "search dns.podman example.org\nnameserver 10.78.0.1\nnameserver 10.255.255.53\n"
        );
        assert_eq!(
            resolv_add_network(&joined, &info, "10.78.1.1", "dns.podman"),
            "search dns.podman example.org\nnameserver 10.78.1.1\nnameserver 10.78.0.1\nnameserver 10.255.255.53\n"
        );
        assert_eq!(
            resolv_add_network(
                "nameserver 10.255.255.53\n",
                &info,
                "10.78.0.1",
                "dns.podman"
            ),
            "search dns.podman\nnameserver 10.78.0.1\nnameserver 10.255.255.53\n"
        );
        assert_eq!(
            resolv_remove_server(&joined, "10.78.0.1"),
            "search dns.podman example.org\nnameserver 10.255.255.53\n"
        );
    }

    #[test]
    fn resolv_like_podman() {
        let host =
            "search example.org\nnameserver 127.0.0.53\nnameserver 10.255.255.53\noptions edns0\n";
        let plain = EtcInfo::default();
        assert_eq!(
            resolv_conf(host, &plain),
            "search example.org\nnameserver 10.255.255.53\noptions edns0\n"
        );
        let dns_net = EtcInfo {
            network_dns: vec!["10.78.1.1".into()],
            network_search: vec!["dns.podman".into()],
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(host, &dns_net),
            "search dns.podman example.org\nnameserver 10.78.1.1\nnameserver 10.255.255.53\noptions edns0\n"
        );
        let flags = EtcInfo {
            dns: vec!["10.78.1.1".into()],
            dns_search: vec!["a.test".into()],
            ..dns_net.clone()
        };
        assert_eq!(
            resolv_conf(host, &flags),
            "search a.test\nnameserver 10.78.1.1\noptions edns0\n"
        );
        let servers_only = EtcInfo {
            dns: vec!["10.78.1.1".into()],
            ..dns_net.clone()
        };
        assert_eq!(
            resolv_conf(host, &servers_only),
            "search example.org\nnameserver 10.78.1.1\noptions edns0\n"
        );
        assert_eq!(
            resolv_conf("nameserver 127.0.0.1\n", &plain),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
    }
}
