//! Keep a bridge's MAC address fixed once containers use it.
//!
//! A Linux bridge whose address was never set takes the lowest MAC of its
//! ports, so it changes when the container whose veth had that MAC leaves
//! (`network disconnect`, `rm`). The other containers keep the old address
//! for the gateway in their ARP caches and their packets to it (DNS to
//! aardvark-dns, traffic to the host) are dropped until the entry expires,
//! up to a minute. netavark 1.4 leaves the address unset; vigil sets it to
//! the one the bridge has after its first setup, which makes it permanent
//! (the kernel's `addr_assign_type` becomes NET_ADDR_SET).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// The kernel's `addr_assign_type` for an address set from user space.
const NET_ADDR_SET: &str = "3";

/// Pin `bridge`'s current MAC address, once. Failures are logged, not
/// returned: the container's network works without it, as with Podman.
pub fn pin(bridge: &str) {
    // The name comes from our network config; still, a name with a path
    // separator or a leading dot must not reach the /sys path.
    if bridge.is_empty()
        || bridge.len() > 15
        || bridge.starts_with('.')
        || !bridge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        log::debug!("bridge name {bridge:?}: address not pinned");
        return;
    }
    let sys = Path::new("/sys/class/net").join(bridge);
    let read = |file: &str| std::fs::read_to_string(sys.join(file)).map(|s| s.trim().to_string());
    if read("addr_assign_type").is_ok_and(|t| t == NET_ADDR_SET) {
        return;
    }
    let Ok(mac) = read("address") else {
        log::debug!("bridge {bridge}: no address to pin");
        return;
    };
    let Some(octets) = parse_mac(&mac) else {
        log::debug!("bridge {bridge}: address {mac:?} is not a MAC address");
        return;
    };
    // One ioctl instead of running `ip link set ... address`: this runs
    // before the container starts, on every first setup of the network.
    if let Err(e) = set_hw_address(bridge, octets) {
        log::warn!("pinning the address of bridge {bridge}: {e}");
    }
}

/// `aa:bb:cc:dd:ee:ff` as six octets.
fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = text.split(':');
    for o in out.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *o = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Set `name`'s hardware address (SIOCSIFHWADDR), which marks it as set by
/// user space. `name` is at most 15 bytes (checked by the caller).
fn set_hw_address(name: &str, mac: [u8; 6]) -> std::io::Result<()> {
    // SAFETY: a plain socket(2) call; the fd is owned right away.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a new fd that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain data (arrays and a union of plain data), for
    // which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *dst = src as libc::c_char;
    }
    let mut addr: libc::sockaddr = libc::sockaddr {
        sa_family: libc::ARPHRD_ETHER,
        sa_data: [0; 14],
    };
    for (dst, src) in addr.sa_data.iter_mut().zip(mac) {
        *dst = src as libc::c_char;
    }
    req.ifr_ifru.ifru_hwaddr = addr;
    // SAFETY: SIOCSIFHWADDR reads one ifreq, which `req` is and outlives the
    // call; the name is NUL-terminated (zeroed, at most IFNAMSIZ - 1 bytes).
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFHWADDR, &req) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_mac;

    #[test]
    fn parses_sysfs_addresses() {
        assert_eq!(
            parse_mac("8a:0c:c2:c4:0a:28"),
            Some([0x8a, 0x0c, 0xc2, 0xc4, 0x0a, 0x28])
        );
        assert_eq!(parse_mac("8a:0c:c2:c4:0a"), None);
        assert_eq!(parse_mac("8a:0c:c2:c4:0a:28:00"), None);
        assert_eq!(parse_mac("8a:0c:c2:c4:0a:2g"), None);
        assert_eq!(parse_mac(""), None);
    }
}
