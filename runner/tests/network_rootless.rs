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
    let (port, publish) = loopback_publish("8080");
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
        &id[..12]
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

/// A UDP server in the container: every datagram comes back prefixed with
/// "echo:". busybox has no UDP server, so the host's python3 is mounted
/// read-only (with /usr and the loader) and runs it.
const UDP_ECHO: &str = "import socket\n\
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
s.bind(('0.0.0.0', 9000))\n\
while True: d, a = s.recvfrom(65535); s.sendto(b'echo:' + d, a)\n";

#[test]
fn rootless_udp_port_is_forwarded() {
    let Some((r, image)) = setup_net("rootless_udp_port_is_forwarded") else {
        return;
    };
    if !Path::new("/usr/bin/python3").exists() {
        eprintln!("skipping rootless_udp_port_is_forwarded: no /usr/bin/python3 to serve UDP");
        return;
    }
    let (port, publish) = loopback_publish("9000/udp");
    r.ok(&[
        "run",
        "-d",
        "--name",
        "rudp",
        "--user",
        "0",
        "--entrypoint",
        "/usr/bin/python3",
        "-p",
        &publish,
        "-v",
        "/usr:/usr:ro",
        "-v",
        "/usr/lib:/lib:ro",
        "-v",
        "/usr/lib64:/lib64:ro",
        image,
        "-c",
        UDP_ECHO,
    ]);
    assert_eq!(
        r.ok(&["port", "rudp"]),
        format!("9000/udp -> 127.0.0.1:{port}\n")
    );
    let addr = format!("127.0.0.1:{port}");
    let exchange = |payload: &[u8]| {
        udp_exchange(&addr, payload).unwrap_or_else(|| {
            panic!(
                "no UDP answer from {addr}; container log: {}",
                text(&r.run(&["logs", "rudp"]).stderr)
            )
        })
    };
    // Each exchange is another client (socket): each gets its own answers.
    assert_eq!(exchange(b"one"), b"echo:one");
    assert_eq!(exchange(b"two"), b"echo:two");
    let big = vec![b'x'; 1400];
    let mut wanted = b"echo:".to_vec();
    wanted.extend_from_slice(&big);
    assert_eq!(exchange(&big), wanted);

    let rec: serde_json::Value = serde_json::from_str(&r.ok(&["inspect", "rudp"])).unwrap();
    let sandbox = rec[0]["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap()
        .to_string();
    r.ok(&["rm", "-f", "rudp"]);
    assert_no_process(&sandbox, Duration::from_secs(10));
    assert!(
        std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok(),
        "udp port {port} still held"
    );
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
    // No bridge networks rootless: connecting the slirp4netns container to
    // one is refused in Podman 4.3.1's words, and so is running on one.
    let args = ["network", "connect", "vigil", "priv"];
    assert_exit(
        &r.run(&args),
        125,
        "\"slirp4netns\" is not supported: invalid network mode",
        &args,
    );
    let out = r.run(&["run", "--rm", "--network", "vigil", image, "true"]);
    assert_exit(
        &out,
        125,
        "--network vigil: rootless vigil has no bridge networks",
        &"run --network vigil",
    );
}
