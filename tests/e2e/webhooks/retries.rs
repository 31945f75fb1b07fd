//! Retries: one `webhook-id` on every attempt until one succeeds or they
//! run out, event order kept, `Retry-After` honoured, and deliveries
//! pending at a SIGKILL sent after the restart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use support::sink::{Answer, WebhookSink};

use super::{
    DEADLINE, assert_signed, event_id, hub_with, pending, register, wait_for_log, webhook_info,
};

#[test]
fn a_receiver_failing_n_times_gets_retries_with_one_webhook_id() {
    let hub = hub_with(&["--webhook-retry-delays", "100ms,100ms,100ms,100ms"]);
    let flaky = WebhookSink::with(|n| (if n < 3 { 500 } else { 200 }, Duration::ZERO));
    let id = register(&hub, json!({"url": flaky.url, "secret": "shh"}));
    let event = hub.publish("s", "t", "p", "all");
    let got = flaky.wait_for(4, DEADLINE);
    let ids: Vec<&String> = got.iter().map(|r| &r.headers["webhook-id"]).collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "the same webhook-id on every attempt: {ids:?}"
    );
    assert_eq!(ids[0], &format!("evt_{event}_wh_{id}"));
    for r in &got {
        assert_signed(r, "shh");
        assert_eq!(event_id(r), event);
    }
    let rows = wait_for_log(&hub, id, "the delivered attempt", |rows| {
        rows.first().is_some_and(|r| r["status"] == "delivered")
    });
    let seen: Vec<(u64, &str, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["attempt"].as_u64().unwrap(),
                r["status"].as_str().unwrap(),
                r["status_code"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (4, "delivered", 200),
            (3, "retrying", 500),
            (2, "retrying", 500),
            (1, "retrying", 500)
        ]
    );
    assert!(rows[1]["next_attempt_at"].is_string());
    assert!(rows[0].get("next_attempt_at").is_none());
    assert_eq!(rows[1]["error"], "answered 500");
    assert_eq!(pending(&hub, id), 0, "nothing left to send");
    assert_eq!(flaky.received().len(), 4, "nothing after the success");
    assert!(
        webhook_info(&hub, id).get("failing_since").is_none(),
        "a success ends the failure streak"
    );
}

#[test]
fn a_delivery_that_runs_out_of_retries_fails_and_says_so() {
    let hub = hub_with(&["--webhook-retry-delays", "50ms,50ms"]);
    let down = WebhookSink::with(|_| (500, Duration::ZERO));
    let id = register(&hub, json!({"url": down.url}));
    hub.publish("s", "t", "p", "all");
    let rows = wait_for_log(&hub, id, "a failed delivery", |rows| {
        rows.first().is_some_and(|r| r["status"] == "failed")
    });
    assert_eq!(rows.len(), 3, "three attempts: {rows:?}");
    assert_eq!(rows[0]["attempt"], 3);
    assert_eq!(pending(&hub, id), 0, "nothing left to send");
    assert_eq!(down.received().len(), 3);
    let info = webhook_info(&hub, id);
    assert_eq!(info["active"], true, "one failed delivery does not disable");
    assert!(info["failing_since"].is_string(), "{info}");
}

#[test]
fn first_attempts_go_in_event_order_and_a_retry_holds_nothing_back() {
    // One attempt in flight at a time, so arrival order is start order.
    let hub = hub_with(&["--webhook-concurrency", "1", "--webhook-retry-delays", "5s"]);
    let sink = WebhookSink::with(|n| (if n == 1 { 500 } else { 200 }, Duration::ZERO));
    register(&hub, json!({"url": sink.url}));
    let ids: Vec<u64> = (0..5)
        .map(|i| hub.publish("s", "t", &format!("e{i}"), "all"))
        .collect();
    let got = sink.wait_for(6, DEADLINE);
    let order: Vec<u64> = got.iter().map(event_id).collect();
    assert_eq!(
        order,
        [ids[0], ids[1], ids[2], ids[3], ids[4], ids[1]],
        "the failed second event retried after the ones behind it went out"
    );
}

