//! Where webhooks may go: the special-purpose address table that
//! `--webhook-deny-private` refuses, and whether a URL reaches such an
//! address; URL redaction for anything shown or logged is `redact`
//! ([`redact_url`]).
//!
//! One table per family, from the IANA special-purpose address registries
//! (RFC 6890 and updates). IPv6 forms that carry an IPv4 address
//! (IPv4-mapped, -compatible, -translated, NAT64, 6to4) are judged by the
//! IPv4 address inside.

mod redact;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use redact::redact_url;

/// IPv4 ranges that are not a public destination.
const V4_SPECIAL: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::UNSPECIFIED, 8, "this network"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private"),
    (
        Ipv4Addr::new(100, 64, 0, 0),
        10,
        "shared (CGNAT, Tailscale)",
    ),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignments"),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation"),
    (Ipv4Addr::new(192, 31, 196, 0), 24, "AS112"),
    (Ipv4Addr::new(192, 52, 193, 0), 24, "AMT"),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "6to4 relay anycast"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private"),
    (
        Ipv4Addr::new(192, 175, 48, 0),
        24,
        "direct delegation AS112",
    ),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation"),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved"),
    (Ipv4Addr::BROADCAST, 32, "broadcast"),
];

/// How an IPv6 range is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum V6Rule {
    /// Never a public destination.
    Refuse,
    /// Carries an IPv4 address in its low 32 bits: judge that.
    LowV4,
    /// 6to4: the IPv4 address is bits 16..48.
    SixToFour,
}

/// IPv6 ranges that are not a public destination, or that embed an IPv4
/// address. More specific entries come first.
const V6_SPECIAL: &[(Ipv6Addr, u8, V6Rule, &str)] = &[
    (
        Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0),
        96,
        V6Rule::LowV4,
        "IPv4-mapped",
    ),
    (
        Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0),
        96,
        V6Rule::LowV4,
        "IPv4-translated",
    ),
    // Covers :: (unspecified, as 0.0.0.0) and ::1 (loopback, as 0.0.0.1).
    (Ipv6Addr::UNSPECIFIED, 96, V6Rule::LowV4, "IPv4-compatible"),
    (
        Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0),
        96,
        V6Rule::LowV4,
        "NAT64",
    ),
    (
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        V6Rule::Refuse,
        "local-use NAT64",
    ),
    (
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        64,
        V6Rule::Refuse,
        "discard-only",
    ),
    (
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        32,
        V6Rule::Refuse,
        "Teredo",
    ),
    (
        Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0),
        48,
        V6Rule::Refuse,
        "benchmarking",
    ),
    (
        Ipv6Addr::new(0x2001, 0x10, 0, 0, 0, 0, 0, 0),
        28,
        V6Rule::Refuse,
        "ORCHID",
    ),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        V6Rule::Refuse,
        "documentation",
    ),
    (
        Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0),
        16,
        V6Rule::SixToFour,
        "6to4",
    ),
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        V6Rule::Refuse,
        "documentation",
    ),
    (
        Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0),
        16,
        V6Rule::Refuse,
        "segment routing SIDs",
    ),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        V6Rule::Refuse,
        "unique local",
    ),
    (
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
        10,
        V6Rule::Refuse,
        "link-local",
    ),
    (
        Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
        10,
        V6Rule::Refuse,
        "site-local",
    ),
    (
        Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
        8,
        V6Rule::Refuse,
        "multicast",
    ),
];

fn v4_in(ip: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn v6_in(ip: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// Whether `--webhook-deny-private` refuses this address: anything in the
/// special-purpose tables (loopback, private, shared, link-local,
/// documentation, benchmarking, multicast, reserved…), including IPv4
/// addresses carried inside IPv6 ones.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => V4_SPECIAL.iter().any(|&(net, len, _)| v4_in(v4, net, len)),
        IpAddr::V6(v6) => {
            let Some(&(_, _, rule, _)) = V6_SPECIAL
                .iter()
                .find(|&&(net, len, _, _)| v6_in(v6, net, len))
            else {
                return false;
            };
            let o = v6.octets();
            match rule {
                V6Rule::Refuse => true,
                // The IPv4 address in the low 32 bits.
                V6Rule::LowV4 => is_private(IpAddr::V4(Ipv4Addr::new(o[12], o[13], o[14], o[15]))),
                // 2002:AABB:CCDD::/48 carries AA.BB.CC.DD after the prefix.
                V6Rule::SixToFour => is_private(IpAddr::V4(Ipv4Addr::new(o[2], o[3], o[4], o[5]))),
            }
        }
    }
}

