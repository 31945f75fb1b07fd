//! Builders the store's unit tests share.

use super::{AttemptResult, DueDelivery, Queued, Verdict};
pub(crate) use super::{
    Durability, EventPage, EventQuery, EventRecord, NewEvent, SessionRecord, Store, StoreError,
    WebhookRecord, inspect,
};

pub(crate) fn new_event(channel: &str) -> NewEvent {
    NewEvent {
        channel: channel.to_owned(),
        ..NewEvent::system("t", "p".into(), "s")
    }
}

pub(crate) fn varied(i: u64) -> NewEvent {
    NewEvent {
        event_type: ["note", "task_completed", "help_needed"][(i % 3) as usize].into(),
        channel: ["all", "repo:x", "session:a", "session:b", "machine:m"][(i % 5) as usize].into(),
        correlation_id: i.is_multiple_of(7).then(|| format!("req-{}", i % 2)),
        ..NewEvent::system("t", format!("payload {i}"), "s")
    }
}

/// A live session with id `id`.
pub(crate) fn session(id: &str) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        display_id: format!("{id}-dino"),
        name: id.into(),
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
        key_hash: None,
    }
}

pub(crate) async fn store_with(n: u64) -> (tempfile::TempDir, Store) {
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

/// Up to `limit` events, oldest first, unfiltered.
pub(crate) async fn oldest_events(store: &Store, limit: usize) -> Vec<EventRecord> {
    page(
        store,
        EventQuery {
            limit,
            ..Default::default()
        },
    )
    .await
    .events
}

pub(crate) async fn page(store: &Store, q: EventQuery) -> EventPage {
    store.read(move |s| s.event_page(&q)).await.unwrap()
}

pub(crate) fn hook(id: u64) -> WebhookRecord {
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
pub(crate) async fn outbox_with(n: usize) -> (tempfile::TempDir, Store) {
    let (dir, store) = store_with(0).await;
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

pub(crate) fn first(event_id: u64) -> DueDelivery {
    DueDelivery {
        webhook_id: 1,
        event_id,
        queued: Queued::First,
        attempt: 1,
    }
}

pub(crate) fn failed_at(at_ms: i64, verdict: Verdict) -> AttemptResult {
    AttemptResult {
        at_ms,
        status_code: Some(500),
        latency_ms: Some(3),
        error: Some("answered 500".into()),
        verdict,
    }
}

pub(crate) async fn record(store: &Store, due: DueDelivery, result: AttemptResult, limit_ms: i64) {
    store
        .write(Durability::Lazy, move |t| {
            crate::webhooks::record_attempt(t, &due, result, limit_ms)
        })
        .await
        .unwrap();
}

pub(crate) const DAY: i64 = 86_400_000;

/// The rows of every table in the file, by table name.
pub(crate) async fn table_rows(store: &Store) -> std::collections::BTreeMap<String, u64> {
    use redb::{MultimapTableHandle, ReadableTableMetadata, TableHandle};
    store
        .read(|s| {
            let mut out = std::collections::BTreeMap::new();
            for handle in s.txn.list_tables()? {
                let name = handle.name().to_owned();
                out.insert(name, s.txn.open_untyped_table(handle)?.len()?);
            }
            for handle in s.txn.list_multimap_tables()? {
                let name = handle.name().to_owned();
                out.insert(name, s.txn.open_untyped_multimap_table(handle)?.len()?);
            }
            Ok(out)
        })
        .await
        .unwrap()
}

/// The rows the event index and the direct-message index must hold for
/// the events stored now, and no more: (index keys, bitmap rows, direct
/// messages).
pub(crate) async fn index_rows_for_stored_events(store: &Store) -> (u64, u64, u64) {
    use std::collections::HashSet;
    let events = oldest_events(store, 1_000_000).await;
    let mut keys = HashSet::new();
    let mut rows = HashSet::new();
    let mut dms = 0;
    for e in &events {
        let names =
            super::postings::index_names(&e.channel, &e.event_type, e.correlation_id.as_deref());
        for name in names {
            rows.insert((name.clone(), e.id / super::postings::BLOCK_BITS));
            keys.insert(name);
        }
        dms += u64::from(shared::channel::dm_target(&e.channel).is_some());
    }
    (keys.len() as u64, rows.len() as u64, dms)
}
