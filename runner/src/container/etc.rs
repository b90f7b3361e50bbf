//! Per-container `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` and
//! `/run/.containerenv`, bind-mounted from the state directory (runner-notes §3.5).

use std::fs;
use std::path::Path;

use crate::error::RunnerError;
use crate::spec::{BindMount, Network};

/// The hosts file: the host's, plus the container's own name on loopback.
pub fn hosts_file(host_hosts: &str, hostname: &str, name: &str) -> String {
    let mut out = host_hosts.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("127.0.0.1\t{hostname} {name}\n"));
    out
}

/// resolv.conf for a private network namespace: the host's, without
/// loopback name servers (falling back to Google's, like Podman).
pub fn resolv_conf(host: &str, network: &Network) -> String {
    if *network == Network::Host {
        return host.to_string();
    }
    let mut servers = 0;
    let mut out = String::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let addr = words.next().unwrap_or("");
            if addr.starts_with("127.") || addr == "::1" {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// Write the files into `dir` and return their bind mounts.
pub fn write_files(
    dir: &Path,
    hostname: &str,
    name: &str,
    network: &Network,
) -> Result<Vec<BindMount>, RunnerError> {
    let write = |file: &str, text: &str| {
        let path = dir.join(file);
        fs::write(&path, text)
            .map_err(|e| RunnerError::io(format!("writing {}", path.display()), e))?;
        Ok::<_, RunnerError>(path)
    };
    let bind = |source, destination: &str| BindMount {
        source,
        destination: destination.into(),
        options: vec!["bind".into(), "rprivate".into()],
    };
    let host_hosts = fs::read_to_string("/etc/hosts").unwrap_or_default();
    let mut mounts = vec![
        bind(
            write("hostname", &format!("{hostname}\n"))?,
            "/etc/hostname",
        ),
        bind(
            write("hosts", &hosts_file(&host_hosts, hostname, name))?,
            "/etc/hosts",
        ),
    ];
    if *network != Network::None {
        let mut host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        if host.contains("127.0.0.53") {
            host = fs::read_to_string("/run/systemd/resolve/resolv.conf").unwrap_or(host);
        }
        mounts.push(bind(
            write("resolv.conf", &resolv_conf(&host, network))?,
            "/etc/resolv.conf",
        ));
    }
    mounts.push(bind(write(".containerenv", "")?, "/run/.containerenv"));
    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_have_podman_content() {
        assert_eq!(
            hosts_file("127.0.0.1 localhost", "abc", "web"),
            "127.0.0.1 localhost\n127.0.0.1\tabc web\n"
        );
        let host = "search x\nnameserver 127.0.0.53\nnameserver 10.0.0.1\n";
        assert_eq!(
            resolv_conf(host, &Network::None),
            "search x\nnameserver 10.0.0.1\n"
        );
        assert_eq!(
            resolv_conf("nameserver 127.0.0.1\n", &Network::None),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(resolv_conf(host, &Network::Host), host);
    }
}
