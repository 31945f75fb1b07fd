//! Environment variable names, defaults, and the rules for the hub URL.
//! Local and remote setups differ only in `AGENT_EVENT_BUS_URL` (and a token).

use url::Url;

pub const ENV_URL: &str = "AGENT_EVENT_BUS_URL";
pub const ENV_TOKEN: &str = "AGENT_EVENT_BUS_TOKEN";
pub const ENV_DB: &str = "AGENT_EVENT_BUS_DB";
pub const ENV_SESSION_ID: &str = "AGENT_EVENT_BUS_SESSION_ID";
pub const ENV_CLAUDE_SESSION_ID: &str = "CLAUDE_CODE_SESSION_ID";
pub const ENV_SESSION_NAME: &str = "AGENT_EVENT_BUS_SESSION_NAME";
pub const ENV_CLIENT_ID: &str = "AGENT_EVENT_BUS_CLIENT_ID";
pub const ENV_LEASE_SECONDS: &str = "AGENT_EVENT_BUS_LEASE_SECONDS";
pub const ENV_PUSH_CHANNELS: &str = "AGENT_EVENT_BUS_PUSH_CHANNELS";
pub const ENV_AUTH_DISABLED: &str = "AGENT_EVENT_BUS_AUTH_DISABLED";
pub const ENV_ICON: &str = "AGENT_EVENT_BUS_ICON";

/// Where the hub listens unless `HOST`/`PORT` say otherwise.
pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080/mcp";

/// The default presence lease a proxy asks for.
pub const DEFAULT_LEASE_SECONDS: u64 = 60;

/// Longest `wait_seconds` a long-poll may ask for.
pub const MAX_WAIT_SECONDS: u64 = 60;

/// The request header that carries a session's key, for a call that acts
/// as that session. Never an argument: the agent never sees its key.
pub const HEADER_SESSION_KEY: &str = "agent-event-bus-session-key";

/// The request header that says what kind of reader a call comes from, for
/// receipts: the agent's own calls prove a message reached it, a push poll
/// or a helper's read does not.
pub const HEADER_READER: &str = "agent-event-bus-reader";

/// What kind of reader sends a call ([`HEADER_READER`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reader {
    /// The agent's own tool call (no header): what it reads, it has seen.
    #[default]
    Agent,
    /// A proxy's push poll: finds what to push, shows the model nothing.
    Push,
    /// A hook or a helper command (the CLI): consumes the agent's cursor
    /// only when it asks `resume=true`, and proves nothing reached the model
    /// (it never marks a message delivered or read) unless it reports so.
    Helper,
    /// The CLI's `wait`, held open as the session's wake-up hook: never
    /// consumes; while its long-poll on `session:<id>` is connected, that
    /// session is reachable by `hook`.
    Wait,
}

impl Reader {
    /// The header's values, as [`Reader::parse`] reads them.
    pub const NAMES: [&'static str; 4] = ["agent", "push", "helper", "wait"];

    /// The header value for this reader.
    pub fn name(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Push => "push",
            Self::Helper => "helper",
            Self::Wait => "wait",
        }
    }

    /// A header value; `None` for anything else.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "agent" => Some(Self::Agent),
            "push" => Some(Self::Push),
            "helper" => Some(Self::Helper),
            "wait" => Some(Self::Wait),
            _ => None,
        }
    }
}

/// Why a hub URL cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid hub URL '{url}': {reason} (expected e.g. {DEFAULT_URL})")]
pub struct UrlError {
    pub url: String,
    pub reason: String,
}

/// Turns a user's hub URL into the `/mcp` endpoint: `http://h:8080`,
/// `http://h:8080/` and `http://h:8080/mcp` all mean the same, and a path
/// prefix behind a reverse proxy (`https://h/agent-event-bus`) is kept.
pub fn mcp_endpoint(raw: &str) -> Result<Url, UrlError> {
    let err = |reason: &str| UrlError {
        url: raw.to_owned(),
        reason: reason.to_owned(),
    };
    let mut url = Url::parse(raw.trim()).map_err(|e| err(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(err("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(err("it has no host"));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    if path.ends_with("/mcp") {
        url.set_path(&path);
    } else {
        url.set_path(&format!("{path}/mcp"));
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// The base URL (the endpoint without `/mcp`), for `/health`.
pub fn base_of(endpoint: &Url) -> Url {
    let mut base = endpoint.clone();
    let path = base.path().trim_end_matches('/');
    let path = path.strip_suffix("/mcp").unwrap_or(path).to_owned();
    base.set_path(&format!("{path}/"));
    base
}

/// The hub URL from the environment, or the default.
pub fn url_from_env() -> String {
    non_empty_env(ENV_URL).unwrap_or_else(|| DEFAULT_URL.to_owned())
}

/// A variable's value when it is set and not blank.
pub fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Whether an env value means "yes" (`1`, `true`, `yes`, any case).
pub fn truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// The data directory both the hub and the Python original use by default:
/// `~/.claude/contrib/agent-event-bus` (`None` without a `HOME`).
pub fn data_dir() -> Option<std::path::PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(
        std::path::PathBuf::from(home)
            .join(".claude")
            .join("contrib")
            .join("agent-event-bus"),
    )
}

/// The hub's default database file, `data.redb` in [`data_dir`].
pub fn default_store_path() -> Option<std::path::PathBuf> {
    data_dir().map(|d| d.join("data.redb"))
}

/// The Python original's default database file, `data.db` in [`data_dir`].
pub fn original_db_path() -> Option<std::path::PathBuf> {
    data_dir().map(|d| d.join("data.db"))
}

/// The hint given when the original's database sits unimported next to ours.
pub fn import_hint(original: &std::path::Path) -> String {
    format!(
        "the Python original's database is at {path}; to bring its events, sessions and webhooks \
         here, stop both hubs and run `agent-event-bus import {path}` (see \"Moving from the Python \
         original\" in the README)",
        path = original.display()
    )
}

/// This machine's host name, as the original's `socket.gethostname()`.
pub fn hostname() -> String {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy().into_owned();
    if name.is_empty() {
        "localhost".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_forms() {
        let cases = [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/mcp"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/mcp"),
            ("http://127.0.0.1:8080/mcp", "http://127.0.0.1:8080/mcp"),
            ("http://127.0.0.1:8080/mcp/", "http://127.0.0.1:8080/mcp"),
            (
                "https://h.tailnet.ts.net/agent-event-bus",
                "https://h.tailnet.ts.net/agent-event-bus/mcp",
            ),
            (
                "https://h.tailnet.ts.net/agent-event-bus/mcp",
                "https://h.tailnet.ts.net/agent-event-bus/mcp",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(mcp_endpoint(raw).unwrap().as_str(), want, "{raw}");
        }
        assert!(mcp_endpoint("ftp://x").is_err());
        assert!(mcp_endpoint("not a url").is_err());
        let base = base_of(&mcp_endpoint("https://h/agent-event-bus").unwrap());
        assert_eq!(base.as_str(), "https://h/agent-event-bus/");
        let base = base_of(&mcp_endpoint("http://h:1").unwrap());
        assert_eq!(base.as_str(), "http://h:1/");
    }
}
