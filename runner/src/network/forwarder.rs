//! vigil's rootless port forwarder (a rootlessport equivalent, see
//! docs/network.md): the runner binds the host ports itself (so the errors
//! are exact), then starts `vigil internal-port-forward` with the listening
//! sockets. For each connection a thread enters the container's network
//! namespace, connects to the container's address, and the bytes are
//! spliced both ways in the kernel. It exits when the exit pipe closes
//! (the monitor, which holds its other end, is gone).

use std::fs::File;
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{splice, OFlag, SpliceFFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{setns, CloneFlags};
use nix::unistd::pipe2;

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
pub fn rootless_bind_error(e: &io::Error, ip: &str, port: u16) -> String {
    let listen = format!(
        "listen tcp {}: bind: {}",
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
        const CHUNK: usize = 1 << 20;
        loop {
            let n = match splice(from, None, &w, None, CHUNK, SpliceFFlags::SPLICE_F_MOVE) {
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

/// Serve one connection: connect inside the namespace, splice both ways.
fn serve(client: TcpStream, netns: &File, child_ip: &str, port: u16) {
    // On this thread only (a network namespace may be entered by one thread
    // of a multi-threaded process); the thread serves only this connection.
    if setns(netns, CloneFlags::CLONE_NEWNET).is_err() {
        return;
    }
    let addr = format!("{child_ip}:{port}");
    let Ok(addr) = addr.parse() else { return };
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

/// The forwarder's main: `listeners` are (socket, container port); returns
/// when `exit_fd` reports EOF or hang-up.
pub fn run(
    netns: &Path,
    child_ip: &str,
    exit_fd: OwnedFd,
    listeners: Vec<(OwnedFd, u16)>,
) -> io::Result<()> {
    let ns = Arc::new(File::open(netns)?);
    for (fd, port) in listeners {
        let listener = TcpListener::from(fd);
        let ns = Arc::clone(&ns);
        let ip = child_ip.to_string();
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
