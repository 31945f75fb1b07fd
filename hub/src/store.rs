//! The store: one redb file, the only module that names a table.
//!
//! Writes go through one writer thread that batches whatever is queued into
//! one transaction (group commit): a batch that holds any durable write is
//! committed with `Durability::Immediate` before any caller hears back;
//! lazy writes (heartbeats, cursor advances from reads) commit without an
//! fsync and are made durable by the next durable commit or a flush within
//! about a second. Reads run on blocking threads in their own MVCC snapshot
//! and never block the writer. No transaction lives across an `.await`.
//!
//! A failed commit (a full disk, an I/O error) leaves redb's handle refusing
//! everything, so the writer closes and reopens the file itself: the failed
//! batch was never acknowledged, so nothing acknowledged is lost. While it
//! cannot write, every write is refused with [`STORAGE_REFUSAL`] and
//! [`Store::storage_fault`] says why (for `/health`); reads carry on from the
//! reopened file. The file's integrity is checked at open: a damaged file is
//! refused, never written to.
//!
//! The webhook outbox lives here too: a publish enqueues its deliveries in
//! the event's own transaction, and every commit that enqueued any wakes the
//! delivery worker ([`Store::outbox_signal`]).
//!
//! Submodules add their own tables and verbs: [`claims`] (advisory holds
//! that end with their session) and [`receipts`] (direct-message receipts).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use redb::{
    Database, Durability as RedbDurability, ReadOnlyTable, ReadTransaction, ReadableDatabase,
    ReadableTable, ReadableTableMetadata, Table, TableDefinition, TableError, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use shared::level::SignalLevel;
use shared::wire;

use crate::codec;
use tokio::sync::{Notify, oneshot, watch};

pub mod claims;
pub mod receipts;
pub use claims::ClaimRecord;
pub use receipts::{Mark, Receipt};

/// Counters: `next_webhook_id`, `next_delivery_log_id`, `schema_version`,
/// and `next_event_id`: a floor under the next event id, written only when
/// pruning (the next id is otherwise one past the newest row, so an append
/// touches no counter page); `index_built_through` while an older store's
/// event index is being built.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Event id → [`EventRecord`] in the compact encoding of [`encode_event`]
/// (rows written before schema version 2 are JSON; both decode).
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Index key name → its number: `c\0<channel>`, `t\0<event type>`,
/// `r\0<correlation id>`. Never shrinks, so a number is never reused.
const EVENT_KEYS: TableDefinition<&str, u64> = TableDefinition::new("event_keys");
/// (index key number, event id) → (): the posting lists of the channel,
/// type and correlation filters, written with the event.
const EVENT_INDEX: TableDefinition<(u64, u64), ()> = TableDefinition::new("event_index");
/// Session id → [`SessionRecord`] as JSON.
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// `machine \x1f client_id` → session id: resume lookups.
const CLIENTS: TableDefinition<&str, &str> = TableDefinition::new("clients");
/// Ids of the sessions that have not ended: ended ones stay in `SESSIONS`
/// for ever (resume, attribution), so lists must not scan them.
const LIVE: TableDefinition<&str, ()> = TableDefinition::new("live_sessions");
/// Display id → how many live sessions hold it: a new session's name is
/// picked without reading every live session.
const LIVE_NAMES: TableDefinition<&str, u64> = TableDefinition::new("live_display_ids");
/// (lease deadline in ms, session id) → (): the sweeper's index.
const LEASES: TableDefinition<(u64, &str), ()> = TableDefinition::new("leases");
/// Webhook id → [`WebhookRecord`] as JSON.
const WEBHOOKS: TableDefinition<u64, &[u8]> = TableDefinition::new("webhooks");
/// Event id → the webhook ids (packed little-endian u64s) still awaiting
/// their first attempt of it: one row per event, appended with the event, so
/// a publish adds one row whatever the number of webhooks. With
/// [`OUTBOX_RETRY`] this is the outbox: a delivery is in exactly one of the
/// two until it is delivered or has failed.
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// (webhook id, due ms, event id) → attempts made: deliveries awaiting a
/// retry (a redelivery is one due at once with none made).
const OUTBOX_RETRY: TableDefinition<RetryKey, u32> = TableDefinition::new("outbox_retry");
/// (webhook id, log seq) → [`AttemptRecord`] as JSON: the newest
/// [`DELIVERY_LOG_KEEP`] rows per webhook.
const DELIVERY_LOG: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("delivery_log");
/// Webhook id → its row count in [`DELIVERY_LOG`], so trimming is one removal.
const DELIVERY_LOG_LEN: TableDefinition<u64, u64> = TableDefinition::new("delivery_log_len");

/// 2: compact event rows and [`EVENT_INDEX`].
const SCHEMA_VERSION: u64 = 2;
/// redb's page cache for a serving hub.
const CACHE_BYTES: usize = 64 * 1024 * 1024;
/// How long lazy writes may stay unsynced.
const FLUSH_INTERVAL: Duration = Duration::from_millis(1000);
/// The most jobs folded into one commit.
const MAX_BATCH: usize = 4096;
/// Delivery-log rows kept per webhook; older ones are dropped.
pub const DELIVERY_LOG_KEEP: u64 = 1000;

/// A storage failure. Its text is for logs, never for clients.
#[derive(Debug, Clone, thiserror::Error)]
#[error("storage: {0}")]
pub struct StoreError(pub String);

macro_rules! store_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { Self(e.to_string()) }
        }
    )*};
}
store_error_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError,
    serde_json::Error,
    std::io::Error,
    codec::CodecError
);

pub type Result<T> = std::result::Result<T, StoreError>;

/// What a caller is told when the storage cannot take a write (or serve a
/// read) at the moment. The detail stays in the log and `/health`.
pub const STORAGE_REFUSAL: &str = "storage error (disk full?): the hub could not save or read this, and nothing was acknowledged. Retry in a moment; the hub's /health says when storage is back";

impl StoreError {
    /// A failure of the storage itself, as opposed to a refused write.
    fn unavailable(detail: impl std::fmt::Display) -> Self {
        Self(format!("{STORAGE_REFUSAL} [{detail}]"))
    }

    /// Whether the storage itself failed (disk full, I/O error, reopening):
    /// callers may be told [`STORAGE_REFUSAL`] and retry.
    pub fn is_unavailable(&self) -> bool {
        self.0.starts_with(STORAGE_REFUSAL)
    }
}

/// Why the database file cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "{path} is not an agent-event-bus database (redb): it looks like {kind}. \
         Nothing was changed. Point AGENT_EVENT_BUS_DB (or --db) at a new file, \
         e.g. data.redb next to it"
    )]
    NotRedb { path: String, kind: String },
    #[error(
        "{path} is in use by another agent-event-bus process. Stop it first \
         (only one hub can own a database file)"
    )]
    InUse { path: String },
    #[error(
        "{path} is damaged ({detail}). The hub will not write into a damaged file. \
         Stop here and restore a copy of it from a backup (or move it aside to start \
         afresh with an empty bus); `agent-event-bus --check --db FILE` tells whether \
         a copy is sound"
    )]
    Damaged { path: String, detail: String },
    #[error("cannot open the database {path}: {detail}")]
    Other { path: String, detail: String },
}

/// Whether a write must be on disk before the caller hears back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Events, sessions, webhooks, explicit acks.
    Durable,
    /// Heartbeats, lease renewals by reads, cursor advances from reads.
    Lazy,
}

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
}