#[test]
fn retry_after_is_honoured() {
    let hub = hub_with(&["--webhook-retry-delays", "50ms,50ms"]);
    let busy = WebhookSink::answering(|n| Answer {
        status: if n == 0 { 429 } else { 200 },
        headers: vec![("retry-after".into(), "2".into())],
        ..Default::default()
    });
    let id = register(&hub, json!({"url": busy.url}));
    hub.publish("s", "t", "p", "all");
    let got = busy.wait_for(2, DEADLINE);
    assert!(
        got[1].at.duration_since(got[0].at) >= Duration::from_millis(1900),
        "the retry waited for Retry-After, not the 50 ms schedule"
    );
    let rows = wait_for_log(&hub, id, "the delivered retry", |rows| {
        rows.first().is_some_and(|r| r["status"] == "delivered")
    });
    let first = &rows[1];
    assert_eq!(first["status_code"], 429);
    let at = shared::time::parse_ms(first["attempted_at"].as_str().unwrap()).unwrap();
    let next = shared::time::parse_ms(first["next_attempt_at"].as_str().unwrap()).unwrap();
    assert!(next - at >= 2000, "next attempt {next} is 2 s after {at}");
}

#[test]
fn deliveries_pending_at_a_sigkill_arrive_after_restart() {
    let mut hub = hub_with(&[
        "--webhook-concurrency",
        "1",
        "--webhook-retry-delays",
        "2s,2s,2s,2s,2s,2s",
    ]);
    let up = Arc::new(AtomicBool::new(true));
    // Failing receiver: answers 503 while down.
    let flag = up.clone();
    let failing = WebhookSink::with(move |_| {
        (
            if flag.load(Ordering::SeqCst) {
                200
            } else {
                503
            },
            Duration::ZERO,
        )
    });
    // Hanging receiver: holds requests while down (they never get answered).
    let flag = up.clone();
    let hanging = WebhookSink::with(move |_| {
        if flag.load(Ordering::SeqCst) {
            (200, Duration::ZERO)
        } else {
            (504, Duration::from_secs(120))
        }
    });
    let failing_id = register(
        &hub,
        json!({"url": failing.url, "channel": "repo:", "secret": "k"}),
    );
    let hanging_id = register(&hub, json!({"url": hanging.url, "channel": "repo:"}));

    let a = hub.publish("s", "t", "a", "repo:x");
    wait_for_log(&hub, failing_id, "a delivered", |r| r.len() == 1);
    wait_for_log(&hub, hanging_id, "a delivered", |r| r.len() == 1);
    // A durable commit makes the recorded outcomes durable with it.
    hub.publish("s", "t", "flush", "all");

    up.store(false, Ordering::SeqCst);
    let pending: Vec<u64> = ["b", "c", "d"]
        .iter()
        .map(|p| hub.publish("s", "t", p, "repo:x"))
        .collect();
    failing.wait_for(4, DEADLINE);
    hanging.wait_for(2, DEADLINE);
    hub.kill9();

    up.store(true, Ordering::SeqCst);
    hub.restart();
    let everything = |sink: &WebhookSink| {
        support::wait_until("every event answered 200", DEADLINE, || {
            let mut by_event: BTreeMap<u64, Vec<u16>> = BTreeMap::new();
            for r in sink.received() {
                by_event.entry(event_id(&r)).or_default().push(r.status);
            }
            pending
                .iter()
                .all(|e| by_event.get(e).is_some_and(|s| s.contains(&200)))
                .then_some(by_event)
        })
    };
    for (sink, name) in [(&failing, "failing"), (&hanging, "hanging")] {
        let by_event = everything(sink);
        assert_eq!(
            by_event[&a],
            [200],
            "{name}: a delivered once, before the kill"
        );
        for e in &pending {
            let statuses = &by_event[e];
            assert_eq!(
                statuses.iter().filter(|s| **s == 200).count(),
                1,
                "{name}: event {e} answered 200 once: {statuses:?}"
            );
            assert_eq!(
                statuses.last(),
                Some(&200),
                "{name}: event {e} got again only after an attempt that failed: {statuses:?}"
            );
        }
    }
    for r in failing.received() {
        assert_signed(&r, "k");
    }
}
