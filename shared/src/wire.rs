//! Replies the hub sends, typed so the hub, the CLI and the tests agree on
//! every field. Field order is the original's (it shows in the JSON text).

use serde::{Deserialize, Serialize};

/// One event as `get_events` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// A page of events (`get_events` sends [`crate::tools::events::Page`],
/// whose events may carry receipts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EventsPage<E = Event> {
    pub events: Vec<E>,
    /// The highest id in the raw page (both orders), else the cursor given.
    pub next_cursor: Option<String>,
    /// The raw page was full, or stopped at the hub's page byte limit
    /// (`--max-page-bytes`): there may be more.
    pub has_more: bool,
}

/// One live session as `list_sessions` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// The push routes its proxy reported last (see [`crate::push::ROUTES`]):
    /// a capability, not a delivery guarantee.
    #[serde(default)]
    pub push: Vec<String>,
    /// Calls acting as it need its session key (it registered with
    /// `key: true`); its key is never shown.
    #[serde(default)]
    pub keyed: bool,
    /// How a message can put itself into its model unasked right now, in
    /// [`crate::push::ROUTES`] order: the reported routes, and `hook` while
    /// a `wait` for it is connected. Empty: it sees messages at its next read.
    /// The last field (the hub renders lists around it).
    #[serde(default)]
    pub reach: Vec<Reach>,
}

/// One way a session can be reached now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Reach {
    /// A route of [`crate::push::ROUTES`].
    pub path: String,
    /// Checked to work (a verified pane, a connected `wait`); unconfirmed
    /// routes (a channel, an inbox, a desktop notice) may reach nobody.
    pub confirmed: bool,
}

impl Reach {
    /// How replies and the CLI name it: `hook`, `channel (unconfirmed)`.
    pub fn label(&self) -> String {
        if self.confirmed {
            self.path.clone()
        } else {
            format!("{} (unconfirmed)", self.path)
        }
    }
}

/// A channel and how many live sessions are implicitly in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChannelCount {
    pub channel: String,
    pub subscribers: u64,
}

/// A webhook as `list_webhooks` returns it (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookInfo {
    pub webhook_id: u64,
    pub url: String,
    pub channel: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub active: bool,
    pub created_at: String,
    pub has_secret: bool,
    /// Session lifecycle events are delivered too (opt-in at registration).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_system: bool,
    /// Why the hub disabled this webhook (410 Gone, failing too long).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// When the hub disabled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<String>,
    /// Every attempt since this time has failed; cleared by a success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<String>,
}

/// One row of a webhook's delivery log (`list_webhook_deliveries`): one
/// attempt, or a delivery ended without one (say, its webhook was disabled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeliveryInfo {
    /// The event delivered; 0 for a `test_webhook` ping.
    pub event_id: u64,
    /// The `webhook-id` header: the same on every attempt of one delivery.
    pub delivery_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// `delivered`, `retrying` (see `next_attempt_at`) or `failed` (no more tries).
    pub status: String,
    pub attempted_at: String,
    /// The receiver's HTTP status, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
}

/// A claim as `claim` and `list_claims` show it; `name` and `display_id`
/// are its holder's, when the holder is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClaimInfo {
    pub claim_id: u64,
    pub resource: String,
    pub exclusive: bool,
    pub session_id: String,
    pub since: String,
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_id: Option<String>,
}
