//! Every table of the store and the encodings of their rows: the one
//! place a table is defined (claims and receipts keep theirs beside their
//! verbs).

use redb::TableDefinition;
use serde::{Deserialize, Serialize};

use super::Result;

/// Counters: `next_webhook_id`, `next_delivery_log_id`, `schema_version`,
/// and `next_event_id`: a floor under the next event id, written only when
/// pruning (the next id is otherwise one past the newest row, so an append
/// touches no counter page); `next_index_key`, the next event index key
/// number; `index_built_through` while an older store's event index is
/// being built.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Event id → [`EventRecord`] in the compact encoding of [`encode_event`]
/// (rows written before schema version 2 are JSON; both decode).
pub(super) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Index key name → its number: `c\0<channel>`, `t\0<event type>`,
/// `r\0<correlation id>`. A key goes when its last event is pruned; numbers
/// come from the `next_index_key` counter, so one is never reused.
pub(super) const EVENT_KEYS: TableDefinition<&str, u64> = TableDefinition::new("event_keys");
/// (index key number, event id / 64) → a bitmap of the block's ids under
/// the key: the posting lists of the channel, type and correlation filters,
/// written with the event (see [`super::index`]).
pub(super) const EVENT_BITS: TableDefinition<(u64, u64), u64> = TableDefinition::new("event_bits");
/// The posting lists as schema version 2 kept them, one row per entry:
/// (index key number, event id) → (). Read once, to convert, then deleted.
pub(super) const EVENT_INDEX_V2: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("event_index");
/// Session id → [`SessionRecord`] as JSON.
pub(super) const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// `machine \x1f client_id` → session id: resume lookups.
pub(super) const CLIENTS: TableDefinition<&str, &str> = TableDefinition::new("clients");
/// Ids of the sessions that have not ended: ended ones stay in `SESSIONS`
/// for ever (resume, attribution), so lists must not scan them.
pub(super) const LIVE: TableDefinition<&str, ()> = TableDefinition::new("live_sessions");
/// Display id → how many live sessions hold it: a new session's name is
/// picked without reading every live session.
pub(super) const LIVE_NAMES: TableDefinition<&str, u64> = TableDefinition::new("live_display_ids");
/// (lease deadline in ms, session id) → (): the sweeper's index.
pub(super) const LEASES: TableDefinition<(u64, &str), ()> = TableDefinition::new("leases");
/// Webhook id → [`WebhookRecord`] as JSON.
pub(super) const WEBHOOKS: TableDefinition<u64, &[u8]> = TableDefinition::new("webhooks");
/// Event id → the webhook ids (packed little-endian u64s) still awaiting
/// their first attempt of it: one row per event, appended with the event, so
/// a publish adds one row whatever the number of webhooks. With
/// [`OUTBOX_RETRY`] this is the outbox: a delivery is in exactly one of the
/// two until it is delivered or has failed.
pub(super) const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// (webhook id, due ms, event id) → attempts made: deliveries awaiting a
/// retry (a redelivery is one due at once with none made).
pub(super) const OUTBOX_RETRY: TableDefinition<RetryKey, u32> =
    TableDefinition::new("outbox_retry");
/// (webhook id, log seq) → [`AttemptRecord`] as JSON: the newest
/// [`DELIVERY_LOG_KEEP`] rows per webhook.
pub(super) const DELIVERY_LOG: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("delivery_log");
/// Webhook id → its row count in [`DELIVERY_LOG`], so trimming is one removal.
pub(super) const DELIVERY_LOG_LEN: TableDefinition<u64, u64> =
    TableDefinition::new("delivery_log_len");

/// A retry-queue key: (webhook id, due ms, event id).
pub(super) type RetryKey = (u64, u64, u64);

pub(super) fn pack_ids(ids: &[u64]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.to_le_bytes()).collect()
}

pub(super) fn unpack_ids(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect()
}

/// Whether a packed id list holds `id`.
pub(super) fn packed_contains(bytes: &[u8], id: u64) -> bool {
    let want = id.to_le_bytes();
    bytes.chunks_exact(8).any(|c| c == want)
}

/// An id counter in the meta table: it holds the next id to hand out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Event,
    Webhook,
}

impl Counter {
    pub(super) fn key(self) -> &'static str {
        match self {
            Self::Event => "next_event_id",
            Self::Webhook => "next_webhook_id",
        }
    }
}

pub(super) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T> {
    Ok(serde_json::from_slice(bytes)?)
}

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}
