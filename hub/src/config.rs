//! The hub's settings: flags, each with an environment form.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;

/// Start the agent-event-bus hub: the bus that lets coding-agent sessions
/// see each other, message each other and hand off work.
#[derive(Debug, Clone, Parser)]
#[command(name = "agent-event-bus", version)]
pub struct Config {
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

    /// Bearer token that remote clients must send.
    #[arg(long, env = "AGENT_EVENT_BUS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Serve a non-loopback address without any authentication.
    #[arg(
        long = "insecure-no-auth",
        env = "AGENT_EVENT_BUS_AUTH_DISABLED",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub insecure_no_auth: bool,

    /// Host names this hub is reached by besides localhost (e.g. the
    /// `tailscale serve` name); requests naming another host are refused.
    #[arg(
        long = "public-host",
        env = "AGENT_EVENT_BUS_PUBLIC_HOST",
        value_delimiter = ','
    )]
    pub public_hosts: Vec<String>,

    /// Sessions without a lease that stay idle this long are ended.
    #[arg(long, env = "AGENT_EVENT_BUS_IDLE_TIMEOUT", default_value_t = 86_400)]
    pub idle_timeout_secs: u64,

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
}

/// Size limits every request is held to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_payload_bytes: usize,
    pub max_body_bytes: u64,
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
        "refusing to listen on {host} without authentication: anyone who can reach it could read and post events.\n\
         Do one of:\n  \
         - keep HOST=127.0.0.1 and put `tailscale serve --bg --set-path /agent-event-bus http://127.0.0.1:{port}` in front of it;\n  \
         - set AGENT_EVENT_BUS_TOKEN (or --token) to a long random secret and give it to your clients;\n  \
         - or, on a network you fully trust, pass --insecure-no-auth (AGENT_EVENT_BUS_AUTH_DISABLED=1)."
    )]
    OpenWithoutAuth { host: String, port: u16 },
    #[error(
        "HOME is not set, so there is no default database path; pass --db or set AGENT_EVENT_BUS_DB"
    )]
    NoHome,
}

impl Config {
    pub fn limits(&self) -> Limits {
        Limits {
            max_payload_bytes: self.max_payload_bytes,
            max_body_bytes: self.max_body_bytes,
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
        Ok(())
    }

    /// The database path: `--db`, else the default under `~/.claude`.
    pub fn db_path(&self) -> Result<PathBuf, ConfigError> {
        if let Some(p) = &self.db {
            return Ok(p.clone());
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or(ConfigError::NoHome)?;
        Ok(PathBuf::from(home)
            .join(".claude")
            .join("contrib")
            .join("agent-event-bus")
            .join("data.redb"))
    }
}
