//! What a receiver gets: the signed body, only the events its channel,
//! type and active filters let through, lifecycle events when asked for.

use std::time::Duration;

use serde_json::{Value, json};
use support::sink::WebhookSink;
use support::{Hub, HubOptions, wait_until};

use super::{DEADLINE, assert_signed, event_id, pending, register};

#[test]
fn a_receiver_gets_a_correctly_signed_body() {
    let hub = Hub::start();
    let sink = WebhookSink::ok();
    hub.tool(
        "register_webhook",
        json!({"url": sink.url, "secret": "shh"}),
    );
    let id = hub.tool(
        "publish_event",
        json!({"event_type": "deploy", "payload": "v2 is out", "channel": "repo:x", "correlation_id": "c7", "tags": ["t"]}),
    )["event_id"]
        .as_u64()
        .unwrap();
    let got = sink.wait_for(1, Duration::from_secs(10));
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.headers["content-type"], "application/json");
    assert!(r.headers["user-agent"].starts_with("agent-event-bus/"));

    assert_signed(r, "shh");

    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["event_id"].as_u64(), Some(id));
    assert_eq!(body["event_type"], "deploy");
    assert_eq!(body["payload"], "v2 is out");
    assert_eq!(body["channel"], "repo:x");
    assert_eq!(body["correlation_id"], "c7");
    assert_eq!(body["signal_level"], "info");
    assert_eq!(body["tags"], json!(["t"]));
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn channel_prefix_type_and_active_filters() {
    // One delivery at a time per endpoint, in event order: the marker (the
    // last event) arriving proves every earlier delivery to that endpoint
    // has been made, so the lists below are complete without a pause.
    let hub = Hub::start_with(HubOptions {
        args: vec!["--webhook-concurrency".into(), "1".into()],
        ..HubOptions::default()
    });
    let dms = WebhookSink::ok();
    let typed = WebhookSink::ok();
    let paused = WebhookSink::ok();
    hub.tool(
        "register_webhook",
        json!({"url": dms.url, "channel": "session:"}),
    );
    hub.tool(
        "register_webhook",
        json!({"url": typed.url, "event_types": ["ci_failed"]}),
    );
    let p = hub.tool("register_webhook", json!({"url": paused.url}));
    hub.tool(
        "set_webhook_active",
        json!({"webhook_id": p["webhook_id"], "active": false}),
    );

    hub.publish("s", "note", "to a", "session:a");
    hub.publish("s", "ci_failed", "red", "repo:x");
    hub.publish("s", "note", "chatter", "all");
    // Session lifecycle events are not delivered (as the original).
    hub.register("quiet", None);
    let marker = hub.publish("s", "ci_failed", "marker", "session:b");

    let got_dms = dms.wait_for(2, Duration::from_secs(10));
    let got_typed = typed.wait_for(2, Duration::from_secs(10));
    for got in [&got_dms, &got_typed] {
        let last: Value = serde_json::from_slice(&got[got.len() - 1].body).unwrap();
        assert_eq!(
            last["event_id"],
            json!(marker),
            "the marker comes last: {got:?}"
        );
    }
    let channels: Vec<Value> = dms
        .received()
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["channel"].clone())
        .collect();
    assert_eq!(
        channels,
        vec![json!("session:a"), json!("session:b")],
        "{got_dms:?}"
    );
    let event_types: Vec<Value> = typed
        .received()
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["event_type"].clone())
        .collect();
    assert_eq!(
        event_types,
        vec![json!("ci_failed"), json!("ci_failed")],
        "{got_typed:?}"
    );
    let log = hub.tool(
        "list_webhook_deliveries",
        json!({"webhook_id": p["webhook_id"]}),
    );
    assert_eq!(log["pending"], json!(0), "{log}");
    assert_eq!(log["deliveries"], json!([]), "{log}");
    assert!(
        paused.received().is_empty(),
        "a paused webhook gets nothing"
    );
}

#[test]
fn include_system_delivers_session_lifecycle_events() {
    let hub = Hub::start();
    let system = WebhookSink::ok();
    let plain = WebhookSink::ok();
    let reply = hub.tool(
        "register_webhook",
        json!({"url": system.url, "include_system": true}),
    );
    assert_eq!(reply["include_system"], true);
    let plain_id = register(&hub, json!({"url": plain.url}));
    let listed = hub.tool("list_webhooks", json!({}));
    assert_eq!(listed[1]["include_system"], true, "{listed}");
    assert!(listed[0].get("include_system").is_none(), "{listed}");

    hub.register("watched", Some("w1"));
    hub.tool("unregister_session", json!({"session_id": "w1"}));
    hub.publish("s", "note", "marker", "all");
    let mut got = system.wait_for(3, DEADLINE);
    // Up to 4 deliveries to an endpoint are in flight at once, so they may
    // arrive in any order: read them in event order.
    got.sort_by_key(event_id);
    let types: Vec<Value> = got.iter().map(|r| r.json()["event_type"].clone()).collect();
    assert_eq!(
        types,
        [
            json!("session_registered"),
            json!("session_unregistered"),
            json!("note")
        ]
    );
    plain.wait_for(1, DEADLINE);
    // The receiver has the request before the hub records its outcome:
    // wait for the record, after which nothing more can be sent.
    wait_until("the delivery to be recorded", DEADLINE, || {
        (pending(&hub, plain_id) == 0).then_some(())
    });
    let plain_types: Vec<Value> = plain
        .received()
        .iter()
        .map(|r| r.json()["event_type"].clone())
        .collect();
    assert_eq!(plain_types, [json!("note")], "lifecycle events are opt-in");
}