impl SessionRecord {
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// The wire shape for `list_sessions`.
    pub fn to_wire(&self, now_ms: i64) -> wire::SessionInfo {
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
    /// Whether a published event goes to this webhook (the original's rule).
    pub fn matches(&self, event: &EventRecord) -> bool {
        self.active
            && shared::channel::filter_matches(self.channel.as_deref(), &event.channel)
            && self
                .event_types
                .as_ref()
                .is_none_or(|types| types.contains(&event.event_type))
    }

    /// Whether a session lifecycle event goes to this webhook: only by opt-in.
    pub fn matches_system(&self, event: &EventRecord) -> bool {
        self.include_system && self.matches(event)
    }

    /// Whether every attempt for at least `limit_ms` has failed, so the
    /// endpoint should be disabled.
    pub fn failing_too_long(&self, now_ms: i64, limit_ms: i64) -> bool {
        self.failing_since
            .is_some_and(|since| now_ms.saturating_sub(since) >= limit_ms)
    }

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
}

impl EventQuery {
    /// Whether an event passes the filters: what the index answers, by scan.
    #[cfg(test)]
    fn accepts(&self, e: &EventRecord) -> bool {
        (self.channels.is_empty() || self.channels.contains(&e.channel))
            && (self.event_types.is_empty() || self.event_types.contains(&e.event_type))
            && self
                .correlation_id
                .as_ref()
                .is_none_or(|c| e.correlation_id.as_ref() == Some(c))
    }
}

/// Writes event `id`'s entries under each of `names`.
fn add_index_entries(
    keys: &mut Table<'_, &'static str, u64>,
    index: &mut Table<'_, (u64, u64), ()>,
    id: u64,
    names: Vec<String>,
) -> Result<()> {
    for name in names {
        index.insert((key_number(keys, &name)?, id), ())?;
    }
    Ok(())
}

/// Counts one more (or one fewer) live session holding display id `name`.
fn count_name(names: &mut Table<'_, &'static str, u64>, name: &str, up: bool) -> Result<()> {
    let n = names.get(name)?.map_or(0, |v| v.value());
    let n = if up { n + 1 } else { n.saturating_sub(1) };
    if n == 0 {
        names.remove(name)?;
    } else {
        names.insert(name, n)?;
    }
    Ok(())
}

/// The number of index key `name`, assigned on first use.
fn key_number(keys: &mut Table<'_, &'static str, u64>, name: &str) -> Result<u64> {
    if let Some(k) = keys.get(name)? {
        return Ok(k.value());
    }
    let key = keys.len()? + 1;
    keys.insert(name, key)?;
    Ok(key)
}

fn client_key(machine: &str, client_id: &str) -> String {
    format!("{machine}\u{1f}{client_id}")
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T> {
    Ok(serde_json::from_slice(bytes)?)
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}

// ---- reads shared by read and write transactions -------------------------

fn read_session(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<SessionRecord>> {
    match table.get(id)? {
        Some(v) => Ok(Some(decode(v.value())?)),
        None => Ok(None),
    }
}

fn read_live_sessions(
    live: &impl ReadableTable<&'static str, ()>,
    sessions: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Vec<SessionRecord>> {
    let mut out = Vec::new();
    for item in live.iter()? {
        let (id, _) = item?;
        if let Some(s) = read_session(sessions, id.value())? {
            out.push(s);
        }
    }
    Ok(out)
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
}

/// An index key's name: one namespace per filter.
fn index_name(kind: char, value: &str) -> String {
    format!("{kind}\0{value}")
}

/// The index entries an event has: its channel, its type, its correlation id.
fn index_names(channel: &str, event_type: &str, correlation_id: Option<&str>) -> Vec<String> {
    let mut out = vec![index_name('c', channel), index_name('t', event_type)];
    if let Some(c) = correlation_id {
        out.push(index_name('r', c));
    }
    out
}

/// One key's posting list walked in one direction within `lo..=hi`, with
/// the id under its head.
struct Postings<'t> {
    key: u64,
    lo: u64,
    hi: u64,
    desc: bool,
    iter: redb::Range<'t, (u64, u64), ()>,
    head: Option<u64>,
}

/// How many entries a seek steps over before it searches the tree again.
const SEEK_STEPS: usize = 8;

impl<'t> Postings<'t> {
    fn open<T: ReadableTable<(u64, u64), ()>>(
        table: &'t T,
        key: u64,
        lo: u64,
        hi: u64,
        desc: bool,
        stats: &mut EventPage,
    ) -> Result<Self> {
        let mut p = Self {
            key,
            lo,
            hi,
            desc,
            iter: table.range((key, lo)..=(key, hi))?,
            head: None,
        };
        p.advance(stats)?;
        Ok(p)
    }

    fn advance(&mut self, stats: &mut EventPage) -> Result<()> {
        let item = if self.desc {
            self.iter.next_back()
        } else {
            self.iter.next()
        };
        self.head = item.transpose()?.map(|(k, _)| k.value().1);
        if self.head.is_some() {
            stats.postings_read += 1;
        }
        Ok(())
    }

    /// Whether `id` comes before `target` in this walk's direction.
    fn before(&self, id: u64, target: u64) -> bool {
        if self.desc { id > target } else { id < target }
    }

    /// The first id at or past `target` in this walk's direction: a few
    /// steps, then a fresh search of the tree (so a long gap costs O(log n)).
    fn seek<T: ReadableTable<(u64, u64), ()>>(
        &mut self,
        table: &'t T,
        target: u64,
        stats: &mut EventPage,
    ) -> Result<Option<u64>> {
        let mut steps = 0;
        while let Some(id) = self.head
            && self.before(id, target)
        {
            if steps == SEEK_STEPS {
                let (lo, hi) = if self.desc {
                    (self.lo, target)
                } else {
                    (target, self.hi)
                };
                self.iter = table.range((self.key, lo)..=(self.key, hi))?;
                self.advance(stats)?;
                break;
            }
            self.advance(stats)?;
            steps += 1;
        }
        Ok(self.head)
    }
}

/// The ids matching every filter (each a union of keys), walked by leapfrog
/// over the posting lists: each step seeks the next id all lists share, so
/// the work follows the smallest list in range, never the history.
fn matching_ids<T: ReadableTable<(u64, u64), ()>>(
    index: &T,
    filters: &[Vec<u64>],
    lo: u64,
    hi: u64,
    desc: bool,
    limit: usize,
    stats: &mut EventPage,
) -> Result<Vec<u64>> {
    let mut lists = Vec::with_capacity(filters.len());
    for keys in filters {
        let mut union = Vec::with_capacity(keys.len());
        for &key in keys {
            union.push(Postings::open(index, key, lo, hi, desc, stats)?);
        }
        lists.push(union);
    }
    let mut out = Vec::new();
    let mut candidate = if desc { hi } else { lo };
    'search: loop {
        for union in &mut lists {
            let mut found: Option<u64> = None;
            for p in union.iter_mut() {
                if let Some(id) = p.seek(index, candidate, stats)? {
                    found = Some(match found {
                        Some(f) if desc => f.max(id),
                        Some(f) => f.min(id),
                        None => id,
                    });
                }
            }
            match found {
                None => break 'search,
                Some(id) if id != candidate => {
                    candidate = id;
                    continue 'search;
                }
                Some(_) => {}
            }
        }
        out.push(candidate);
        if out.len() >= limit {
            break;
        }
        candidate = match (desc, candidate) {
            (true, c) if c <= lo => break,
            (true, c) => c - 1,
            (false, c) if c >= hi => break,
            (false, c) => c + 1,
        };
    }
    Ok(out)
}

/// The key numbers of each filter in `q`; an unknown name matches nothing,
/// so a filter left with no key makes the answer empty.
fn query_filters(
    keys: &impl ReadableTable<&'static str, u64>,
    q: &EventQuery,
) -> Result<Vec<Vec<u64>>> {
    let mut filters = Vec::new();
    let groups: [(char, Vec<&str>); 3] = [
        ('c', q.channels.iter().map(String::as_str).collect()),
        ('t', q.event_types.iter().map(String::as_str).collect()),
        ('r', q.correlation_id.iter().map(String::as_str).collect()),
    ];
    for (kind, names) in groups {
        if names.is_empty() {
            continue;
        }
        let mut found = Vec::new();
        for name in names {
            if let Some(k) = keys.get(index_name(kind, name).as_str())? {
                found.push(k.value());
            }
        }
        found.sort_unstable();
        found.dedup();
        filters.push(found);
    }
    Ok(filters)
}

/// Events above `q.after` up to `tip`: an unfiltered read walks the events
/// themselves; a filtered one walks the index and decodes only its matches.
fn read_events(
    events: &impl ReadableTable<u64, &'static [u8]>,
    keys: &impl ReadableTable<&'static str, u64>,
    index: &impl ReadableTable<(u64, u64), ()>,
    tip: u64,
    q: &EventQuery,
) -> Result<EventPage> {
    let after = q.after.unwrap_or(0);
    let lo = after.saturating_add(1);
    let mut page = EventPage {
        through: after,
        ..EventPage::default()
    };
    if q.limit == 0 {
        return Ok(page);
    }
    if lo > tip {
        return Ok(page);
    }
    let filters = query_filters(keys, q)?;
    if filters.is_empty() {
        let range = events.range(lo..=tip)?;
        let rows: Box<dyn Iterator<Item = _>> = if q.descending {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        for item in rows.take(q.limit) {
            let (k, v) = item?;
            page.events.push(codec::decode_event(k.value(), v.value())?);
        }
    } else if filters.iter().all(|f| !f.is_empty()) {
        let ids = matching_ids(index, &filters, lo, tip, q.descending, q.limit, &mut page)?;
        for id in ids {
            if let Some(v) = events.get(id)? {
                page.events.push(codec::decode_event(id, v.value())?);
            }
        }
    }
    page.rows_read = page.events.len();
    page.through = if page.events.len() < q.limit {
        tip
    } else if q.descending {
        after
    } else {
        page.events.last().map_or(after, |e| e.id)
    };
    Ok(page)
}

fn read_webhooks(table: &impl ReadableTable<u64, &'static [u8]>) -> Result<Vec<WebhookRecord>> {
    let mut out = Vec::new();
    for item in table.iter()? {
        let (_, v) = item?;
        out.push(decode(v.value())?);
    }
    Ok(out)
}

fn read_webhook(
    table: &impl ReadableTable<u64, &'static [u8]>,
    id: u64,
) -> Result<Option<WebhookRecord>> {
    match table.get(id)? {
        Some(v) => Ok(Some(decode(v.value())?)),
        None => Ok(None),
    }
}

fn read_event(
    table: &impl ReadableTable<u64, &'static [u8]>,
    id: u64,
) -> Result<Option<EventRecord>> {
    match table.get(id)? {
        Some(v) => Ok(Some(codec::decode_event(id, v.value())?)),
        None => Ok(None),
    }
}

/// A retry-queue key: (webhook id, due ms, event id).
type RetryKey = (u64, u64, u64);

/// Every retry-queue key of one webhook, in due order, with attempts made.
fn retry_keys(
    table: &impl ReadableTable<RetryKey, u32>,
    webhook_id: u64,
) -> Result<Vec<(RetryKey, u32)>> {
    let mut out = Vec::new();
    for item in table.range((webhook_id, 0, 0)..=(webhook_id, u64::MAX, u64::MAX))? {
        let (k, v) = item?;
        out.push((k.value(), v.value()));
    }
    Ok(out)
}

fn pack_ids(ids: &[u64]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.to_le_bytes()).collect()
}

fn unpack_ids(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect()
}

/// Whether a packed id list holds `id`.
fn packed_contains(bytes: &[u8], id: u64) -> bool {
    let want = id.to_le_bytes();
    bytes.chunks_exact(8).any(|c| c == want)
}

/// Event ids whose outbox row still holds a first attempt for `webhook_id`.
fn first_events(
    table: &impl ReadableTable<u64, &'static [u8]>,
    webhook_id: u64,
) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for item in table.iter()? {
        let (k, v) = item?;
        if packed_contains(v.value(), webhook_id) {
            out.push(k.value());
        }
    }
    Ok(out)
}

/// The newest event id (0 when none): the newest row, or the pruned floor
/// when retention took every row.
fn read_tip(
    meta: &impl ReadableTable<&'static str, u64>,
    events: &impl ReadableTable<u64, &'static [u8]>,
) -> Result<u64> {
    let floor = meta
        .get(Counter::Event.key())?
        .map_or(1, |v| v.value())
        .saturating_sub(1);
    let newest = events.last()?.map_or(0, |(k, _)| k.value());
    Ok(floor.max(newest))
}

/// The newest event id in a read snapshot (0 in a file with no tables yet).
fn committed_tip(txn: &ReadTransaction) -> Result<u64> {
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    match txn.open_table(EVENTS) {
        Ok(events) => read_tip(&meta, &events),
        Err(TableError::TableDoesNotExist(_)) => Ok(meta
            .get(Counter::Event.key())?
            .map_or(1, |v| v.value())
            .saturating_sub(1)),
        Err(e) => Err(e.into()),
    }
}

/// An id counter in the meta table: it holds the next id to hand out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Event,
    Webhook,
}

impl Counter {
    fn key(self) -> &'static str {
        match self {
            Self::Event => "next_event_id",
            Self::Webhook => "next_webhook_id",
        }
    }
}

/// A read snapshot. Methods mirror [`Tx`]'s reads.
pub struct Snapshot {
    txn: ReadTransaction,
}

