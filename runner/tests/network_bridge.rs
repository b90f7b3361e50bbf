//! Bridge networking as root through the real netavark, aardvark-dns and
//! iptables (runner-network §10): addresses reachable from the host,
//! published ports reached with a real HTTP client, `port`/`ps`/`inspect`,
//! DNS between containers of a created network, none/host, parallel starts,
//! a Podman container beside a vigil one, errors, and teardown leaving
//! nothing. Traffic goes only to 127.0.0.1 and to containers on the bridges
//! these tests use; name lookups ask the network's own DNS server
//! (`--dns <gateway>`) for names of containers made here.

mod e2e_support;
mod network_support;

use std::path::Path;
use std::time::Duration;

use e2e_support::{text, vigil_and_busybox_rootfs, Vigil};
use network_support::*;

/// vigil, the busybox rootfs, and netavark; or None after saying why not.
fn setup(test: &str) -> Option<(Vigil, String)> {
    if !Path::new("/usr/lib/podman/netavark").exists() {
        eprintln!("skipping {test}: netavark not installed (scripts/ci-setup)");
        return None;
    }
    vigil_and_busybox_rootfs(test)
}

/// A name unique to this process and test.
fn unique(what: &str) -> String {
    format!("vt{}-{what}", std::process::id())
}

fn httpd<'a>(rootfs: &'a str, flags: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "-d"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--rootfs", rootfs, "httpd", "-f", "-p", "80", "-h", "/etc"]);
    args
}

/// `run --rm FLAGS --rootfs ROOTFS COMMAND...`.
fn run_rm<'a>(rootfs: &'a str, flags: &[&'a str], command: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--rootfs", rootfs]);
    args.extend_from_slice(command);
    args
}

/// `run --rm FLAGS --rootfs ROOTFS true`.
fn run_true<'a>(rootfs: &'a str, flags: &[&'a str]) -> Vec<&'a str> {
    run_rm(rootfs, flags, &["true"])
}

/// Removes networks `names` (and containers on them) when dropped, so that
/// a failing test leaves none in the host's network files.
fn networks_removed<'a>(v: &'a Vigil, names: &[&str]) -> OnDrop<impl FnMut() + 'a> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    OnDrop(move || {
        for n in &names {
            let _ = v.run(&["network", "rm", "-f", n]);
        }
    })
}

fn settings(v: &Vigil, name: &str) -> serde_json::Value {
    v.inspect(name)["NetworkSettings"].clone()
}

