//! Reads: helpers shared by read and write transactions, and [`Snapshot`],
//! the reads of one MVCC snapshot on a blocking thread.

use std::collections::HashSet;

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, TableDefinition, TableError};

use super::page::read_events;
use super::tables::{
    Counter, DELIVERY_LOG, EVENT_BITS, EVENT_KEYS, EVENTS, LEASES, LIVE, META, OUTBOX,
    OUTBOX_RETRY, RetryKey, SESSIONS, WEBHOOKS, decode, packed_contains,
};
use super::{
    AttemptRecord, EventPage, EventQuery, EventRecord, Result, SessionRecord, WebhookRecord, codec,
};

// ---- reads shared by read and write transactions -------------------------

pub(super) fn read_session(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<SessionRecord>> {
    match table.get(id)? {
        Some(v) => Ok(Some(decode(v.value())?)),
        None => Ok(None),
    }
}

pub(super) fn read_live_sessions(
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

pub(super) fn read_webhooks(
    table: &impl ReadableTable<u64, &'static [u8]>,
) -> Result<Vec<WebhookRecord>> {
    let mut out = Vec::new();
    for item in table.iter()? {
        let (_, v) = item?;
        out.push(decode(v.value())?);
    }
    Ok(out)
}

pub(super) fn read_webhook(
    table: &impl ReadableTable<u64, &'static [u8]>,
    id: u64,
) -> Result<Option<WebhookRecord>> {
    match table.get(id)? {
        Some(v) => Ok(Some(decode(v.value())?)),
        None => Ok(None),
    }
}

pub(super) fn read_event(
    table: &impl ReadableTable<u64, &'static [u8]>,
    id: u64,
) -> Result<Option<EventRecord>> {
    match table.get(id)? {
        Some(v) => Ok(Some(codec::decode_event(id, v.value())?)),
        None => Ok(None),
    }
}

/// Every retry-queue key of one webhook, in due order, with attempts made.
pub(super) fn retry_keys(
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

/// Event ids whose outbox row still holds a first attempt for `webhook_id`.
pub(super) fn first_events(
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
pub(super) fn read_tip(
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
pub(super) fn committed_tip(txn: &ReadTransaction) -> Result<u64> {
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

/// A read snapshot. Methods mirror [`Tx`](super::Tx)'s reads.
pub struct Snapshot {
    pub(super) txn: ReadTransaction,
}

impl Snapshot {
    pub(super) fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
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
            self.table(EVENT_BITS)?,
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
