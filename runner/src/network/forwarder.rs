//! vigil's port forwarder (a rootlessport equivalent, see docs/network.md),
//! for rootless containers and for ports published on an IPv6 host address
//! of a rootful one: the runner binds the host ports itself (so the errors
//! are exact), then starts `vigil internal-port-forward` with the listening
//! sockets. For each connection a thread enters the container's network
//! namespace, connects to the container's address, and the bytes are
//! spliced both ways in the kernel. UDP ports get, per client address, a
//! socket made inside the namespace and connected to the container's port;
//! replies go back to that client from the host socket (as rootlessport
//! does). It exits when the exit pipe closes (the monitor, which holds its
//! other end, is gone).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{setns, CloneFlags};
use nix::unistd::pipe2;

/// A UDP client's flow ends after this long without a reply from the
/// container (its namespace socket is closed; a later datagram opens a new one).
const UDP_IDLE: Duration = Duration::from_secs(60);
/// The pipe between the two sockets of a TCP connection.
const PIPE_SIZE: usize = 1 << 20;
/// Datagrams are at most this big (the largest UDP payload).
const UDP_MAX: usize = 65535;

/// The protocol of a forwarded port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    /// `tcp`/`udp` (other protocols are not forwarded).
    pub fn parse(name: &str) -> Option<Proto> {
        match name {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            _ => None,
        }
    }
}

fn socket_addr(ip: &str, port: u16) -> String {
    match ip {
        "" => format!("0.0.0.0:{port}"),
        ip if ip.contains(':') => format!("[{ip}]:{port}"),
        ip => format!("{ip}:{port}"),
    }
}

/// A listening TCP socket on `ip:port` ("" = all interfaces); SO_REUSEADDR
/// and close-on-exec as Rust's std sets them.
pub fn listen_tcp(ip: &str, port: u16) -> io::Result<TcpListener> {
    TcpListener::bind(socket_addr(ip, port))
}

pub fn bind_udp(ip: &str, port: u16) -> io::Result<UdpSocket> {
    UdpSocket::bind(socket_addr(ip, port))
}

/// An errno as Go prints it (`address already in use`, `permission denied`).
pub fn go_error_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The rootless bind error, with rootlessport's words (runner-network §8.2).
pub fn rootless_bind_error(e: &io::Error, proto: Proto, ip: &str, port: u16) -> String {
    let listen = format!(
        "listen {} {}: bind: {}",
        proto.name(),
        socket_addr(ip, port),
        go_error_text(e)
    );
    if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) {
        let start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1024);
        if port < start {
            return format!(
                "rootlessport cannot expose privileged port {port}, you can add \
                 'net.ipv4.ip_unprivileged_port_start={port}' to /etc/sysctl.conf (currently \
                 {start}), or choose a larger port number (>= {start}): {listen}"
            );
        }
    }
    format!("rootlessport {listen}")
}

