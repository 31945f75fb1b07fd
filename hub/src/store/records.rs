//! The shapes the store keeps and hands out: sessions, events, webhooks,
//! outbox entries and delivery attempts, with their wire forms.

use serde::{Deserialize, Serialize};
use shared::level::SignalLevel;
use shared::wire;

/// A session as stored. Times are epoch milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionRecord {
    pub id: String,
    pub display_id: String,
    pub name: String,
    pub machine: String,
    pub cwd: String,
    pub repo: String,
    pub registered_at: i64,
    pub last_heartbeat: i64,
    pub client_id: Option<String>,
    pub last_cursor: Option<u64>,
    pub deleted_at: Option<i64>,
    #[serde(default)]
    pub client_pid: Option<u32>,
    #[serde(default)]
    pub lease_seconds: Option<u64>,
    /// When the lease lapses (ms), for leased sessions.
    #[serde(default)]
    pub lease_deadline: Option<i64>,
    /// The push routes its clients reported (`register_session(push=...)`).
    #[serde(default)]
    pub push: Vec<String>,
    /// The hash of the session's key ([`crate::keys`]), for a keyed
    /// session; never the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_hash: Option<String>,
}

impl SessionRecord {
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// The wire shape for `list_sessions`; `hook`: a `wait` for it is
    /// connected now.
    pub fn to_wire(&self, now_ms: i64, hook: bool) -> wire::SessionInfo {
        wire::SessionInfo {
            session_id: self.id.clone(),
            display_id: self.display_id.clone(),
            name: self.name.clone(),
            machine: self.machine.clone(),
            repo: self.repo.clone(),
            cwd: self.cwd.clone(),
            client_id: self.client_id.clone(),
            registered_at: shared::time::format_ms(self.registered_at),
            last_heartbeat: shared::time::format_ms(self.last_heartbeat),
            age_seconds: (now_ms - self.registered_at).max(0) as f64 / 1000.0,
            subscribed_channels: shared::channel::implicit_channels(
                &self.id,
                &self.repo,
                &self.machine,
            )
            .to_vec(),
            client_pid: self.client_pid,
            lease_seconds: self.lease_seconds,
            push: self.push.clone(),
            keyed: self.key_hash.is_some(),
            reach: super::live::reach(&self.push, hook),
        }
    }
}

/// An event as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventRecord {
    pub id: u64,
    pub event_type: String,
    pub payload: String,
    pub session_id: String,
    /// Epoch microseconds.
    pub timestamp: i64,
    pub channel: String,
    pub correlation_id: Option<String>,
    /// The level the publisher gave, verbatim (may be unknown).
    pub signal_level: Option<String>,
    pub title: Option<String>,
    pub tags: Option<Vec<String>>,
}

impl EventRecord {
    pub fn level(&self) -> SignalLevel {
        SignalLevel::effective(
            self.signal_level.as_deref(),
            &self.event_type,
            &self.channel,
        )
    }

    /// The length of [`to_wire`](Self::to_wire)'s JSON, counted without
    /// building it: what a page's byte limit adds up.
    pub fn wire_len(&self) -> usize {
        let tags = self.tags.as_ref().map(|tags| {
            // `"tags":[` … `]`, and a comma between items.
            9 + tags.iter().map(|t| json_str_len(t)).sum::<usize>() + tags.len().saturating_sub(1)
        });
        let fields: [usize; 10] = [
            5 + decimal_len(self.id),
            13 + json_str_len(&self.event_type),
            10 + json_str_len(&self.payload),
            13 + json_str_len(&self.session_id),
            12 + json_str_len(&shared::time::format_micros(self.timestamp)),
            10 + json_str_len(&self.channel),
            17 + self.correlation_id.as_deref().map_or(4, json_str_len),
            15 + json_str_len(self.level().as_str()),
            self.title.as_deref().map_or(0, |t| 8 + json_str_len(t)),
            tags.unwrap_or(0),
        ];
        let present = fields.iter().filter(|&&n| n > 0).count();
        // The braces, and a comma between fields.
        2 + fields.iter().sum::<usize>() + present - 1
    }

    pub fn to_wire(&self) -> wire::Event {
        wire::Event {
            id: self.id,
            event_type: self.event_type.clone(),
            payload: self.payload.clone(),
            session_id: self.session_id.clone(),
            timestamp: shared::time::format_micros(self.timestamp),
            channel: self.channel.clone(),
            correlation_id: self.correlation_id.clone(),
            signal_level: self.level().as_str().to_owned(),
            title: self.title.clone(),
            tags: self.tags.clone(),
        }
    }
}

/// The length of `s` as a JSON string, quotes included, escaped as
/// `serde_json` escapes it.
fn json_str_len(s: &str) -> usize {
    2 + s
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if u32::from(c) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum::<usize>()
}

/// How many digits `n` has in decimal.
fn decimal_len(n: u64) -> usize {
    n.checked_ilog10()
        .map_or(1, |d| usize::try_from(d).unwrap_or(usize::MAX) + 1)
}

/// An event about to be appended (the store assigns id and time).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_type: String,
    pub payload: String,
    pub session_id: String,
    pub channel: String,
    pub correlation_id: Option<String>,
    pub signal_level: Option<String>,
    pub title: Option<String>,
    pub tags: Option<Vec<String>>,
}