impl Snapshot {
    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<Option<ReadOnlyTable<K, V>>> {
        match self.txn.open_table(def) {
            Ok(t) => Ok(Some(t)),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub fn session(&self, id: &str) -> Result<Option<SessionRecord>> {
        match self.table(SESSIONS)? {
            Some(t) => read_session(&t, id),
            None => Ok(None),
        }
    }

    /// Every session that has not ended.
    pub fn live_sessions(&self) -> Result<Vec<SessionRecord>> {
        match (self.table(LIVE)?, self.table(SESSIONS)?) {
            (Some(live), Some(sessions)) => read_live_sessions(&live, &sessions),
            _ => Ok(Vec::new()),
        }
    }

    pub fn events(&self, q: &EventQuery) -> Result<Vec<EventRecord>> {
        Ok(self.event_page(q)?.events)
    }

    /// The events `q` asks for, with how far the read looked and what it cost.
    pub fn event_page(&self, q: &EventQuery) -> Result<EventPage> {
        match (
            self.table(EVENTS)?,
            self.table(EVENT_KEYS)?,
            self.table(EVENT_INDEX)?,
        ) {
            (Some(events), Some(keys), Some(index)) => {
                let tip = self.tip()?;
                read_events(&events, &keys, &index, tip, q)
            }
            _ => Ok(EventPage::default()),
        }
    }

    pub fn webhooks(&self) -> Result<Vec<WebhookRecord>> {
        match self.table(WEBHOOKS)? {
            Some(t) => read_webhooks(&t),
            None => Ok(Vec::new()),
        }
    }

    pub fn webhook(&self, id: u64) -> Result<Option<WebhookRecord>> {
        match self.table(WEBHOOKS)? {
            Some(t) => read_webhook(&t, id),
            None => Ok(None),
        }
    }

    pub fn event(&self, id: u64) -> Result<Option<EventRecord>> {
        match self.table(EVENTS)? {
            Some(t) => read_event(&t, id),
            None => Ok(None),
        }
    }

    /// Up to `max` events awaiting their first attempt to `webhook_id`, in
    /// event order from `from` (every older row is known to hold none for
    /// it), passing over those in `skip` (in flight). Also returns where the
    /// next scan may start: the oldest row still holding this webhook.
    pub fn first_deliveries(
        &self,
        webhook_id: u64,
        from: u64,
        max: usize,
        skip: &HashSet<u64>,
    ) -> Result<(Vec<u64>, u64)> {
        let mut out = Vec::new();
        let mut next_from = from;
        let Some(t) = self.table(OUTBOX)? else {
            return Ok((out, next_from));
        };
        if max == 0 {
            return Ok((out, next_from));
        }
        let mut found = false;
        for item in t.range(from..)? {
            let (k, v) = item?;
            let event_id = k.value();
            if !packed_contains(v.value(), webhook_id) {
                if !found {
                    next_from = event_id + 1;
                }
                continue;
            }
            if !found {
                found = true;
                next_from = event_id;
            }
            if !skip.contains(&event_id) {
                out.push(event_id);
                if out.len() >= max {
                    break;
                }
            }
        }
        Ok((out, next_from))
    }

    /// Up to `max` retries to `webhook_id` due at `now_ms`, the longest due
    /// first, passing over events in `skip`: (due ms, event id, attempts made).
    pub fn due_retries(
        &self,
        webhook_id: u64,
        now_ms: u64,
        max: usize,
        skip: &HashSet<u64>,
    ) -> Result<Vec<(u64, u64, u32)>> {
        let mut out = Vec::new();
        let Some(t) = self.table(OUTBOX_RETRY)? else {
            return Ok(out);
        };
        if max == 0 {
            return Ok(out);
        }
        for item in t.range((webhook_id, 0, 0)..=(webhook_id, now_ms, u64::MAX))? {
            let (k, v) = item?;
            let (_, due, event_id) = k.value();
            if !skip.contains(&event_id) {
                out.push((due, event_id, v.value()));
                if out.len() >= max {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// When the next retry to `webhook_id` after `now_ms` falls due.
    pub fn next_retry(&self, webhook_id: u64, now_ms: u64) -> Result<Option<u64>> {
        let Some(t) = self.table(OUTBOX_RETRY)? else {
            return Ok(None);
        };
        let first = t
            .range((webhook_id, now_ms.saturating_add(1), 0)..=(webhook_id, u64::MAX, u64::MAX))?
            .next();
        Ok(match first {
            Some(item) => Some(item?.0.value().1),
            None => None,
        })
    }

    /// How many deliveries to `webhook_id` are waiting (first attempt or retry).
    pub fn pending_deliveries(&self, webhook_id: u64) -> Result<usize> {
        let first = match self.table(OUTBOX)? {
            Some(t) => first_events(&t, webhook_id)?.len(),
            None => 0,
        };
        let retry = match self.table(OUTBOX_RETRY)? {
            Some(t) => retry_keys(&t, webhook_id)?.len(),
            None => 0,
        };
        Ok(first + retry)
    }

    /// The newest `limit` delivery-log rows of `webhook_id`, newest first,
    /// only those of `event_id` when given.
    pub fn delivery_log(
        &self,
        webhook_id: u64,
        limit: usize,
        event_id: Option<u64>,
    ) -> Result<Vec<AttemptRecord>> {
        let mut out = Vec::new();
        let Some(t) = self.table(DELIVERY_LOG)? else {
            return Ok(out);
        };
        for item in t.range((webhook_id, 0)..=(webhook_id, u64::MAX))?.rev() {
            if out.len() >= limit {
                break;
            }
            let (_, v) = item?;
            let row: AttemptRecord = decode(v.value())?;
            if event_id.is_none_or(|e| e == row.event_id) {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// The newest event id (0 when none).
    pub fn tip(&self) -> Result<u64> {
        match (self.table(META)?, self.table(EVENTS)?) {
            (Some(meta), Some(events)) => read_tip(&meta, &events),
            _ => Ok(0),
        }
    }

    /// The id of the newest event stamped before `micros` (events are
    /// appended in time order), scanning from the oldest.
    pub fn last_event_before(&self, micros: i64) -> Result<Option<u64>> {
        let Some(t) = self.table(EVENTS)? else {
            return Ok(None);
        };
        let mut last = None;
        for item in t.iter()? {
            let (k, v) = item?;
            let e = codec::decode_head(k.value(), v.value())?;
            if e.timestamp >= micros {
                break;
            }
            last = Some(k.value());
        }
        Ok(last)
    }

    /// Ids of leased sessions whose deadline is at or before `now_ms`.
    pub fn expired_leases(&self, now_ms: i64) -> Result<Vec<String>> {
        let Some(t) = self.table(LEASES)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let end = u64::try_from(now_ms).unwrap_or(0);
        for item in t.range(..=(end, "\u{10ffff}"))? {
            let (k, _) = item?;
            out.push(k.value().1.to_owned());
        }
        Ok(out)
    }
}

/// A write transaction in the writer thread, with domain verbs.
pub struct Tx<'t> {
    txn: &'t WriteTransaction,
    /// The newest event id appended in this batch, if any.
    appended_tip: Option<u64>,
    /// Whether this batch put deliveries in the outbox (the worker is woken
    /// after the commit).
    enqueued: bool,
    /// The webhooks, decoded once per batch for matching; cleared by any
    /// write to them.
    hooks: Option<Vec<WebhookRecord>>,
    /// Channels of the events the running job appended: their waiters are
    /// woken once the batch commits.
    appended_channels: Vec<String>,
}

impl Tx<'_> {
    fn meta(&self) -> Result<Table<'_, &'static str, u64>> {
        Ok(self.txn.open_table(META)?)
    }

    pub fn session(&self, id: &str) -> Result<Option<SessionRecord>> {
        read_session(&self.txn.open_table(SESSIONS)?, id)
    }

    /// Every session that has not ended.
    pub fn live_sessions(&self) -> Result<Vec<SessionRecord>> {
        read_live_sessions(&self.txn.open_table(LIVE)?, &self.txn.open_table(SESSIONS)?)
    }

    /// Whether a live session holds display id `name`.
    pub fn display_id_live(&self, name: &str) -> Result<bool> {
        Ok(self.txn.open_table(LIVE_NAMES)?.get(name)?.is_some())
    }

    /// How many sessions have not ended.
    pub fn live_count(&self) -> Result<u64> {
        Ok(self.txn.open_table(LIVE)?.len()?)
    }

    /// The session registered by `client_id` on `machine`, deleted or not.
    pub fn session_by_client(
        &self,
        machine: &str,
        client_id: &str,
    ) -> Result<Option<SessionRecord>> {
        let id = {
            let clients = self.txn.open_table(CLIENTS)?;
            clients
                .get(client_key(machine, client_id).as_str())?
                .map(|v| v.value().to_owned())
        };
        match id {
            Some(id) => self.session(&id),
            None => Ok(None),
        }
    }

    /// Inserts or replaces a session and keeps the client and lease indexes true.
    pub fn put_session(&mut self, record: &SessionRecord) -> Result<()> {
        let old = self.session(&record.id)?;
        {
            let mut leases = self.txn.open_table(LEASES)?;
            if let Some(deadline) = old.as_ref().and_then(|o| o.lease_deadline) {
                leases.remove((u64::try_from(deadline).unwrap_or(0), record.id.as_str()))?;
            }
            if let (Some(deadline), None) = (record.lease_deadline, record.deleted_at) {
                leases.insert(
                    (u64::try_from(deadline).unwrap_or(0), record.id.as_str()),
                    (),
                )?;
            }
        }
        let was = old
            .as_ref()
            .filter(|o| o.deleted_at.is_none())
            .map(|o| o.display_id.as_str());
        let is = record
            .deleted_at
            .is_none()
            .then_some(record.display_id.as_str());
        if was != is {
            let mut names = self.txn.open_table(LIVE_NAMES)?;
            if let Some(name) = was {
                count_name(&mut names, name, false)?;
            }
            if let Some(name) = is {
                count_name(&mut names, name, true)?;
            }
        }
        {
            let mut live = self.txn.open_table(LIVE)?;
            if record.deleted_at.is_none() {
                live.insert(record.id.as_str(), ())?;
            } else {
                live.remove(record.id.as_str())?;
            }
        }
        if let Some(client_id) = &record.client_id {
            let mut clients = self.txn.open_table(CLIENTS)?;
            clients.insert(
                client_key(&record.machine, client_id).as_str(),
                record.id.as_str(),
            )?;
        }
        let bytes = encode(record)?;
        self.txn
            .open_table(SESSIONS)?
            .insert(record.id.as_str(), bytes.as_slice())?;
        Ok(())
    }

    /// The newest event id (0 when none), including this batch's appends.
    pub fn tip(&self) -> Result<u64> {
        match self.appended_tip {
            Some(t) => Ok(t),
            None => read_tip(&self.meta()?, &self.txn.open_table(EVENTS)?),
        }
    }

    /// Appends one event; ids are gap-free because a failed batch rolls back.
    pub fn append_event(&mut self, new: NewEvent) -> Result<EventRecord> {
        let id = self.tip()? + 1;
        let record = EventRecord {
            id,
            event_type: new.event_type,
            payload: new.payload,
            session_id: new.session_id,
            timestamp: shared::time::now_micros(),
            channel: new.channel,
            correlation_id: new.correlation_id,
            signal_level: new.signal_level,
            title: new.title,
            tags: new.tags,
        };
        self.insert_event(&record)?;
        Ok(record)
    }

    /// Writes one event row under its own id with all its index entries
    /// (replacing a row of that id and its entries). Every event write
    /// goes through here, so the index never disagrees with the rows.
    pub fn insert_event(&mut self, record: &EventRecord) -> Result<()> {
        let bytes = codec::encode_event(record);
        let old = {
            let mut events = self.txn.open_table(EVENTS)?;
            let old = events.insert(record.id, bytes.as_slice())?;
            match old {
                Some(v) => Some(codec::decode_head(record.id, v.value())?),
                None => None,
            }
        };
        if let Some(old) = old {
            self.remove_index_entries(record.id, &old)?;
        }
        add_index_entries(
            &mut self.txn.open_table(EVENT_KEYS)?,
            &mut self.txn.open_table(EVENT_INDEX)?,
            record.id,
            index_names(
                &record.channel,
                &record.event_type,
                record.correlation_id.as_deref(),
            ),
        )?;
        self.appended_tip = Some(self.appended_tip.map_or(record.id, |t| t.max(record.id)));
        self.appended_channels.push(record.channel.clone());
        Ok(())
    }

    fn remove_index_entries(&mut self, id: u64, head: &codec::OwnedHead) -> Result<()> {
        let keys = self.txn.open_table(EVENT_KEYS)?;
        let mut index = self.txn.open_table(EVENT_INDEX)?;
        for name in index_names(
            &head.channel,
            &head.event_type,
            head.correlation_id.as_deref(),
        ) {
            if let Some(key) = keys.get(name.as_str())?.map(|k| k.value()) {
                index.remove((key, id))?;
            }
        }
        Ok(())
    }

    /// The next id `counter` will hand out.
    pub fn counter(&self, counter: Counter) -> Result<u64> {
        Ok(self.meta()?.get(counter.key())?.map_or(1, |v| v.value()))
    }

    /// Makes sure `counter` never hands out `used` or anything below it.
    pub fn bump_counter(&mut self, counter: Counter, used: u64) -> Result<()> {
        if used >= self.counter(counter)? {
            self.meta()?.insert(counter.key(), used.saturating_add(1))?;
        }
        Ok(())
    }

    pub fn webhooks(&self) -> Result<Vec<WebhookRecord>> {
        read_webhooks(&self.txn.open_table(WEBHOOKS)?)
    }

    /// The webhooks as of now, decoded once per batch (a publish matches
    /// every event against them).
    fn cached_webhooks(&mut self) -> Result<&[WebhookRecord]> {
        if self.hooks.is_none() {
            self.hooks = Some(self.webhooks()?);
        }
        Ok(self.hooks.as_deref().unwrap_or_default())
    }

    /// Deletes up to `max` of the oldest events with ids up to `through`;
    /// returns how many went. Ids are never reused.
    pub fn prune_events(&mut self, through: u64, max: usize) -> Result<usize> {
        let tip = self.tip()?;
        let doomed: Vec<(u64, codec::OwnedHead)> = {
            let events = self.txn.open_table(EVENTS)?;
            let mut out = Vec::new();
            for item in events.range(..=through)?.take(max) {
                let (k, v) = item?;
                out.push((k.value(), codec::decode_head(k.value(), v.value())?));
            }
            out
        };
        for (id, head) in &doomed {
            self.txn.open_table(EVENTS)?.remove(*id)?;
            self.remove_index_entries(*id, head)?;
        }
        // The next id stays past every id handed out, even with no row left.
        let mut meta = self.meta()?;
        if meta.get("next_event_id")?.map_or(0, |v| v.value()) <= tip {
            meta.insert("next_event_id", tip + 1)?;
        }
        Ok(doomed.len())
    }

    pub fn webhook(&self, id: u64) -> Result<Option<WebhookRecord>> {
        read_webhook(&self.txn.open_table(WEBHOOKS)?, id)
    }

    /// Assigns the next webhook id.
    pub fn next_webhook_id(&mut self) -> Result<u64> {
        let id = self.counter(Counter::Webhook)?;
        self.bump_counter(Counter::Webhook, id)?;
        Ok(id)
    }

    /// Inserts or replaces a webhook under its id, and moves the webhook
    /// counter past it: the one place a webhook is written.
    pub fn put_webhook(&mut self, record: &WebhookRecord) -> Result<()> {
        self.hooks = None;
        let bytes = encode(record)?;
        self.txn
            .open_table(WEBHOOKS)?
            .insert(record.id, bytes.as_slice())?;
        self.bump_counter(Counter::Webhook, record.id)
    }

    /// Deletes a webhook with its pending deliveries and its delivery log.
    pub fn delete_webhook(&mut self, id: u64) -> Result<bool> {
        self.hooks = None;
        let txn = self.txn;
        let existed = txn.open_table(WEBHOOKS)?.remove(id)?.is_some();
        drop_first_attempts(txn, id)?;
        let mut retry = txn.open_table(OUTBOX_RETRY)?;
        for (key, _) in retry_keys(&retry, id)? {
            retry.remove(key)?;
        }
        let mut log = txn.open_table(DELIVERY_LOG)?;
        let seqs: Vec<u64> = log
            .range((id, 0)..=(id, u64::MAX))?
            .map(|item| item.map(|(k, _)| k.value().1))
            .collect::<std::result::Result<_, _>>()?;
        for seq in seqs {
            log.remove((id, seq))?;
        }
        txn.open_table(DELIVERY_LOG_LEN)?.remove(id)?;
        Ok(existed)
    }

    pub fn event(&self, id: u64) -> Result<Option<EventRecord>> {
        read_event(&self.txn.open_table(EVENTS)?, id)
    }

    /// Puts a published event in the first-attempt queue of every webhook
    /// it matches; returns how many. The delivery worker is woken once this
    /// batch commits.
    pub fn enqueue_deliveries(&mut self, event: &EventRecord) -> Result<usize> {
        let hooks: Vec<u64> = self
            .cached_webhooks()?
            .iter()
            .filter(|h| h.matches(event))
            .map(|h| h.id)
            .collect();
        self.queue_first_attempts(event.id, &hooks)?;
        Ok(hooks.len())
    }

    /// Appends a session lifecycle event and enqueues it for the webhooks
    /// that opted in to those (`include_system`).
    pub fn append_system_event(&mut self, new: NewEvent) -> Result<EventRecord> {
        let event = self.append_event(new)?;
        let hooks: Vec<u64> = self
            .cached_webhooks()?
            .iter()
            .filter(|h| h.matches_system(&event))
            .map(|h| h.id)
            .collect();
        self.queue_first_attempts(event.id, &hooks)?;
        Ok(event)
    }

    fn queue_first_attempts(&mut self, event_id: u64, webhook_ids: &[u64]) -> Result<()> {
        if webhook_ids.is_empty() {
            return Ok(());
        }
        let mut outbox = self.txn.open_table(OUTBOX)?;
        let mut ids = match outbox.get(event_id)? {
            Some(v) => unpack_ids(v.value()),
            None => Vec::new(),
        };
        for id in webhook_ids {
            if !ids.contains(id) {
                ids.push(*id);
            }
        }
        outbox.insert(event_id, pack_ids(&ids).as_slice())?;
        self.enqueued = true;
        Ok(())
    }

    /// Queues one event for one webhook again: a retry due now with no
    /// attempts made, replacing a pending retry of it (a first attempt
    /// still waiting is left as it is).
    pub fn redeliver(&mut self, webhook_id: u64, event_id: u64, now_ms: i64) -> Result<()> {
        let waiting = match self.txn.open_table(OUTBOX)?.get(event_id)? {
            Some(v) => packed_contains(v.value(), webhook_id),
            None => false,
        };
        if waiting {
            return Ok(());
        }
        let mut retry = self.txn.open_table(OUTBOX_RETRY)?;
        for (key, _) in retry_keys(&retry, webhook_id)? {
            if key.2 == event_id {
                retry.remove(key)?;
            }
        }
        retry.insert(
            (webhook_id, u64::try_from(now_ms).unwrap_or(0), event_id),
            0,
        )?;
        self.enqueued = true;
        Ok(())
    }

    /// Records one attempt: its log row, the delivery's next step, and the
    /// webhook's health. A 410, or every attempt failing for
    /// `disable_after_ms`, disables the webhook and ends its other pending
    /// deliveries. An attempt whose webhook was deleted meanwhile leaves no trace.
    pub fn record_attempt(
        &mut self,
        due: &DueDelivery,
        result: AttemptResult,
        disable_after_ms: i64,
    ) -> Result<()> {
        let (webhook_id, event_id) = (due.webhook_id, due.event_id);
        match due.queued {
            Queued::First => {
                let mut outbox = self.txn.open_table(OUTBOX)?;
                let rest = match outbox.get(event_id)? {
                    Some(v) => {
                        let mut ids = unpack_ids(v.value());
                        ids.retain(|id| *id != webhook_id);
                        Some(ids)
                    }
                    None => None,
                };
                match rest {
                    Some(ids) if ids.is_empty() => {
                        outbox.remove(event_id)?;
                    }
                    Some(ids) => {
                        outbox.insert(event_id, pack_ids(&ids).as_slice())?;
                    }
                    None => {}
                }
            }
            Queued::Retry { due_ms } => {
                self.txn
                    .open_table(OUTBOX_RETRY)?
                    .remove((webhook_id, due_ms, event_id))?;
            }
        }
        let Some(mut hook) = self
            .cached_webhooks()?
            .iter()
            .find(|h| h.id == webhook_id)
            .cloned()
        else {
            return Ok(());
        };
        let at = result.at_ms;
        let mut changed = false;
        let mut disable = None;
        if result.verdict == Verdict::Delivered {
            changed = hook.failing_since.take().is_some();
        } else {
            if result.verdict == Verdict::Gone {
                disable = Some("the endpoint answered 410 Gone".to_owned());
            } else if hook.failing_too_long(at, disable_after_ms) {
                disable = Some(format!(
                    "every attempt failed for {} (since {})",
                    crate::config::format_span(disable_after_ms),
                    shared::time::format_ms(hook.failing_since.unwrap_or(at))
                ));
            }
            if hook.failing_since.is_none() {
                hook.failing_since = Some(at);
                changed = true;
            }
        }
        let disable = disable.filter(|_| hook.active);
        let (status, next_attempt_ms) = match result.verdict {
            Verdict::Delivered => (AttemptStatus::Delivered, None),
            Verdict::RetryAt(when) if hook.active && disable.is_none() => {
                self.txn.open_table(OUTBOX_RETRY)?.insert(
                    (webhook_id, u64::try_from(when).unwrap_or(0), event_id),
                    due.attempt,
                )?;
                (AttemptStatus::Retrying, Some(when))
            }
            _ => (AttemptStatus::Failed, None),
        };
        self.log_attempt(
            webhook_id,
            &AttemptRecord {
                event_id,
                delivery_id: delivery_id(event_id, webhook_id),
                attempt: due.attempt,
                status,
                at_ms: at,
                status_code: result.status_code,
                latency_ms: result.latency_ms,
                error: result.error,
                next_attempt_ms,
            },
        )?;
        if let Some(reason) = disable {
            tracing::warn!(webhook_id, reason = %reason, "webhook disabled");
            hook.active = false;
            hook.disabled_at = Some(at);
            let why = format!("webhook disabled: {reason}");
            hook.disabled_reason = Some(reason);
            self.put_webhook(&hook)?;
            self.end_pending_deliveries(webhook_id, &why, at)?;
        } else if changed {
            self.put_webhook(&hook)?;
        }
        Ok(())
    }

    /// Ends every pending delivery to `webhook_id` as failed, with `why` in
    /// its log row (attempt = attempts made); returns how many ended.
    pub fn end_pending_deliveries(
        &mut self,
        webhook_id: u64,
        why: &str,
        now_ms: i64,
    ) -> Result<usize> {
        let txn = self.txn;
        let mut ended: Vec<(u64, u32)> = Vec::new();
        {
            for event_id in drop_first_attempts(txn, webhook_id)? {
                ended.push((event_id, 0));
            }
            let mut retry = txn.open_table(OUTBOX_RETRY)?;
            for (key, attempts) in retry_keys(&retry, webhook_id)? {
                retry.remove(key)?;
                ended.push((key.2, attempts));
            }
        }
        ended.sort_unstable();
        for &(event_id, attempts) in &ended {
            self.log_attempt(
                webhook_id,
                &AttemptRecord {
                    event_id,
                    delivery_id: delivery_id(event_id, webhook_id),
                    attempt: attempts,
                    status: AttemptStatus::Failed,
                    at_ms: now_ms,
                    status_code: None,
                    latency_ms: None,
                    error: Some(why.to_owned()),
                    next_attempt_ms: None,
                },
            )?;
        }
        Ok(ended.len())
    }

    /// Appends a delivery-log row, dropping the webhook's oldest beyond
    /// [`DELIVERY_LOG_KEEP`].
    pub fn log_attempt(&mut self, webhook_id: u64, record: &AttemptRecord) -> Result<()> {
        let seq = {
            let mut meta = self.meta()?;
            let seq = meta.get("next_delivery_log_id")?.map_or(1, |v| v.value());
            meta.insert("next_delivery_log_id", seq + 1)?;
            seq
        };
        let bytes = encode(record)?;
        let mut log = self.txn.open_table(DELIVERY_LOG)?;
        log.insert((webhook_id, seq), bytes.as_slice())?;
        let mut lens = self.txn.open_table(DELIVERY_LOG_LEN)?;
        let mut len = lens.get(webhook_id)?.map_or(0, |v| v.value()) + 1;
        if len > DELIVERY_LOG_KEEP {
            let oldest = log
                .range((webhook_id, 0)..=(webhook_id, u64::MAX))?
                .next()
                .transpose()?
                .map(|(k, _)| k.value());
            if let Some(key) = oldest {
                log.remove(key)?;
                len -= 1;
            }
        }
        lens.insert(webhook_id, len)?;
        Ok(())
    }
}

/// Takes `webhook_id` out of every outbox row; returns the events it was
/// waiting in. Scans the whole outbox: for the rare pause, disable, delete.
fn drop_first_attempts(txn: &WriteTransaction, webhook_id: u64) -> Result<Vec<u64>> {
    let mut outbox = txn.open_table(OUTBOX)?;
    let events = first_events(&outbox, webhook_id)?;
    for &event_id in &events {
        let rest: Vec<u64> = match outbox.get(event_id)? {
            Some(v) => unpack_ids(v.value())
                .into_iter()
                .filter(|id| *id != webhook_id)
                .collect(),
            None => continue,
        };
        if rest.is_empty() {
            outbox.remove(event_id)?;
        } else {
            outbox.insert(event_id, pack_ids(&rest).as_slice())?;
        }
    }
    Ok(events)
}

type Completion = Box<dyn FnOnce(Result<()>) + Send>;
/// A job runs in the batch's transaction and returns its completion, and
/// whether it succeeded: one failed job rolls the whole batch back, so no
/// half-done write is ever committed.
type JobFn = Box<dyn FnOnce(&mut Tx<'_>) -> (Completion, bool) + Send>;

struct Job {
    durability: Durability,
    run: JobFn,
}

/// The open database, shared by the readers and the writer thread, which
/// swaps it to reopen the file after a failed commit. Readers hold it only
/// while they begin a snapshot, so the old handle can be closed.
struct Shared {
    db: RwLock<Option<Arc<Database>>>,
    /// Why writes fail, from a failed commit until one succeeds again.
    fault: Mutex<Option<String>>,
}

impl Shared {
    fn begin_read(&self) -> Result<ReadTransaction> {
        let db = self
            .db
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| StoreError::unavailable("the database is being reopened"))?;
        db.begin_read().map_err(StoreError::unavailable)
    }

    fn set_fault(&self, fault: Option<String>) {
        *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = fault;
    }

    /// Records a failure of the storage; returns what its callers are told.
    fn fail(&self, detail: impl std::fmt::Display) -> StoreError {
        self.set_fault(Some(detail.to_string()));
        StoreError::unavailable(detail)
    }
}

/// The database handle: cheap to clone.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Job>,
    tip: watch::Receiver<u64>,
    /// Notified after each commit that put deliveries in the outbox.
    outbox: Arc<Notify>,
    writer: Arc<std::sync::Mutex<Option<thread::JoinHandle<()>>>>,
    path: PathBuf,
    channel_waiters: Arc<ChannelWaiters>,
}

/// Long-polls waiting for events on particular channels, woken only by a
/// commit that appended an event on one of them (a bus with thousands of
/// quiet waiters does no work for them on every publish).
#[derive(Default)]
struct ChannelWaiters {
    by_channel: Mutex<HashMap<String, HashMap<u64, Arc<Notify>>>>,
    next: AtomicU64,
}

impl ChannelWaiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<u64, Arc<Notify>>>> {
        // A poisoned lock only means a panic elsewhere; the map is plain data.
        self.by_channel.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake<'a>(&self, channels: impl IntoIterator<Item = &'a String>) {
        let map = self.lock();
        if map.is_empty() {
            return;
        }
        for channel in channels {
            for notify in map.get(channel).into_iter().flat_map(HashMap::values) {
                notify.notify_one();
            }
        }
    }
}

/// One long-poll's interest in some channels; dropping it ends the interest.
pub struct ChannelWait {
    waiters: Arc<ChannelWaiters>,
    id: u64,
    channels: Vec<String>,
    notify: Arc<Notify>,
}

impl ChannelWait {
    /// Resolves once an event on one of the channels has committed since
    /// this wait was made or last resolved (a wake-up is never lost).
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

impl Drop for ChannelWait {
    fn drop(&mut self) {
        let mut map = self.waiters.lock();
        for channel in &self.channels {
            if let Some(waiting) = map.get_mut(channel) {
                waiting.remove(&self.id);
                if waiting.is_empty() {
                    map.remove(channel);
                }
            }
        }
    }
}

impl Store {
    /// Opens (or creates) the database at `path`, refusing files that are
    /// not redb databases, and starts the writer thread.
    pub fn open(path: &Path) -> std::result::Result<Self, OpenError> {
        Self::open_with_cache(path, CACHE_BYTES)
    }

    /// [`Store::open`] with a page cache of `cache_bytes` (a bulk load
    /// that writes each page once needs little).
    pub fn open_with_cache(
        path: &Path,
        cache_bytes: usize,
    ) -> std::result::Result<Self, OpenError> {
        let display = path.display().to_string();
        check_is_redb(path)?;
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| OpenError::Other {
                path: display.clone(),
                detail: format!("cannot create its directory: {e}"),
            })?;
        }
        let db = open_database(path, true, cache_bytes)?;
        let tip = init_tables(&db).map_err(|e| OpenError::Other {
            path: display.clone(),
            detail: e.0,
        })?;
        build_event_index(&db).map_err(|e| OpenError::Other {
            path: display.clone(),
            detail: format!("building the event index: {}", e.0),
        })?;
        let shared = Arc::new(Shared {
            db: RwLock::new(Some(Arc::new(db))),
            fault: Mutex::new(None),
        });
        let (tip_tx, tip_rx) = watch::channel(tip);
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let writer = Writer {
            shared: shared.clone(),
            path: path.to_owned(),
            tip: tip_tx,
            outbox: Arc::new(Notify::new()),
        };
        let outbox = writer.outbox.clone();
        let handle = thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(&jobs_rx))
            .map_err(|e| OpenError::Other {
                path: display.clone(),
                detail: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(Self {
            shared,
            jobs: jobs_tx,
            tip: tip_rx,
            outbox,
            writer: Arc::new(std::sync::Mutex::new(Some(handle))),
            path: path.to_owned(),
            channel_waiters: Arc::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks the file at `path` as [`Store::open`] does, without serving:
    /// returns the newest event id when it is sound.
    pub fn check(path: &Path) -> std::result::Result<u64, OpenError> {
        let display = path.display().to_string();
        if !path.exists() {
            return Err(OpenError::Other {
                path: display,
                detail: "no such file".into(),
            });
        }
        check_is_redb(path)?;
        let db = open_database(path, true, CACHE_BYTES)?;
        let other = |e: StoreError| OpenError::Other {
            path: display.clone(),
            detail: e.0,
        };
        let txn = db.begin_read().map_err(|e| other(e.into()))?;
        committed_tip(&txn).map_err(other)
    }

    /// Runs `f` in the writer's next batch; resolves after that batch commits
    /// (after its fsync when `durability` is [`Durability::Durable`]).
    pub async fn write<R, F>(&self, durability: Durability, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<R>>();
        let waiters = self.channel_waiters.clone();
        let run: JobFn = Box::new(move |t: &mut Tx<'_>| {
            let outcome = f(t);
            let ok = outcome.is_ok();
            let appended = std::mem::take(&mut t.appended_channels);
            let done: Completion = Box::new(move |commit: Result<()>| {
                if commit.is_ok() && ok {
                    waiters.wake(&appended);
                }
                let _ = tx.send(outcome.and_then(|r| commit.map(|()| r)));
            });
            (done, ok)
        });
        self.jobs
            .send(Job { durability, run })
            .map_err(|_| StoreError("the store is closed".into()))?;
        rx.await.unwrap_or_else(|_| {
            // The writer dropped the job: the storage failed, or it stopped.
            Err(match self.storage_fault() {
                Some(fault) => StoreError::unavailable(fault),
                None => StoreError("the writer stopped".into()),
            })
        })
    }

    /// Runs `f` on a blocking thread against a fresh snapshot. A read that
    /// meets a damaged record fails with an error, never a panic.
    pub async fn read<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Snapshot) -> Result<R> + Send + 'static,
    {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let snapshot = Snapshot {
                txn: shared.begin_read()?,
            };
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&snapshot))).unwrap_or_else(
                |_| {
                    tracing::error!("a read panicked: the database file may be damaged");
                    Err(StoreError("a read met a damaged record".into()))
                },
            )
        })
        .await
        .map_err(|e| StoreError(format!("read task failed: {e}")))?
    }

    /// Why writes are failing (a full disk, an I/O error), from a failed
    /// commit until a write succeeds again; `None` while storage is fine.
    pub fn storage_fault(&self) -> Option<String> {
        self.shared
            .fault
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Interest in events on `channels`: [`ChannelWait::changed`] resolves
    /// after a commit that appended one on any of them.
    pub fn wait_channels(&self, channels: &[String]) -> ChannelWait {
        let id = self.channel_waiters.next.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        let mut channels = channels.to_vec();
        channels.sort_unstable();
        channels.dedup();
        {
            let mut map = self.channel_waiters.lock();
            for channel in &channels {
                map.entry(channel.clone())
                    .or_default()
                    .insert(id, notify.clone());
            }
        }
        ChannelWait {
            waiters: self.channel_waiters.clone(),
            id,
            channels,
            notify,
        }
    }

    /// A receiver of the newest committed event id; it changes after each
    /// commit that appended events.
    pub fn tip(&self) -> watch::Receiver<u64> {
        self.tip.clone()
    }

    /// Notified after every commit that put deliveries in the outbox (a
    /// permit is stored when nobody waits, so no wake-up is lost).
    pub fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox.clone()
    }

    /// Flushes lazy writes and stops the writer. Later writes fail.
    pub fn close(&self) {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        // A durable no-op makes every lazy write before it durable.
        let _ = self.jobs.send(Job {
            durability: Durability::Durable,
            run: Box::new(move |_| {
                let done: Completion = Box::new(move |_| {
                    let _ = tx.send(());
                });
                (done, true)
            }),
        });
        let _ = rx.recv_timeout(Duration::from_secs(10));
    }

    /// Waits for the writer thread to finish once every handle is dropped.
    pub fn join_writer(self) {
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(self);
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// What an existing database file holds, read without changing a byte of
/// it. While this lives, no hub can open the file for writing.
pub struct Existing {
    _db: Option<redb::ReadOnlyDatabase>,
    pub events: u64,
    pub sessions: u64,
    pub webhooks: u64,
}

impl Existing {
    pub fn is_empty(&self) -> bool {
        self.events == 0 && self.sessions == 0 && self.webhooks == 0
    }
}

/// Counts what the database at `path` holds (a missing or empty file holds
/// nothing), refusing a file another process has open ([`OpenError::InUse`])
/// or one that is not a redb database.
pub fn inspect(path: &Path) -> std::result::Result<Existing, OpenError> {
    let display = path.display().to_string();
    let nothing = Existing {
        _db: None,
        events: 0,
        sessions: 0,
        webhooks: 0,
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(nothing),
        Ok(m) if m.len() == 0 => return Ok(nothing),
        _ => {}
    }
    check_is_redb(path)?;
    let other = |detail: String| OpenError::Other {
        path: display.clone(),
        detail,
    };
    let db = redb::ReadOnlyDatabase::open(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse {
            path: display.clone(),
        },
        e => other(e.to_string()),
    })?;
    let count = |def| -> Result<u64> {
        let txn = db.begin_read()?;
        match txn.open_table(def) {
            Ok(t) => Ok(t.len()?),
            Err(TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(e.into()),
        }
    };
    let events = count(EVENTS).map_err(|e| other(e.0))?;
    let webhooks = count(WEBHOOKS).map_err(|e| other(e.0))?;
    let sessions = {
        let txn = db.begin_read().map_err(|e| other(e.to_string()))?;
        match txn.open_table(SESSIONS) {
            Ok(t) => t.len().map_err(|e| other(e.to_string()))?,
            Err(TableError::TableDoesNotExist(_)) => 0,
            Err(e) => return Err(other(e.to_string())),
        }
    };
    Ok(Existing {
        _db: Some(db),
        events,
        sessions,
        webhooks,
    })
}

/// Opens the redb file, checking every page of it first when `check`
/// (at start): a damaged file is refused rather than trusted, where a plain
/// open may panic on it.
fn open_database(
    path: &Path,
    check: bool,
    cache_bytes: usize,
) -> std::result::Result<Database, OpenError> {
    let display = path.display().to_string();
    Database::builder()
        .set_cache_size(cache_bytes)
        .set_check_integrity_on_open(check)
        .create(path)
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse { path: display },
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
                OpenError::Damaged {
                    path: display,
                    detail,
                }
            }
            other => OpenError::Other {
                path: display,
                detail: other.to_string(),
            },
        })
}

