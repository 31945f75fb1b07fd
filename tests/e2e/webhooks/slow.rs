//! Slow and hanging receivers: a publish never waits for one, one
//! endpoint never delays another, and an attempt past the timeout is retried.

use std::time::Duration;

use serde_json::json;
use support::Hub;
use support::sink::WebhookSink;

use super::{DEADLINE, event_id, hub_with, log, register, wait_for_log};

#[test]
fn a_publish_never_waits_for_a_slow_receiver() {
    let hub = Hub::start();
    // The receiver holds every request far longer than a client waits for
    // a reply (10 s): a publish that waited for it would fail.
    let stuck = WebhookSink::with(|_| (200, Duration::from_secs(60)));
    hub.tool("register_webhook", json!({"url": stuck.url}));
    stuck_publishes(&hub);
    stuck.wait_for(1, Duration::from_secs(10));
    stuck_publishes(&hub);
}

fn stuck_publishes(hub: &Hub) {
    for _ in 0..5 {
        hub.publish("s", "t", "p", "all");
    }
}

#[test]
fn a_hanging_endpoint_never_delays_another() {
    // No attempt to the hanging endpoint can finish within the test.
    let hub = hub_with(&["--webhook-timeout", "60s"]);
    let stuck = WebhookSink::with(|_| (200, Duration::from_secs(120)));
    let quick = WebhookSink::ok();
    let stuck_id = register(&hub, json!({"url": stuck.url}));
    register(&hub, json!({"url": quick.url}));
    let ids: Vec<u64> = (0..10)
        .map(|i| hub.publish("s", "t", &format!("e{i}"), "all"))
        .collect();
    let got = quick.wait_for(10, DEADLINE);
    let mut seen: Vec<u64> = got.iter().map(event_id).collect();
    seen.sort_unstable();
    assert_eq!(seen, ids);
    assert!(
        log(&hub, stuck_id).is_empty(),
        "every delivery arrived while the other endpoint still held its first requests"
    );
    // The per-endpoint cap (4 by default): the rest wait in the outbox.
    stuck.wait_for(4, DEADLINE);
    // A sentinel published after them reaches the other endpoint: the
    // worker has planned again since, with the stuck endpoint's rest due.
    let sentinel = hub.publish("s", "t", "sentinel", "all");
    let got = quick.wait_for(11, DEADLINE);
    assert!(got.iter().any(|r| event_id(r) == sentinel));
    assert_eq!(
        stuck.received().len(),
        4,
        "at most 4 in flight per endpoint"
    );
    let reply = hub.tool("list_webhook_deliveries", json!({"webhook_id": stuck_id}));
    assert_eq!(reply["pending"], 11);
}

#[test]
fn an_attempt_past_the_timeout_is_retried() {
    let hub = hub_with(&["--webhook-timeout", "1s", "--webhook-retry-delays", "100ms"]);
    let slow_once = WebhookSink::with(|n| {
        (
            200,
            if n == 0 {
                Duration::from_secs(10)
            } else {
                Duration::ZERO
            },
        )
    });
    let id = register(&hub, json!({"url": slow_once.url}));
    hub.publish("s", "t", "p", "all");
    let rows = wait_for_log(&hub, id, "a retry after the timeout", |rows| {
        rows.first().is_some_and(|r| r["status"] == "delivered")
    });
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1]["status"], "retrying");
    assert_eq!(rows[1]["error"], "timed out after 1s");
    assert!(rows[1].get("status_code").is_none());
    let got = slow_once.received();
    assert_eq!(got[0].headers["webhook-id"], got[1].headers["webhook-id"]);
}
