//! Rootless networking as the test user (scripts/rootless-setup): slirp4netns
//! with vigil's port forwarder, a published loopback port reached with a
//! real HTTP client, the privileged-port refusal with rootlessport's hint,
//! and nothing left after stop (helpers, namespace, port). Traffic goes only
//! to 127.0.0.1.

mod network_support;
mod rootless_support;

use std::path::Path;
use std::time::Duration;

use network_support::*;
use rootless_support::*;

fn setup_net(test: &str) -> Option<(Rootless, &'static str)> {
    if !Path::new("/usr/bin/slirp4netns").exists() {
        eprintln!("skipping {test}: slirp4netns not installed (scripts/ci-setup)");
        return None;
    }
    let r = setup(test)?;
    let image = r.load_image()?;
    Some((r, image))
}

/// `run -d FLAGS IMAGE` serving /etc over HTTP on `port` inside.
fn httpd_args<'a>(flags: &[&'a str], image: &'a str, port: &'a str) -> Vec<&'a str> {
    let mut a = vec!["run", "-d", "--user", "0", "--entrypoint", "/bin/busybox"];
    a.extend_from_slice(flags);
    a.extend_from_slice(&[image, "httpd", "-f", "-p", port, "-h", "/etc"]);
    a
}

#[test]
fn rootless_published_port_and_teardown() {
    let Some((r, image)) = setup_net("rootless_published_port_and_teardown") else {
        return;
    };
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let id = r
        .ok(&httpd_args(
            &["--name", "rweb", "-p", &publish],
            image,
            "8080",
        ))
        .trim()
        .to_string();
    assert_eq!(
        http_get(&format!("127.0.0.1:{port}"), "/hostname"),
        format!("{}\n", &id[..12])
    );
    let rec: serde_json::Value = serde_json::from_str(&r.ok(&["inspect", "rweb"])).unwrap();
    let ns = &rec[0]["NetworkSettings"];
    assert_eq!(rec[0]["HostConfig"]["NetworkMode"], "slirp4netns");
    assert_eq!(
        ns["Ports"],
        serde_json::json!({"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": port.to_string()}]})
    );
    assert_eq!(ns["IPAddress"], "");
    assert!(ns.get("Networks").is_none());
    let sandbox = ns["SandboxKey"].as_str().unwrap().to_string();
    assert!(
        sandbox.starts_with(&r.state().join("netns/netns-").display().to_string()),
        "{sandbox}"
    );
    assert_eq!(
        r.ok(&["port", "rweb"]),
        format!("8080/tcp -> 127.0.0.1:{port}\n")
    );
    let addr = r.ok(&[
        "exec",
        "rweb",
        "/bin/busybox",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "tap0",
    ]);
    assert!(addr.contains("inet 10.0.2.100/24"), "{addr}");
    let resolv = r.ok(&["exec", "rweb", "/bin/busybox", "cat", "/etc/resolv.conf"]);
    assert!(resolv.starts_with("nameserver 10.0.2.3\n"), "{resolv}");
    assert_eq!(
        processes_with(&sandbox).len(),
        2,
        "slirp4netns and the forwarder"
    );

    r.ok(&["stop", "-t", "1", "rweb"]);
    assert_no_process(&sandbox, Duration::from_secs(10));
    assert!(!Path::new(&sandbox).exists());
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "port {port} still held"
    );
    r.ok(&["rm", "rweb"]);
    r.assert_clean();
}

#[test]
fn rootless_privileged_port_is_refused_with_the_hint() {
    let Some((r, image)) = setup_net("rootless_privileged_port_is_refused_with_the_hint") else {
        return;
    };
    let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .unwrap_or_default();
    if start.trim() != "1024" {
        eprintln!("skipping: net.ipv4.ip_unprivileged_port_start is {start}");
        return;
    }
    let out = r.run(&httpd_args(&["--name", "priv", "-p", "80:80"], image, "80"));
    assert_eq!(out.status.code(), Some(126));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "vigil run: rootlessport cannot expose privileged port 80, you can add \
         'net.ipv4.ip_unprivileged_port_start=80' to /etc/sysctl.conf (currently 1024), or \
         choose a larger port number (>= 1024): listen tcp 0.0.0.0:80: bind: permission denied\n"
    );
    // Nothing runs for it and nothing is set up.
    let rec: serde_json::Value = serde_json::from_str(&r.ok(&["inspect", "priv"])).unwrap();
    assert_eq!(rec[0]["State"]["Status"], "created");
    assert_eq!(rec[0]["NetworkSettings"]["SandboxKey"], "");
    let netns = r.state().join("netns");
    let left: Vec<_> = std::fs::read_dir(&netns)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    assert!(processes_with(&netns.display().to_string()).is_empty());
}