/// Refuses a non-empty file that does not start with redb's magic number.
fn check_is_redb(path: &Path) -> std::result::Result<(), OpenError> {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return Ok(()); // missing: will be created
    };
    let mut head = [0u8; 16];
    let n = file.read(&mut head).unwrap_or(0);
    if n == 0 {
        return Ok(());
    }
    const REDB_MAGIC: &[u8] = b"redb\x1a\x0a\xa9\x0d\x0a";
    if n >= REDB_MAGIC.len() && &head[..REDB_MAGIC.len()] == REDB_MAGIC {
        return Ok(());
    }
    let kind = if head.starts_with(b"SQLite format 3") {
        format!(
            "a SQLite database (the original Python hub's data.db; `agent-event-bus import {}` \
             brings its data into a new store)",
            path.display()
        )
    } else {
        "some other file".to_owned()
    };
    Err(OpenError::NotRedb {
        path: path.display().to_string(),
        kind,
    })
}

/// Creates every table, records the schema version, and returns the tip.
fn init_tables(db: &Database) -> Result<u64> {
    let txn = db.begin_write()?;
    let tip;
    {
        let mut meta = txn.open_table(META)?;
        let version = meta.get("schema_version")?.map(|v| v.value());
        match version {
            None => {
                meta.insert("schema_version", SCHEMA_VERSION)?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError(format!(
                    "the database has schema version {v}, newer than this hub's {SCHEMA_VERSION}; upgrade agent-event-bus"
                )));
            }
            Some(_) => {}
        }
        tip = read_tip(&meta, &txn.open_table(EVENTS)?)?;
        txn.open_table(EVENT_KEYS)?;
        txn.open_table(EVENT_INDEX)?;
        txn.open_table(SESSIONS)?;
        txn.open_table(CLIENTS)?;
        rebuild_live_index(&txn)?;
        rebuild_live_names(&txn)?;
        txn.open_table(LEASES)?;
        txn.open_table(WEBHOOKS)?;
        txn.open_table(OUTBOX)?;
        txn.open_table(OUTBOX_RETRY)?;
        txn.open_table(DELIVERY_LOG)?;
        txn.open_table(DELIVERY_LOG_LEN)?;
        claims::init(&txn)?;
        receipts::init(&txn)?;
    }
    txn.commit()?;
    Ok(tip)
}

