//! Who is calling: what the HTTP layer learned about a request before any
//! route (how it was admitted, from where, with which session key, and as
//! which kind of reader), handed to every tool beside its arguments.

use std::net::IpAddr;

use shared::config::{HEADER_READER, HEADER_SESSION_KEY};
use warp::http::HeaderMap;

pub use shared::config::Reader;

/// How a request was admitted (see [`crate::auth`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// It presented the hub's credential from another machine, or through
    /// a proxy that says it forwarded the request (`X-Forwarded-For`,
    /// `Forwarded`, `X-Real-IP`).
    Token,
    /// It presented the hub's credential from a loopback peer, with no
    /// forwarding header: use on this machine.
    Local,
    /// Through `tailscale serve`, as this tailnet user (only with
    /// `--trust-tailscale-headers`).
    Forwarded(String),
    /// `--insecure-no-auth`: nobody was asked.
    Open,
    /// Not over HTTP (the fuzz targets and unit tests call the dispatcher).
    Internal,
}

/// What a tool may need to know about its caller beyond its arguments.
#[derive(Debug, Clone)]
pub struct Caller {
    pub access: Access,
    /// The peer's address (`None` when not over HTTP).
    pub peer: Option<IpAddr>,
    /// The session key the request presented, if any.
    pub session_key: Option<String>,
    /// What kind of reader sent it (absent: the agent itself).
    pub reader: Reader,
}

impl Caller {
    /// A request admitted as `access` from `peer`, with its headers.
    pub fn from_request(access: Access, peer: Option<IpAddr>, headers: &HeaderMap) -> Self {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        Self {
            access,
            peer,
            session_key: header(HEADER_SESSION_KEY).map(str::to_owned),
            reader: header(HEADER_READER)
                .and_then(Reader::parse)
                .unwrap_or_default(),
        }
    }

    /// A call from inside the process (tests, fuzzing): an agent on this
    /// machine, with no key.
    pub fn internal() -> Self {
        Self {
            access: Access::Internal,
            peer: None,
            session_key: None,
            reader: Reader::Agent,
        }
    }

    /// The call came from this machine: the credential from a loopback
    /// peer that forwarded nothing, a loopback peer on an open hub, or from
    /// inside the process. A reverse proxy that adds no forwarding header
    /// (nginx's default) makes its callers look local: configure it to
    /// send `X-Forwarded-For`.
    pub fn is_local(&self) -> bool {
        match self.access {
            Access::Internal | Access::Local => true,
            Access::Forwarded(_) | Access::Token => false,
            Access::Open => self.peer.is_some_and(|ip| match ip {
                IpAddr::V4(v4) => v4.is_loopback(),
                IpAddr::V6(v6) => {
                    v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
                }
            }),
        }
    }
}
