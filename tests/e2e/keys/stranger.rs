//! A client holding the hub's credential but not a keyed session's key:
//! each call that would act as the session is refused, and afterwards the
//! session's cursor, claims, receipts, heartbeat and lease are as they were
//! and no event is attributed to it.

use std::time::Duration;

use serde_json::{Value, json};
use shared::HubClient;
use support::{Hub, wait_until};

use super::{
    ask, assert_keyed, attributed_after, direct_message, keyed_session, listed, status, tip,
};

/// Every call that acts as session `id` (client id `client_id`), as a
/// stranger would make it; each must be refused as keyed.
fn acting_as(id: &str, client_id: &str, unread: u64) -> Vec<(&'static str, Value)> {
    let host = shared::config::hostname();
    vec![
        (
            "publish_event",
            json!({"session_id": id, "event_type": "forged", "payload": "as someone else",
                   "channel": "session:peer"}),
        ),
        (
            "get_events",
            json!({"session_id": id, "resume": true, "order": "asc"}),
        ),
        (
            "get_events",
            json!({"session_id": id, "resume": true, "peek": true, "receipts": true}),
        ),
        (
            "get_events",
            json!({"session_id": id, "channel": format!("session:{id}"), "wait_seconds": 1}),
        ),
        (
            "ack_events",
            json!({"session_id": id, "cursor": unread.to_string()}),
        ),
        ("claim", json!({"session_id": id, "resource": "task:new"})),
        (
            "claim",
            json!({"session_id": id, "resource": "task:held", "release": true}),
        ),
        (
            "message_pushed",
            json!({"session_id": id, "event_ids": [unread]}),
        ),
        (
            "register_session",
            json!({"name": "usurper", "client_id": client_id, "machine": host}),
        ),
        (
            "register_session",
            json!({"name": "usurper", "client_id": client_id, "machine": host, "key": true}),
        ),
        ("unregister_session", json!({"session_id": id})),
        (
            "unregister_session",
            json!({"client_id": client_id, "machine": host}),
        ),
    ]
}

/// Makes every call of [`acting_as`] as `stranger`; each is refused.
fn try_everything(stranger: &HubClient, id: &str, client_id: &str, unread: u64, wrong_key: bool) {
    for (tool, args) in acting_as(id, client_id, unread) {
        let reply = ask(stranger, tool, args.clone());
        assert_keyed(&reply, id);
        let hint = reply["hint"].as_str().unwrap_or_default();
        let says = if wrong_key {
            "is not session"
        } else {
            "sent no key"
        };
        assert!(hint.contains(says), "{tool}({args}): {reply}");
    }
}

