//! Which IP addresses a plugin may connect to.
//!
//! A plugin that may reach an allow-listed *name* must still not reach the host's own
//! services, the cloud metadata endpoint or the operator's private network through it:
//! a name can resolve to anything, and a URL can spell an address in many ways. Every
//! address the host is about to connect to therefore goes through [`check`], which
//! refuses every range that is not globally routable unless the operator explicitly
//! allowed a network containing it (tests and local development allow loopback).
//!
//! Addresses are classified after the URL parser has normalised them (`2130706433`,
//! `0x7f.1` and `017700000001` all arrive here as `127.0.0.1`), and IPv6 forms that
//! embed an IPv4 address (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64
//! `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`) are judged by the IPv4 address they embed,
//! because that is where a dual-stack or translating network delivers them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// IPv4 ranges that are refused by default, most specific first so the reason named is
/// the most useful one (broadcast before the reserved block that contains it).
const V4_BLOCKED: &[(Ipv4Net, &str)] = &[
    (v4(255, 255, 255, 255, 32), "the broadcast address"),
    (
        v4(0, 0, 0, 0, 8),
        "unspecified (\"this network\", 0.0.0.0/8)",
    ),
    (v4(10, 0, 0, 0, 8), "private (10.0.0.0/8)"),
    (
        v4(100, 64, 0, 0, 10),
        "shared carrier-grade NAT space (100.64.0.0/10)",
    ),
    (v4(127, 0, 0, 0, 8), "loopback (127.0.0.0/8)"),
    (
        v4(169, 254, 0, 0, 16),
        "link-local, where cloud metadata services live (169.254.0.0/16)",
    ),
    (v4(172, 16, 0, 0, 12), "private (172.16.0.0/12)"),
    (
        v4(192, 0, 0, 0, 24),
        "reserved for IETF protocols (192.0.0.0/24)",
    ),
    (v4(192, 0, 2, 0, 24), "documentation (192.0.2.0/24)"),
    (
        v4(192, 88, 99, 0, 24),
        "6to4 relay anycast (192.88.99.0/24)",
    ),
    (v4(192, 168, 0, 0, 16), "private (192.168.0.0/16)"),
    (v4(198, 18, 0, 0, 15), "benchmarking (198.18.0.0/15)"),
    (v4(198, 51, 100, 0, 24), "documentation (198.51.100.0/24)"),
    (v4(203, 0, 113, 0, 24), "documentation (203.0.113.0/24)"),
    (v4(224, 0, 0, 0, 4), "multicast (224.0.0.0/4)"),
    (v4(240, 0, 0, 0, 4), "reserved (240.0.0.0/4)"),
];

/// IPv6 ranges that are refused by default. The ranges that embed an IPv4 address are
/// handled by [`embedded_v4`] before this table is consulted.
const V6_BLOCKED: &[(Ipv6Net, &str)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified (::)"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback (::1)"),
    (
        v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96),
        "IPv4-translated (::ffff:0:0:0/96)",
    ),
    (
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        "local-use NAT64 (64:ff9b:1::/48)",
    ),
    (
        v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
        "discard-only (100::/64)",
    ),
    (
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        "documentation (2001:db8::/32)",
    ),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "reserved for IETF protocols, including Teredo (2001::/23)",
    ),
    (
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        "documentation (3fff::/20)",
    ),
    (
        v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),
        "segment routing (5f00::/16)",
    ),
    (
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        "unique local (fc00::/7)",
    ),
    (
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        "link-local (fe80::/10)",
    ),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "site-local (fec0::/10)",
    ),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast (ff00::/8)"),
];

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

const fn v6(s: [u16; 8], prefix: u8) -> Ipv6Net {
    Ipv6Net::new_assert(
        Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
        prefix,
    )
}

/// Why an address was refused; its `Display` is the reason given to the plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedAddress {
    /// The address as it was going to be connected to.
    pub addr: IpAddr,
    /// The IPv4 address it embeds, when it was judged by that address instead.
    pub embedded: Option<Ipv4Addr>,
    /// The refused range it falls in, in words.
    pub range: &'static str,
}

impl fmt::Display for BlockedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded {
            Some(v4) => write!(f, "{} embeds {v4}, which is {}", self.addr, self.range),
            None => write!(f, "{} is {}", self.addr, self.range),
        }
    }
}

impl std::error::Error for BlockedAddress {}

