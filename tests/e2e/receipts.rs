//! End-to-end tests: receipts for direct messages — stored, pushed (the
//! recipient's proxy delivered it), read (the recipient's cursor passed it)
//! — and the recipient's state, through real proxies.

use std::time::Duration;

use serde_json::{Value, json};
use support::proxy::Proxy;
use support::{Cli, Hub, wait_until};

use crate::claims::registered_proxy as proxy_named;

const DEADLINE: Duration = Duration::from_secs(30);

fn status_of(proxy: &mut Proxy, event_id: u64) -> Value {
    let list = proxy.call_ok("message_status", json!({"event_ids": [event_id]}));
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    list[0].clone()
}

#[test]
fn a_direct_message_goes_from_stored_to_pushed_to_read() {
    let hub = Hub::start();
    let (mut alice, alice_id) = proxy_named(&hub, "alice", &[]);
    // Bob is on the bus, but his proxy is not running yet.
    let bob_id = hub.register("bob", Some("bob-client"))["session_id"]
        .as_str()
        .expect("bob's session")
        .to_owned();

    let sent = alice.call_ok(
        "publish_event",
        json!({"event_type": "question", "payload": "can you review x.rs?", "channel": format!("session:{bob_id}")}),
    );
    let id = sent["event_id"].as_u64().expect("an event id");
    let stored = status_of(&mut alice, id);
    assert_eq!(stored["status"], "stored", "{stored}");
    assert_eq!(stored["recipient"], bob_id.as_str());
    assert_eq!(stored["recipient_name"], "bob");
    assert_eq!(stored["recipient_state"], "live");
    assert!(stored["pushed_at"].is_null() && stored["read_at"].is_null());

    // Bob's proxy resumes his session and pushes the message into it.
    let (mut bob, resumed) =
        proxy_named(&hub, "bob", &[("AGENT_EVENT_BUS_CLIENT_ID", "bob-client")]);
    assert_eq!(resumed, bob_id);
    let meta_id = id.to_string();
    bob.wait_notifications(DEADLINE, |all| {
        all.iter()
            .find(|n| n["params"]["meta"]["event_id"] == meta_id.as_str())
            .cloned()
    })
    .expect("bob's proxy pushed the message");
    let pushed = wait_until("the push to be reported", DEADLINE, || {
        let s = status_of(&mut alice, id);
        (s["status"] == "pushed").then_some(s)
    });
    assert!(
        pushed["pushed_at"].is_string() && pushed["read_at"].is_null(),
        "{pushed}"
    );

    // Bob reads it: his cursor passes it.
    let page = bob.call_ok("get_events", json!({"resume": true, "order": "asc"}));
    let ids: Vec<u64> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["id"].as_u64())
        .collect();
    assert!(ids.contains(&id), "{page}");
    let read = status_of(&mut alice, id);
    assert_eq!(read["status"], "read", "{read}");
    assert!(read["read_at"].is_string() && read["pushed_at"].is_string());

    // The sender sees the same on its own messages when it asks.
    let mine = alice.call_ok(
        "get_events",
        json!({"receipts": true, "peek": true, "order": "desc"}),
    );
    let dm = mine["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["id"] == id)
        .cloned()
        .expect("alice's message");
    assert_eq!(dm["receipt"]["status"], "read", "{dm}");
    assert_eq!(dm["session_id"], alice_id.as_str());
    let plain = alice.call_ok("get_events", json!({"peek": true, "order": "desc"}));
    assert!(
        plain["events"]
            .as_array()
            .expect("events")
            .iter()
            .all(|e| e.get("receipt").is_none()),
        "receipts only when asked"
    );
}

#[test]
fn a_message_to_an_ended_session_shows_the_recipient_ended() {
    let hub = Hub::start();
    let (mut alice, _) = proxy_named(&hub, "alice", &[]);
    let gone = hub.register("gone", None)["session_id"]
        .as_str()
        .expect("a session")
        .to_owned();
    hub.tool("unregister_session", json!({"session_id": gone}));
    let sent = alice.call_ok(
        "publish_event",
        json!({"event_type": "ping", "payload": "still there?", "channel": format!("session:{gone}")}),
    );
    let id = sent["event_id"].as_u64().expect("an event id");
    let broadcast = alice.call_ok(
        "publish_event",
        json!({"event_type": "note", "payload": "hello all"}),
    );
    let list = alice.call_ok(
        "message_status",
        json!({"event_ids": [id, broadcast["event_id"], 999_999]}),
    );
    assert_eq!(list[0]["recipient_state"], "ended", "{list}");
    assert_eq!(list[0]["status"], "stored");
    assert!(
        list[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("Not a direct message")),
        "{list}"
    );
    assert_eq!(list[2]["error"], "Event not found");

    let bad = alice.call("message_status", json!({"event_ids": ["x"]}));
    assert!(bad.is_error(), "{}", bad.text());
    let bad = alice.call("message_status", json!({}));
    assert!(bad.is_error(), "{}", bad.text());
}

#[test]
fn a_wait_hook_that_prints_a_message_reports_it_pushed_and_an_ack_reads_it() {
    let hub = Hub::start();
    let state = tempfile::tempdir().unwrap();
    let sid = |reply: Value| reply["session_id"].as_str().expect("a session").to_owned();
    let me = sid(hub.register("sleeper", Some("sleeper-1")));
    let other = sid(hub.register("caller", Some("caller-1")));
    let waiter = Cli::new(&hub).env("AGENT_EVENT_BUS_STATE_DIR", state.path().to_str().unwrap());
    let status =
        |id: u64| hub.tool("message_status", json!({"event_ids": [id]}))[0]["status"].clone();

    // A first wait saves where it stands; the message arrives after it.
    let out = waiter.run(&["wait", "--session-id", &me, "--timeout", "1"]);
    assert_eq!(out.code, 0, "{out:#?}");
    let dm = hub.publish(&other, "question", "ship it?", &format!("session:{me}"));
    assert_eq!(status(dm), "stored");
    let out = waiter.run(&["wait", "--session-id", &me, "--timeout", "30"]);
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("ship it?"), "{out:#?}");
    assert_eq!(status(dm), "pushed");

    let acked = hub.tool(
        "ack_events",
        json!({"session_id": me, "cursor": dm.to_string()}),
    );
    assert_eq!(acked["success"], true, "{acked}");
    assert_eq!(status(dm), "read");
}
