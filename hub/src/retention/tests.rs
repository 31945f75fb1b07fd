//! Retention under a rolling window, driven through the tools as clients
//! drive them: the store stops growing.

use std::collections::BTreeMap;
use std::sync::Arc;

use clap::Parser;
use serde_json::{Value, json};
use shared::tools::Tool;
use shared::tools::events::{GetEvents, PublishEvent};
use shared::tools::receipts::{MessageReceipt, MessageStatus};
use shared::tools::sessions::RegisterSession;
use tokio_util::sync::CancellationToken;

use crate::caller::Caller;
use crate::config::Config;
use crate::delivery::Delivery;
use crate::state::Bus;
use crate::store::Store;
use crate::store::testing::{index_rows_for_stored_events, table_rows};
use crate::tools::{self, Reply};

/// Events kept (`--retain-events`), and published per window.
const KEEP: u64 = 300;
const WINDOWS: usize = 6;

fn bus(dir: &tempfile::TempDir) -> Bus {
    let store = Store::open(&dir.path().join("data.redb")).unwrap();
    let keep = KEEP.to_string();
    let config = Config::parse_from(["agent-event-bus", "--retain-events", keep.as_str()]);
    Bus::new(
        store,
        config.limits(),
        86_400_000,
        config.retention(),
        Delivery::new(config.delivery()).unwrap(),
        CancellationToken::new(),
    )
}

/// Calls tool `T` as an agent on this machine; its reply as JSON.
async fn call<T: Tool>(bus: &Bus, args: Value) -> Value {
    match tools::call(bus, &Caller::internal(), T::NAME, Some(args))
        .await
        .unwrap()
    {
        Reply::Rendered(json) => {
            let reply: Value = serde_json::from_str(json.as_str()).unwrap();
            reply["structuredContent"].clone()
        }
        Reply::Refused(refusal) => panic!("{} refused: {refusal:?}", T::NAME),
    }
}

/// One window's traffic between sessions `a` and `b`: KEEP events, a third
/// of them direct messages from `a` to `b` (offered to `b`, then read by its reply), a
/// third `b`'s replies (read by `a`), a third direct messages to sessions
/// that come and go. Event types and correlation ids are new each window,
/// so their index keys are too. Returns the ids of the messages to `b`.
async fn window(bus: &Arc<Bus>, w: usize) -> Vec<u64> {
    // Each exchange on its own task, so their commits share fsyncs.
    let mut exchanges = tokio::task::JoinSet::new();
    for i in 0..KEEP / 3 {
        let bus = bus.clone();
        exchanges.spawn(async move {
            let ask = call::<PublishEvent>(
                &bus,
                json!({"session_id": "a", "channel": "session:b", "event_type": format!("ask-{w}"),
                       "payload": "can you take this?", "correlation_id": format!("req-{w}-{i}")}),
            )
            .await;
            let id = ask["event_id"].as_u64().unwrap();
            let offered = call::<MessageReceipt>(
                &bus,
                json!({"session_id": "b", "event_ids": [id], "step": "offered", "path": "channel"}),
            )
            .await;
            assert_eq!(offered["marked"].as_u64(), Some(1), "{offered}");
            call::<PublishEvent>(
                &bus,
                json!({"session_id": "b", "channel": "session:a", "event_type": "reply",
                       "payload": "on it", "correlation_id": id.to_string()}),
            )
            .await;
            call::<PublishEvent>(
                &bus,
                json!({"session_id": "a", "channel": format!("session:passing-{w}-{}", i % 10),
                       "event_type": format!("hello-{w}"), "payload": "hi"}),
            )
            .await;
            id
        });
    }
    let mut asked = exchanges.join_all().await;
    asked.sort_unstable();
    for reader in ["a", "b"] {
        let page = call::<GetEvents>(
            bus,
            json!({"session_id": reader, "resume": true, "order": "asc", "limit": 1000}),
        )
        .await;
        assert!(!page["has_more"].as_bool().unwrap(), "{page}");
    }
    asked
}

/// The rolling window keeps the newest KEEP events, and with them exactly
/// the index keys, bitmap rows and direct-message rows those events need:
/// nothing is left behind for a pruned event, so every table stays the size
/// it reached in the first full window while the bus goes on publishing.
#[tokio::test]
async fn under_a_rolling_window_the_store_stops_growing() {
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(bus(&dir));
    for id in ["a", "b"] {
        call::<RegisterSession>(
            &bus,
            json!({"name": id, "client_id": id, "lease_seconds": 3600, "push": ["channel"]}),
        )
        .await;
    }
    let mut sizes: Vec<BTreeMap<String, u64>> = Vec::new();
    let mut asked = Vec::new();
    for w in 0..WINDOWS {
        asked.extend(window(&bus, w).await);
        super::apply(&bus).await.unwrap();
        let rows = table_rows(&bus.store).await;
        let (keys, bits, dms) = index_rows_for_stored_events(&bus.store).await;
        assert_eq!(rows["events"], KEEP, "window {w}: {rows:?}");
        assert_eq!(
            rows["event_keys"], keys,
            "window {w}: keys of stored events only"
        );
        assert_eq!(
            rows["event_bits"], bits,
            "window {w}: rows of stored events only"
        );
        assert_eq!(
            rows["direct_messages"], dms,
            "window {w}: stored messages only"
        );
        assert!(
            (1..=dms).contains(&rows["message_receipts"]),
            "window {w}: receipts of stored messages only: {rows:?}"
        );
        sizes.push(rows);
    }
    // Every table, whatever it holds, is no larger after six windows than
    // after the second (the first full one): a table that kept one row per
    // event or message would have grown by hundreds. A bitmap row may shift
    // with where the window starts in its block of 64 ids.
    let steady = &sizes[1];
    for (w, rows) in sizes.iter().enumerate().skip(2) {
        for (table, &n) in rows {
            let before = steady.get(table).copied().unwrap_or(0);
            assert!(
                n <= before + 8,
                "window {w}: {table} grew from {before} to {n} rows"
            );
        }
    }
    // What the bus answers for a pruned message and a kept one.
    let (oldest, newest) = (asked[0], asked[asked.len() - 1]);
    let status = call::<MessageStatus>(&bus, json!({"event_ids": [oldest, newest]})).await;
    assert!(status["result"][0]["error"].is_string(), "{status}");
    assert_eq!(status["result"][1]["status"], "read", "{status}");
}
