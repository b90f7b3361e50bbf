//! Rootless networking as the test user (scripts/rootless-setup): slirp4netns
//! with vigil's port forwarder, a published loopback port reached with a
//! real HTTP client, the privileged-port refusal with rootlessport's hint,
//! and nothing left after stop (helpers, namespace, port); user networks in
//! the shared rootless netns (DNS by name, ports, teardown, kills). Traffic
//! goes only to 127.0.0.1 and to the test's own containers on its networks;
//! lookups only of the test's container names at the network's aardvark-dns.

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
    // Connecting the slirp4netns container to a bridge network is refused
    // in Podman 4.3.1's words.
    let args = ["network", "connect", "vigil", "priv"];
    assert_exit(
        &r.run(&args),
        125,
        "\"slirp4netns\" is not supported: invalid network mode",
        &args,
    );
}

/// A container's address on network `net` (inspect).
fn address_on(r: &Rootless, name: &str, net: &str) -> String {
    let rec: serde_json::Value = serde_json::from_str(&r.ok(&["inspect", name])).unwrap();
    rec[0]["NetworkSettings"]["Networks"][net]["IPAddress"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} has no address on {net}: {rec}"))
        .to_string()
}

/// A user-defined network as the test user, as rootless Podman 4.3.1 has it:
/// one shared namespace for the user with slirp4netns for the way out,
/// netavark and aardvark-dns inside it; two containers resolve each other
/// by name (asking only the network's aardvark-dns), a published loopback
/// port answers through vigil's forwarder, and when both are gone nothing
/// of the shared namespace is left: no slirp4netns, no aardvark-dns, no
/// namespace file or mount, no address held.
#[test]
fn rootless_user_network_dns_ports_and_teardown() {
    let Some((r, image)) = setup_net("rootless_user_network_dns_ports_and_teardown") else {
        return;
    };
    assert_eq!(r.ok(&["network", "create", "unet"]), "unet\n");
    let def: serde_json::Value =
        serde_json::from_str(&r.ok(&["network", "inspect", "unet"])).unwrap();
    assert_eq!(def[0]["dns_enabled"], true, "{def}");
    let gw = def[0]["subnets"][0]["gateway"]
        .as_str()
        .unwrap()
        .to_string();

    let (port, publish) = loopback_publish("8080");
    let web_id = r
        .ok(&httpd_args(
            &["--name", "uweb", "--network", "unet", "-p", &publish],
            image,
            "8080",
        ))
        .trim()
        .to_string();
    let cli_id = r
        .ok(&httpd_args(
            &["--name", "ucli", "--network", "unet", "--dns", &gw],
            image,
            "8081",
        ))
        .trim()
        .to_string();
    let web_ip = address_on(&r, "uweb", "unet");
    let cli_ip = address_on(&r, "ucli", "unet");
    assert_ne!(web_ip, cli_ip);
    // /etc/hosts and resolv.conf as rootless Podman 4.3.1 writes them on a
    // user network: host.containers.internal is the host's address (the
    // gateway is inside the shared namespace), aardvark-dns first.
    let hosts = r.ok(&["exec", "ucli", "/bin/busybox", "cat", "/etc/hosts"]);
    assert!(
        hosts.ends_with(&format!("{cli_ip}\t{} ucli\n", &cli_id[..12])),
        "{hosts}"
    );
    let host_line = hosts
        .lines()
        .find(|l| l.ends_with("\thost.containers.internal"))
        .unwrap_or_else(|| panic!("{hosts}"));
    assert!(!host_line.starts_with(&format!("{gw}\t")), "{hosts}");
    let resolv = r.ok(&["exec", "uweb", "/bin/busybox", "cat", "/etc/resolv.conf"]);
    assert!(
        resolv.starts_with(&format!("search dns.podman\nnameserver {gw}\n")),
        "{resolv}"
    );

    // The shared namespace, its slirp4netns and aardvark-dns.
    let shared = r.state().join("netns/rootless-netns");
    let shared_text = shared.display().to_string();
    let aardvark_cfg = r
        .state()
        .join("networks/rootless-netns/netavark/aardvark-dns")
        .display()
        .to_string();
    assert!(shared.exists());
    assert_eq!(
        processes_with(&shared_text).len(),
        2,
        "slirp4netns and the forwarder"
    );
    assert_eq!(processes_with(&aardvark_cfg).len(), 1, "aardvark-dns");

    // DNS by name, both ways, asking the network's aardvark-dns only.
    let exec = |a: &[&str]| {
        let mut args: Vec<&str> = a.to_vec();
        args.insert(2, "/bin/busybox");
        r.run(&args)
    };
    lookup(&exec, "ucli", "uweb", &gw, &web_ip);
    lookup(&exec, "uweb", "ucli", &gw, &cli_ip);
    // The published port, through the forwarder into the shared namespace.
    assert_eq!(
        http_get(&format!("127.0.0.1:{port}"), "/hostname"),
        &web_id[..12]
    );
    assert_eq!(
        r.ok(&["port", "uweb"]),
        format!("8080/tcp -> 127.0.0.1:{port}\n")
    );

    // A second network joined and left while running (netavark in the
    // shared namespace again): an address on it, lookups there too.
    r.ok(&["network", "create", "unet2"]);
    r.ok(&["network", "connect", "unet2", "uweb"]);
    let web_ip2 = address_on(&r, "uweb", "unet2");
    let def2: serde_json::Value =
        serde_json::from_str(&r.ok(&["network", "inspect", "unet2"])).unwrap();
    let subnet2 = def2[0]["subnets"][0]["subnet"].as_str().unwrap();
    let prefix2 = subnet2.rsplit_once(".0/").map(|(p, _)| p).unwrap();
    assert!(
        web_ip2.starts_with(&format!("{prefix2}.")),
        "{web_ip2} {subnet2}"
    );
    let addrs = r.ok(&["exec", "uweb", "/bin/busybox", "ip", "-o", "-4", "addr"]);
    assert!(addrs.contains(&format!("inet {web_ip2}/24")), "{addrs}");
    r.ok(&["network", "disconnect", "unet2", "uweb"]);
    let addrs = r.ok(&["exec", "uweb", "/bin/busybox", "ip", "-o", "-4", "addr"]);
    assert!(!addrs.contains(&web_ip2), "{addrs}");
    r.ok(&["network", "rm", "unet2"]);

    // The first one leaves: the shared namespace stays for the other.
    r.ok(&["rm", "-f", "uweb"]);
    assert!(shared.exists());
    assert_eq!(processes_with(&shared_text).len(), 1, "slirp4netns");
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "port {port} still held"
    );
    // The last one takes it along.
    r.ok(&["rm", "-f", "ucli"]);
    assert_no_process(&shared_text, Duration::from_secs(10));
    assert_no_process(&aardvark_cfg, Duration::from_secs(10));
    assert!(!shared.exists(), "{shared_text} left");
    assert!(!r.state().join("networks/rootless-netns").exists());
    assert_no_allocation(&r);
    if let Some(pause) = r.pause_pid() {
        let mounts = std::fs::read_to_string(format!("/proc/{pause}/mountinfo")).unwrap();
        assert!(!mounts.contains("rootless-netns"), "{mounts}");
    }
    r.ok(&["network", "rm", "unet"]);
    r.assert_clean();
}