/// Fills the live-session index from the sessions table when it is empty
/// (a database from before the index existed); a no-op otherwise.
/// Fills the live display-id counts from the live-session index when they
/// are empty (a database from before the counts existed); a no-op otherwise.
fn rebuild_live_names(txn: &WriteTransaction) -> Result<()> {
    let mut names = txn.open_table(LIVE_NAMES)?;
    if !names.is_empty()? {
        return Ok(());
    }
    let live = txn.open_table(LIVE)?;
    let sessions = txn.open_table(SESSIONS)?;
    for s in read_live_sessions(&live, &sessions)? {
        count_name(&mut names, &s.display_id, true)?;
    }
    Ok(())
}

fn rebuild_live_index(txn: &WriteTransaction) -> Result<()> {
    let mut live = txn.open_table(LIVE)?;
    if !live.is_empty()? {
        return Ok(());
    }
    let sessions = txn.open_table(SESSIONS)?;
    for item in sessions.iter()? {
        let (id, v) = item?;
        let s: SessionRecord = decode(v.value())?;
        if !s.is_deleted() {
            live.insert(id.value(), ())?;
        }
    }
    Ok(())
}

/// Events indexed per transaction while an older store's index is built.
const INDEX_BUILD_BATCH: usize = 50_000;

/// Gives a store from before the event index (schema version 1) its index,
/// once: every row is read in id order and its entries written, in batches
/// that each commit, with a progress line per batch. Rows keep their ids and
/// their bytes. A build cut short resumes where it stopped
/// (`index_built_through`); the version is raised only when it is complete.
fn build_event_index(db: &Database) -> Result<()> {
    let (version, mut done, total) = {
        let txn = db.begin_read()?;
        let meta = txn.open_table(META)?;
        let events = txn.open_table(EVENTS)?;
        (
            meta.get("schema_version")?
                .map_or(SCHEMA_VERSION, |v| v.value()),
            meta.get("index_built_through")?.map_or(0, |v| v.value()),
            events.len()?,
        )
    };
    if version >= 2 {
        return Ok(());
    }
    tracing::info!(
        events = total,
        "building the event index of a store from an older version (one time)"
    );
    let started = Instant::now();
    let mut indexed = 0u64;
    loop {
        let txn = db.begin_write()?;
        let mut last = None;
        let mut n = 0;
        {
            let events = txn.open_table(EVENTS)?;
            let mut keys = txn.open_table(EVENT_KEYS)?;
            let mut index = txn.open_table(EVENT_INDEX)?;
            for item in events
                .range(done.saturating_add(1)..)?
                .take(INDEX_BUILD_BATCH)
            {
                let (k, v) = item?;
                let id = k.value();
                let head = codec::decode_head(id, v.value())?;
                add_index_entries(
                    &mut keys,
                    &mut index,
                    id,
                    index_names(
                        &head.channel,
                        &head.event_type,
                        head.correlation_id.as_deref(),
                    ),
                )?;
                last = Some(id);
                n += 1;
            }
            let mut meta = txn.open_table(META)?;
            match last {
                Some(id) => {
                    meta.insert("index_built_through", id)?;
                }
                None => {
                    meta.remove("index_built_through")?;
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
            }
        }
        txn.commit()?;
        let Some(id) = last else { break };
        done = id;
        indexed += n;
        tracing::info!(
            indexed,
            of = total,
            "event index: {}%",
            (indexed * 100).checked_div(total).unwrap_or(100)
        );
    }
    tracing::info!(
        events = indexed,
        seconds = started.elapsed().as_secs_f64(),
        "event index built"
    );
    Ok(())
}

/// The writer thread's state: the one place that commits and reopens.
struct Writer {
    shared: Arc<Shared>,
    path: PathBuf,
    tip: watch::Sender<u64>,
    /// Notified after each commit that put deliveries in the outbox.
    outbox: Arc<Notify>,
}

impl Writer {
    fn run(&self, jobs: &mpsc::Receiver<Job>) {
        let mut dirty = false;
        let mut last_durable = Instant::now();
        loop {
            let first = match jobs.recv_timeout(FLUSH_INTERVAL) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if dirty {
                        match self.commit(Vec::new(), true) {
                            Ok(_) => {
                                dirty = false;
                                last_durable = Instant::now();
                            }
                            Err(e) => {
                                // Reopened: the unsynced writes are gone.
                                dirty &= !e.is_unavailable();
                                tracing::error!(error = %e, "flushing lazy writes failed");
                            }
                        }
                    } else if self.current().is_none() {
                        self.reopen();
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let durable = batch.iter().any(|j| j.durability == Durability::Durable)
                || (dirty && last_durable.elapsed() >= FLUSH_INTERVAL);
            let mut reopened = false;
            match self.commit(batch, durable) {
                Ok(done) => {
                    if let Some(new_tip) = done.tip {
                        self.publish_tip(new_tip);
                    }
                    if done.enqueued {
                        self.outbox.notify_one();
                    }
                }
                Err(e) => {
                    // After a reopen, unsynced lazy writes are gone: nothing to flush.
                    reopened = e.is_unavailable();
                    tracing::error!(error = %e, "a write batch failed; its callers were told");
                }
            }
            if durable || reopened {
                dirty = false;
                last_durable = Instant::now();
            } else {
                dirty = true;
            }
        }
        if dirty && let Err(e) = self.commit(Vec::new(), true) {
            tracing::error!(error = %e, "final flush failed");
        }
    }

    fn current(&self) -> Option<Arc<Database>> {
        self.shared
            .db
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn publish_tip(&self, new_tip: u64) {
        self.tip.send_if_modified(|t| {
            let changed = *t != new_tip;
            *t = new_tip;
            changed
        });
    }

    /// Commits `batch` on the open database; after a failure of the storage
    /// itself, records the fault and reopens the file. Every job hears the
    /// outcome.
    fn commit(&self, batch: Vec<Job>, durable: bool) -> Result<Committed> {
        // Only a batch that wrote something proves storage is back.
        let writes = !batch.is_empty();
        let Some(db) = self.current().or_else(|| self.reopen()) else {
            // The fault is recorded; dropping the jobs drops their reply
            // channels, and their callers are told it.
            drop(batch);
            return Err(StoreError::unavailable("the database is not open"));
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            commit_batch(&db, &self.shared, batch, durable)
        }))
        .unwrap_or_else(|_| Err(self.shared.fail("a commit panicked")));
        drop(db);
        match &outcome {
            Ok(_) if writes => self.shared.set_fault(None),
            Ok(_) => {}
            Err(e) if e.is_unavailable() => {
                tracing::error!(error = %e, "storage failed; reopening the database");
                self.reopen();
            }
            Err(_) => {}
        }
        outcome
    }

    /// Closes the current handle (redb refuses everything after an I/O
    /// error) and opens the file again. Returns the new handle.
    fn reopen(&self) -> Option<Arc<Database>> {
        let old = self
            .shared
            .db
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut old) = old {
            // Readers hold a handle only while they begin a snapshot.
            let waited = Instant::now();
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        if let Err(e) = db.close() {
                            tracing::warn!(error = %e, "closing the failed database handle");
                        }
                        break;
                    }
                    Err(still) if waited.elapsed() < Duration::from_secs(5) => {
                        old = still;
                        thread::sleep(Duration::from_millis(1));
                    }
                    Err(_) => break, // closes with its last reader; retried later
                }
            }
        }
        match open_database(&self.path, false, CACHE_BYTES) {
            Ok(db) => {
                let db = Arc::new(db);
                match db
                    .begin_read()
                    .map_err(StoreError::from)
                    .and_then(|txn| committed_tip(&txn))
                {
                    Ok(tip) => self.publish_tip(tip),
                    Err(e) => tracing::warn!(error = %e, "reading the tip after reopening"),
                }
                *self.shared.db.write().unwrap_or_else(|e| e.into_inner()) = Some(db.clone());
                tracing::info!("database reopened");
                Some(db)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot reopen the database; writes are refused");
                self.shared
                    .set_fault(Some(format!("cannot reopen the database: {e}")));
                None
            }
        }
    }
}