impl NewEvent {
    /// A lifecycle event the hub itself publishes on `all`.
    pub fn system(event_type: &str, payload: String, session_id: &str) -> Self {
        Self {
            event_type: event_type.to_owned(),
            payload,
            session_id: session_id.to_owned(),
            channel: "all".to_owned(),
            correlation_id: None,
            signal_level: None,
            title: None,
            tags: None,
        }
    }
}

/// A webhook as stored (the secret never leaves the hub).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WebhookRecord {
    pub id: u64,
    pub url: String,
    pub channel: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub secret: Option<String>,
    pub active: bool,
    pub created_at: i64,
    /// Also deliver the hub's session lifecycle events.
    #[serde(default)]
    pub include_system: bool,
    /// When the current run of failed attempts began (ms); `None` after a success.
    #[serde(default)]
    pub failing_since: Option<i64>,
    /// Why the hub disabled it (410, failing too long); cleared on re-enable.
    #[serde(default)]
    pub disabled_reason: Option<String>,
    #[serde(default)]
    pub disabled_at: Option<i64>,
}

impl WebhookRecord {
    pub fn to_wire(&self) -> wire::WebhookInfo {
        wire::WebhookInfo {
            webhook_id: self.id,
            url: self.url.clone(),
            channel: self.channel.clone(),
            event_types: self.event_types.clone(),
            active: self.active,
            created_at: shared::time::format_ms(self.created_at),
            has_secret: self.secret.is_some(),
            include_system: self.include_system,
            disabled_reason: self.disabled_reason.clone(),
            disabled_at: self.disabled_at.map(shared::time::format_ms),
            failing_since: self.failing_since.map(shared::time::format_ms),
        }
    }
}

/// The `webhook-id` of one event's delivery to one webhook: the same on
/// every attempt and redelivery, so receivers can de-duplicate on it.
pub fn delivery_id(event_id: u64, webhook_id: u64) -> String {
    format!("evt_{event_id}_wh_{webhook_id}")
}

/// Where an outbox entry waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Queued {
    /// In the first-attempt queue.
    First,
    /// In the retry queue, due at this time (ms).
    Retry { due_ms: u64 },
}

/// An outbox entry the worker takes for an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueDelivery {
    pub webhook_id: u64,
    pub event_id: u64,
    pub queued: Queued,
    /// This attempt's number, from 1.
    pub attempt: u32,
}

/// How an attempt ended, as the delivery worker judged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Try again at this time (ms).
    RetryAt(i64),
    /// No more attempts.
    Failed,
    /// The endpoint answered 410 Gone: fail, and disable the webhook.
    Gone,
}

/// The outcome of one attempt.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub at_ms: i64,
    pub status_code: Option<u16>,
    pub latency_ms: Option<u64>,
    pub error: Option<String>,
    pub verdict: Verdict,
}

/// A delivery-log row's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptStatus {
    Delivered,
    Retrying,
    Failed,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
        }
    }
}

/// One row of a webhook's delivery log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AttemptRecord {
    pub event_id: u64,
    pub delivery_id: String,
    pub attempt: u32,
    pub status: AttemptStatus,
    pub at_ms: i64,
    pub status_code: Option<u16>,
    pub latency_ms: Option<u64>,
    pub error: Option<String>,
    pub next_attempt_ms: Option<i64>,
}

impl AttemptRecord {
    pub fn to_wire(&self) -> wire::DeliveryInfo {
        wire::DeliveryInfo {
            event_id: self.event_id,
            delivery_id: self.delivery_id.clone(),
            attempt: self.attempt,
            status: self.status.as_str().to_owned(),
            attempted_at: shared::time::format_ms(self.at_ms),
            status_code: self.status_code,
            latency_ms: self.latency_ms,
            error: self.error.clone(),
            next_attempt_at: self.next_attempt_ms.map(shared::time::format_ms),
        }
    }
}

/// Which events a query wants.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only ids above this.
    pub after: Option<u64>,
    pub descending: bool,
    pub limit: usize,
    /// Any of these channels (exact); empty means all.
    pub channels: Vec<String>,
    /// Any of these types; empty means all.
    pub event_types: Vec<String>,
    pub correlation_id: Option<String>,
    /// Stop before the event that would take the page's JSON past this
    /// many bytes; the first event is always taken, however large.
    pub max_bytes: Option<usize>,
}

impl EventQuery {
    /// Whether an event passes the filters: what the index answers, by scan.
    #[cfg(test)]
    pub(super) fn accepts(&self, e: &EventRecord) -> bool {
        (self.channels.is_empty() || self.channels.contains(&e.channel))
            && (self.event_types.is_empty() || self.event_types.contains(&e.event_type))
            && self
                .correlation_id
                .as_ref()
                .is_none_or(|c| e.correlation_id.as_ref() == Some(c))
    }
}

/// What one event query found, and how far it looked.
#[derive(Debug, Clone, Default)]
pub struct EventPage {
    pub events: Vec<EventRecord>,
    /// Every event above the query's `after` and up to this id was looked
    /// at, matched or not: a later read of the same query may start here.
    /// It is `after` (or 0) when the page says nothing about what follows
    /// (a full page in descending order).
    pub through: u64,
    /// Event rows decoded to answer: the matches, and nothing else.
    pub rows_read: usize,
    /// Index entries stepped over to find them.
    pub postings_read: usize,
    /// The page stopped at the query's `max_bytes`, not at its end or its
    /// `limit`: there may be more.
    pub cut: bool,
}