/// The IPv4 address an IPv6 address stands for, if it is one of the forms that carry one:
/// IPv4-mapped, IPv4-compatible (other than `::` and `::1`), NAT64 well-known prefix or 6to4.
pub fn embedded_v4(addr: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = addr.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = addr.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // IPv4-compatible; `::` and `::1` are IPv6's own unspecified and loopback.
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 || lo > 1 => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

/// The refused range `addr` falls in, or `None` when it is globally routable.
///
/// This ignores operator exceptions; use [`check`] before connecting.
pub fn classify(addr: IpAddr) -> Option<BlockedAddress> {
    let (embedded, judged) = match addr {
        IpAddr::V4(v4) => (None, IpAddr::V4(v4)),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => (Some(v4), IpAddr::V4(v4)),
            None => (None, IpAddr::V6(v6)),
        },
    };
    let range = match judged {
        IpAddr::V4(v4) => V4_BLOCKED
            .iter()
            .find(|(net, _)| net.contains(&v4))
            .map(|(_, why)| *why),
        IpAddr::V6(v6) => V6_BLOCKED
            .iter()
            .find(|(net, _)| net.contains(&v6))
            .map(|(_, why)| *why),
    }?;
    Some(BlockedAddress {
        addr,
        embedded,
        range,
    })
}

