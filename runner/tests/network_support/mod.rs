//! Shared by the network tests: a bounded HTTP GET over a real TCP socket,
//! free ports, and checks that nothing of a container's network is left.
//! Traffic goes only to 127.0.0.1 or to addresses of containers on bridges
//! the tests made (runner-network §10).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Runs its closure when dropped: what a test made (networks live in the
/// host's files, not in the test's store) goes also when it fails half-way.
pub struct OnDrop<F: FnMut()>(pub F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// A port the kernel says is free on 127.0.0.1 now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A port the kernel says is free on ::1 now (None: no IPv6 loopback).
pub fn free_port6() -> Option<u16> {
    TcpListener::bind("[::1]:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .ok()
}

/// A free loopback port and the `-p 127.0.0.1:PORT:CTR` value publishing
/// container port `ctr` (`80`, `9000/udp`) on it.
pub fn loopback_publish(ctr: &str) -> (u16, String) {
    let port = free_port();
    (port, format!("127.0.0.1:{port}:{ctr}"))
}

/// Asserts that a command (`what`, for the messages) ended with exit
/// `code` and `wanted` in its stderr; the stderr.
#[track_caller]
pub fn assert_exit(out: &Output, code: i32, wanted: &str, what: &dyn std::fmt::Debug) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{what:?}: {err}");
    assert!(
        err.contains(wanted),
        "{what:?}: expected {wanted:?} in {err}"
    );
    err
}

/// vigil's address allocations as root (its IPAM file), "" without one.
pub fn ipam_allocations() -> String {
    std::fs::read_to_string("/run/vigil/networks/ipam.json").unwrap_or_default()
}

/// Asserts that container `id` holds no address.
#[track_caller]
pub fn assert_no_addresses(id: &str) {
    let ipam = ipam_allocations();
    assert!(!ipam.contains(id), "{id} still holds addresses: {ipam}");
}

/// `nslookup NAME SERVER` run in container `from` through `exec` (the
/// runner's `exec`, given its arguments); stdout and stderr together.
pub fn lookup_once(
    exec: &dyn Fn(&[&str]) -> Output,
    from: &str,
    name: &str,
    server: &str,
) -> String {
    let out = exec(&["exec", from, "nslookup", name, server]);
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// In container `from`, look `name` up at the network's DNS server
/// `server` until it answers `wanted`. aardvark-dns 1.4 restarts its
/// listeners on each change (netavark's SIGHUP, also for other tests'
/// containers), and a query may time out meanwhile: asked at most 20 times
/// within 30 s.
#[track_caller]
pub fn lookup(
    exec: &dyn Fn(&[&str]) -> Output,
    from: &str,
    name: &str,
    server: &str,
    wanted: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = format!("Address: {wanted}");
    let mut last = String::new();
    for _ in 0..20 {
        last = lookup_once(exec, from, name, server);
        if last.contains(&answer) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(last.contains(&answer), "{name} from {from}: {last}");
}

/// One `GET path` over HTTP/1.0; the body, or None on any failure.
pub fn http_get_once(addr: &str, path: &str) -> Option<String> {
    let sock = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes())
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_string())
}

/// `GET path` until the server answers (at most 100 tries within 20 s).
pub fn http_get(addr: &str, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    for _ in 0..100 {
        if let Some(body) = http_get_once(addr, path) {
            return body;
        }
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no HTTP answer from {addr}{path}");
}

fn stdout_of(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Every iptables rule (nat and filter) as `iptables -S` prints them.
pub fn firewall_rules() -> String {
    stdout_of("iptables", &["-t", "nat", "-S"]) + &stdout_of("iptables", &["-S"])
}

/// The IPv6 NAT rules as `ip6tables -t nat -S` prints them.
pub fn ip6_nat_rules() -> String {
    stdout_of("ip6tables", &["-t", "nat", "-S"])
}

/// Nothing of container `id` (address `ip`, namespace `netns`) is left:
/// no firewall rule, no address allocation, no namespace file.
pub fn assert_torn_down(id: &str, ip: &str, netns: &str) {
    let rules = firewall_rules();
    let ip_rule = format!("{ip}:");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rules_now = firewall_rules();
        let ipam = ipam_allocations();
        let clean = !rules_now.contains(id)
            && !rules_now.contains(&ip_rule)
            && !ipam.contains(id)
            && !Path::new(netns).exists();
        if clean {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left behind for {id} ({ip}, {netns}):\nrules: {rules}\nipam: {ipam}\nnetns exists: {}",
            Path::new(netns).exists()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Processes whose command line contains `needle` (not zombies).
pub fn processes_with(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if !cmd.is_empty() && String::from_utf8_lossy(&cmd).contains(needle) {
            out.push(pid);
        }
    }
    out
}

/// Wait (bounded) until no process's command line contains `needle`.
pub fn assert_no_process(needle: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !processes_with(needle).is_empty() {
        assert!(
            Instant::now() < deadline,
            "processes still running with {needle:?}: {:?}",
            processes_with(needle)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Send `payload` in one datagram to `addr` from a fresh socket until a
/// reply comes (at most 100 tries within 20 s: the server may still be
/// starting); the reply, or None.
pub fn udp_exchange(addr: &str, payload: &[u8]) -> Option<Vec<u8>> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 2048];
    for _ in 0..100 {
        socket.send_to(payload, addr).expect("send_to");
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            assert_eq!(from.to_string(), addr, "reply from the published address");
            return Some(buf[..n].to_vec());
        }
        if Instant::now() > deadline {
            break;
        }
    }
    None
}
