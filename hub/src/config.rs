//! The hub's settings: flags, each with an environment form.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Start the agent-event-bus hub: the bus that lets coding-agent sessions
/// see each other, message each other and hand off work.
#[derive(Debug, Clone, Parser)]
#[command(name = "agent-event-bus", version)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each is a command-line switch of its own"
)]
pub struct Config {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to listen on. Keep 127.0.0.1 and put `tailscale serve` in
    /// front for remote use; any other address needs a token.
    #[arg(long, env = "HOST", default_value = shared::config::DEFAULT_HOST)]
    pub host: String,

    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = shared::config::DEFAULT_PORT)]
    pub port: u16,

    /// The database file [default: ~/.claude/contrib/agent-event-bus/data.redb].
    #[arg(long, env = "AGENT_EVENT_BUS_DB")]
    pub db: Option<PathBuf>,

    /// The token every client must send [default: one the hub makes at
    /// its first start, in the file `token` beside the database, readable
    /// by its user only; that user's proxy and CLI read it themselves].
    #[arg(long, env = "AGENT_EVENT_BUS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Admit a request that came through `tailscale serve` (from loopback,
    /// with X-Forwarded-For) by its Tailscale-User-Login header, without
    /// the token. Safe only when nothing else can forward requests to the
    /// hub: any other proxy on this machine passes a client's own headers.
    #[arg(
        long = "trust-tailscale-headers",
        env = shared::config::ENV_TRUST_TAILSCALE,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub trust_tailscale_headers: bool,

    /// Let every caller in without the token (web pages are still refused).
    /// Needed to serve a non-loopback address without a token.
    #[arg(
        long = "insecure-no-auth",
        env = "AGENT_EVENT_BUS_AUTH_DISABLED",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub insecure_no_auth: bool,

    /// Host names this hub answers to besides localhost: the name
    /// `tailscale serve` or a reverse proxy forwards (e.g.
    /// `hub.tailnet.ts.net`). Forwarded requests must name one of them;
    /// requests naming another host are refused.
    #[arg(
        long = "public-host",
        env = "AGENT_EVENT_BUS_PUBLIC_HOST",
        value_delimiter = ','
    )]
    pub public_hosts: Vec<String>,

    /// Connections served at once. Past it, a new connection closes the
    /// oldest one that has no request in progress, or gets a 503 when
    /// every connection is busy. Default: the open-file limit (raised to
    /// its hard limit at start) less 1024 kept for the hub's own files,
    /// webhook deliveries and newcomers over the cap (a quarter of a
    /// limit under 4096).
    #[arg(long, env = "AGENT_EVENT_BUS_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,

    /// A connection must send a complete request head within this long of
    /// opening or of its previous reply, or it is closed (slow or idle
    /// clients). A request in progress, such as a long-poll, is never cut.
    #[arg(long, env = "AGENT_EVENT_BUS_HEADER_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// Sessions without a lease that stay idle this long are ended.
    #[arg(long, env = "AGENT_EVENT_BUS_IDLE_TIMEOUT", default_value_t = 86_400)]
    pub idle_timeout_secs: u64,

    /// A session's heartbeat (and lease renewal) is written at most this
    /// often: a call within this long of the last write changes nothing,
    /// so polling stays cheap. 0 writes on every call. Must stay well
    /// under the shortest lease.
    #[arg(long, env = "AGENT_EVENT_BUS_HEARTBEAT_EVERY", default_value = "1s", value_parser = parse_heartbeat_every)]
    pub heartbeat_every: Duration,

    /// Delete events older than this many days (default: keep everything).
    #[arg(long, env = "AGENT_EVENT_BUS_RETAIN_DAYS")]
    pub retain_days: Option<u64>,

    /// Keep at most this many of the newest events (default: all).
    #[arg(long, env = "AGENT_EVENT_BUS_RETAIN_EVENTS")]
    pub retain_events: Option<u64>,

    /// Largest event payload, in bytes.
    #[arg(long, env = "AGENT_EVENT_BUS_MAX_PAYLOAD", default_value_t = 64 * 1024)]
    pub max_payload_bytes: usize,

    /// Largest request body, in bytes.
    #[arg(long, env = "AGENT_EVENT_BUS_MAX_BODY", default_value_t = 1024 * 1024)]
    pub max_body_bytes: u64,

    /// Refuse webhook targets that resolve to private, loopback or
    /// link-local addresses (checked after DNS resolution, at send time).
    #[arg(
        long = "webhook-deny-private",
        env = "AGENT_EVENT_BUS_WEBHOOK_DENY_PRIVATE",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub webhook_deny_private: bool,

    /// Disable a webhook whose every attempt has failed for this long
    /// (e.g. 24h, 90m).
    #[arg(long, env = "AGENT_EVENT_BUS_WEBHOOK_DISABLE_AFTER", default_value = "24h", value_parser = parse_duration)]
    pub webhook_disable_after: Duration,

    /// Deliveries in flight at once per webhook endpoint.
    #[arg(long, env = "AGENT_EVENT_BUS_WEBHOOK_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub webhook_concurrency: u16,

    /// How long one webhook attempt may take.
    #[arg(long, env = "AGENT_EVENT_BUS_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_duration, hide = true)]
    pub webhook_timeout: Duration,

    /// The waits before each retry of a failed delivery; after the last,
    /// the delivery has failed.
    #[arg(
        long,
        env = "AGENT_EVENT_BUS_WEBHOOK_RETRY_DELAYS",
        default_value = "5s,30s,2m,10m,30m,1h",
        value_delimiter = ',',
        value_parser = parse_duration,
        hide = true
    )]
    pub webhook_retry_delays: Vec<Duration>,

    /// Webhooks this hub keeps at most. Each publish matches its event
    /// against every webhook on the one writer thread, so their number
    /// bounds what any write costs; a registration past it is refused.
    #[arg(long, env = "AGENT_EVENT_BUS_MAX_WEBHOOKS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_webhooks: u32,

    /// Event types one webhook may filter on (`event_types`).
    #[arg(long, env = "AGENT_EVENT_BUS_MAX_WEBHOOK_EVENT_TYPES", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_webhook_event_types: u32,

    /// Bytes of events (their JSON) one `get_events` page holds at most: a
    /// page stops before the event that would pass it and says `has_more`.
    /// A page always holds at least one event, however large.
    #[arg(long, env = "AGENT_EVENT_BUS_MAX_PAGE_BYTES", default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_page_bytes: u64,

    /// Items a list tool returns at most (`list_sessions`, `list_channels`,
    /// `list_claims`, `list_webhooks`); a longer list is cut there and says
    /// so (`truncated: true`).
    #[arg(long, env = "AGENT_EVENT_BUS_MAX_LIST_ITEMS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_list_items: u32,

    /// Let callers on other machines use the `notify` tool, which puts
    /// their text on this machine's desktop (off: only local callers may).
    #[arg(
        long = "allow-remote-notify",
        env = "AGENT_EVENT_BUS_ALLOW_REMOTE_NOTIFY",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_remote_notify: bool,

    /// Check the database file's integrity (every page, as at start) and
    /// exit: 0 when it is sound, 1 when it is damaged. Does not serve.
    #[arg(long)]
    pub check: bool,
}

