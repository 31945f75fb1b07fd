//! End-to-end tests: webhook deliveries reach a real local receiver, signed
//! so that an independent HMAC check passes, filtered by channel and type.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use support::Hub;
use support::sink::WebhookSink;

fn hmac(secret: &str, data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

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

    let hex: String = hmac("shh", &r.body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(r.headers["x-event-bus-signature"], format!("sha256={hex}"));

    let wid = &r.headers["webhook-id"];
    let ts = &r.headers["webhook-timestamp"];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        ts.parse::<u64>().unwrap().abs_diff(now) < 300,
        "timestamp within the replay window"
    );
    let mut signed = format!("{wid}.{ts}.").into_bytes();
    signed.extend_from_slice(&r.body);
    let want = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(hmac("shh", &signed))
    );
    assert_eq!(r.headers["webhook-signature"], want);

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
    let hub = Hub::start();
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
    std::thread::sleep(Duration::from_millis(500));
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
    let types: Vec<Value> = typed
        .received()
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["event_type"].clone())
        .collect();
    assert_eq!(
        types,
        vec![json!("ci_failed"), json!("ci_failed")],
        "{got_typed:?}"
    );
    assert!(
        paused.received().is_empty(),
        "a paused webhook gets nothing"
    );
    assert!(marker > 0);
}

#[test]
fn a_failing_receiver_is_retried() {
    let hub = Hub::start();
    let flaky = WebhookSink::with(|n| (if n < 2 { 500 } else { 200 }, Duration::ZERO));
    hub.tool("register_webhook", json!({"url": flaky.url}));
    hub.publish("s", "t", "p", "all");
    let got = flaky.wait_for(3, Duration::from_secs(15));
    let ids: Vec<&String> = got.iter().map(|r| &r.headers["webhook-id"]).collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "the same webhook-id on every attempt: {ids:?}"
    );
}

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