/// Move bytes from `from` to `to` until EOF, through a pipe with splice(2)
/// (no copy through user space); then half-close `to`.
fn pump(from: &TcpStream, to: &TcpStream) {
    if let Ok((r, w)) = pipe2(OFlag::O_CLOEXEC) {
        // A pipe holds 64 KiB by default: one splice pair per 64 KiB. Ask
        // for PIPE_SIZE (the unprivileged limit, fs.pipe-max-size, is 1 MiB
        // by default); whatever the kernel grants is used.
        let chunk = match fcntl(&w, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE as i32)) {
            Ok(granted) if granted > 0 => granted as usize,
            _ => 1 << 16,
        };
        loop {
            let n = match splice(from, None, &w, None, chunk, SpliceFFlags::SPLICE_F_MOVE) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut left = n;
            while left > 0 {
                match splice(&r, None, to, None, left, SpliceFFlags::SPLICE_F_MOVE) {
                    Ok(0) | Err(_) => {
                        let _ = from.shutdown(Shutdown::Read);
                        let _ = to.shutdown(Shutdown::Write);
                        return;
                    }
                    Ok(m) => left -= m,
                }
            }
        }
    } else {
        let _ = io::copy(&mut &*from, &mut &*to);
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// The container's address and port (IPv4 or IPv6).
fn target(child_ip: &str, port: u16) -> Option<SocketAddr> {
    Some(SocketAddr::new(child_ip.parse().ok()?, port))
}

/// Serve one connection: connect inside the namespace, splice both ways.
fn serve(client: TcpStream, netns: &File, child_ip: &str, port: u16) {
    // On this thread only (a network namespace may be entered by one thread
    // of a multi-threaded process); the thread serves only this connection.
    if setns(netns, CloneFlags::CLONE_NEWNET).is_err() {
        return;
    }
    let Some(addr) = target(child_ip, port) else {
        return;
    };
    let Ok(upstream) = TcpStream::connect_timeout(&addr, Duration::from_secs(10)) else {
        return;
    };
    let _ = upstream.set_nodelay(true);
    let _ = client.set_nodelay(true);
    let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let back = std::thread::spawn(move || pump(&u2, &c2));
    pump(&client, &upstream);
    let _ = back.join();
}

/// A UDP socket inside the namespace, connected to the container's port.
/// Made on a thread of its own: `setns` changes the calling thread for good.
fn namespace_udp_socket(netns: &Arc<File>, child_ip: &str, port: u16) -> Option<UdpSocket> {
    let ns = Arc::clone(netns);
    let target = target(child_ip, port)?;
    std::thread::spawn(move || {
        // On this short-lived thread only.
        setns(&*ns, CloneFlags::CLONE_NEWNET).ok()?;
        let any = if target.is_ipv6() {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        };
        let s = UdpSocket::bind(any).ok()?;
        s.connect(target).ok()?;
        Some(s)
    })
    .join()
    .ok()
    .flatten()
}

/// Forward datagrams between the host socket and the container's port, one
/// namespace socket per client address; a reply thread per client sends
/// the container's answers back from the host socket.
fn serve_udp(host: UdpSocket, netns: Arc<File>, child_ip: String, port: u16) {
    let host = Arc::new(host);
    let flows: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; UDP_MAX];
    loop {
        let (n, peer) = match host.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let known = flows.lock().ok().and_then(|f| f.get(&peer).cloned());
        let upstream = match known {
            Some(u) => u,
            None => {
                let Some(u) = namespace_udp_socket(&netns, &child_ip, port) else {
                    continue;
                };
                let u = Arc::new(u);
                let _ = u.set_read_timeout(Some(UDP_IDLE));
                if let Ok(mut f) = flows.lock() {
                    f.insert(peer, Arc::clone(&u));
                }
                let (host, flows, reply) = (Arc::clone(&host), Arc::clone(&flows), Arc::clone(&u));
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; UDP_MAX];
                    // Until the container is silent for UDP_IDLE (or the
                    // socket fails): then the flow is forgotten.
                    while let Ok(n) = reply.recv(&mut buf) {
                        if host.send_to(&buf[..n], peer).is_err() {
                            break;
                        }
                    }
                    if let Ok(mut f) = flows.lock() {
                        f.remove(&peer);
                    }
                });
                u
            }
        };
        let _ = upstream.send(&buf[..n]);
    }
}

/// The forwarder's main: `listeners` are (socket, container port,
/// protocol); returns when `exit_fd` reports EOF or hang-up.
pub fn run(
    netns: &Path,
    child_ip: &str,
    exit_fd: OwnedFd,
    listeners: Vec<(OwnedFd, u16, Proto)>,
) -> io::Result<()> {
    let ns = Arc::new(File::open(netns)?);
    for (fd, port, proto) in listeners {
        let ns = Arc::clone(&ns);
        let ip = child_ip.to_string();
        if proto == Proto::Udp {
            let socket = UdpSocket::from(fd);
            std::thread::spawn(move || serve_udp(socket, ns, ip, port));
            continue;
        }
        let listener = TcpListener::from(fd);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let ns = Arc::clone(&ns);
                let ip = ip.clone();
                std::thread::spawn(move || serve(conn, &ns, &ip, port));
            }
        });
    }
    let mut pfd = [PollFd::new(exit_fd.as_fd(), PollFlags::POLLIN)];
    loop {
        match poll(&mut pfd, PollTimeout::NONE) {
            Ok(r) if r > 0 => return Ok(()),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