/// What a committed batch changed.
struct Committed {
    /// The new tip, when events were appended.
    tip: Option<u64>,
    /// Whether deliveries were put in the outbox.
    enqueued: bool,
}

/// Runs every job in one transaction and commits; every job hears the
/// commit's outcome.
/// A failure of the storage itself is recorded in `shared` before any
/// caller hears of it, so `/health` already tells when they do.
fn commit_batch(
    db: &Database,
    shared: &Shared,
    batch: Vec<Job>,
    durable: bool,
) -> Result<Committed> {
    let mut txn = match db.begin_write() {
        Ok(t) => t,
        Err(e) => {
            let e = shared.fail(e);
            // Dropping the jobs drops their reply channels: callers get an error.
            drop(batch);
            return Err(e);
        }
    };
    let mode = if durable {
        RedbDurability::Immediate
    } else {
        RedbDurability::None
    };
    if let Err(e) = txn.set_durability(mode) {
        tracing::error!(error = %e, "cannot set durability");
    }
    let mut completions = Vec::with_capacity(batch.len());
    let mut failed = false;
    let appended;
    let enqueued;
    {
        let mut tx = Tx {
            txn: &txn,
            appended_tip: None,
            enqueued: false,
            hooks: None,
            appended_channels: Vec::new(),
        };
        for job in batch {
            let run = job.run;
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&mut tx))) {
                Ok((done, ok)) => {
                    failed |= !ok;
                    completions.push(done);
                }
                Err(_) => {
                    // Abort the whole batch: dropping the completions tells
                    // every caller that its write did not happen.
                    tracing::error!("a write job panicked; its batch was rolled back");
                    drop(completions);
                    return Err(StoreError("a write job panicked".into()));
                }
            }
        }
        appended = tx.appended_tip;
        enqueued = tx.enqueued;
    }
    let outcome = if failed {
        // Every caller hears that its write did not happen; a retry is safe.
        drop(txn);
        Err(StoreError(
            "a write in this batch failed; the batch was rolled back".into(),
        ))
    } else {
        txn.commit().map_err(|e| shared.fail(e))
    };
    for done in completions {
        done(outcome.clone());
    }
    outcome.map(|()| Committed {
        tip: appended,
        enqueued,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_event(channel: &str) -> NewEvent {
        NewEvent {
            channel: channel.to_owned(),
            ..NewEvent::system("t", "p".into(), "s")
        }
    }

    #[tokio::test]
    async fn appends_are_gap_free_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        let store = Store::open(&path).unwrap();
        let mut handles = Vec::new();
        for i in 0..50 {
            let s = store.clone();
            handles.push(tokio::spawn(async move {
                s.write(Durability::Durable, move |t| {
                    t.append_event(new_event(&format!("c{i}")))
                })
                .await
                .unwrap()
                .id
            }));
        }
        let mut ids = Vec::new();
        for h in handles {
            ids.push(h.await.unwrap());
        }
        ids.sort_unstable();
        assert_eq!(ids, (1..=50).collect::<Vec<_>>());
        assert_eq!(*store.tip().borrow(), 50);
        store.close();
        store.join_writer();

        let store = Store::open(&path).unwrap();
        let events = store
            .read(|s| {
                s.events(&EventQuery {
                    limit: 100,
                    ..Default::default()
                })
            })
            .await
            .unwrap();
        assert_eq!(events.len(), 50);
        assert_eq!(*store.tip().borrow(), 50);
    }

    fn hook(id: u64) -> WebhookRecord {
        WebhookRecord {
            id,
            url: "http://127.0.0.1:9/x".into(),
            channel: None,
            event_types: None,
            secret: None,
            active: true,
            created_at: 0,
            include_system: false,
            failing_since: None,
            disabled_reason: None,
            disabled_at: None,
        }
    }

    /// A store with webhook 1 and `n` events queued for it.
    async fn outbox_with(n: usize) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data.redb")).unwrap();
        store
            .write(Durability::Durable, move |t| {
                t.put_webhook(&hook(1))?;
                for _ in 0..n {
                    let e = t.append_event(new_event("all"))?;
                    t.enqueue_deliveries(&e)?;
                }
                Ok(())
            })
            .await
            .unwrap();
        (dir, store)
    }

    fn first(event_id: u64) -> DueDelivery {
        DueDelivery {
            webhook_id: 1,
            event_id,
            queued: Queued::First,
            attempt: 1,
        }
    }

    fn failed_at(at_ms: i64, verdict: Verdict) -> AttemptResult {
        AttemptResult {
            at_ms,
            status_code: Some(500),
            latency_ms: Some(3),
            error: Some("answered 500".into()),
            verdict,
        }
    }

    async fn record(store: &Store, due: DueDelivery, result: AttemptResult, limit_ms: i64) {
        store
            .write(Durability::Lazy, move |t| {
                t.record_attempt(&due, result, limit_ms)
            })
            .await
            .unwrap();
    }

    const DAY: i64 = 86_400_000;

    #[tokio::test]
    async fn first_attempts_go_in_event_order_and_a_retry_waits_on_its_own() {
        let (_dir, store) = outbox_with(5).await;
        // The enqueueing commit woke the worker's signal.
        tokio::time::timeout(Duration::from_secs(5), store.outbox_signal().notified())
            .await
            .expect("the outbox signal fired");
        let none = HashSet::new();
        let (firsts, from) = store
            .read(move |s| s.first_deliveries(1, 0, 3, &HashSet::from([1])))
            .await
            .unwrap();
        assert_eq!(firsts, [2, 3, 4], "in flight ones are passed over");
        assert_eq!(from, 1, "the next scan starts at the oldest still waiting");

        let t0 = 1_000_000;
        record(
            &store,
            first(2),
            failed_at(t0, Verdict::RetryAt(t0 + 5000)),
            DAY,
        )
        .await;
        let (firsts, due_now, next, due_later, pending) = store
            .read(move |s| {
                Ok((
                    s.first_deliveries(1, 0, 10, &none)?.0,
                    s.due_retries(1, t0 as u64, 10, &none)?,
                    s.next_retry(1, t0 as u64)?,
                    s.due_retries(1, t0 as u64 + 5000, 10, &none)?,
                    s.pending_deliveries(1)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(
            firsts,
            [1, 3, 4, 5],
            "the failed one no longer holds a place"
        );
        assert!(due_now.is_empty());
        assert_eq!(next, Some(t0 as u64 + 5000));
        assert_eq!(due_later, [(t0 as u64 + 5000, 2, 1)]);
        assert_eq!(pending, 5);

        let retry = DueDelivery {
            webhook_id: 1,
            event_id: 2,
            queued: Queued::Retry {
                due_ms: t0 as u64 + 5000,
            },
            attempt: 2,
        };
        let ok = AttemptResult {
            at_ms: t0 + 5001,
            status_code: Some(200),
            latency_ms: Some(1),
            error: None,
            verdict: Verdict::Delivered,
        };
        record(&store, retry, ok, DAY).await;
        let (log, hook, pending) = store
            .read(|s| {
                Ok((
                    s.delivery_log(1, 10, Some(2))?,
                    s.webhook(1)?,
                    s.pending_deliveries(1)?,
                ))
            })
            .await
            .unwrap();
        let states: Vec<(u32, AttemptStatus)> = log.iter().map(|r| (r.attempt, r.status)).collect();
        assert_eq!(
            states,
            [(2, AttemptStatus::Delivered), (1, AttemptStatus::Retrying)],
            "newest first"
        );
        assert_eq!(log[1].next_attempt_ms, Some(t0 + 5000));
        assert_eq!(log[0].delivery_id, "evt_2_wh_1");
        assert_eq!(
            hook.unwrap().failing_since,
            None,
            "a success ends the streak"
        );
        assert_eq!(pending, 4);
    }

    #[tokio::test]
    async fn each_webhook_scans_from_its_own_oldest_waiting_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data.redb")).unwrap();
        store
            .write(Durability::Durable, |t| {
                t.put_webhook(&hook(1))?;
                t.put_webhook(&WebhookRecord {
                    channel: Some("repo:".into()),
                    ..hook(2)
                })?;
                for channel in ["all", "all", "repo:x", "all", "repo:y"] {
                    let e = t.append_event(new_event(channel))?;
                    t.enqueue_deliveries(&e)?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let none = HashSet::new();
        let (firsts, from) = store
            .read(move |s| s.first_deliveries(2, 0, 10, &none))
            .await
            .unwrap();
        assert_eq!((firsts, from), (vec![3, 5], 3));
        // Once webhook 2 has both, its next scan starts past every row.
        for event_id in [3, 5] {
            let due = DueDelivery {
                webhook_id: 2,
                ..first(event_id)
            };
            let ok = AttemptResult {
                at_ms: 1,
                status_code: Some(204),
                latency_ms: Some(1),
                error: None,
                verdict: Verdict::Delivered,
            };
            record(&store, due, ok, DAY).await;
        }
        let none = HashSet::new();
        let (again, from, one) = store
            .read(move |s| {
                let (again, from) = s.first_deliveries(2, 3, 10, &none)?;
                Ok((again, from, s.first_deliveries(1, 0, 10, &none)?.0))
            })
            .await
            .unwrap();
        assert!(again.is_empty());
        assert_eq!(from, 6);
        assert_eq!(one, [1, 2, 3, 4, 5], "webhook 1 still has all five");
        // A redelivery is a retry due at once with no attempts made.
        store
            .write(Durability::Durable, |t| t.redeliver(2, 3, 50))
            .await
            .unwrap();
        let none = HashSet::new();
        let due = store
            .read(move |s| s.due_retries(2, 50, 10, &none))
            .await
            .unwrap();
        assert_eq!(due, [(50, 3, 0)]);
    }

    #[tokio::test]
    async fn failing_for_the_limit_disables_and_ends_what_is_pending() {
        let (_dir, store) = outbox_with(3).await;
        let t0 = 1_000_000;
        record(
            &store,
            first(1),
            failed_at(t0, Verdict::RetryAt(t0 + 1000)),
            DAY,
        )
        .await;
        record(
            &store,
            first(2),
            failed_at(t0 + DAY - 1, Verdict::RetryAt(t0 + DAY)),
            DAY,
        )
        .await;
        let hook1 = store.read(|s| s.webhook(1)).await.unwrap().unwrap();
        assert!(hook1.active, "23:59:59.999 of failures is not yet a day");
        assert_eq!(hook1.failing_since, Some(t0));

        record(
            &store,
            first(3),
            failed_at(t0 + DAY, Verdict::RetryAt(t0 + DAY + 5000)),
            DAY,
        )
        .await;
        let (hook1, pending, log) = store
            .read(|s| {
                Ok((
                    s.webhook(1)?.unwrap(),
                    s.pending_deliveries(1)?,
                    s.delivery_log(1, 10, None)?,
                ))
            })
            .await
            .unwrap();
        assert!(!hook1.active);
        assert_eq!(hook1.disabled_at, Some(t0 + DAY));
        let reason = hook1.disabled_reason.clone().unwrap();
        assert!(reason.contains("1d"), "{reason}");
        let wire = hook1.to_wire();
        assert!(wire.disabled_at.is_some() && wire.failing_since.is_some());
        assert_eq!(pending, 0, "nothing waits for a disabled webhook");
        // Event 3's attempt failed for good; 1 and 2 were ended, with why.
        assert_eq!(log[0].status, AttemptStatus::Failed);
        let ended: Vec<u64> = log
            .iter()
            .filter(|r| {
                r.error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("webhook disabled"))
            })
            .map(|r| r.event_id)
            .collect();
        assert_eq!(ended, [2, 1]);
        assert!(log[0].next_attempt_ms.is_none());
    }

    #[tokio::test]
    async fn gone_disables_at_once_and_delete_purges() {
        let (_dir, store) = outbox_with(2).await;
        record(&store, first(1), failed_at(5, Verdict::Gone), DAY).await;
        let hook1 = store.read(|s| s.webhook(1)).await.unwrap().unwrap();
        assert!(!hook1.active);
        assert!(hook1.disabled_reason.unwrap().contains("410"));

        store
            .write(Durability::Durable, |t| {
                t.redeliver(1, 1, 7)?;
                t.delete_webhook(1)
            })
            .await
            .unwrap();
        let (log, pending) = store
            .read(|s| Ok((s.delivery_log(1, 10, None)?, s.pending_deliveries(1)?)))
            .await
            .unwrap();
        assert!(log.is_empty() && pending == 0);
        // An attempt that finishes after its webhook was deleted leaves no trace.
        record(&store, first(2), failed_at(6, Verdict::Failed), DAY).await;
        assert!(
            store
                .read(|s| s.delivery_log(1, 10, None))
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn the_log_keeps_the_newest_rows() {
        let (_dir, store) = outbox_with(0).await;
        store
            .write(Durability::Lazy, |t| {
                for i in 0..(DELIVERY_LOG_KEEP + 5) {
                    t.log_attempt(
                        1,
                        &AttemptRecord {
                            event_id: i + 1,
                            delivery_id: delivery_id(i + 1, 1),
                            attempt: 1,
                            status: AttemptStatus::Delivered,
                            at_ms: 0,
                            status_code: Some(200),
                            latency_ms: Some(1),
                            error: None,
                            next_attempt_ms: None,
                        },
                    )?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let log = store.read(|s| s.delivery_log(1, 5000, None)).await.unwrap();
        assert_eq!(log.len() as u64, DELIVERY_LOG_KEEP);
        assert_eq!(log[0].event_id, DELIVERY_LOG_KEEP + 5);
        assert_eq!(log.last().unwrap().event_id, 6);
    }

    #[tokio::test]
    async fn a_failed_job_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data.redb")).unwrap();
        let err = store
            .write(Durability::Durable, |t| {
                t.append_event(new_event("all"))?;
                Err::<(), _>(StoreError("refused after writing".into()))
            })
            .await
            .unwrap_err();
        assert!(err.0.contains("refused after writing"), "{err}");
        let events = store
            .read(|s| {
                s.events(&EventQuery {
                    limit: 10,
                    ..Default::default()
                })
            })
            .await
            .unwrap();
        assert!(events.is_empty(), "the half-done write was rolled back");
        let id = store
            .write(Durability::Durable, |t| t.append_event(new_event("all")))
            .await
            .unwrap()
            .id;
        assert_eq!(id, 1, "ids stay gap-free after a rollback");
    }

    #[tokio::test]
    async fn records_written_under_their_own_ids_move_the_counters_past_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data.redb")).unwrap();
        let (event, webhook) = store
            .write(Durability::Durable, |t| {
                let mut old = t.append_event(new_event("all"))?;
                old.id = 1000;
                t.insert_event(&old)?;
                t.put_webhook(&hook(7))?;
                t.bump_counter(Counter::Webhook, 3)?;
                Ok((t.append_event(new_event("all"))?.id, t.next_webhook_id()?))
            })
            .await
            .unwrap();
        assert_eq!((event, webhook), (1001, 8));
        assert_eq!(store.read(|s| s.tip()).await.unwrap(), 1001);
        store.close();
        store.join_writer();
        let existing = inspect(&dir.path().join("data.redb")).unwrap();
        assert_eq!((existing.events, existing.webhooks), (3, 1));
    }

    #[tokio::test]
    async fn a_read_that_panics_fails_that_call_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data.redb")).unwrap();
        let err = store
            .read(|_| -> Result<()> { panic!("a damaged record") })
            .await
            .unwrap_err();
        assert!(err.0.contains("damaged record"), "{err}");
        assert_eq!(store.read(|s| s.tip()).await.unwrap(), 0);
    }

    fn varied(i: u64) -> NewEvent {
        NewEvent {
            event_type: ["note", "task_completed", "help_needed"][(i % 3) as usize].into(),
            channel: ["all", "repo:x", "session:a", "session:b", "machine:m"][(i % 5) as usize]
                .into(),
            correlation_id: i.is_multiple_of(7).then(|| format!("req-{}", i % 2)),
            ..NewEvent::system("t", format!("payload {i}"), "s")
        }
    }

    async fn store_with(n: u64) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data.redb")).unwrap();
        store
            .write(Durability::Durable, move |t| {
                for i in 0..n {
                    t.append_event(varied(i))?;
                }
                Ok(())
            })
            .await
            .unwrap();
        (dir, store)
    }

    async fn page(store: &Store, q: EventQuery) -> EventPage {
        store.read(move |s| s.event_page(&q)).await.unwrap()
    }

    /// Every combination of filters, orders, cursors and limits answers
    /// what a scan of every event would.
    #[tokio::test]
    async fn the_index_answers_what_a_scan_would() {
        let (_dir, store) = store_with(400).await;
        let all = page(
            &store,
            EventQuery {
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .events;
        assert_eq!(all.len(), 400);
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let channel_sets = [
            vec![],
            strings(&["session:a"]),
            strings(&["all", "session:b"]),
            strings(&["nowhere"]),
            strings(&["nowhere", "repo:x"]),
        ];
        let type_sets = [
            vec![],
            strings(&["help_needed"]),
            strings(&["note", "help_needed"]),
        ];
        let correlations = [None, Some("req-1".to_owned()), Some("none".to_owned())];
        for channels in &channel_sets {
            for event_types in &type_sets {
                for correlation_id in &correlations {
                    for (after, descending, limit) in [
                        (None, false, 1000),
                        (Some(97), false, 7),
                        (Some(13), true, 5),
                        (None, true, 1000),
                    ] {
                        let q = EventQuery {
                            after,
                            descending,
                            limit,
                            channels: channels.clone(),
                            event_types: event_types.clone(),
                            correlation_id: correlation_id.clone(),
                        };
                        let mut want: Vec<u64> = all
                            .iter()
                            .filter(|e| e.id > after.unwrap_or(0) && q.accepts(e))
                            .map(|e| e.id)
                            .collect();
                        want.sort_unstable();
                        if descending {
                            want.reverse();
                        }
                        want.truncate(limit);
                        let got = page(&store, q.clone()).await;
                        let ids: Vec<u64> = got.events.iter().map(|e| e.id).collect();
                        assert_eq!(ids, want, "{q:?}");
                        assert_eq!(got.rows_read, want.len(), "only matches are decoded: {q:?}");
                    }
                }
            }
        }
    }

    /// The regression guard for "a filtered read scans history": at many
    /// events, one match costs one row and a handful of index entries, and
    /// an empty page says it looked up to the newest id.
    #[tokio::test]
    async fn a_filtered_read_examines_only_its_matches() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data.redb")).unwrap();
        store
            .write(Durability::Durable, |t| {
                for i in 0..20_000u64 {
                    let channel = if i == 10 { "session:quiet" } else { "all" };
                    t.append_event(new_event(channel))?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let dm = |after: Option<u64>, descending: bool| EventQuery {
            after,
            descending,
            limit: 50,
            channels: vec!["session:quiet".into()],
            event_types: vec!["t".into()],
            ..Default::default()
        };
        for descending in [false, true] {
            let got = page(&store, dm(None, descending)).await;
            assert_eq!(got.events.iter().map(|e| e.id).collect::<Vec<_>>(), [11]);
            assert_eq!(got.rows_read, 1);
            // The type list holds all 20,000: a seek steps a few, then searches.
            assert!(
                got.postings_read <= 2 * SEEK_STEPS + 4,
                "{}",
                got.postings_read
            );
            assert_eq!(got.through, 20_000);
        }
        let quiet = page(&store, dm(Some(11), false)).await;
        assert!(quiet.events.is_empty());
        assert_eq!((quiet.rows_read, quiet.through), (0, 20_000));
        assert!(quiet.postings_read <= 2, "{}", quiet.postings_read);
    }

    /// A store written before the index existed (JSON rows, a counter
    /// table, schema version 1) gains the index on open, keeps every id and
    /// answers every read as before.
    #[tokio::test]
    async fn an_older_store_gains_its_index_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        let old: Vec<EventRecord> = (1..=120u64)
            .map(|id| {
                let n = varied(id);
                EventRecord {
                    id,
                    event_type: n.event_type,
                    payload: n.payload,
                    session_id: n.session_id,
                    timestamp: 1_700_000_000_000_000 + id as i64,
                    channel: n.channel,
                    correlation_id: n.correlation_id,
                    signal_level: None,
                    title: None,
                    tags: None,
                }
            })
            .collect();
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut meta = txn.open_table(META).unwrap();
                meta.insert("schema_version", 1).unwrap();
                meta.insert("next_event_id", 121).unwrap();
                let mut events = txn.open_table(EVENTS).unwrap();
                for e in &old {
                    events
                        .insert(e.id, serde_json::to_vec(e).unwrap().as_slice())
                        .unwrap();
                }
            }
            txn.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(*store.tip().borrow(), 120);
        let q = EventQuery {
            limit: 1000,
            channels: vec!["session:a".into()],
            ..Default::default()
        };
        let got = page(&store, q.clone()).await;
        let want: Vec<&EventRecord> = old.iter().filter(|e| q.accepts(e)).collect();
        assert_eq!(got.events.iter().collect::<Vec<_>>(), want);
        let id = store
            .write(Durability::Durable, |t| {
                t.append_event(new_event("session:a"))
            })
            .await
            .unwrap()
            .id;
        assert_eq!(id, 121, "ids continue where the older store left off");
        let version = store
            .read(|s| {
                Ok(s.table(META)?
                    .unwrap()
                    .get("schema_version")?
                    .unwrap()
                    .value())
            })
            .await
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[tokio::test]
    async fn pruning_drops_index_entries_and_never_reuses_ids() {
        let (_dir, store) = store_with(10).await;
        let removed = store
            .write(Durability::Durable, |t| t.prune_events(10, 100))
            .await
            .unwrap();
        assert_eq!(removed, 10);
        let got = page(
            &store,
            EventQuery {
                limit: 10,
                channels: vec!["all".into()],
                ..Default::default()
            },
        )
        .await;
        assert!(got.events.is_empty());
        let id = store
            .write(Durability::Durable, |t| t.append_event(new_event("all")))
            .await
            .unwrap()
            .id;
        assert_eq!(id, 11);
    }

    #[tokio::test]
    async fn a_channel_wait_wakes_only_for_its_channels() {
        let (_dir, store) = store_with(0).await;
        let wait = store.wait_channels(&["session:a".to_owned()]);
        store
            .write(Durability::Durable, |t| t.append_event(new_event("all")))
            .await
            .unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(0), wait.changed()).await;
        assert!(quiet.is_err(), "an event elsewhere does not wake it");
        store
            .write(Durability::Durable, |t| {
                t.append_event(new_event("session:a"))
            })
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), wait.changed())
            .await
            .expect("woken by an event on its channel");
        drop(wait);
        assert!(store.channel_waiters.lock().is_empty());
    }

    /// A new session's display id is checked against the live ones by
    /// lookup: the counts follow registrations, renames and endings.
    #[tokio::test]
    async fn live_display_ids_are_counted() {
        let (_dir, store) = store_with(0).await;
        let session = |id: &str| SessionRecord {
            id: id.into(),
            display_id: "calm-troodon".into(),
            name: "n".into(),
            machine: "m".into(),
            cwd: "/".into(),
            repo: "r".into(),
            registered_at: 0,
            last_heartbeat: 0,
            client_id: None,
            last_cursor: None,
            deleted_at: None,
            client_pid: None,
            lease_seconds: None,
            lease_deadline: None,
            push: Vec::new(),
        };
        async fn held(store: &Store) -> Result<(bool, bool)> {
            store
                .write(Durability::Lazy, |t| {
                    Ok((
                        t.display_id_live("calm-troodon")?,
                        t.display_id_live("zany-minmi")?,
                    ))
                })
                .await
        }
        store
            .write(Durability::Lazy, move |t| {
                t.put_session(&session("a"))?;
                t.put_session(&session("b"))?;
                t.put_session(&SessionRecord {
                    deleted_at: Some(1),
                    ..session("a")
                })
            })
            .await
            .unwrap();
        assert_eq!(
            held(&store).await.unwrap(),
            (true, false),
            "b still holds it"
        );
        store
            .write(Durability::Lazy, move |t| {
                t.put_session(&SessionRecord {
                    display_id: "zany-minmi".into(),
                    ..session("b")
                })
            })
            .await
            .unwrap();
        assert_eq!(held(&store).await.unwrap(), (false, true));
    }

    #[test]
    fn refuses_sqlite_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.db");
        std::fs::write(&path, b"SQLite format 3\0rest").unwrap();
        let err = Store::open(&path).err().unwrap();
        assert!(err.to_string().contains("SQLite"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"SQLite format 3\0rest");
    }
}
