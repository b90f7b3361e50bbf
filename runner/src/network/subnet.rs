//! IPv4 subnets: parsing, containment, overlap, and the host's routes.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network `A.B.C.D/N` (host bits cleared).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Net {
    base: u32,
    prefix: u8,
}

impl Ipv4Net {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Net> {
        (prefix <= 32).then(|| Ipv4Net {
            base: u32::from(addr) & mask(prefix),
            prefix,
        })
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base)
    }

    /// The last address (broadcast).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base | !mask(self.prefix))
    }

    /// The `n`-th address of the subnet (0 is the network address).
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        let size = 1u64 << (32 - self.prefix);
        (u64::from(n) < size).then(|| Ipv4Addr::from(self.base + n))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == self.base
    }

    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        let p = self.prefix.min(other.prefix);
        self.base & mask(p) == other.base & mask(p)
    }

    /// The `/new_prefix` subnet that follows this one, if any.
    pub fn next(&self) -> Option<Ipv4Net> {
        let step = 1u64 << (32 - self.prefix);
        let next = u64::from(self.base) + step;
        (next <= u64::from(u32::MAX)).then_some(Ipv4Net {
            base: next as u32,
            prefix: self.prefix,
        })
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid subnet {s:?}: expected an IPv4 CIDR such as 10.78.0.0/24");
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(format!(
                "invalid subnet {s:?}: the prefix length must be between 8 and 30"
            ));
        }
        Ipv4Net::new(addr, prefix).ok_or_else(bad)
    }
}

/// The host's IPv4 routes (`/proc/net/route`) as (interface, subnet),
/// without default routes.
pub fn host_routes() -> Vec<(String, Ipv4Net)> {
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            // The kernel prints the address's memory (network order) as a native u32.
            let prefix = mask.count_ones() as u8;
            if prefix == 0 {
                return None;
            }
            let net = Ipv4Net::new(Ipv4Addr::from(dest.to_ne_bytes()), prefix)?;
            Some((f[0].to_string(), net))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_math() {
        let n: Ipv4Net = "10.78.3.7/24".parse().unwrap();
        assert_eq!(n.to_string(), "10.78.3.0/24");
        assert_eq!(n.nth(1), Some(Ipv4Addr::new(10, 78, 3, 1)));
        assert_eq!(n.broadcast(), Ipv4Addr::new(10, 78, 3, 255));
        assert_eq!(n.nth(256), None);
        assert!(n.contains(Ipv4Addr::new(10, 78, 3, 200)));
        let big: Ipv4Net = "10.78.0.0/16".parse().unwrap();
        assert!(big.overlaps(&n) && n.overlaps(&big));
        assert!(!n.overlaps(&"10.78.4.0/24".parse().unwrap()));
        assert_eq!(n.next().unwrap().to_string(), "10.78.4.0/24");
        assert!("10.0.0.0".parse::<Ipv4Net>().is_err());
        assert!("10.0.0.0/31".parse::<Ipv4Net>().is_err());
        assert!("x/24".parse::<Ipv4Net>().is_err());
    }
}