#[test]
fn bridge_address_published_port_and_teardown() {
    let Some((v, rootfs)) = setup("bridge_address_published_port_and_teardown") else {
        return;
    };
    let (port, publish) = loopback_publish("80");
    let name = unique("web");
    let id = v
        .ok(&httpd(
            &rootfs,
            &["--name", &name, "-p", &publish, "--hostname", "vh"],
        ))
        .trim()
        .to_string();
    let ns = settings(&v, &name);
    let ip = ns["IPAddress"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.77."), "{ns}");
    assert_eq!(ns["IPPrefixLen"], 16);
    assert_eq!(ns["Gateway"], "10.77.0.1");
    assert_eq!(ns["MacAddress"].as_str().unwrap().len(), 17, "{ns}");
    let sandbox = ns["SandboxKey"].as_str().unwrap().to_string();
    assert!(sandbox.starts_with("/run/netns/netns-") && Path::new(&sandbox).exists());
    assert_eq!(ns["Networks"]["vigil"]["IPAddress"], ip.as_str());
    assert_eq!(
        ns["Networks"]["vigil"]["Aliases"],
        serde_json::json!([&id[..12]])
    );
    assert_eq!(
        ns["Ports"],
        serde_json::json!({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": port.to_string()}]})
    );
    // The container's address from the host, and the published port.
    assert_eq!(http_get(&format!("{ip}:80"), "/hostname"), "vh");
    assert_eq!(http_get(&format!("127.0.0.1:{port}"), "/hostname"), "vh");
    assert_eq!(
        v.ok(&["port", &name]),
        format!("80/tcp -> 127.0.0.1:{port}\n")
    );
    assert_eq!(v.ok(&["port", &name, "80"]), format!("127.0.0.1:{port}\n"));
    let ps = v.ok(&["ps"]);
    let row = ps.lines().find(|l| l.contains(&name)).expect("ps row");
    assert!(row.contains(&format!("127.0.0.1:{port}->80/tcp")), "{ps}");
    let hosts = v.ok(&["exec", &name, "cat", "/etc/hosts"]);
    assert!(hosts.ends_with(&format!("{ip}\tvh {name}\n")), "{hosts}");
    assert!(
        hosts.contains("10.77.0.1\thost.containers.internal\n"),
        "{hosts}"
    );

    // The port is held: a second container cannot have it, and is left
    // with nothing set up.
    let other = unique("web2");
    assert_exit(
        &v.run(&httpd(&rootfs, &["--name", &other, "-p", &publish])),
        126,
        &format!(
            "cannot listen on the TCP port: listen tcp4 127.0.0.1:{port}: bind: address already in use"
        ),
        &"second container on the port",
    );
    let other_rec = v.inspect(&other);
    assert_eq!(other_rec["State"]["Status"], "created");
    assert_eq!(other_rec["NetworkSettings"]["SandboxKey"], "");
    let other_id = other_rec["Id"].as_str().unwrap().to_string();
    assert_no_addresses(&other_id);

    // A random host port, reported by `port`.
    let random = unique("rand");
    v.ok(&httpd(&rootfs, &["--name", &random, "-p", "127.0.0.1::80"]));
    let line = v.ok(&["port", &random]);
    let host_port: u16 = line
        .trim()
        .strip_prefix("80/tcp -> 127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("port: {line}"));
    assert_eq!(
        http_get(&format!("127.0.0.1:{host_port}"), "/hostname").len(),
        12
    );

    // Stop tears the network down; the container keeps its config.
    v.ok(&["stop", "-t", "1", &name]);
    assert_torn_down(&id, &ip, &sandbox);
    let ns = settings(&v, &name);
    assert_eq!(
        (&ns["IPAddress"], &ns["SandboxKey"]),
        (&"".into(), &"".into())
    );
    assert_eq!(ns["Networks"]["vigil"]["IPAddress"], "");
    // Started again: a new namespace and address, published again.
    v.ok(&["start", &name]);
    assert_eq!(http_get(&format!("127.0.0.1:{port}"), "/hostname"), "vh");
    let ns = settings(&v, &name);
    let (ip2, sandbox2) = (
        ns["IPAddress"].as_str().unwrap().to_string(),
        ns["SandboxKey"].as_str().unwrap().to_string(),
    );
    v.ok(&["rm", "-f", &name]);
    assert_torn_down(&id, &ip2, &sandbox2);
    // The port is free again.
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
}

#[test]
fn container_dying_on_its_own_is_torn_down() {
    let Some((v, rootfs)) = setup("container_dying_on_its_own_is_torn_down") else {
        return;
    };
    let (_, publish) = loopback_publish("80");
    let id = v
        .ok(&[
            "run", "-d", "-p", &publish, "--rootfs", &rootfs, "sh", "-c", "sleep 1",
        ])
        .trim()
        .to_string();
    let ns = settings(&v, &id);
    let (ip, sandbox) = (
        ns["IPAddress"].as_str().unwrap().to_string(),
        ns["SandboxKey"].as_str().unwrap().to_string(),
    );
    assert!(Path::new(&sandbox).exists());
    // No vigil command runs meanwhile: the monitor's exit command cleans up.
    assert_torn_down(&id, &ip, &sandbox);
    // And `run --rm` in the foreground leaves nothing either.
    let out = v.ok(&run_rm(
        &rootfs,
        &[],
        &[
            "sh",
            "-c",
            "ip -o -4 addr show eth0 | grep -o '10\\.77\\.[0-9.]*'",
        ],
    ));
    let rules = firewall_rules();
    assert!(!rules.contains(&format!("{}:", out.trim())), "{rules}");
}

#[test]
fn created_network_with_dns_between_containers() {
    let Some((v, rootfs)) = setup("created_network_with_dns_between_containers") else {
        return;
    };
    let net = unique("net");
    let _cleanup = networks_removed(&v, &[&net]);
    assert_eq!(v.ok(&["network", "create", &net]), format!("{net}\n"));
    let def: serde_json::Value =
        serde_json::from_str(&v.ok(&["network", "inspect", &net])).unwrap();
    let def = &def[0];
    assert_eq!(def["dns_enabled"], true);
    let bridge = def["network_interface"].as_str().unwrap().to_string();
    let subnet = def["subnets"][0]["subnet"].as_str().unwrap().to_string();
    assert!(
        subnet.starts_with("10.78.") && subnet.ends_with(".0/24"),
        "{def}"
    );
    let gw = def["subnets"][0]["gateway"].as_str().unwrap().to_string();
    // Other networks of the user (other tests) may widen the NAME column.
    assert!(v.ok(&["network", "ls"]).lines().any(|l| {
        let fields: Vec<&str> = l.split_whitespace().collect();
        fields.len() == 3 && fields[1] == net && fields[2] == "bridge"
    }));

    let a = unique("a");
    let b = unique("b");
    let alias = unique("alias");
    v.ok(&httpd(&rootfs, &["--name", &a, "--network", &net]));
    let a_ns = settings(&v, &a);
    // As Podman 4.3.1: the top level is filled only on the default network.
    assert_eq!(a_ns["IPAddress"], "", "{a_ns}");
    let a_ip = a_ns["Networks"][&net]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    v.ok(&[
        "run",
        "-d",
        "--name",
        &b,
        "--network",
        &net,
        "--network-alias",
        &alias,
        "--dns",
        &gw,
        "--rootfs",
        &rootfs,
        "sleep",
        "300",
    ]);
    let b_ip = settings(&v, &b)["Networks"][&net]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(a_ip, b_ip);
    // `--dns` replaces the network's server and its search domain, as in
    // Podman 4.3.1 (`search dns.podman` is gone; the host's search stays).
    let resolv = v.ok(&["exec", &b, "cat", "/etc/resolv.conf"]);
    let servers: Vec<&str> = resolv
        .lines()
        .filter(|l| l.starts_with("nameserver"))
        .collect();
    assert_eq!(servers, [format!("nameserver {gw}")], "{resolv}");
    assert!(!resolv.contains("dns.podman"), "{resolv}");
    lookup(&|a| v.run(a), &b, &a, &gw, &a_ip);
    lookup(&|a| v.run(a), &b, &alias, &gw, &b_ip);
    let a_id = v.inspect(&a)["Id"].as_str().unwrap().to_string();
    let body = v.ok(&[
        "exec",
        &b,
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://{a}/hostname"),
    ]);
    assert_eq!(body, &a_id[..12]);

    // In use: refused with Podman's words and exit code.
    let out = v.run(&["network", "rm", &net]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(&format!(
        "\"{net}\" has associated containers with it. Use -f to forcibly delete containers and pods: network is being used"
    )));
    assert_eq!(v.ok(&["network", "rm", "-f", &net]), format!("{net}\n"));
    assert!(
        v.run(&["inspect", &a]).status.code() != Some(0),
        "containers removed"
    );
    let aardvark =
        Path::new("/run/vigil/networks/netavark/aardvark-dns").join(format!("vigil-{net}"));
    assert!(!aardvark.exists(), "{} left", aardvark.display());
    assert!(
        !Path::new("/sys/class/net").join(&bridge).exists(),
        "bridge {bridge} left"
    );
    assert!(!v.ok(&["network", "ls"]).contains(&net));
}

#[test]
fn none_and_host_networks() {
    let Some((v, rootfs)) = setup("none_and_host_networks") else {
        return;
    };
    let name = unique("none");
    let out = v.ok(&[
        "run",
        "--name",
        &name,
        "--network",
        "none",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "ls /sys/class/net; test -e /etc/resolv.conf || echo no-resolv; tail -n 1 /etc/hosts",
    ]);
    let id = v.inspect(&name)["Id"].as_str().unwrap().to_string();
    assert_eq!(
        out,
        format!("lo\nno-resolv\n127.0.0.1\t{} {name}\n", &id[..12])
    );
    let rec = v.inspect(&name);
    assert_eq!(rec["HostConfig"]["NetworkMode"], "none");
    assert!(rec["NetworkSettings"].get("Networks").is_none());
    assert_eq!(rec["NetworkSettings"]["SandboxKey"], "");

    let out = v.ok(&run_rm(
        &rootfs,
        &["--network", "host"],
        &["cat", "/etc/resolv.conf"],
    ));
    assert_eq!(out, std::fs::read_to_string("/etc/resolv.conf").unwrap());
    // The host's interfaces, e.g. the one of its default route.
    let route = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let default_dev = route
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("00000000"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("lo")
        .to_string();
    let out = v.ok(&run_rm(
        &rootfs,
        &["--network", "host"],
        &["ls", "/sys/class/net"],
    ));
    assert!(
        out.lines().any(|l| l == default_dev),
        "{default_dev} not in {out}"
    );
}

#[test]
fn parallel_runs_get_distinct_addresses() {
    let Some((v, rootfs)) = setup("parallel_runs_get_distinct_addresses") else {
        return;
    };
    let v = &v;
    let rootfs = rootfs.as_str();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                s.spawn(move || {
                    v.ok(&["run", "-d", "--rootfs", rootfs, "sleep", "300"])
                        .trim()
                        .to_string()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("run -d"))
            .collect()
    });
    let mut ips: Vec<String> = ids
        .iter()
        .map(|id| settings(v, id)["IPAddress"].as_str().unwrap().to_string())
        .collect();
    assert!(ips.iter().all(|ip| ip.starts_with("10.77.")), "{ips:?}");
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 20, "{ips:?}");
    std::thread::scope(|s| {
        for id in &ids {
            s.spawn(move || v.ok(&["rm", "-f", id]));
        }
    });
    for id in &ids {
        assert_no_addresses(id);
    }
}

#[test]
fn vigil_and_podman_containers_side_by_side() {
    let Some((v, rootfs)) = setup("vigil_and_podman_containers_side_by_side") else {
        return;
    };
    let podman = match e2e_support::Podman::new("vfs") {
        Ok(p) => p,
        Err(why) => {
            eprintln!("skipping vigil_and_podman_containers_side_by_side: {why}");
            return;
        }
    };
    let images = match e2e_support::test_images() {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipping vigil_and_podman_containers_side_by_side: {why}");
            return;
        }
    };
    podman.ok(&[
        "load",
        "-q",
        "-i",
        images.join("docker.tar").to_str().unwrap(),
    ]);
    let pname = unique("podman");
    podman.ok(&[
        "run",
        "-d",
        "--name",
        &pname,
        "--network",
        "bridge",
        "--hostname",
        "from-podman",
        "--user",
        "0",
        "--entrypoint",
        "/bin/busybox",
        "localhost/test:multi",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    let p_ip = podman
        .ok(&[
            "inspect",
            "--format",
            "{{.NetworkSettings.IPAddress}}",
            &pname,
        ])
        .trim()
        .to_string();
    let vname = unique("vigil");
    v.ok(&httpd(
        &rootfs,
        &["--name", &vname, "--hostname", "from-vigil"],
    ));
    let v_ip = settings(&v, &vname)["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(p_ip, v_ip);
    assert!(
        p_ip.starts_with("10.88.") && v_ip.starts_with("10.77."),
        "{p_ip} {v_ip}"
    );
    // /etc/hostname has no trailing newline, in both.
    assert_eq!(http_get(&format!("{p_ip}:80"), "/hostname"), "from-podman");
    assert_eq!(http_get(&format!("{v_ip}:80"), "/hostname"), "from-vigil");
    podman.ok(&["rm", "-f", "-t", "0", &pname]);
    v.ok(&["rm", "-f", &vname]);
}

#[test]
fn network_errors_are_clear_and_leave_nothing() {
    let Some((v, rootfs)) = setup("network_errors_are_clear_and_leave_nothing") else {
        return;
    };
    let fails = |args: &[&str], code: i32, wanted: &str| {
        assert_exit(&v.run(args), code, wanted, &args);
    };
    fails(
        &run_true(&rootfs, &["-p", "80:abc"]),
        125,
        "invalid -p/--publish value \"80:abc\"",
    );
    fails(
        &run_true(&rootfs, &["--network", "nosuchnet"]),
        125,
        "unable to find network with name or ID nosuchnet: network not found",
    );
    fails(
        &[
            "network",
            "create",
            "--subnet",
            "10.88.5.0/24",
            &unique("ovl"),
        ],
        125,
        "subnet 10.88.5.0/24 is already used on the host or by another config",
    );
    let net = unique("dnsnet");
    let _cleanup = networks_removed(&v, &[&net]);
    v.ok(&["network", "create", &net]);
    fails(
        &run_true(&rootfs, &["--network", &net, "--name", "bad_name"]),
        125,
        "\"bad_name\" is not a valid DNS name",
    );
    v.ok(&["network", "rm", &net]);
    // Missing helpers and iptables name their package.
    let mut cmd = v.command(&run_true(&rootfs, &[]));
    cmd.env("VIGIL_HELPER_BINARIES_DIR", "/nonexistent");
    let out = e2e_support::run_bounded(&mut cmd, b"", Duration::from_secs(60));
    assert_exit(&out, 125, "install the netavark package", &"no helpers");
    // containers.conf's helper_binaries_dir is where they are looked for.
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = conf_dir.path().join("containers.conf");
    std::fs::write(
        &conf,
        "[engine]\nhelper_binaries_dir = [\"/nonexistent-conf-helpers\"]\n",
    )
    .unwrap();
    let mut cmd = v.command(&run_true(&rootfs, &[]));
    cmd.env("CONTAINERS_CONF", &conf);
    let out = e2e_support::run_bounded(&mut cmd, b"", Duration::from_secs(60));
    assert_exit(
        &out,
        125,
        "could not find \"netavark\" in one of [/nonexistent-conf-helpers]",
        &"helper_binaries_dir",
    );
    let mut args = vec!["--runtime", "/usr/sbin/runc"];
    args.extend(run_true(&rootfs, &[]));
    let mut cmd = v.command(&args);
    cmd.env("PATH", "/usr/bin:/bin");
    let out = e2e_support::run_bounded(&mut cmd, b"", Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("install the iptables package"),
        "{}",
        text(&out.stderr)
    );
    // None of these left a container with a network set up.
    for id in v.ok(&["ps", "-a", "-q", "--no-trunc"]).lines() {
        let rec = v.inspect(id);
        assert_eq!(rec["NetworkSettings"]["SandboxKey"], "", "{rec}");
        assert_no_addresses(id);
    }
}

#[test]
fn static_ip_and_mac_address() {
    let Some((v, rootfs)) = setup("static_ip_and_mac_address") else {
        return;
    };
    let pid = std::process::id();
    let ip = format!("10.77.{}.{}", 200 + pid % 50, 2 + pid % 250);
    let mac = "92:d0:c6:0a:29:33";
    let name = unique("static");
    let id = v
        .ok(&httpd(
            &rootfs,
            &["--name", &name, "--ip", &ip, "--mac-address", mac],
        ))
        .trim()
        .to_string();
    let ns = settings(&v, &name);
    assert_eq!(ns["IPAddress"], ip.as_str(), "{ns}");
    assert_eq!(ns["MacAddress"], mac, "{ns}");
    assert_eq!(ns["Networks"]["vigil"]["MacAddress"], mac, "{ns}");
    assert_eq!(
        v.ok(&["exec", &name, "cat", "/sys/class/net/eth0/address"]),
        format!("{mac}\n")
    );
    assert_eq!(http_get(&format!("{ip}:80"), "/hostname"), &id[..12]);

    // Errors, with Podman 4.3.1's texts and exit codes (the network named is
    // vigil's default instead of Podman's).
    let fails = |flags: &[&str], code: i32, wanted: &str| {
        assert_exit(&v.run(&run_true(&rootfs, flags)), code, wanted, &flags);
    };
    fails(
        &["--ip", &ip],
        126,
        &format!("IPAM error: requested ip address {ip} is already allocated to container ID {id}"),
    );
    fails(
        &["--ip", "10.99.0.5"],
        126,
        "requested static ip 10.99.0.5 not in any subnet on network vigil",
    );
    fails(&["--ip", "bogus"], 125, "\"bogus\" is not an ip address");
    fails(
        &["--network", "none", "--ip", &ip],
        125,
        "--ip can only be set when the network mode is bridge: invalid argument",
    );
    fails(
        &["--mac-address", "zz"],
        125,
        "address zz: invalid MAC address",
    );
    // Refused where Podman 4.3.1 hands out an address the container cannot use.
    fails(
        &["--ip", "10.77.0.1"],
        126,
        "is the gateway on network vigil",
    );

    // The address is free again once the container is gone.
    v.ok(&["rm", "-f", &name]);
    v.ok(&["run", "--rm", "--ip", &ip, "--rootfs", &rootfs, "true"]);
}

#[test]
fn network_connect_and_disconnect() {
    let Some((v, rootfs)) = setup("network_connect_and_disconnect") else {
        return;
    };
    let net = unique("cnet");
    let _cleanup = networks_removed(&v, &[&net]);
    v.ok(&["network", "create", &net]);
    let def: serde_json::Value =
        serde_json::from_str(&v.ok(&["network", "inspect", &net])).unwrap();
    let gw = def[0]["subnets"][0]["gateway"]
        .as_str()
        .unwrap()
        .to_string();
    let a = unique("ca");
    let b = unique("cb");
    let alias = unique("calias");
    v.ok(&httpd(&rootfs, &["--name", &a, "--network", &net]));
    let a_ns = settings(&v, &a);
    // As Podman 4.3.1: the top level is filled only on the default network.
    assert_eq!(a_ns["IPAddress"], "", "{a_ns}");
    let a_ip = a_ns["Networks"][&net]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    // The bridge's MAC is pinned after its first setup (addr_assign_type 3,
    // set): else it follows its lowest port's MAC, changes when `b` leaves
    // below, and `a`'s ARP entry for the gateway goes stale (DNS times out).
    let bridge = def[0]["network_interface"].as_str().unwrap();
    let assign = std::fs::read_to_string(format!("/sys/class/net/{bridge}/addr_assign_type"));
    assert_eq!(assign.unwrap_or_default().trim(), "3", "{bridge}");
    let b_id = v.ok(&httpd(&rootfs, &["--name", &b])).trim().to_string();
    let b_short = &b_id[..12];
    let b_default_ip = settings(&v, &b)["IPAddress"].as_str().unwrap().to_string();

    // A running container joins the DNS network: no output, like Podman.
    assert_eq!(
        v.ok(&["network", "connect", "--alias", &alias, &net, &b]),
        ""
    );
    let ns = settings(&v, &b);
    assert_eq!(ns["IPAddress"], "", "two networks: no top-level address");
    assert_eq!(ns["Networks"]["vigil"]["IPAddress"], b_default_ip.as_str());
    let b_ip = ns["Networks"][&net]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(b_ip.starts_with("10.78."), "{ns}");
    assert_eq!(ns["Networks"][&net]["Gateway"], gw.as_str());
    assert_eq!(
        ns["Networks"][&net]["MacAddress"].as_str().unwrap().len(),
        17
    );
    assert_eq!(
        ns["Networks"][&net]["Aliases"],
        serde_json::json!([&alias, b_short])
    );
    let addr = v.ok(&["exec", &b, "ip", "-o", "-4", "addr", "show", "eth1"]);
    assert!(addr.contains(&format!("inet {b_ip}/24")), "{addr}");
    let hosts = v.ok(&["exec", &b, "cat", "/etc/hosts"]);
    assert!(
        hosts.ends_with(&format!(
            "{b_default_ip}\t{b_short} {b}\n{b_ip}\t{b_short} {b}\n"
        )),
        "{hosts}"
    );
    let resolv = v.ok(&["exec", &b, "cat", "/etc/resolv.conf"]);
    assert!(
        resolv.starts_with(&format!("search dns.podman\nnameserver {gw}\n")),
        "{resolv}"
    );
    // Names resolve both ways on the new network (asking its DNS server).
    lookup(&|a| v.run(a), &b, &a, &gw, &a_ip);
    for name in [b.as_str(), alias.as_str()] {
        lookup(&|a| v.run(a), &a, name, &gw, &b_ip);
    }
    let body = v.ok(&[
        "exec",
        &a,
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://{b_ip}/hostname"),
    ]);
    assert_eq!(body, b_short);

    // Podman's errors and exit codes.
    let fails = |args: &[&str], code: i32, wanted: &str| {
        assert_exit(&v.run(args), code, wanted, &args);
    };
    fails(
        &["network", "connect", &net, &b],
        125,
        &format!("container {b_id} is already connected to network \"{net}\": network is already connected"),
    );
    fails(
        &["network", "connect", "nosuchnet", &b],
        125,
        "unable to find network with name or ID nosuchnet: network not found",
    );
    fails(
        &["network", "connect", &net, "nosuchctr"],
        125,
        "no container with name or ID \"nosuchctr\" found: no such container",
    );

    // Leaving it: interface, hosts line, name server, rules, address gone.
    assert_eq!(v.ok(&["network", "disconnect", &net, &b]), "");
    let ns = settings(&v, &b);
    assert_eq!(ns["IPAddress"], b_default_ip.as_str(), "{ns}");
    assert!(ns["Networks"].get(&net).is_none(), "{ns}");
    let links = v.ok(&["exec", &b, "ip", "-o", "link"]);
    assert!(!links.contains("eth1"), "{links}");
    let hosts = v.ok(&["exec", &b, "cat", "/etc/hosts"]);
    assert!(!hosts.contains(&b_ip), "{hosts}");
    let resolv = v.ok(&["exec", &b, "cat", "/etc/resolv.conf"]);
    assert!(!resolv.contains(&gw), "{resolv}");
    assert!(!firewall_rules().contains(&format!("{b_ip}/32")));
    let found = lookup_once(&|args| v.run(args), &a, &b, &gw);
    assert!(!found.contains(&b_ip), "{found}");
    fails(
        &["network", "disconnect", &net, &b],
        125,
        &format!("container {b} is not connected to network {net}"),
    );

    // A stopped container: connected now, set up at its start, with --ip.
    let c = unique("cc");
    v.ok(&["create", "--name", &c, "--rootfs", &rootfs, "sleep", "300"]);
    let pid = std::process::id();
    let subnet = def[0]["subnets"][0]["subnet"].as_str().unwrap();
    let c_ip = format!("{}.{}", subnet.rsplit_once('.').unwrap().0, 100 + pid % 100);
    v.ok(&["network", "connect", "--ip", &c_ip, &net, &c]);
    let ns = settings(&v, &c);
    assert_eq!(ns["Networks"][&net]["IPAddress"], "", "{ns}");
    v.ok(&["start", &c]);
    let ns = settings(&v, &c);
    assert_eq!(ns["Networks"][&net]["IPAddress"], c_ip.as_str(), "{ns}");
    let addr = v.ok(&["exec", &c, "ip", "-o", "-4", "addr", "show", "eth1"]);
    assert!(addr.contains(&format!("inet {c_ip}/24")), "{addr}");
    lookup(&|a| v.run(a), &a, &c, &gw, &c_ip);

    v.ok(&["rm", "-f", &a, &b, &c]);
    assert_no_addresses(&b_id);
    v.ok(&["network", "rm", &net]);
}

#[test]
fn ipv6_networks_with_unique_local_subnets() {
    let Some((v, rootfs)) = setup("ipv6_networks_with_unique_local_subnets") else {
        return;
    };
    if !Path::new("/proc/sys/net/ipv6").exists() {
        eprintln!("skipping ipv6_networks_with_unique_local_subnets: no IPv6 in this kernel");
        return;
    }
    let inspect_net = |name: &str| -> serde_json::Value {
        let all: serde_json::Value =
            serde_json::from_str(&v.ok(&["network", "inspect", name])).unwrap();
        all[0].clone()
    };
    // --ipv6: a random unique local /64 beside the IPv4 subnet.
    let auto = unique("v6auto");
    let given = unique("v6given");
    let both = unique("v6both");
    let _cleanup = networks_removed(&v, &[&auto, &given, &both]);
    v.ok(&["network", "create", "--ipv6", &auto]);
    let def = inspect_net(&auto);
    assert_eq!(def["ipv6_enabled"], true, "{def}");
    let subnet6 = def["subnets"][1]["subnet"].as_str().unwrap().to_string();
    let gw6 = def["subnets"][1]["gateway"].as_str().unwrap().to_string();
    assert!(
        subnet6.starts_with("fd") && subnet6.ends_with("::/64"),
        "{def}"
    );
    assert_eq!(gw6, subnet6.replace("::/64", "::1"));
    // --subnet with a unique local prefix and no IPv4 one: an IPv6-only
    // network, as Podman 4.3.1 makes it (with --ipv6 it adds an IPv4 subnet).
    let pid = std::process::id();
    let prefix6 = format!("fd{:02x}:{:x}:7:8", pid % 256, pid % 65536);
    let given_subnet = format!("{prefix6}::/64");
    v.ok(&["network", "create", "--subnet", &given_subnet, &given]);
    let def = inspect_net(&given);
    assert_eq!(def["ipv6_enabled"], true);
    assert_eq!(def["subnets"].as_array().unwrap().len(), 1, "{def}");
    assert_eq!(def["subnets"][0]["subnet"], given_subnet.as_str(), "{def}");
    let both_subnet = format!("fd{:02x}:{:x}:7:9::/64", pid % 256, pid % 65536);
    v.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        &both_subnet,
        &both,
    ]);
    let def = inspect_net(&both);
    assert_eq!(def["subnets"].as_array().unwrap().len(), 2, "{def}");
    v.ok(&["network", "rm", &both]);
    // Other IPv6 addresses are refused, and overlaps.
    for (subnet, wanted) in [
        ("2001:db8::/64", "only unique local IPv6 addresses"),
        (
            given_subnet.as_str(),
            "is already used on the host or by another config",
        ),
    ] {
        let args = ["network", "create", "--subnet", subnet, &unique("v6bad")];
        assert_exit(&v.run(&args), 125, wanted, &args);
    }

    // --ip6: checked against the network's IPv6 subnet, the value named.
    let auto_prefix = subnet6.trim_end_matches("::/64").to_string();
    let outside = format!("{prefix6}::5");
    for (flags, code, wanted) in [
        (
            vec!["--network", &auto, "--ip6", &outside],
            126,
            format!("requested static ip {outside} not in any subnet on network {auto}"),
        ),
        (
            vec!["--network", &auto, "--ip6", &format!("{auto_prefix}::1")],
            126,
            format!("requested static ip {auto_prefix}::1 is the gateway on network {auto}"),
        ),
        (
            vec!["--network", &auto, "--ip6", "10.1.2.3"],
            125,
            "--ip6 10.1.2.3: an IPv6 address is needed here".to_string(),
        ),
        (
            vec!["--network", &auto, "--ip6", "nonsense"],
            125,
            "\"nonsense\" is not an ip address".to_string(),
        ),
        (
            vec!["--network", "none", "--ip6", &outside],
            125,
            "--ip6 can only be set when the network mode is bridge".to_string(),
        ),
    ] {
        assert_exit(&v.run(&run_true(&rootfs, &flags)), code, &wanted, &flags);
    }

    // A container gets an address of each family (its IPv6 one from
    // --ip6), reachable from the host over the test's own bridge.
    let name = unique("v6web");
    let wanted6 = format!("{auto_prefix}::42");
    v.ok(&httpd(
        &rootfs,
        &["--name", &name, "--network", &auto, "--ip6", &wanted6],
    ));
    let id = v.inspect(&name)["Id"].as_str().unwrap().to_string();
    let ns = settings(&v, &name);
    let net = &ns["Networks"][&auto];
    let ip6 = net["GlobalIPv6Address"].as_str().unwrap().to_string();
    assert_eq!(ip6, wanted6, "{ns}");
    assert_eq!(net["GlobalIPv6PrefixLen"], 64);
    assert_eq!(net["IPv6Gateway"], gw6.as_str());
    assert!(net["IPAddress"].as_str().unwrap().starts_with("10.78."));
    let addr = v.ok(&["exec", &name, "ip", "-o", "-6", "addr", "show", "eth0"]);
    assert!(addr.contains(&format!("inet6 {ip6}/64")), "{addr}");
    assert_eq!(http_get(&format!("[{ip6}]:80"), "/hostname"), &id[..12]);

    // On the IPv6-only network: only an IPv6 address, /etc/hosts and
    // resolv.conf name it and aardvark's IPv6 listener, and the containers
    // find each other by name over IPv6.
    let gw_only = format!("{prefix6}::1");
    let a6 = unique("a6");
    let b6 = unique("b6");
    // Its published IPv4 loopback port goes through vigil's forwarder
    // (netavark has no IPv4 address to send it to).
    let (a6_port, a6_publish) = loopback_publish("80");
    v.ok(&httpd(
        &rootfs,
        &["--name", &a6, "--network", &given, "-p", &a6_publish],
    ));
    v.ok(&httpd(
        &rootfs,
        &["--name", &b6, "--network", &given, "--dns", &gw_only],
    ));
    let a_ns = settings(&v, &a6);
    let a_net = &a_ns["Networks"][&given];
    let a_ip6 = a_net["GlobalIPv6Address"].as_str().unwrap().to_string();
    assert!(a_ip6.starts_with(&format!("{prefix6}::")), "{a_ns}");
    assert_eq!(a_net["IPAddress"], "", "{a_ns}");
    assert_eq!(a_net["IPv6Gateway"], gw_only.as_str(), "{a_ns}");
    assert_eq!(a_net["GlobalIPv6PrefixLen"], 64, "{a_ns}");
    let v4 = v.ok(&["exec", &a6, "ip", "-o", "-4", "addr", "show", "eth0"]);
    assert_eq!(v4.trim(), "", "no IPv4 address on an IPv6-only network");
    let hosts = v.ok(&["exec", &a6, "cat", "/etc/hosts"]);
    assert!(
        hosts.contains(&format!("{gw_only}\thost.containers.internal\n")),
        "{hosts}"
    );
    assert!(hosts.contains(&format!("{a_ip6}\t")), "{hosts}");
    let resolv = v.ok(&["exec", &a6, "cat", "/etc/resolv.conf"]);
    assert!(
        resolv.starts_with(&format!("search dns.podman\nnameserver {gw_only}\n")),
        "{resolv}"
    );
    lookup(&|a| v.run(a), &b6, &a6, &gw_only, &a_ip6);
    let a6_short = v.inspect(&a6)["Id"].as_str().unwrap()[..12].to_string();
    assert_eq!(http_get(&format!("[{a_ip6}]:80"), "/hostname"), a6_short);
    assert_eq!(
        http_get(&format!("127.0.0.1:{a6_port}"), "/hostname"),
        a6_short
    );

    // network connect --ip6, checked against the joined network's subnet.
    let args = ["network", "connect", "--ip6", &wanted6, &given, &name];
    assert_exit(
        &v.run(&args),
        125,
        &format!("requested static ip {wanted6} not in any subnet on network {given}"),
        &args,
    );
    let joined6 = format!("{prefix6}::77");
    v.ok(&["network", "connect", "--ip6", &joined6, &given, &name]);
    let ns = settings(&v, &name);
    assert_eq!(
        ns["Networks"][&given]["GlobalIPv6Address"],
        joined6.as_str(),
        "{ns}"
    );
    let addr = v.ok(&["exec", &name, "ip", "-o", "-6", "addr", "show", "eth1"]);
    assert!(addr.contains(&format!("inet6 {joined6}/64")), "{addr}");
    lookup(&|a| v.run(a), &b6, &name, &gw_only, &joined6);

    let a_id = v.inspect(&a6)["Id"].as_str().unwrap().to_string();
    v.ok(&["rm", "-f", &a6, &b6]);
    v.ok(&["rm", "-f", &name]);
    assert_no_addresses(&a_id);
    assert_no_addresses(&id);
    let rules = ip6_nat_rules();
    assert!(!rules.contains(&ip6), "{rules}");
    v.ok(&["network", "rm", &auto, &given]);
}

#[test]
fn ipv6_host_address_published_port() {
    let Some((v, rootfs)) = setup("ipv6_host_address_published_port") else {
        return;
    };
    let Some(port) = free_port6() else {
        eprintln!("skipping ipv6_host_address_published_port: no ::1 on this host");
        return;
    };
    // Bad forms name the value and what is wrong with it.
    for (value, wanted) in [
        ("[::1]8080:80", "expected ':' after the host IP"),
        ("[::1:8080:80", "unclosed '[' around the host IP"),
        ("[zz]:8080:80", "\"zz\" is not an IP address"),
        (
            "::1:8080:80",
            "too many ':' (IPv6 addresses go in brackets)",
        ),
    ] {
        assert_exit(
            &v.run(&run_true(&rootfs, &["-p", value])),
            125,
            &format!("invalid -p/--publish value {value:?}: {wanted}"),
            &value,
        );
    }

    // A real HTTP client on ::1 reaches the container (IPv4 only on the
    // default network) through vigil's forwarder.
    let publish = format!("[::1]:{port}:80");
    let name = unique("web6");
    let id = v
        .ok(&httpd(&rootfs, &["--name", &name, "-p", &publish]))
        .trim()
        .to_string();
    assert_eq!(http_get(&format!("[::1]:{port}"), "/hostname"), &id[..12]);
    assert_eq!(v.ok(&["port", &name]), format!("80/tcp -> ::1:{port}\n"));
    assert_eq!(
        v.ok(&[
            "ps",
            "--filter",
            &format!("name=^{name}$"),
            "--format",
            "{{.Ports}} {{.Networks}}"
        ]),
        format!("::1:{port}->80/tcp [vigil]\n")
    );
    let ns = settings(&v, &name);
    assert_eq!(
        ns["Ports"]["80/tcp"][0],
        serde_json::json!({"HostIp": "::1", "HostPort": port.to_string()}),
        "{ns}"
    );
    let netns = ns["SandboxKey"].as_str().unwrap().to_string();
    let ip = ns["IPAddress"].as_str().unwrap().to_string();

    // A taken port is named.
    let taken = unique("web6taken");
    let out = v.run(&httpd(&rootfs, &["--name", &taken, "-p", &publish]));
    let _ = v.run(&["rm", "-f", &taken]);
    assert_exit(
        &out,
        126,
        &format!(
            "cannot listen on the TCP port: listen tcp6 [::1]:{port}: bind: address already in use"
        ),
        &"second container on the port",
    );

    // Gone with the container: forwarder, socket, rules, namespace.
    v.ok(&["rm", "-f", &name]);
    assert_no_process(&netns, Duration::from_secs(10));
    assert_torn_down(&id, &ip, &netns);
    std::net::TcpListener::bind(format!("[::1]:{port}")).expect("the port is free again");
}

#[test]
fn network_ls_format_and_filters_as_podman() {
    let Some((v, _rootfs)) = setup("network_ls_format_and_filters_as_podman") else {
        return;
    };
    // The same networks in vigil and (when it runs here) in a private
    // Podman: creating them touches no interface, only the network files.
    let podman = e2e_support::Podman::new("vfs")
        .map_err(|why| eprintln!("network ls: no comparison with Podman: {why}"))
        .ok();
    let prefix = unique("ls");
    let (lab, plain, six) = (
        format!("{prefix}-lab"),
        format!("{prefix}-plain"),
        format!("{prefix}-six"),
    );
    let _cleanup = networks_removed(&v, &[&lab, &plain, &six]);
    let pid = std::process::id();
    let subnet6 = format!("fd{:02x}:{:x}:5:6::/64", pid % 256, pid % 65536);
    let creates: [Vec<&str>; 3] = [
        // One label each: Podman prints several in Go's random map order.
        vec!["network", "create", "--label", "a=b", &lab],
        vec![
            "network",
            "create",
            "--label",
            "c",
            "--internal",
            "--disable-dns",
            &plain,
        ],
        vec!["network", "create", "--subnet", &subnet6, &six],
    ];
    for args in &creates {
        v.ok(args);
        if let Some(p) = &podman {
            p.ok(args);
        }
    }
    let by_name = format!("name=^{prefix}-");
    let (name_six, name_lab) = (format!("name={six}"), format!("name={lab}"));
    let row = "{{.Name}} {{.Driver}} [{{.Labels}}] {{.IPv6Enabled}} {{.DNSEnabled}} \
               {{.Internal}} {{.IPAMOptions}} {{.Options}}";
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--format", row, "--filter", &by_name],
            format!(
                "{lab} bridge [a=b] false true false map[driver:host-local] map[]\n\
                 {plain} bridge [c=] false false true map[driver:host-local] map[]\n\
                 {six} bridge [] true true false map[driver:host-local] map[]\n"
            ),
        ),
        (
            vec![
                "--format",
                "table {{.Name}}\t{{.Labels}}\t{{.DNSEnabled}}",
                "--filter",
                &by_name,
                "--filter",
                "label=a",
            ],
            format!(
                "NAME{0}LABELS      DNS ENABLED\n{lab}  a=b         true\n",
                " ".repeat(lab.len() - 2)
            ),
        ),
        (
            vec![
                "--noheading",
                "--format",
                "table {{.Name}}\t{{.Internal}}",
                "--filter",
                &by_name,
                "--filter",
                "label!=a",
            ],
            format!("{plain}  true\n{six}    false\n"),
        ),
        (
            vec!["-q", "--filter", &by_name, "--filter", "label=a=b"],
            format!("{lab}\n"),
        ),
        (
            vec![
                "-q",
                "--filter",
                &by_name,
                "--filter",
                "dangling=true",
                "--filter",
                "driver=bridge",
            ],
            format!("{lab}\n{plain}\n{six}\n"),
        ),
        (
            vec!["-q", "--filter", &name_six, "--filter", &name_lab],
            format!("{lab}\n{six}\n"),
        ),
    ];
    for (args, wanted) in &cases {
        let mut full = vec!["network", "ls"];
        full.extend_from_slice(args);
        assert_eq!(&v.ok(&full), wanted, "vigil {args:?}");
        if let Some(p) = &podman {
            assert_eq!(&p.ok(&full), wanted, "podman {args:?}");
        }
    }
    // The id: 12 characters, all with --no-trunc.
    let id = v.ok(&[
        "network",
        "ls",
        "--no-trunc",
        "--format",
        "{{.ID}}",
        "--filter",
        &format!("name=^{lab}$"),
    ]);
    assert_eq!(id.trim().len(), 64, "{id}");
    let short = v.ok(&[
        "network",
        "ls",
        "--format",
        "{{.ID}}",
        "--filter",
        &format!("name=^{lab}$"),
    ]);
    assert_eq!(short.trim(), &id.trim()[..12]);
    assert_eq!(
        v.ok(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("id={}", &id[..10])
        ]),
        format!("{lab}\n")
    );
    // JSON: the network objects, indented by two spaces as Podman's.
    let json = v.ok(&[
        "network",
        "ls",
        "--format",
        "{{json .}}",
        "--filter",
        &format!("name=^{lab}$"),
    ]);
    assert!(json.starts_with("[\n  {\n    \"name\": "), "{json}");
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed[0]["labels"], serde_json::json!({"a": "b"}));

    // Errors, with Podman's words.
    for (args, wanted) in [
        (vec!["--format", "{{.Nope}}"], "can't evaluate field Nope"),
        (vec!["--filter", "foo=bar"], "invalid filter \"foo\""),
        (
            vec!["--filter", "nameonly"],
            "filter input must be in the form of filter=value: nameonly is invalid",
        ),
        (
            vec!["--filter", "dangling=nope"],
            "invalid dangling filter value \"nope\"",
        ),
    ] {
        let mut full = vec!["network", "ls"];
        full.extend_from_slice(&args);
        assert_exit(&v.run(&full), 125, wanted, &full);
        if let Some(p) = &podman {
            assert_exit(&p.run(&full), 125, wanted, &("podman", &full));
        }
    }
    v.ok(&["network", "rm", &lab, &plain, &six]);
}
