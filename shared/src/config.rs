//! Environment variable names, defaults, the rules for the hub URL, and
//! how a client finds the credential it sends. Local and remote setups
//! differ only in `AGENT_EVENT_BUS_URL` (and a token for a remote hub).

use std::path::{Path, PathBuf};

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
/// Where a client reads this machine's hub credential, instead of the
/// `token` file beside the database.
pub const ENV_TOKEN_FILE: &str = "AGENT_EVENT_BUS_TOKEN_FILE";
/// The hub's opt-in to `tailscale serve`'s identity headers.
pub const ENV_TRUST_TAILSCALE: &str = "AGENT_EVENT_BUS_TRUST_TAILSCALE";

/// The file beside the database in which the hub keeps the credential it
/// made at its first start.
pub const TOKEN_FILE_NAME: &str = "token";

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

/// The hub's token file for the database `db`: `token` beside it.
pub fn token_file_beside(db: &Path) -> PathBuf {
    match db.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(TOKEN_FILE_NAME),
        _ => PathBuf::from(TOKEN_FILE_NAME),
    }
}

/// Where this machine's hub keeps its credential, as its user's clients
/// look for it: [`ENV_TOKEN_FILE`], else `token` beside [`ENV_DB`], else
/// beside the default store (`None` without a `HOME`).
pub fn local_token_file() -> Option<PathBuf> {
    if let Some(file) = non_empty_env(ENV_TOKEN_FILE) {
        return Some(PathBuf::from(file));
    }
    match non_empty_env(ENV_DB) {
        Some(db) => Some(token_file_beside(Path::new(&db))),
        None => default_store_path().map(|db| token_file_beside(&db)),
    }
}

/// Whether `url` names this machine by a loopback name or address.
pub fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        None => false,
    }
}

/// Where the credential a client sends came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `--token` or [`ENV_TOKEN`].
    Given,
    /// This machine's hub token file: read by a client because the hub is
    /// on this machine and no token was given; made or read by the hub.
    File(PathBuf),
}

/// A credential presented to the hub as `Authorization: Bearer` (and, in
/// the hub, the one it accepts).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub token: String,
    pub source: TokenSource,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("token", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

impl Credential {
    /// The token file it was read from (or written to, by the hub).
    pub fn file(&self) -> Option<&Path> {
        match &self.source {
            TokenSource::Given => None,
            TokenSource::File(path) => Some(path),
        }
    }

    /// Where it came from, for messages: `AGENT_EVENT_BUS_TOKEN` or the file.
    pub fn origin(&self) -> String {
        match &self.source {
            TokenSource::Given => format!("{ENV_TOKEN} (or --token)"),
            TokenSource::File(path) => path.display().to_string(),
        }
    }
}

/// What a client found to present: a credential, or why it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    Found(Credential),
    /// No credential; the text says where the client looked and what to do.
    Missing(String),
}

impl Discovery {
    /// `token` as given (`None` or blank: no credential).
    pub fn given(token: Option<String>) -> Self {
        match token.filter(|t| !t.trim().is_empty()) {
            Some(token) => Self::Found(Credential {
                token,
                source: TokenSource::Given,
            }),
            None => Self::Missing("no token was given".to_owned()),
        }
    }

    /// What a client sends, for messages: where its credential came from,
    /// or why it has none (never the token itself).
    pub fn note(&self) -> String {
        match self {
            Self::Found(credential) => format!("sent the token from {}", credential.origin()),
            Self::Missing(why) => format!("sent no credential: {why}"),
        }
    }

    pub fn credential(&self) -> Option<&Credential> {
        match self {
            Self::Found(credential) => Some(credential),
            Self::Missing(_) => None,
        }
    }
}

/// The credential a client sends to the hub at `endpoint`: `given` (a
/// `--token` flag), else [`ENV_TOKEN`], else, for a hub on this machine
/// only, its token file ([`local_token_file`]). A hub elsewhere never gets
/// this machine's credential.
pub fn discover_credential(given: Option<&str>, endpoint: &Url) -> Discovery {
    let given = given
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .or_else(|| non_empty_env(ENV_TOKEN));
    if let Some(token) = given {
        return Discovery::Found(Credential {
            token,
            source: TokenSource::Given,
        });
    }
    if !is_loopback_url(endpoint) {
        return Discovery::Missing(format!(
            "{ENV_TOKEN} is not set; a hub on another machine needs its token there \
             (`agent-event-bus-cli token` on the hub's machine prints it)"
        ));
    }
    let Some(file) = local_token_file() else {
        return Discovery::Missing(format!(
            "{ENV_TOKEN} is not set and HOME is not set, so there is no token file to read; \
             set {ENV_TOKEN} or {ENV_TOKEN_FILE}"
        ));
    };
    read_token_file(&file)
}

/// Reads a hub token file as a client: the credential, or why not.
pub fn read_token_file(file: &Path) -> Discovery {
    let shown = file.display();
    match std::fs::read_to_string(file) {
        Ok(text) if !text.trim().is_empty() => Discovery::Found(Credential {
            token: text.trim().to_owned(),
            source: TokenSource::File(file.to_owned()),
        }),
        Ok(_) => Discovery::Missing(format!(
            "the token file {shown} is empty; restart the hub after removing it and it writes a new one"
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Discovery::Missing(format!(
            "there is no token file at {shown}: the hub writes it beside its database at its \
             first start. Start the hub; if it uses another database, set {ENV_DB} (or \
             {ENV_TOKEN_FILE}) for this client too, or set {ENV_TOKEN}"
        )),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Discovery::Missing(format!(
            "cannot read the token file {shown} (permission denied): the hub runs as \
                 another user. Ask its user for the token (`agent-event-bus-cli token`) and \
                 set {ENV_TOKEN}"
        )),
        Err(e) => Discovery::Missing(format!("cannot read the token file {shown}: {e}")),
    }
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
    fn loopback_urls_and_token_files() {
        for (url, local) in [
            ("http://127.0.0.1:8080/mcp", true),
            ("http://127.9.9.9:1/", true),
            ("http://localhost:8080", true),
            ("http://[::1]:8080", true),
            ("http://[::ffff:127.0.0.1]:8080", true),
            ("http://0.0.0.0:8080", false),
            ("https://hub.tail.ts.net/agent-event-bus", false),
            ("http://10.0.0.1:8080", false),
        ] {
            assert_eq!(is_loopback_url(&Url::parse(url).unwrap()), local, "{url}");
        }
        assert_eq!(
            token_file_beside(Path::new("/d/data.redb")),
            PathBuf::from("/d/token")
        );
        assert_eq!(
            token_file_beside(Path::new("data.redb")),
            PathBuf::from("token")
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        assert!(
            matches!(read_token_file(&file), Discovery::Missing(m) if m.contains("no token file"))
        );
        std::fs::write(&file, "abc\n").unwrap();
        let found = read_token_file(&file);
        assert_eq!(found.credential().map(|c| c.token.as_str()), Some("abc"));
        assert!(
            !format!("{found:?}").contains("abc"),
            "Debug hides the token"
        );
    }

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