/// Decides whether the host may connect to `addr` for a plugin.
///
/// An address inside one of `allowed_networks` (the operator's explicit exceptions) is
/// accepted whatever range it is in; an IPv6 address that embeds an IPv4 one is also
/// accepted when the embedded address is inside an allowed network. Otherwise every range
/// that is not globally routable is refused.
pub fn check(addr: IpAddr, allowed_networks: &[IpNet]) -> Result<(), BlockedAddress> {
    let embedded = match addr {
        IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
        IpAddr::V4(_) => None,
    };
    let excepted = allowed_networks
        .iter()
        .any(|net| net.contains(&addr) || embedded.is_some_and(|e| net.contains(&e)));
    if excepted {
        return Ok(());
    }
    match classify(addr) {
        Some(blocked) => Err(blocked),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `url` the way requests are parsed and returns its IP-literal host.
    fn literal(url: &str) -> IpAddr {
        let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        match parsed.host() {
            Some(url::Host::Ipv4(a)) => IpAddr::V4(a),
            Some(url::Host::Ipv6(a)) => IpAddr::V6(a),
            other => panic!("{url} has no IP host: {other:?}"),
        }
    }

    #[test]
    fn every_notation_of_a_special_address_is_refused() {
        // (URL as a plugin could write it, address it normalises to, words in the reason)
        let cases: &[(&str, &str, &str)] = &[
            ("http://127.0.0.1/", "127.0.0.1", "loopback"),
            ("http://2130706433/", "127.0.0.1", "loopback"),
            ("http://0x7f.1/", "127.0.0.1", "loopback"),
            ("http://0x7f000001/", "127.0.0.1", "loopback"),
            ("http://017700000001/", "127.0.0.1", "loopback"),
            ("http://0177.0.0.1/", "127.0.0.1", "loopback"),
            ("http://127.1/", "127.0.0.1", "loopback"),
            ("http://127.0.1/", "127.0.0.1", "loopback"),
            ("http://127.255.255.254/", "127.255.255.254", "loopback"),
            ("http://%31%32%37.0.0.1/", "127.0.0.1", "loopback"),
            ("http://[::1]/", "::1", "loopback"),
            ("http://[0:0:0:0:0:0:0:1]/", "::1", "loopback"),
            ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1", "loopback"),
            ("http://[::ffff:7f00:1]/", "::ffff:127.0.0.1", "loopback"),
            ("http://[::127.0.0.1]/", "::7f00:1", "loopback"),
            (
                "http://[64:ff9b::127.0.0.1]/",
                "64:ff9b::7f00:1",
                "loopback",
            ),
            ("http://[2002:7f00:1::]/", "2002:7f00:1::", "loopback"),
            ("http://0.0.0.0/", "0.0.0.0", "unspecified"),
            ("http://0/", "0.0.0.0", "unspecified"),
            ("http://[::]/", "::", "unspecified"),
            ("http://[::ffff:0.0.0.0]/", "::ffff:0.0.0.0", "unspecified"),
            ("http://169.254.169.254/", "169.254.169.254", "metadata"),
            ("http://2852039166/", "169.254.169.254", "metadata"),
            (
                "http://[::ffff:169.254.169.254]/",
                "::ffff:169.254.169.254",
                "metadata",
            ),
            ("http://[fe80::1]/", "fe80::1", "link-local"),
            ("http://10.1.2.3/", "10.1.2.3", "private"),
            ("http://172.16.0.1/", "172.16.0.1", "private"),
            ("http://172.31.255.255/", "172.31.255.255", "private"),
            ("http://192.168.1.1/", "192.168.1.1", "private"),
            ("http://[::ffff:10.0.0.1]/", "::ffff:10.0.0.1", "private"),
            ("http://100.64.0.1/", "100.64.0.1", "carrier-grade NAT"),
            (
                "http://100.127.255.255/",
                "100.127.255.255",
                "carrier-grade NAT",
            ),
            ("http://[fc00::1]/", "fc00::1", "unique local"),
            ("http://[fd12:3456::1]/", "fd12:3456::1", "unique local"),
            ("http://224.0.0.1/", "224.0.0.1", "multicast"),
            ("http://239.255.255.250/", "239.255.255.250", "multicast"),
            ("http://[ff02::1]/", "ff02::1", "multicast"),
            ("http://255.255.255.255/", "255.255.255.255", "broadcast"),
            ("http://240.0.0.1/", "240.0.0.1", "reserved"),
            ("http://192.0.2.10/", "192.0.2.10", "documentation"),
            ("http://198.51.100.7/", "198.51.100.7", "documentation"),
            ("http://203.0.113.9/", "203.0.113.9", "documentation"),
            ("http://[2001:db8::1]/", "2001:db8::1", "documentation"),
            ("http://[3fff::1]/", "3fff::1", "documentation"),
            ("http://198.18.0.1/", "198.18.0.1", "benchmarking"),
            ("http://192.0.0.8/", "192.0.0.8", "IETF"),
            ("http://[2001::1]/", "2001::1", "Teredo"),
            ("http://[fec0::1]/", "fec0::1", "site-local"),
            ("http://[100::1]/", "100::1", "discard"),
        ];
        for &(url, addr, why) in cases {
            let ip = literal(url);
            assert_eq!(ip.to_string(), addr, "{url} normalises to {addr}");
            let blocked = check(ip, &[]).expect_err(url);
            let reason = blocked.to_string();
            assert!(
                reason.contains(why),
                "{url}: reason {reason:?} lacks {why:?}"
            );
            assert!(
                reason.starts_with(addr),
                "{url}: reason {reason:?} names the address"
            );
        }
    }

    #[test]
    fn public_addresses_pass() {
        for url in [
            "http://8.8.8.8/",
            "http://1.1.1.1/",
            "http://140.82.112.3/",
            "http://100.128.0.1/",
            "http://172.32.0.1/",
            "http://169.253.255.255/",
            "http://[2606:4700:4700::1111]/",
            "http://[2a00:1450:4001:80b::200e]/",
            "http://[::ffff:8.8.8.8]/",
            "http://[64:ff9b::808:808]/",
            "http://[2002:808:808::1]/",
        ] {
            let ip = literal(url);
            assert_eq!(check(ip, &[]), Ok(()), "{url}");
            assert_eq!(classify(ip), None, "{url}");
        }
    }

    #[test]
    fn embedded_v4_is_judged_by_its_v4_address() {
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let blocked = check(mapped, &[]).unwrap_err();
        assert_eq!(blocked.embedded, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(
            blocked.to_string(),
            "::ffff:127.0.0.1 embeds 127.0.0.1, which is loopback (127.0.0.0/8)"
        );
        // `::` and `::1` are IPv6's own, not IPv4-compatible addresses.
        assert_eq!(embedded_v4(Ipv6Addr::UNSPECIFIED), None);
        assert_eq!(embedded_v4(Ipv6Addr::LOCALHOST), None);
        assert_eq!(
            embedded_v4("::0.0.0.2".parse().unwrap()),
            Some(Ipv4Addr::new(0, 0, 0, 2))
        );
    }

    #[test]
    fn operator_networks_are_exceptions() {
        let loopback: IpNet = "127.0.0.0/8".parse().unwrap();
        let one: IpNet = "127.0.0.2/32".parse().unwrap();
        let v6_loopback: IpNet = "::1/128".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();

        assert_eq!(check(ip("127.0.0.1"), &[loopback]), Ok(()));
        assert_eq!(check(ip("::ffff:127.0.0.1"), &[loopback]), Ok(()));
        assert!(check(ip("::1"), &[loopback]).is_err());
        assert_eq!(check(ip("::1"), &[v6_loopback]), Ok(()));
        assert_eq!(check(ip("127.0.0.2"), &[one]), Ok(()));
        assert!(check(ip("127.0.0.1"), &[one]).is_err());
        assert!(check(ip("10.0.0.1"), &[loopback]).is_err());
    }
}