/// No container of the test user holds an address (vigil's IPAM file).
#[track_caller]
fn assert_no_allocation(r: &Rootless) {
    let text = std::fs::read_to_string(r.state().join("networks/ipam.json")).unwrap_or_default();
    let db: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    for pools in ["networks", "networks6"] {
        for (net, pool) in db[pools].as_object().into_iter().flatten() {
            let held = &pool["allocated"];
            assert!(
                held.as_object().is_none_or(|m| m.is_empty()),
                "{net}: {held}"
            );
        }
    }
}

/// The pid of the shared namespace's slirp4netns (the test user's).
fn shared_slirp(shared: &str) -> Option<i32> {
    processes_with(shared).into_iter().find(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.starts_with(b"/usr/bin/slirp4netns\0"))
    })
}

/// `pid` is gone or a zombie (state after the last `)` of its stat line).
fn exited(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X")
    })
}

/// What killed processes leave of the shared namespace: a killed
/// slirp4netns is replaced by the next container's setup (the running
/// container keeps its place on the bridge), and a `vigil run` killed
/// while it set up leaves nothing once the next commands (`rm -f`, `ps`)
/// ran: no namespace, no slirp4netns or aardvark-dns, no address.
#[test]
fn rootless_shared_netns_survives_and_is_swept_after_kills() {
    let Some((r, image)) = setup_net("rootless_shared_netns_survives_and_is_swept_after_kills")
    else {
        return;
    };
    r.ok(&["network", "create", "knet"]);
    let shared = r.state().join("netns/rootless-netns");
    let shared_text = shared.display().to_string();
    let aardvark_cfg = r
        .state()
        .join("networks/rootless-netns/netavark/aardvark-dns")
        .display()
        .to_string();
    r.ok(&httpd_args(
        &["--name", "k1", "--network", "knet"],
        image,
        "8080",
    ));
    let first = shared_slirp(&shared_text).expect("slirp4netns of the shared namespace");
    // SAFETY: killing the test user's slirp4netns, found by its command line.
    unsafe { libc::kill(first, libc::SIGKILL) };
    // SIGKILL is delivered asynchronously: until the process has exited,
    // the next setup rightly sees slirp4netns alive and keeps it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !exited(first) {
        assert!(
            std::time::Instant::now() < deadline,
            "slirp4netns {first} still running 10 s after SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (port, publish) = loopback_publish("8080");
    let id = r
        .ok(&httpd_args(
            &["--name", "k2", "--network", "knet", "-p", &publish],
            image,
            "8080",
        ))
        .trim()
        .to_string();
    let second = shared_slirp(&shared_text).expect("a new slirp4netns");
    assert_ne!(first, second);
    assert_eq!(
        http_get(&format!("127.0.0.1:{port}"), "/hostname"),
        &id[..12]
    );
    let k1_ip = address_on(&r, "k1", "knet");
    let gw = k1_ip
        .rsplit_once('.')
        .map(|(n, _)| format!("{n}.1"))
        .unwrap();
    let exec = |a: &[&str]| {
        let mut args: Vec<&str> = a.to_vec();
        args.insert(2, "/bin/busybox");
        r.run(&args)
    };
    lookup(&exec, "k2", "k1", &gw, &k1_ip);
    r.ok(&["rm", "-f", "k1", "k2"]);
    assert!(!shared.exists());

    // A `vigil run` killed once the shared namespace is there.
    let mut child = r
        .command(&httpd_args(
            &["--name", "k3", "--network", "knet"],
            image,
            "8080",
        ))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn vigil");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !shared.exists() && child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "no shared namespace");
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = r.run(&["rm", "-f", "k3"]);
    r.ok(&["ps", "-a"]);
    assert_no_process(&shared_text, Duration::from_secs(10));
    assert_no_process(&aardvark_cfg, Duration::from_secs(10));
    assert!(!shared.exists(), "{shared_text} left");
    assert_no_allocation(&r);

    // A container that ends on its own (the monitor's exit command tears it
    // down) and a `run --rm` take the namespace along too.
    r.ok(&[
        "run",
        "-d",
        "--name",
        "k4",
        "--network",
        "knet",
        "--entrypoint",
        "/bin/busybox",
        image,
        "true",
    ]);
    r.ok(&[
        "run",
        "--rm",
        "--network",
        "knet",
        "--entrypoint",
        "/bin/busybox",
        image,
        "true",
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while shared.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{shared_text} left after the containers ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_no_process(&shared_text, Duration::from_secs(10));
    assert_no_allocation(&r);

    // An address whose container is gone (a vigil killed between removing
    // a container and releasing its address; made here by adding it to the
    // allocation file) no longer keeps the namespace alive: the next
    // command releases it, and the last container's removal takes the
    // namespace along.
    r.ok(&httpd_args(
        &["--name", "k5", "--network", "knet"],
        image,
        "8080",
    ));
    assert!(shared.exists());
    let k5_ip = address_on(&r, "k5", "knet");
    let stale_ip = k5_ip
        .rsplit_once('.')
        .map(|(n, _)| format!("{n}.250"))
        .unwrap();
    add_allocation(&r, "knet", &stale_ip, &"0".repeat(64));
    r.ok(&["rm", "-f", "k5"]);
    r.ok(&["ps", "-a"]);
    assert_no_process(&shared_text, Duration::from_secs(10));
    assert_no_process(&aardvark_cfg, Duration::from_secs(10));
    assert!(
        !shared.exists(),
        "{shared_text} left by a gone container's address"
    );
    assert_no_allocation(&r);

    r.ok(&["rm", "k4"]);
    r.ok(&["network", "rm", "knet"]);
    r.assert_clean();
}

/// Records in vigil's allocation file that container `id` holds `ip` on
/// `net`, as a killed vigil can leave it (the file keeps its owner).
fn add_allocation(r: &Rootless, net: &str, ip: &str, id: &str) {
    let path = r.state().join("networks/ipam.json");
    let text = std::fs::read_to_string(&path).expect("the allocation file");
    let mut db: serde_json::Value = serde_json::from_str(&text).expect("allocations as JSON");
    db["networks"][net]["allocated"][ip] = serde_json::Value::String(id.to_string());
    std::fs::write(&path, serde_json::to_vec(&db).unwrap()).unwrap();
}

/// The command line of the shared namespace's slirp4netns, its path shown
/// as NETNS.
fn slirp_argv(shared_prefix: &str) -> String {
    let pid = processes_with(shared_prefix)
        .into_iter()
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.starts_with(b"/usr/bin/slirp4netns\0"))
        })
        .unwrap_or_else(|| panic!("no slirp4netns for {shared_prefix}"));
    let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    String::from_utf8_lossy(&argv)
        .split('\0')
        .filter(|a| !a.is_empty())
        .map(|a| {
            if a.starts_with(shared_prefix) {
                "NETNS"
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A user network of vigil next to one of rootless Podman 4.3.1, as the
/// same user: the shared namespace's slirp4netns is started alike, a
/// container's resolv.conf and /etc/hosts read alike (addresses and ids
/// aside), and both namespaces go with their last container.
#[test]
fn rootless_user_network_matches_podman() {
    let Some((r, image)) = setup_net("rootless_user_network_matches_podman") else {
        return;
    };
    let Some(podman) = RootlessPodman::new(&r) else {
        return;
    };
    let archive = match test_image_archive() {
        Ok(a) => a.with_file_name("podman-docker.tar"),
        Err(why) => return eprintln!("skipping: {why}"),
    };
    let copy = r.bin("podman-docker.tar");
    std::fs::copy(&archive, &copy).expect("copy image");
    std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    podman.ok(&["load", "-q", "-i", copy.to_str().unwrap()]);
    let pimage = "localhost/imp:1";

    // Each side: a network, a server, a client; what the client sees.
    let side = |run: &dyn Fn(&[&str]) -> String, img: &str| {
        run(&["network", "create", "cmpnet"]);
        let def: serde_json::Value =
            serde_json::from_str(&run(&["network", "inspect", "cmpnet"])).unwrap();
        let gw = def[0]["subnets"][0]["gateway"]
            .as_str()
            .unwrap()
            .to_string();
        let mut server = httpd_args(&["--name", "cmpa", "--network", "cmpnet"], img, "8080");
        server.insert(1, "--pull=never");
        let mut client = httpd_args(&["--name", "cmpb", "--network", "cmpnet"], img, "8081");
        client.insert(1, "--pull=never");
        run(&server);
        let id = run(&client).trim().to_string();
        let inspect: serde_json::Value = serde_json::from_str(&run(&["inspect", "cmpb"])).unwrap();
        let ip = inspect[0]["NetworkSettings"]["Networks"]["cmpnet"]["IPAddress"]
            .as_str()
            .unwrap()
            .to_string();
        let cat = |f: &str| run(&["exec", "cmpb", "/bin/busybox", "cat", f]);
        let resolv = cat("/etc/resolv.conf").replace(&gw, "GW");
        let hosts = cat("/etc/hosts")
            .replace(&ip, "IP")
            .replace(&id[..12], "ID");
        (resolv, hosts)
    };
    let vigil_run = |a: &[&str]| {
        let args: Vec<&str> = a.iter().copied().filter(|x| *x != "--pull=never").collect();
        r.ok(&args)
    };
    let podman_run = |a: &[&str]| podman.ok(a);
    let ours = side(&vigil_run, image);
    let theirs = side(&podman_run, pimage);
    assert_eq!(ours, theirs);
    let vigil_shared = r.state().join("netns/rootless-netns").display().to_string();
    let podman_shared = podman
        .runtime_dir()
        .join("netns/rootless-netns")
        .display()
        .to_string();
    assert_eq!(slirp_argv(&vigil_shared), slirp_argv(&podman_shared));

    r.ok(&["rm", "-f", "cmpa", "cmpb"]);
    podman.ok(&["rm", "-f", "-t", "0", "cmpa", "cmpb"]);
    assert_no_process(&vigil_shared, Duration::from_secs(10));
    assert_no_process(&podman_shared, Duration::from_secs(10));
    r.ok(&["network", "rm", "cmpnet"]);
    podman.ok(&["network", "rm", "cmpnet"]);
}