/// The host of `url` when it is a literal address that the policy refuses.
pub fn private_literal(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let ip = match parsed.host()? {
        url::Host::Ipv4(v4) => IpAddr::V4(v4),
        url::Host::Ipv6(v6) => IpAddr::V6(v6),
        url::Host::Domain(_) => return None,
    };
    is_private(ip).then(|| ip.to_string())
}

/// Whether `url` points at a special-purpose address: a literal one, or a
/// name that resolves to one (or does not resolve at all: a caller learns
/// nothing from the difference).
pub async fn resolves_private(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return true;
    };
    let port = parsed.port_or_known_default().unwrap_or(80);
    match parsed.host() {
        Some(url::Host::Ipv4(v4)) => is_private(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => is_private(IpAddr::V6(v6)),
        Some(url::Host::Domain(name)) => match tokio::net::lookup_host((name, port)).await {
            Ok(addrs) => {
                let addrs: Vec<_> = addrs.collect();
                addrs.is_empty() || addrs.iter().any(|a| is_private(a.ip()))
            }
            Err(_) => true,
        },
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> bool {
        is_private(ip.parse().unwrap())
    }

    #[test]
    fn every_v4_range_is_refused_from_its_first_to_its_last_address() {
        for &(net, len, what) in V4_SPECIAL {
            let first = u32::from(net);
            let last = first | u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            for ip in [first, last] {
                assert!(
                    is_private(IpAddr::V4(Ipv4Addr::from(ip))),
                    "{what}: {}",
                    Ipv4Addr::from(ip)
                );
            }
            // Just outside the range, where that is a public address.
            let after = last.wrapping_add(1);
            let outside = IpAddr::V4(Ipv4Addr::from(after));
            if after != 0
                && !V4_SPECIAL
                    .iter()
                    .any(|&(n, l, _)| v4_in(Ipv4Addr::from(after), n, l))
            {
                assert!(!is_private(outside), "{what}: {outside} is public");
            }
        }
    }

    #[test]
    fn every_v6_range_is_refused_or_judged_by_its_v4() {
        for &(net, len, rule, what) in V6_SPECIAL {
            let base = u128::from(net);
            let ip = |low: u128| IpAddr::V6(Ipv6Addr::from(base | low));
            match rule {
                V6Rule::Refuse => {
                    assert!(is_private(ip(0)), "{what}");
                    let last = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
                    assert!(is_private(ip(last)), "{what}: {}", ip(last));
                }
                V6Rule::LowV4 => {
                    assert!(is_private(ip(0x7f00_0001)), "{what} of 127.0.0.1");
                    assert!(is_private(ip(0x0a00_0001)), "{what} of 10.0.0.1");
                    if what != "IPv4-compatible" {
                        assert!(!is_private(ip(0x0101_0101)), "{what} of 1.1.1.1");
                    }
                }
                V6Rule::SixToFour => {
                    assert!(is_private(ip(0x7f00_0001 << 80)), "{what} of 127.0.0.1");
                    assert!(is_private(ip(0xc0a8_0001 << 80)), "{what} of 192.168.0.1");
                    assert!(!is_private(ip(0x0101_0101 << 80)), "{what} of 1.1.1.1");
                }
            }
        }
    }

    #[test]
    fn the_addresses_that_walked_around_the_old_check_are_refused() {
        for ip in [
            "::7f00:1",
            "::127.0.0.1",
            "::ffff:0:7f00:1",
            "::ffff:127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::10.0.0.1",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "fec0::1",
            "198.18.0.1",
            "198.19.255.255",
            "240.0.0.1",
            "255.255.255.254",
            "::",
            "::1",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "169.254.169.254",
            "100.100.1.1",
        ] {
            assert!(refused(ip), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "93.184.216.34",
            "100.128.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "64:ff9b::1.1.1.1",
            "2002:101:101::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!refused(ip), "{ip}");
        }
    }

    #[test]
    fn literals_in_urls_are_checked() {
        assert_eq!(
            private_literal("http://127.0.0.1:9/x").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(private_literal("http://[::1]/x").as_deref(), Some("::1"));
        assert_eq!(
            private_literal("http://[::ffff:0:7f00:1]/x").as_deref(),
            Some("::ffff:0:7f00:1")
        );
        assert_eq!(private_literal("https://example.com/x"), None);
        assert_eq!(private_literal("https://1.1.1.1/x"), None);
    }
}
