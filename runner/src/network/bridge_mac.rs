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

use std::path::Path;
use std::process::{Command, Stdio};

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
    let status = Command::new("ip")
        .args(["link", "set", "dev", bridge, "address", &mac])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => log::warn!("pinning the address of bridge {bridge}: ip link set exited {s}"),
        Err(e) => log::warn!("pinning the address of bridge {bridge}: running ip (iproute2): {e}"),
    }
}
