//! Who may call the hub. Checked once per request, before any route, on
//! the request's method, target, headers and peer address:
//! - a browser `Origin` that is not one of the hub's own host names is
//!   refused on every path (a web page never gets in, token or not);
//! - a request that is malformed for this purpose (an absolute-form
//!   target, several `Host` headers, a `Host` that is not a host name) is
//!   refused;
//! - the hub's credential (`Authorization: Bearer`) admits the caller, from
//!   anywhere: local use when it comes from a loopback peer with no
//!   forwarding header, else remote;
//! - a loopback peer naming a host the hub does not answer to is refused
//!   (DNS rebinding);
//! - `GET /health` and the live view's page (`GET /`) need no credential;
//!   the page's data comes through `POST /mcp`, which does;
//! - with `--trust-tailscale-headers` only, a request that came through
//!   `tailscale serve` (loopback peer with `X-Forwarded-For`) is admitted by
//!   its `Tailscale-User-Login` and a `Host` the hub answers to;
//! - everything else is refused with 401 and where the credential is.
//!
//! Loopback alone proves nothing: another user of the machine, or a
//! reverse proxy in front of the hub, connects from loopback too.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use warp::http::{HeaderMap, Method, Uri};

use crate::caller::Access;
use crate::credential::Credential;

/// Headers a forwarding proxy adds; any of them means the peer is not the
/// caller.
const FORWARDING_HEADERS: [&str; 3] = ["x-forwarded-for", "forwarded", "x-real-ip"];

/// The hub's access rules.
#[derive(Debug, Clone)]
pub struct Policy {
    token: String,
    /// The token file, named in a refusal to a local caller.
    token_file: Option<PathBuf>,
    /// `--insecure-no-auth`: no credential needed.
    disabled: bool,
    /// `--trust-tailscale-headers`: a `Tailscale-User-Login` on a request
    /// forwarded from loopback admits it.
    trust_tailscale: bool,
    /// Host names (without port) the hub answers to.
    hosts: Vec<String>,
}

/// How the hub is told to admit callers besides its credential.
#[derive(Debug, Clone, Copy, Default)]
pub struct Openings {
    /// `--insecure-no-auth`.
    pub no_auth: bool,
    /// `--trust-tailscale-headers`.
    pub trust_tailscale: bool,
}

/// The decision for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Admitted, and how.
    Allow(Access),
    /// A path anyone may read (`/health`, the live view's page), asked
    /// without the credential.
    Public,
    /// 400: the request's target or `Host` is malformed.
    BadRequest(&'static str),
    /// 401: the credential is missing or wrong; says where to find it.
    Unauthorized(String),
    /// 403: a foreign host or web origin.
    Forbidden(String),
}

impl Policy {
    pub fn new(
        credential: &Credential,
        openings: Openings,
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
            token: credential.token.clone(),
            token_file: credential.file().map(std::path::Path::to_path_buf),
            disabled: openings.no_auth,
            trust_tailscale: openings.trust_tailscale,
            hosts,
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h == host)
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    pub fn check(
        &self,
        peer: Option<SocketAddr>,
        method: &Method,
        target: &Uri,
        headers: &HeaderMap,
    ) -> Verdict {
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
        let loopback = peer.is_some_and(|p| is_loopback(p.ip()));
        let forwarded = FORWARDING_HEADERS.iter().any(|h| headers.contains_key(*h));
        let bearer = header("authorization").and_then(|auth| {
            auth.strip_prefix("Bearer ")
                .or_else(|| auth.strip_prefix("bearer "))
                .map(str::trim)
        });
        if bearer.is_some_and(|given| constant_time_eq(given.as_bytes(), self.token.as_bytes())) {
            return Verdict::Allow(if loopback && !forwarded {
                Access::Local
            } else {
                Access::Token
            });
        }
        if let Some(host) = &host
            && loopback
            && !self.host_allowed(host)
        {
            return Verdict::Forbidden(format!(
                "this hub does not answer to host '{host}'; start it with --public-host {host} if that name is its own"
            ));
        }
        if is_public(method, target) {
            return Verdict::Public;
        }
        if self.disabled {
            return Verdict::Allow(Access::Open);
        }
        let login = header("tailscale-user-login").filter(|v| !v.is_empty());
        if self.trust_tailscale
            && loopback
            && headers.contains_key("x-forwarded-for")
            && host.is_some()
            && let Some(login) = login
        {
            return Verdict::Allow(Access::Forwarded(login.to_owned()));
        }
        Verdict::Unauthorized(self.refusal(
            bearer.is_some(),
            loopback && !forwarded,
            login.is_some(),
        ))
    }

    /// The 401 text: what was wrong and where the credential is. Only a
    /// caller on this machine is told the token file's path.
    fn refusal(&self, wrong: bool, local: bool, tailscale_login: bool) -> String {
        let mut text = if wrong {
            "the credential sent is not this hub's token".to_owned()
        } else {
            "this hub needs its credential: send Authorization: Bearer <token>".to_owned()
        };
        match (&self.token_file, local) {
            (Some(file), true) => text.push_str(&format!(
                ". The token is in {}, readable by the hub's user only; that user's proxy and CLI \
                 read it themselves (with a database elsewhere, set AGENT_EVENT_BUS_DB or \
                 AGENT_EVENT_BUS_TOKEN_FILE for them too); anyone else sets AGENT_EVENT_BUS_TOKEN",
                file.display()
            )),
            (None, true) => text.push_str(
                ". The token is the one the hub was started with (its --token or \
                 AGENT_EVENT_BUS_TOKEN): set AGENT_EVENT_BUS_TOKEN to it",
            ),
            (_, false) => text.push_str(
                ". Set AGENT_EVENT_BUS_TOKEN to the hub's token (`agent-event-bus-cli token` on \
                 the hub's machine prints it)",
            ),
        }
        if tailscale_login && !self.trust_tailscale {
            text.push_str(
                ". Tailscale identity headers are trusted only when the hub runs with \
                 --trust-tailscale-headers (AGENT_EVENT_BUS_TRUST_TAILSCALE=1)",
            );
        }
        text
    }
}

/// `GET` (or `HEAD`) of `/health` or of the live view's page: no credential
/// needed, nothing in them a stranger may not see.
fn is_public(method: &Method, target: &Uri) -> bool {
    (method == Method::GET || method == Method::HEAD) && matches!(target.path(), "/" | "/health")
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
mod tests;