/// What to do instead of serving.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Bring the Python original's database (events, sessions, webhooks)
    /// into a new store for this hub; start the hub on it afterwards.
    Import(crate::import::ImportArgs),
}

/// The default database file, `~/.claude/contrib/agent-event-bus/data.redb`.
pub fn default_db_path() -> Result<PathBuf, ConfigError> {
    shared::config::default_store_path().ok_or(ConfigError::NoHome)
}

/// How webhooks are delivered (see [`crate::delivery`]).
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub timeout: Duration,
    /// The wait before retry n is `retry_delays[n - 1]` (± jitter); a
    /// delivery gets `retry_delays.len() + 1` attempts.
    pub retry_delays: Vec<Duration>,
    /// Attempts in flight at once per webhook.
    pub concurrency: usize,
    pub disable_after: Duration,
    pub deny_private: bool,
}

/// Parses `500ms`, `5s`, `2m`, `1h`, `1d` (a bare number is seconds).
/// The most `--heartbeat-every` may be: a lease is renewed by a heartbeat
/// write, so one written less often than this lets a short lease lapse.
const HEARTBEAT_EVERY_MAX: Duration = Duration::from_secs(10);

fn parse_heartbeat_every(text: &str) -> Result<Duration, String> {
    let every = parse_duration(text)?;
    if every > HEARTBEAT_EVERY_MAX {
        return Err(format!(
            "'{text}' is longer than {}s: a lease is renewed when its heartbeat is written, so leases would lapse; use e.g. 1s, or 0 to write on every call",
            HEARTBEAT_EVERY_MAX.as_secs()
        ));
    }
    Ok(every)
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration; write e.g. 500ms, 5s, 2m, 1h"))?;
    let ms = match unit.trim() {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{text}'; use ms, s, m, h or d"
            ));
        }
    };
    ms.map(Duration::from_millis)
        .ok_or_else(|| format!("'{text}' is too long"))
}

/// Writes a span of milliseconds the way [`parse_duration`] reads it, in its
/// largest whole unit (`24h`, `90m`, `1500ms`).
pub fn format_span(ms: i64) -> String {
    let ms = ms.max(0);
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms >= size && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// The bounds every client is held to: request sizes, and what one client
/// may make the hub hold or do.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_payload_bytes: usize,
    pub max_body_bytes: u64,
    pub max_webhooks: usize,
    pub max_webhook_event_types: usize,
    pub max_page_bytes: usize,
    pub max_list_items: usize,
    /// Whether callers on other machines may use `notify`.
    pub remote_notify: bool,
}

