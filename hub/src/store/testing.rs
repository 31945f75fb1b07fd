//! Builders the store's unit tests share.

pub(super) use super::{
    Durability, EventPage, EventQuery, EventRecord, NewEvent, Store, StoreError, WebhookRecord,
    inspect,
};

pub(super) fn new_event(channel: &str) -> NewEvent {
    NewEvent {
        channel: channel.to_owned(),
        ..NewEvent::system("t", "p".into(), "s")
    }
}

pub(super) fn varied(i: u64) -> NewEvent {
    NewEvent {
        event_type: ["note", "task_completed", "help_needed"][(i % 3) as usize].into(),
        channel: ["all", "repo:x", "session:a", "session:b", "machine:m"][(i % 5) as usize].into(),
        correlation_id: i.is_multiple_of(7).then(|| format!("req-{}", i % 2)),
        ..NewEvent::system("t", format!("payload {i}"), "s")
    }
}

pub(super) async fn store_with(n: u64) -> (tempfile::TempDir, Store) {
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

pub(super) async fn page(store: &Store, q: EventQuery) -> EventPage {
    store.read(move |s| s.event_page(&q)).await.unwrap()
}

pub(super) fn hook(id: u64) -> WebhookRecord {
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
