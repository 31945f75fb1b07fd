//! End-to-end tests: webhook deliveries reach a real local receiver, signed
//! so that an independent HMAC check passes, filtered by channel and type;
//! retried with one `webhook-id` until they succeed, honouring `Retry-After`;
//! one hanging endpoint never delays another; 410 and a day of failures
//! disable; deliveries pending at a SIGKILL arrive after restart; the log,
//! redelivery and ping, from tools and the CLI.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use support::sink::{Answer, Received, WebhookSink};
use support::{Cli, Hub, HubOptions, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);

/// A hub with these extra flags.
fn hub_with(args: &[&str]) -> Hub {
    Hub::start_with(HubOptions {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        ..Default::default()
    })
}

/// Registers a webhook and returns its id.
/// Deliveries of `webhook_id` still owed an attempt, in flight included: an
/// attempt leaves the outbox only when its outcome is recorded, so 0 proves
/// nothing more will be sent without a fresh publish or redelivery.
fn pending(hub: &Hub, webhook_id: u64) -> u64 {
    let reply = hub.tool("list_webhook_deliveries", json!({"webhook_id": webhook_id}));
    reply["pending"]
        .as_u64()
        .unwrap_or_else(|| panic!("no pending count in {reply}"))
}

fn register(hub: &Hub, args: Value) -> u64 {
    let reply = hub.tool("register_webhook", args);
    reply["webhook_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no webhook_id in {reply}"))
}

/// The webhook's delivery log (newest first).
fn log(hub: &Hub, webhook_id: u64) -> Vec<Value> {
    let reply = hub.tool(
        "list_webhook_deliveries",
        json!({"webhook_id": webhook_id, "limit": 1000}),
    );
    reply["deliveries"]
        .as_array()
        .unwrap_or_else(|| panic!("no deliveries in {reply}"))
        .clone()
}

/// Polls the delivery log until `check` holds for it.
fn wait_for_log(
    hub: &Hub,
    webhook_id: u64,
    what: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    support::wait_until(what, DEADLINE, || {
        let rows = log(hub, webhook_id);
        check(&rows).then_some(rows)
    })
}

/// Every webhook, paused and disabled ones too.
fn webhook_info(hub: &Hub, webhook_id: u64) -> Value {
    let list = hub.tool("list_webhooks", json!({"active_only": false}));
    list.as_array()
        .unwrap()
        .iter()
        .find(|w| w["webhook_id"].as_u64() == Some(webhook_id))
        .cloned()
        .unwrap_or_else(|| panic!("webhook {webhook_id} not in {list}"))
}

fn event_id(r: &Received) -> u64 {
    r.json()["event_id"].as_u64().expect("an event_id")
}

/// Checks both signatures of one request independently of the hub's code,
/// and that its Standard Webhooks timestamp is within a 5-minute window.
pub(crate) fn assert_signed(r: &Received, secret: &str) {
    let mut hex = String::new();
    for b in hmac(secret, &r.body) {
        hex.push_str(&format!("{b:02x}"));
    }
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
        base64::engine::general_purpose::STANDARD.encode(hmac(secret, &signed))
    );
    assert_eq!(r.headers["webhook-signature"], want);
}

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
fn gone_disables_the_webhook() {
    let hub = Hub::start();
    let gone = WebhookSink::with(|_| (410, Duration::ZERO));
    let marker = WebhookSink::ok();
    let id = register(&hub, json!({"url": gone.url}));
    register(&hub, json!({"url": marker.url}));
    hub.publish("s", "t", "first", "all");
    let rows = wait_for_log(&hub, id, "the 410", |rows| !rows.is_empty());
    assert_eq!(rows[0]["status"], "failed");
    assert_eq!(rows[0]["status_code"], 410);
    let info = webhook_info(&hub, id);
    assert_eq!(info["active"], false);
    assert!(
        info["disabled_reason"].as_str().unwrap().contains("410"),
        "{info}"
    );
    assert!(info["disabled_at"].is_string(), "{info}");
    assert_eq!(
        hub.tool("list_webhooks", json!({}))
            .as_array()
            .unwrap()
            .len(),
        1,
        "only the live one is listed by default"
    );

    hub.publish("s", "t", "second", "all");
    marker.wait_for(2, DEADLINE);
    assert_eq!(
        pending(&hub, id),
        0,
        "nothing queued for a disabled endpoint"
    );
    assert_eq!(
        gone.received().len(),
        1,
        "a gone endpoint gets nothing more"
    );

    let listed = Cli::new(&hub).run(&["webhook", "list", "--all"]);
    assert!(
        listed
            .stdout
            .contains("Disabled by the hub: the endpoint answered 410 Gone"),
        "{listed:?}"
    );
    // Enabling again clears the hub's reason.
    hub.tool(
        "set_webhook_active",
        json!({"webhook_id": id, "active": true}),
    );
    let info = webhook_info(&hub, id);
    assert_eq!(info["active"], true);
    assert!(info.get("disabled_reason").is_none(), "{info}");
}

