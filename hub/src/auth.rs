//! Who may call the hub. Loopback is trusted (local use) when its `Host`
//! and `Origin` name this hub, so a web page cannot reach it by DNS
//! rebinding; anything else needs the bearer token, or a
//! `Tailscale-User-Login` header on a request that came through a local
//! reverse proxy (`tailscale serve`: loopback peer with `X-Forwarded-For`).

use std::net::{IpAddr, SocketAddr};

use warp::http::HeaderMap;

/// The hub's access rules.
#[derive(Debug, Clone)]
pub struct Policy {
    token: Option<String>,
    disabled: bool,
    /// Host names (without port) a local request may name.
    hosts: Vec<String>,
}

/// The decision for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// 401: credentials missing or wrong.
    Unauthorized(&'static str),
    /// 403: a local request naming a foreign host or origin.
    Forbidden(String),
}

impl Policy {
    pub fn new(
        token: Option<String>,
        disabled: bool,
        public_hosts: &[String],
        bound_host: &str,
    ) -> Self {
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .iter()
            .map(|h| (*h).to_owned())
            .collect();
        hosts.push(bound_host.trim_matches(['[', ']']).to_ascii_lowercase());
        hosts.extend(
            public_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty()),
        );
        Self {
            token: token.filter(|t| !t.is_empty()),
            disabled,
            hosts,
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.hosts.contains(&host) || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    pub fn check(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Verdict {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        if let (Some(token), Some(auth)) = (&self.token, header("authorization"))
            && let Some(given) = auth
                .strip_prefix("Bearer ")
                .or_else(|| auth.strip_prefix("bearer "))
            && constant_time_eq(given.trim().as_bytes(), token.as_bytes())
        {
            return Verdict::Allow;
        }
        let loopback = peer.is_some_and(|p| is_loopback(p.ip()));
        let forwarded = header("x-forwarded-for").is_some();
        if loopback && !forwarded {
            if let Some(host) = header("host").map(host_without_port)
                && !self.host_allowed(host)
            {
                return Verdict::Forbidden(format!(
                    "this hub does not answer to host '{host}'; add it with --public-host if it is yours"
                ));
            }
            if let Some(origin) = header("origin") {
                let origin_host = url::Url::parse(origin)
                    .ok()
                    .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()));
                if !origin_host.is_some_and(|h| self.host_allowed(&h)) {
                    return Verdict::Forbidden(format!(
                        "requests from web pages at '{origin}' are not allowed"
                    ));
                }
            }
            return Verdict::Allow;
        }
        if self.disabled {
            return Verdict::Allow;
        }
        if loopback && forwarded && header("tailscale-user-login").is_some_and(|v| !v.is_empty()) {
            return Verdict::Allow;
        }
        if self.token.is_some() {
            Verdict::Unauthorized("send Authorization: Bearer <AGENT_EVENT_BUS_TOKEN>")
        } else {
            Verdict::Unauthorized("Tailscale identity required")
        }
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// `example.com:8080` → `example.com`; `[::1]:8080` → `::1`.
fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// Compares without an early exit, so timing does not reveal the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn matrix() {
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "100.64.0.5:5000".parse().unwrap();
        let p = Policy::new(
            Some("s3cret".into()),
            false,
            &["box.tail.ts.net".into()],
            "127.0.0.1",
        );
        assert_eq!(
            p.check(Some(local), &headers(&[("host", "127.0.0.1:8080")])),
            Verdict::Allow
        );
        assert_eq!(
            p.check(Some(local), &headers(&[("host", "localhost:8080")])),
            Verdict::Allow
        );
        assert!(matches!(
            p.check(Some(local), &headers(&[("host", "evil.example")])),
            Verdict::Forbidden(_)
        ));
        assert!(matches!(
            p.check(
                Some(local),
                &headers(&[("host", "localhost"), ("origin", "https://evil.example")])
            ),
            Verdict::Forbidden(_)
        ));
        assert_eq!(
            p.check(
                Some(local),
                &headers(&[("host", "localhost"), ("origin", "http://localhost:3000")])
            ),
            Verdict::Allow
        );
        assert!(matches!(
            p.check(Some(remote), &headers(&[])),
            Verdict::Unauthorized(_)
        ));
        assert!(matches!(
            p.check(Some(remote), &headers(&[("authorization", "Bearer nope")])),
            Verdict::Unauthorized(_)
        ));
        assert_eq!(
            p.check(
                Some(remote),
                &headers(&[("authorization", "Bearer s3cret")])
            ),
            Verdict::Allow
        );
        let fwd = [
            ("host", "box.tail.ts.net"),
            ("x-forwarded-for", "100.64.0.5"),
        ];
        assert!(matches!(
            p.check(Some(local), &headers(&fwd)),
            Verdict::Unauthorized(_)
        ));
        let fwd_ts = [
            ("host", "box.tail.ts.net"),
            ("x-forwarded-for", "100.64.0.5"),
            ("tailscale-user-login", "me@x"),
        ];
        assert_eq!(p.check(Some(local), &headers(&fwd_ts)), Verdict::Allow);
        // Remote with a forged Tailscale header: not through a local proxy.
        assert!(matches!(
            p.check(Some(remote), &headers(&[("tailscale-user-login", "me@x")])),
            Verdict::Unauthorized(_)
        ));
        assert_eq!(host_without_port("[::1]:80"), "::1");
    }
}