#[test]
fn a_client_without_the_key_acts_as_a_keyed_session_in_no_way() {
    let hub = Hub::start();
    let (id, _, owner) = keyed_session(&hub, "victim", json!({"lease_seconds": 60}));
    let client_id = "victim-client";
    // Its state, set by its owner: a claim, a consumed message, an unread one.
    let held = ask(
        &owner,
        "claim",
        json!({"session_id": id, "resource": "task:held"}),
    );
    assert_eq!(held["already_held"], false, "{held}");
    let read = direct_message(&hub, &id, "read me");
    let page = ask(
        &owner,
        "get_events",
        json!({"session_id": id, "resume": true, "order": "asc"}),
    );
    assert!(
        page["events"].as_array().is_some_and(|e| !e.is_empty()),
        "{page}"
    );
    assert_eq!(status(&hub, read), "read");
    let unread = direct_message(&hub, &id, "unread");
    let cursor = ask(
        &owner,
        "register_session",
        json!({"name": "victim", "client_id": client_id, "machine": shared::config::hostname()}),
    )["cursor"]
        .clone();
    assert!(cursor.as_str().is_some(), "{cursor}");
    // The scenario: past the hub's one-second coalescing of heartbeats, so
    // any renewal by the calls below would show.
    std::thread::sleep(Duration::from_millis(1100));
    let before = listed(&hub, &id).expect("live");
    let start = tip(&hub);

    // A stranger presenting no key, and one presenting its own session's key.
    try_everything(&hub.client(), &id, client_id, unread, false);
    let (_, _, other) = keyed_session(&hub, "stranger", json!({}));
    try_everything(&other, &id, client_id, unread, true);

    // A sentinel bounds what the calls above could have published.
    let sentinel = hub.publish("anonymous", "sentinel", "after the attempts", "all");
    let forged = attributed_after(&hub, &id, start);
    assert!(forged.is_empty(), "events attributed to it: {forged:?}");
    assert!(support::events(&hub).iter().any(|e| e["id"] == sentinel));

    let after = listed(&hub, &id).expect("still live");
    assert_eq!(
        after["last_heartbeat"], before["last_heartbeat"],
        "not renewed"
    );
    assert_eq!(after["name"], "victim", "not taken over");
    assert_eq!(after["keyed"], true);
    let claims = hub.tool("list_claims", json!({"prefix": "task:"}));
    let claims: Vec<(&Value, &Value)> = claims
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| (&c["resource"], &c["session_id"]))
        .filter(|(_, holder)| *holder == &json!(id))
        .collect();
    assert_eq!(claims, [(&json!("task:held"), &json!(id))], "its claims");
    assert_eq!(status(&hub, unread), "stored", "no receipt forged or read");
    // Its own key still does all of it; the cursor is where it was, before
    // the unread message, and its heartbeat now moves.
    let resumed = ask(
        &owner,
        "register_session",
        json!({"name": "victim", "client_id": client_id, "machine": shared::config::hostname()}),
    );
    assert_eq!(resumed["cursor"], cursor, "{resumed}");
    assert_eq!(resumed["session_id"], id);
    let page = ask(
        &owner,
        "get_events",
        json!({"session_id": id, "resume": true, "order": "asc"}),
    );
    assert!(
        page["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["id"] == unread),
        "{page}"
    );
    assert_eq!(status(&hub, unread), "read");
    assert_ne!(
        listed(&hub, &id).expect("live")["last_heartbeat"],
        before["last_heartbeat"],
        "the owner's calls renew it"
    );
    let gone = ask(&owner, "unregister_session", json!({"session_id": id}));
    assert_eq!(gone["success"], true, "{gone}");
}

#[test]
fn naming_a_keyed_session_never_keeps_it_alive() {
    let hub = Hub::start();
    let (id, _, owner) = keyed_session(&hub, "fading", json!({"lease_seconds": 2}));
    let stranger = hub.client();
    // Named over and over while its lease runs out; it ends all the same.
    wait_until("the lease to lapse", Duration::from_secs(20), || {
        for (tool, args) in [
            ("get_events", json!({"session_id": id, "peek": true})),
            (
                "publish_event",
                json!({"session_id": id, "event_type": "ping", "payload": "p"}),
            ),
        ] {
            assert_keyed(&ask(&stranger, tool, args), &id);
        }
        listed(&hub, &id).is_none().then_some(())
    });
    let ended = support::events(&hub)
        .into_iter()
        .find(|e| e["event_type"] == "session_unregistered" && e["session_id"] == id)
        .expect("its end is announced");
    assert!(
        ended["payload"]
            .as_str()
            .is_some_and(|p| p.ends_with("(lease expired)")),
        "{ended}"
    );
    // A lapsed session keeps its key: only its owner brings it back.
    let host = shared::config::hostname();
    let back = json!({"name": "fading", "client_id": "fading-client", "machine": host});
    assert_keyed(&ask(&stranger, "register_session", back.clone()), &id);
    assert!(listed(&hub, &id).is_none());
    let revived = ask(&owner, "register_session", back);
    assert_eq!(
        (&revived["session_id"], &revived["resumed"]),
        (&json!(id), &json!(true))
    );
    assert!(listed(&hub, &id).is_some());
}
