//! Replies the hub sends, typed so the hub, the CLI and the tests agree on
//! every field. Field order is the original's (it shows in the JSON text).

use serde::{Deserialize, Serialize};

/// One event as `get_events` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: u64,
    pub event_type: String,
    pub payload: String,
    /// The publisher's session id, or `anonymous`.
    pub session_id: String,
    pub timestamp: String,
    pub channel: String,
    pub correlation_id: Option<String>,
    /// The effective level (see [`crate::level::SignalLevel::effective`]).
    pub signal_level: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// A page of events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventsPage {
    pub events: Vec<Event>,
    /// The highest id in the raw page (both orders), else the cursor given.
    pub next_cursor: Option<String>,
    /// The raw page was full: there may be more.
    pub has_more: bool,
}

/// One live session as `list_sessions` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub session_id: String,
    pub display_id: String,
    pub name: String,
    pub machine: String,
    pub repo: String,
    pub cwd: String,
    pub client_id: Option<String>,
    pub registered_at: String,
    pub last_heartbeat: String,
    pub age_seconds: f64,
    pub subscribed_channels: Vec<String>,
    /// The client process (Claude Code, a shell) on `machine`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_pid: Option<u32>,
    /// The presence lease length; the session ends when it lapses unrenewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_seconds: Option<u64>,
}

/// A channel and how many live sessions are implicitly in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelCount {
    pub channel: String,
    pub subscribers: u64,
}

/// A webhook as `list_webhooks` returns it (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookInfo {
    pub webhook_id: u64,
    pub url: String,
    pub channel: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub active: bool,
    pub created_at: String,
    pub has_secret: bool,
}