#[test]
fn failing_for_the_configured_span_disables_the_webhook() {
    let hub = hub_with(&[
        "--webhook-disable-after",
        "1s",
        "--webhook-retry-delays",
        "200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms",
    ]);
    let down = WebhookSink::with(|_| (500, Duration::ZERO));
    let id = register(&hub, json!({"url": down.url}));
    hub.publish("s", "t", "p", "all");
    let info = support::wait_until("the webhook to be disabled", DEADLINE, || {
        let info = webhook_info(&hub, id);
        (info["active"] == false).then_some(info)
    });
    let reason = info["disabled_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("every attempt failed for 1s (since "),
        "{reason}"
    );
    assert!(info["failing_since"].is_string() && info["disabled_at"].is_string());
    let reply = hub.tool("list_webhook_deliveries", json!({"webhook_id": id}));
    assert_eq!(reply["pending"], 0, "{reply}");
    assert_eq!(reply["deliveries"][0]["status"], "failed");
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

#[test]
fn deny_private_is_checked_at_registration_and_after_dns_at_send_time() {
    let hub = hub_with(&["--webhook-deny-private"]);
    let sink = WebhookSink::ok();
    let literal = hub.tool_raw("register_webhook", json!({"url": sink.url}));
    assert!(literal.is_error());
    assert!(
        literal.text().contains("private address"),
        "{}",
        literal.text()
    );

    // A name is resolved when sending: localhost resolves to loopback only.
    let by_name = sink.url.replace("127.0.0.1", "localhost");
    let id = register(&hub, json!({"url": by_name}));
    hub.publish("s", "t", "p", "all");
    let rows = wait_for_log(&hub, id, "the refused attempt", |r| !r.is_empty());
    assert_eq!(
        rows[0]["status"], "failed",
        "a policy refusal is not retried"
    );
    let error = rows[0]["error"].as_str().unwrap();
    assert!(error.contains("--webhook-deny-private"), "{error}");
    let ping = hub.tool("test_webhook", json!({"webhook_id": id}));
    assert_eq!(ping["success"], false);
    assert!(
        sink.received().is_empty(),
        "nothing reached the private target"
    );
}

/// A hub whose environment sends HTTP through `proxy`.
fn hub_behind_proxy(proxy: &WebhookSink, args: &[&str]) -> Hub {
    let proxy_url = proxy.url.trim_end_matches("/hook").to_owned();
    Hub::start_with(HubOptions {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        env: ["HTTP_PROXY", "http_proxy", "ALL_PROXY"]
            .into_iter()
            .map(|k| (k.to_owned(), proxy_url.clone()))
            .collect(),
    })
}

#[test]
fn deny_private_holds_when_the_environment_names_a_proxy() {
    // The "proxy" is a local receiver: whatever reaches it has left the
    // hub for a loopback address.
    let proxy = WebhookSink::ok();
    let target = WebhookSink::ok();
    let by_name = target.url.replace("127.0.0.1", "localhost");

    let hub = hub_behind_proxy(&proxy, &["--webhook-deny-private"]);
    let id = register(&hub, json!({"url": by_name}));
    hub.publish("s", "t", "p", "all");
    let rows = wait_for_log(&hub, id, "the refused attempt", |r| !r.is_empty());
    assert_eq!(rows[0]["status"], "failed", "{rows:?}");
    let error = rows[0]["error"].as_str().unwrap();
    assert!(error.contains("--webhook-deny-private"), "{error}");
    assert!(
        proxy.received().is_empty(),
        "nothing went through the proxy"
    );
    assert!(target.received().is_empty(), "nothing reached the target");

    // Without the policy the environment's proxy is used as usual.
    let open = hub_behind_proxy(&proxy, &[]);
    let id = register(&open, json!({"url": by_name}));
    let event = open.publish("s", "t", "p", "all");
    let via_proxy = proxy.wait_for(1, DEADLINE);
    assert_eq!(event_id(&via_proxy[0]), event);
    assert!(
        via_proxy[0].path.starts_with("http://localhost:"),
        "sent to the proxy in absolute form: {}",
        via_proxy[0].path
    );
    wait_for_log(&open, id, "the delivery", |r| {
        r.first().is_some_and(|row| row["status"] == "delivered")
    });
    assert!(
        target.received().is_empty(),
        "the proxy, not the target, got it"
    );
}

#[test]
fn credentials_in_a_webhook_url_are_never_shown() {
    let hub = Hub::start();
    let sink = WebhookSink::ok();
    let with_credentials = sink
        .url
        .replace("http://", "http://hook-user:hunter2-secret@");
    let reply = hub.tool("register_webhook", json!({"url": with_credentials}));
    let shown = sink.url.replace("http://", "http://***@");
    assert_eq!(reply["url"], shown, "{reply}");
    let id = reply["webhook_id"].as_u64().unwrap();
    assert_eq!(webhook_info(&hub, id)["url"], shown);

    // The receiver still gets the credentials it was given.
    hub.publish("s", "t", "p", "all");
    let got = sink.wait_for(1, DEADLINE);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("hook-user:hunter2-secret")
    );
    assert_eq!(got[0].headers.get("authorization"), Some(&expected));

    let cli = Cli::new(&hub);
    for args in [
        &["webhook", "list"][..],
        &["webhook", "list", "--all"][..],
        &["webhook", "deliveries", &id.to_string(), "--json"][..],
    ] {
        let out = cli.run(args);
        assert_eq!(out.code, 0, "{out:?}");
        assert!(!out.stdout.contains("hunter2"), "{args:?}: {out:?}");
    }
    assert!(
        cli.run(&["webhook", "list"])
            .stdout
            .contains("***@127.0.0.1"),
        "the list shows where it goes"
    );
    assert!(!hub.log().contains("hunter2"), "never logged");
}

#[test]
fn cli_shows_the_log_redelivers_and_pings() {
    let hub = Hub::start();
    let sink = WebhookSink::ok();
    let id = register(&hub, json!({"url": sink.url, "secret": "pssst"}));
    let event = hub.publish("s", "t", "p", "all");
    sink.wait_for(1, DEADLINE);
    wait_for_log(&hub, id, "the delivery", |r| !r.is_empty());
    let cli = Cli::new(&hub);
    let ids = id.to_string();

    let out = cli.run(&["webhook", "deliveries", &ids]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with(&format!(
            "Deliveries for webhook #{id} (newest first; 0 pending):"
        )),
        "{out:?}"
    );
    let row = out.stdout.lines().nth(2).unwrap_or_default();
    assert!(
        row.contains(&format!("event {event}")) && row.contains("delivered") && row.contains("200"),
        "{out:?}"
    );
    let json_out = cli.run(&["webhook", "deliveries", &ids, "--json"]);
    let reply = json_out.json();
    assert_eq!(
        reply["deliveries"][0]["delivery_id"],
        format!("evt_{event}_wh_{id}")
    );

    let again = cli.run(&["webhook", "redeliver", &ids, "--event", &event.to_string()]);
    assert_eq!(
        again.stdout,
        format!("Event #{event} queued for webhook #{id}\n"),
        "{again:?}"
    );
    let got = sink.wait_for(2, DEADLINE);
    assert_eq!(got[1].headers["webhook-id"], got[0].headers["webhook-id"]);
    assert_eq!(event_id(&got[1]), event);

    let ping = cli.run(&["webhook", "test", &ids]);
    assert_eq!(ping.code, 0, "{ping:?}");
    assert!(
        ping.stdout
            .starts_with(&format!("Ping to webhook #{id} delivered (HTTP 200, ")),
        "{ping:?}"
    );
    let got = sink.wait_for(3, DEADLINE);
    assert_eq!(got[2].json()["event_type"], "ping");
    assert_eq!(got[2].json()["event_id"], 0);
    assert_signed(&got[2], "pssst");
    let out = cli.run(&["webhook", "deliveries", &ids, "--limit", "1"]);
    assert!(out.stdout.contains("  ping "), "{out:?}");

    let missing = cli.run(&["webhook", "redeliver", &ids, "--event", "9999"]);
    assert_eq!(missing.code, 1);
    assert_eq!(missing.stderr, "Failed: Event not found\n");
    let unknown = cli.run(&["webhook", "deliveries", "77"]);
    assert_eq!(unknown.code, 1);
    assert_eq!(unknown.stderr, "Failed: Webhook not found\n");

    let broken = WebhookSink::with(|_| (500, Duration::ZERO));
    let bid = register(&hub, json!({"url": broken.url}));
    let ping = cli.run(&["webhook", "test", &bid.to_string()]);
    assert_eq!(ping.code, 1, "{ping:?}");
    assert_eq!(
        ping.stderr,
        format!("Ping to webhook #{bid} failed: answered 500\n")
    );
    assert!(!hub.log().contains("pssst"), "secrets are never logged");
}

#[test]
fn a_redirect_is_not_followed() {
    let hub = hub_with(&["--webhook-retry-delays", "50ms"]);
    let elsewhere = WebhookSink::ok();
    let target = elsewhere.url.clone();
    let moved = WebhookSink::answering(move |_| Answer {
        status: 301,
        headers: vec![("location".into(), target.clone())],
        ..Default::default()
    });
    let id = register(&hub, json!({"url": moved.url}));
    hub.publish("s", "t", "p", "all");
    let rows = wait_for_log(&hub, id, "both attempts", |r| {
        r.first().is_some_and(|r| r["status"] == "failed")
    });
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1]["error"], "answered 301; redirects are not followed");
    assert!(
        elsewhere.received().is_empty(),
        "the redirect was not followed"
    );
}