/// How long sessions may go quiet, and how often their activity is written.
#[derive(Debug, Clone, Copy)]
pub struct SessionTimes {
    /// Sessions without a lease idle longer than this are ended.
    pub idle_timeout_ms: i64,
    /// Activity closer than this to the last heartbeat is not written.
    pub heartbeat_every_ms: i64,
}

impl Default for SessionTimes {
    /// The defaults of the flags: a day idle, a heartbeat a second.
    fn default() -> Self {
        Self {
            idle_timeout_ms: 86_400_000,
            heartbeat_every_ms: 1000,
        }
    }
}

/// How long events are kept; `None` keeps them forever, as the original.
#[derive(Debug, Clone, Copy, Default)]
pub struct Retention {
    pub days: Option<u64>,
    pub events: Option<u64>,
}

/// Why the hub refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "refusing to listen on {host} without a token you chose: clients on other machines would need one to get in.\n\
         Do one of:\n  \
         - set AGENT_EVENT_BUS_TOKEN (or --token) to a long random secret and give it to your clients;\n  \
         - keep HOST=127.0.0.1, put `tailscale serve --bg --set-path /agent-event-bus http://127.0.0.1:{port}` in front of it,\n    name it with --public-host MACHINE.TAILNET.ts.net (AGENT_EVENT_BUS_PUBLIC_HOST), and give clients the hub's token\n    (`agent-event-bus-cli token`) or admit tailnet users by identity with --trust-tailscale-headers;\n  \
         - or, on a network you fully trust, pass --insecure-no-auth (AGENT_EVENT_BUS_AUTH_DISABLED=1)."
    )]
    OpenWithoutAuth { host: String, port: u16 },
    #[error(
        "--public-host '{0}' is not a host name; give the bare name, e.g. hub.tailnet.ts.net (no scheme, no path)"
    )]
    BadPublicHost(String),
    #[error("--header-timeout must be at least 1ms")]
    ZeroHeaderTimeout,
    #[error(
        "HOME is not set, so there is no default database path; pass --db or set AGENT_EVENT_BUS_DB"
    )]
    NoHome,
}

impl Config {
    pub fn limits(&self) -> Limits {
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Limits {
            max_payload_bytes: self.max_payload_bytes,
            max_body_bytes: self.max_body_bytes,
            max_webhooks: size(self.max_webhooks.into()),
            max_webhook_event_types: size(self.max_webhook_event_types.into()),
            max_page_bytes: size(self.max_page_bytes),
            max_list_items: size(self.max_list_items.into()),
            remote_notify: self.allow_remote_notify,
        }
    }

    pub fn delivery(&self) -> DeliveryConfig {
        DeliveryConfig {
            timeout: self.webhook_timeout,
            retry_delays: self.webhook_retry_delays.clone(),
            concurrency: usize::from(self.webhook_concurrency),
            disable_after: self.webhook_disable_after,
            deny_private: self.webhook_deny_private,
        }
    }

    /// How callers may get in besides the token ([`crate::auth`]).
    pub fn openings(&self) -> crate::auth::Openings {
        crate::auth::Openings {
            no_auth: self.insecure_no_auth,
            trust_tailscale: self.trust_tailscale_headers,
        }
    }

    pub fn session_times(&self) -> SessionTimes {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        SessionTimes {
            idle_timeout_ms: ms(Duration::from_secs(self.idle_timeout_secs)),
            heartbeat_every_ms: ms(self.heartbeat_every),
        }
    }

    pub fn retention(&self) -> Retention {
        Retention {
            days: self.retain_days,
            events: self.retain_events,
        }
    }

    /// Whether `host` is a loopback address (or `localhost`).
    pub fn is_loopback_host(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .trim_matches(['[', ']'])
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Refuses settings that would expose the bus without authentication.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let has_token = self.token.as_deref().is_some_and(|t| !t.is_empty());
        if !self.is_loopback_host() && !has_token && !self.insecure_no_auth {
            return Err(ConfigError::OpenWithoutAuth {
                host: self.host.clone(),
                port: self.port,
            });
        }
        if let Some(bad) = self
            .public_hosts
            .iter()
            .find(|h| crate::auth::parse_host(h.trim()).is_none())
        {
            return Err(ConfigError::BadPublicHost(bad.clone()));
        }
        if self.header_timeout.is_zero() {
            return Err(ConfigError::ZeroHeaderTimeout);
        }
        Ok(())
    }

    /// The database path: `--db`, else the default under `~/.claude`.
    pub fn db_path(&self) -> Result<PathBuf, ConfigError> {
        match &self.db {
            Some(p) => Ok(p.clone()),
            None => default_db_path(),
        }
    }
}

#[cfg(test)]
mod tests;
