//! Where webhooks may go: the special-purpose address table that
//! `--webhook-deny-private` refuses, and URL redaction for anything shown
//! or logged (credentials, and the secret in well-known hook URLs' paths).
//!
//! One table per family, from the IANA special-purpose address registries
//! (RFC 6890 and updates). IPv6 forms that carry an IPv4 address
//! (IPv4-mapped, -compatible, -translated, NAT64, 6to4) are judged by the
//! IPv4 address inside.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

/// What stands for a redacted part of a URL.
const REDACTED: &str = "***";

/// Query parameters that carry a credential (matched without case):
/// Google Chat's `key`/`token`, Azure's `sig`, and the usual names.
const SECRET_PARAMS: [&str; 12] = [
    "token",
    "key",
    "sig",
    "signature",
    "secret",
    "code",
    "auth",
    "access_token",
    "api_key",
    "apikey",
    "password",
    "pass",
];

/// Where a well-known hook service keeps its secret in the path: the
/// number of leading segments still shown, or where a secret starts.
enum PathSecret {
    /// Everything after the first `n` segments (`hooks.slack.com/services/…`).
    After(usize),
    /// Everything after the segment named `marker` and the `keep` segments
    /// after it (`…/webhooks/<id>/<token>` keeps the id).
    AfterMarker { marker: &'static str, keep: usize },
    /// A segment starting with `prefix` (Telegram's `bot<token>`).
    Prefixed(&'static str),
}

/// Hosts whose URLs carry their secret in the path, matched on the host or
/// any subdomain of it.
const PATH_SECRETS: [(&str, PathSecret); 7] = [
    ("hooks.slack.com", PathSecret::After(1)),
    (
        "discord.com",
        PathSecret::AfterMarker {
            marker: "webhooks",
            keep: 1,
        },
    ),
    (
        "discordapp.com",
        PathSecret::AfterMarker {
            marker: "webhooks",
            keep: 1,
        },
    ),
    ("webhook.office.com", PathSecret::After(1)),
    (
        "maker.ifttt.com",
        PathSecret::AfterMarker {
            marker: "key",
            keep: 0,
        },
    ),
    ("api.telegram.org", PathSecret::Prefixed("bot")),
    (
        "hooks.zapier.com",
        PathSecret::AfterMarker {
            marker: "catch",
            keep: 1,
        },
    ),
];

fn host_is(host: &str, domain: &str) -> bool {
    host.eq_ignore_ascii_case(domain)
        || host.len().checked_sub(domain.len() + 1).is_some_and(|at| {
            host.as_bytes()[at] == b'.' && host[at + 1..].eq_ignore_ascii_case(domain)
        })
}

/// The path segments with the secret ones replaced: by the host's rule,
/// and on any host everything after a `hooks` segment (Mattermost,
/// Rocket.Chat and many self-hosted services put the key there).
fn redact_segments(host: &str, segments: &mut [String]) {
    let rule = PATH_SECRETS
        .iter()
        .find(|(domain, _)| host_is(host, domain))
        .map(|(_, rule)| rule);
    let from = match rule {
        Some(PathSecret::After(n)) => Some(*n),
        Some(PathSecret::AfterMarker { marker, keep }) => segments
            .iter()
            .position(|s| s.eq_ignore_ascii_case(marker))
            .map(|at| at + 1 + keep),
        Some(PathSecret::Prefixed(prefix)) => {
            for s in segments.iter_mut() {
                if s.len() > prefix.len() && s.starts_with(prefix) {
                    *s = format!("{prefix}{REDACTED}");
                }
            }
            None
        }
        None => None,
    };
    let generic = segments
        .iter()
        .position(|s| s.eq_ignore_ascii_case("hooks"))
        .map(|at| at + 1);
    let from = match (from, generic) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if let Some(from) = from.filter(|&f| f < segments.len()) {
        for s in &mut segments[from..] {
            if !s.is_empty() {
                REDACTED.clone_into(s);
            }
        }
    }
}

/// The query with the values of [`SECRET_PARAMS`] replaced.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let secret = SECRET_PARAMS.iter().any(|p| name.eq_ignore_ascii_case(p));
            if secret && !value.is_empty() {
                format!("{name}={REDACTED}")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `url` with its credentials replaced by `***`, for showing and logging:
/// a user name and password (`https://***@host/x`), the secret part of a
/// well-known hook URL's path (Slack `hooks.slack.com/services/***`,
/// Discord `…/api/webhooks/<id>/***`, Teams, IFTTT, Telegram, Zapier,
/// anything after a `hooks` segment), and credential query parameters
/// (`?token=***`).
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Not a URL (never stored so), yet it may hold credentials.
        return match url.rsplit_once('@') {
            Some((_, rest)) => format!("{REDACTED}@{rest}"),
            None => url.to_owned(),
        };
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        let _ = parsed.set_password(None);
        let _ = parsed.set_username(REDACTED);
    }
    let host = parsed.host_str().unwrap_or_default().to_owned();
    if let Some(segments) = parsed.path_segments() {
        let mut segments: Vec<String> = segments.map(str::to_owned).collect();
        let before = segments.clone();
        redact_segments(&host, &mut segments);
        if segments != before {
            parsed.set_path(&segments.join("/"));
        }
    }
    if let Some(query) = parsed.query().map(redact_query) {
        parsed.set_query(Some(&query));
    }
    parsed.to_string()
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

    #[test]
    fn credentials_in_urls_are_redacted() {
        assert_eq!(
            redact_url("https://user:pass@hooks.example.com/x?y=1"),
            "https://***@hooks.example.com/x?y=1"
        );
        assert_eq!(
            redact_url("https://token@hooks.example.com/x"),
            "https://***@hooks.example.com/x"
        );
        assert_eq!(
            redact_url("https://:pass@hooks.example.com/"),
            "https://***@hooks.example.com/"
        );
        assert_eq!(
            redact_url("https://hooks.example.com/x"),
            "https://hooks.example.com/x"
        );
    }

    #[test]
    fn secrets_in_well_known_hook_paths_are_redacted() {
        for (url, shown) in [
            (
                "https://hooks.slack.com/services/T0001/B0002/XXXXXXXXXXXXXXXXXXXXXXXX",
                "https://hooks.slack.com/services/***/***/***",
            ),
            (
                "https://hooks.slack.com/workflows/T1/A2/3/abcdef",
                "https://hooks.slack.com/workflows/***/***/***/***",
            ),
            (
                "https://discord.com/api/webhooks/123456/tok-en_XYZ",
                "https://discord.com/api/webhooks/123456/***",
            ),
            (
                "https://canary.discordapp.com/api/v10/webhooks/1/secret?wait=true",
                "https://canary.discordapp.com/api/v10/webhooks/1/***?wait=true",
            ),
            (
                "https://acme.webhook.office.com/webhookb2/a@b/IncomingWebhook/c/d",
                "https://acme.webhook.office.com/webhookb2/***/***/***/***",
            ),
            (
                "https://maker.ifttt.com/trigger/ev/with/key/abc123",
                "https://maker.ifttt.com/trigger/ev/with/key/***",
            ),
            (
                "https://api.telegram.org/bot123:ABC/sendMessage",
                "https://api.telegram.org/bot***/sendMessage",
            ),
            (
                "https://hooks.zapier.com/hooks/catch/123/abc/",
                "https://hooks.zapier.com/hooks/***/***/***/",
            ),
            (
                "https://chat.example.org/hooks/xyz123",
                "https://chat.example.org/hooks/***",
            ),
            (
                "https://chat.googleapis.com/v1/spaces/S/messages?key=K1&token=T1&thread=x",
                "https://chat.googleapis.com/v1/spaces/S/messages?key=***&token=***&thread=x",
            ),
            (
                "https://x.logic.azure.com/workflows/1/triggers/manual/paths/invoke?api-version=1&sp=%2F&SIG=abc",
                "https://x.logic.azure.com/workflows/1/triggers/manual/paths/invoke?api-version=1&sp=%2F&SIG=***",
            ),
            (
                "https://u:p@hooks.slack.com/services/T/B/S",
                "https://***@hooks.slack.com/services/***/***/***",
            ),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        for same in [
            "http://127.0.0.1:8082/hook",
            "https://notdiscord.com/api/webhooks/1/2",
            "https://example.com/webhooks/1/2?page=3",
            "https://hooks.slack.com/",
        ] {
            assert_eq!(redact_url(same), same);
        }
    }
}
