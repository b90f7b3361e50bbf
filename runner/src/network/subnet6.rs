//! IPv6 subnets of bridge networks: parsing, containment, overlap, and the
//! random unique local (ULA, fd00::/8) /64 that `network create --ipv6`
//! picks. vigil gives containers only ULA addresses: they never route to
//! the outside on their own.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// An IPv6 network `ADDR/N` (host bits cleared).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv6Net {
    base: u128,
    prefix: u8,
}

fn mask(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

impl Ipv6Net {
    pub fn new(addr: Ipv6Addr, prefix: u8) -> Option<Ipv6Net> {
        (prefix <= 128).then(|| Ipv6Net {
            base: u128::from(addr) & mask(prefix),
            prefix,
        })
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn network(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.base)
    }

    /// The `n`-th address of the subnet (0 is the network address).
    pub fn nth(&self, n: u128) -> Option<Ipv6Addr> {
        let host_bits = 128 - u32::from(self.prefix);
        let fits = host_bits >= 128 || n < (1u128 << host_bits);
        fits.then(|| Ipv6Addr::from(self.base + n))
    }

    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & mask(self.prefix) == self.base
    }

    pub fn overlaps(&self, other: &Ipv6Net) -> bool {
        let p = self.prefix.min(other.prefix);
        self.base & mask(p) == other.base & mask(p)
    }

    /// Inside fc00::/7 (unique local addresses).
    pub fn is_unique_local(&self) -> bool {
        self.prefix >= 7 && (self.base >> 121) == (0xfc >> 1)
    }

    /// A random `fdXX:XXXX:XXXX:XXXX::/64` (RFC 4193: 40 random bits of
    /// global ID and 16 of subnet ID), from `random` bytes.
    pub fn random_ula(random: [u8; 7]) -> Ipv6Net {
        let mut bytes = [0u8; 16];
        bytes[0] = 0xfd;
        bytes[1..8].copy_from_slice(&random);
        Ipv6Net {
            base: u128::from_be_bytes(bytes),
            prefix: 64,
        }
    }
}

impl fmt::Display for Ipv6Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

impl FromStr for Ipv6Net {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid subnet {s:?}: expected an IPv6 CIDR such as fd00:1:2:3::/64");
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        Ipv6Net::new(addr, prefix).ok_or_else(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_contain_overlap_ula() {
        let n: Ipv6Net = "fd99:1234:5678:9abc::7/64".parse().unwrap();
        assert_eq!(n.to_string(), "fd99:1234:5678:9abc::/64");
        assert!(n.contains("fd99:1234:5678:9abc::2".parse().unwrap()));
        assert!(!n.contains("fd99:1234:5678:9abd::2".parse().unwrap()));
        assert_eq!(
            n.nth(1).unwrap(),
            "fd99:1234:5678:9abc::1".parse::<Ipv6Addr>().unwrap()
        );
        assert!(n.is_unique_local());
        let doc: Ipv6Net = "2001:db8::/64".parse().unwrap();
        assert!(!doc.is_unique_local());
        assert!(n.overlaps(&"fd99::/16".parse().unwrap()));
        assert!(!n.overlaps(&doc));
        let r = Ipv6Net::random_ula([1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(r.to_string(), "fd01:203:405:607::/64");
        assert!("10.0.0.0/8".parse::<Ipv6Net>().is_err());
    }
}
