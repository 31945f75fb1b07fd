//! Who may call the hub. Checked once per request, before any route, on
//! the request's target, headers and peer address:
//! - a browser `Origin` that is not one of the hub's own host names is
//!   refused on every path (a web page never gets in, token or not);
//! - a request that is malformed for this purpose (an absolute-form
//!   target, several `Host` headers, a `Host` that is not a host name) is
//!   refused;
//! - the bearer token, when set, admits anyone;
//! - a loopback peer naming one of the hub's hosts in `Host` is local use;
//!   without a `Host` it is not local;
//! - a request that came through `tailscale serve` (loopback peer with
//!   `X-Forwarded-For`) is admitted with a `Tailscale-User-Login` and a
//!   `Host` the hub answers to (`--public-host`), so a page on a name that
//!   rebinds to 127.0.0.1 cannot pass by adding those headers itself.

use std::net::{IpAddr, SocketAddr};

use warp::http::{HeaderMap, Uri};

use crate::caller::Access;

/// The hub's access rules.
#[derive(Debug, Clone)]
pub struct Policy {
    token: Option<String>,
    disabled: bool,
    /// Host names (without port) the hub answers to.
    hosts: Vec<String>,
}

/// The decision for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Admitted, and how.
    Allow(Access),
    /// 400: the request's target or `Host` is malformed.
    BadRequest(&'static str),
    /// 401: credentials missing or wrong.
    Unauthorized(&'static str),
    /// 403: a foreign host or web origin.
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
                .filter_map(|h| parse_host(h.trim()))
                .filter(|h| !h.is_empty()),
        );
        Self {
            token: token.filter(|t| !t.is_empty()),
            disabled,
            hosts,
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h == host)
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    pub fn check(&self, peer: Option<SocketAddr>, target: &Uri, headers: &HeaderMap) -> Verdict {
        if target.authority().is_some() || target.scheme().is_some() {
            return Verdict::BadRequest(
                "Bad Request: send the path alone as the request target, not an absolute URL",
            );
        }
        let mut hosts = headers.get_all("host").iter();
        let host = match (hosts.next(), hosts.next()) {
            (None, _) => None,
            (Some(value), None) => match value.to_str().ok().and_then(parse_host) {
                Some(host) => Some(host),
                None => {
                    return Verdict::BadRequest(
                        "Bad Request: the Host header is not a host name or address",
                    );
                }
            },
            (Some(_), Some(_)) => {
                return Verdict::BadRequest("Bad Request: more than one Host header");
            }
        };
        let mut origins = headers.get_all("origin").iter();
        match (origins.next(), origins.next()) {
            (None, _) => {}
            (Some(origin), None) => {
                let text = origin.to_str().unwrap_or("?");
                let origin_host = url::Url::parse(text)
                    .ok()
                    .and_then(|u| u.host_str().and_then(parse_host));
                if !origin_host.is_some_and(|h| self.host_allowed(&h)) {
                    return Verdict::Forbidden(format!(
                        "requests from web pages at '{text}' are not allowed"
                    ));
                }
            }
            (Some(_), Some(_)) => {
                return Verdict::BadRequest("Bad Request: more than one Origin header");
            }
        }
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
            return Verdict::Allow(Access::Token);
        }
        let loopback = peer.is_some_and(|p| is_loopback(p.ip()));
        let forwarded = headers.contains_key("x-forwarded-for");
        if let Some(host) = &host
            && loopback
            && !self.host_allowed(host)
        {
            return Verdict::Forbidden(format!(
                "this hub does not answer to host '{host}'; start it with --public-host {host} if that name is its own"
            ));
        }
        if loopback && !forwarded && host.is_some() {
            return Verdict::Allow(Access::Local);
        }
        if self.disabled {
            return Verdict::Allow(Access::Open);
        }
        if loopback
            && forwarded
            && host.is_some()
            && let Some(login) = header("tailscale-user-login").filter(|v| !v.is_empty())
        {
            return Verdict::Allow(Access::Forwarded(login.to_owned()));
        }
        if loopback && host.is_none() {
            Verdict::Unauthorized(
                "a request without a Host header is not local; send Host (HTTP/1.1) or Authorization: Bearer <AGENT_EVENT_BUS_TOKEN>",
            )
        } else if self.token.is_some() {
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

/// The host of a `Host` header value, lower-cased and without its port:
/// `Example.com:8080` → `example.com`, `[::1]:8080` → `::1`. `None` for
/// anything else (`[::1]evil`, `a b`, `host:port:x`, an empty name).
pub fn parse_host(value: &str) -> Option<String> {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        inner.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (inner, port)
    } else {
        match value.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    if !value.starts_with('[') {
        let name_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !name_ok {
            return None;
        }
    }
    Some(host.to_ascii_lowercase())
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
        let root: Uri = "/mcp".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "100.64.0.5:5000".parse().unwrap();
        let p = Policy::new(
            Some("s3cret".into()),
            false,
            &["box.tail.ts.net".into()],
            "127.0.0.1",
        );
        assert!(matches!(
            p.check(Some(local), &root, &headers(&[("host", "127.0.0.1:8080")])),
            Verdict::Allow(_)
        ));
        assert!(matches!(
            p.check(Some(local), &root, &headers(&[("host", "localhost:8080")])),
            Verdict::Allow(_)
        ));
        assert!(matches!(
            p.check(Some(local), &root, &headers(&[("host", "evil.example")])),
            Verdict::Forbidden(_)
        ));
        assert!(matches!(
            p.check(
                Some(local),
                &root,
                &headers(&[("host", "localhost"), ("origin", "https://evil.example")])
            ),
            Verdict::Forbidden(_)
        ));
        assert!(matches!(
            p.check(
                Some(local),
                &root,
                &headers(&[("host", "localhost"), ("origin", "http://localhost:3000")])
            ),
            Verdict::Allow(_)
        ));
        assert!(matches!(
            p.check(Some(remote), &root, &headers(&[])),
            Verdict::Unauthorized(_)
        ));
        assert!(matches!(
            p.check(
                Some(remote),
                &root,
                &headers(&[("authorization", "Bearer nope")])
            ),
            Verdict::Unauthorized(_)
        ));
        assert!(matches!(
            p.check(
                Some(remote),
                &root,
                &headers(&[("authorization", "Bearer s3cret")])
            ),
            Verdict::Allow(_)
        ));
        let fwd = [
            ("host", "box.tail.ts.net"),
            ("x-forwarded-for", "100.64.0.5"),
        ];
        assert!(matches!(
            p.check(Some(local), &root, &headers(&fwd)),
            Verdict::Unauthorized(_)
        ));
        let fwd_ts = [
            ("host", "box.tail.ts.net"),
            ("x-forwarded-for", "100.64.0.5"),
            ("tailscale-user-login", "me@x"),
        ];
        assert!(matches!(
            p.check(Some(local), &root, &headers(&fwd_ts)),
            Verdict::Allow(_)
        ));
        // Remote with a forged Tailscale header: not through a local proxy.
        assert!(matches!(
            p.check(
                Some(remote),
                &root,
                &headers(&[("tailscale-user-login", "me@x")])
            ),
            Verdict::Unauthorized(_)
        ));
        // The forwarded path needs a Host the hub answers to.
        let rebound = [
            ("host", "rebind.test:8080"),
            ("x-forwarded-for", "100.64.0.5"),
            ("tailscale-user-login", "me@x"),
        ];
        assert!(matches!(
            p.check(Some(local), &root, &headers(&rebound)),
            Verdict::Forbidden(_)
        ));
        // A web page's Origin is refused even with the token.
        assert!(matches!(
            p.check(
                Some(remote),
                &root,
                &headers(&[
                    ("authorization", "Bearer s3cret"),
                    ("origin", "http://rebind.test:8080")
                ])
            ),
            Verdict::Forbidden(_)
        ));
        // No Host: not local.
        assert!(matches!(
            p.check(Some(local), &root, &headers(&[])),
            Verdict::Unauthorized(_)
        ));
        let absolute: Uri = "http://127.0.0.1/mcp".parse().unwrap();
        assert!(matches!(
            p.check(Some(local), &absolute, &headers(&[("host", "127.0.0.1")])),
            Verdict::BadRequest(_)
        ));
        let mut twice = headers(&[("host", "127.0.0.1")]);
        twice.append("host", "evil.example".parse().unwrap());
        assert!(matches!(
            p.check(Some(local), &root, &twice),
            Verdict::BadRequest(_)
        ));
    }

    #[test]
    fn host_values_are_parsed_strictly() {
        for (value, want) in [
            ("localhost", Some("localhost")),
            ("LocalHost:8080", Some("localhost")),
            ("127.0.0.1:1", Some("127.0.0.1")),
            ("[::1]:8080", Some("::1")),
            ("[::1]", Some("::1")),
            ("box.tail.ts.net", Some("box.tail.ts.net")),
            ("[::1]evil", None),
            ("[::1]:80x", None),
            ("[evil]", None),
            ("a b", None),
            ("host:1:2", None),
            ("host:", None),
            ("", None),
            ("evil.example@127.0.0.1", None),
        ] {
            assert_eq!(parse_host(value).as_deref(), want, "{value:?}");
        }
    }
}
