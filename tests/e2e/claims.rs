//! End-to-end tests: claims — advisory holds on resources that end with
//! their session — through real proxies and the hub.

use std::time::Duration;

use rustix::process::Signal;
use serde_json::{Value, json};
use support::proxy::Proxy;
use support::{Hub, wait_until};

/// A registration, a lease lapse plus the sweeper, or a hub restart, on a
/// loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(30);
const FILE: &str = "file:r/src/x.rs";

/// A proxy registered under `name` with a 3 s lease; returns its session id.
fn proxy_session(hub: &Hub, name: &str) -> (Proxy, String) {
    let mut proxy = Proxy::spawn(
        hub,
        &[
            ("AGENT_EVENT_BUS_SESSION_NAME", name),
            ("AGENT_EVENT_BUS_LEASE_SECONDS", "3"),
        ],
    );
    proxy.initialize();
    let id = wait_until(&format!("{name} to register"), DEADLINE, || {
        hub.tool("list_sessions", json!({}))
            .as_array()?
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["session_id"].as_str().unwrap_or_default().to_owned())
    });
    (proxy, id)
}

fn session(hub: &Hub, name: &str) -> String {
    let reply = hub.register(name, None);
    reply["session_id"]
        .as_str()
        .expect("a session id")
        .to_owned()
}

fn claim(hub: &Hub, session_id: &str, resource: &str, exclusive: bool) -> Value {
    hub.tool(
        "claim",
        json!({"session_id": session_id, "resource": resource, "exclusive": exclusive}),
    )
}

/// The events on `channel` of one type, oldest first.
fn events_of(hub: &Hub, channel: &str, event_type: &str) -> Vec<Value> {
    let page = hub.tool(
        "get_events",
        json!({"channel": channel, "order": "asc", "limit": 1000}),
    );
    page["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event_type"] == event_type)
        .cloned()
        .collect()
}

fn holders(reply: &Value) -> Vec<String> {
    assert_eq!(reply["error"], "Claimed", "{reply}");
    reply["held_by"]
        .as_array()
        .expect("held_by")
        .iter()
        .map(|h| h["session_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn a_claim_is_refused_naming_its_holder_and_passes_on_when_the_holders_lease_lapses() {
    let hub = Hub::start();
    let (mut a, a_id) = proxy_session(&hub, "alice");
    let (mut b, b_id) = proxy_session(&hub, "bob");

    let granted = a.call_ok("claim", json!({"resource": FILE, "note": "splitting x.rs"}));
    assert_eq!(granted["resource"], FILE);
    assert_eq!(granted["exclusive"], true);
    assert!(granted["claim_id"].as_u64().is_some(), "{granted}");
    let again = a.call_ok("claim", json!({"resource": FILE}));
    assert_eq!(
        again["claim_id"], granted["claim_id"],
        "claiming again is idempotent"
    );
    assert_eq!(again["already_held"], true);

    let refused = b.call_ok("claim", json!({"resource": FILE}));
    assert_eq!(holders(&refused), [a_id.clone()]);
    let held = &refused["held_by"][0];
    assert_eq!(held["name"], "alice");
    assert_eq!(held["note"], "splitting x.rs");
    assert!(held["display_id"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(held["since"].as_str().is_some(), "{held}");

    let listed = b.call_ok("list_claims", json!({"prefix": "file:r/"}));
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["session_id"], a_id.as_str());

    a.signal(Signal::KILL);
    a.wait_exit(DEADLINE);
    let mine = wait_until(
        "bob's claim to be granted after the lease",
        DEADLINE,
        || {
            let reply = b.call_ok("claim", json!({"resource": FILE}));
            reply.get("claim_id").is_some().then_some(reply)
        },
    );
    assert_eq!(mine["session_id"], b_id.as_str());

    let released = events_of(&hub, "repo:r", "claim_released");
    assert_eq!(released.len(), 1, "{released:?}");
    assert_eq!(released[0]["session_id"], a_id.as_str());
    assert_eq!(released[0]["signal_level"], "lifecycle");
    let why = released[0]["payload"].as_str().unwrap_or_default();
    assert!(why.contains("lease lapsed") && why.contains(FILE), "{why}");
    let granted = events_of(&hub, "repo:r", "claim_granted");
    let who: Vec<&str> = granted
        .iter()
        .map(|e| e["session_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(who, [a_id.as_str(), b_id.as_str()]);
    assert!(granted[1]["id"].as_u64() > released[0]["id"].as_u64());
}

#[test]
fn prefixes_overlap_both_ways_and_shared_claims_coexist() {
    let hub = Hub::start();
    let a = session(&hub, "a");
    let b = session(&hub, "b");
    let c = session(&hub, "c");

    // A directory claim covers the files under it, and the other way round.
    assert!(claim(&hub, &a, "file:r/src/", true)["claim_id"].is_u64());
    assert_eq!(holders(&claim(&hub, &b, FILE, true)), [a.clone()]);
    assert_eq!(holders(&claim(&hub, &b, "file:r/", false)), [a.clone()]);
    assert!(claim(&hub, &b, "file:r/srcx/y.rs", true)["claim_id"].is_u64());
    assert!(claim(&hub, &b, "file:r/docs/a.md", true)["claim_id"].is_u64());
    assert_eq!(
        holders(&claim(&hub, &c, "file:r/", true)),
        [b.clone(), a.clone(), b.clone()],
        "a claim on the repo meets every claim under it, in resource order"
    );

    // Shared claims coexist; an exclusive one meets them all.
    assert!(claim(&hub, &a, "task:7", false)["claim_id"].is_u64());
    assert!(claim(&hub, &b, "task:7", false)["claim_id"].is_u64());
    let mut both = holders(&claim(&hub, &c, "task:7", true));
    both.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(both, want);
    // An exclusive holder keeps shared claimers out too.
    assert!(claim(&hub, &c, "task:8", true)["claim_id"].is_u64());
    assert_eq!(holders(&claim(&hub, &a, "task:8", false)), [c.clone()]);
    // Upgrading a shared claim to exclusive is refused while others share it.
    assert_eq!(holders(&claim(&hub, &a, "task:7", true)), [b.clone()]);

    // Release frees it, with a claim_released that says so.
    let released = hub.tool(
        "claim",
        json!({"session_id": a, "resource": "file:r/src/", "release": true}),
    );
    assert_eq!(released["released"], true, "{released}");
    let not_held = hub.tool(
        "claim",
        json!({"session_id": a, "resource": "file:r/src/", "release": true}),
    );
    assert_eq!(not_held["released"], false);
    assert!(claim(&hub, &c, FILE, true)["claim_id"].is_u64());
    let why = events_of(&hub, "repo:r", "claim_released");
    assert_eq!(why.len(), 1);
    assert!(
        why[0]["payload"]
            .as_str()
            .unwrap_or_default()
            .ends_with("(released)")
    );
}

#[test]
fn claims_survive_a_hub_restart_and_end_when_their_session_does() {
    let mut hub = Hub::start();
    let a = session(&hub, "a");
    let b = session(&hub, "b");
    assert!(claim(&hub, &a, FILE, true)["claim_id"].is_u64());
    hub.restart();
    let listed = hub.tool("list_claims", json!({}));
    assert_eq!(listed[0]["resource"], FILE, "{listed}");
    assert_eq!(holders(&claim(&hub, &b, FILE, true)), [a.clone()]);

    hub.tool("unregister_session", json!({"session_id": a}));
    assert!(claim(&hub, &b, FILE, true)["claim_id"].is_u64());
    let released = events_of(&hub, "repo:r", "claim_released");
    assert_eq!(released.len(), 1);
    let why = released[0]["payload"].as_str().unwrap_or_default();
    assert!(why.contains("session ended"), "{why}");
    // An ended session can claim nothing.
    let refused = claim(&hub, &a, "task:1", true);
    assert_eq!(refused["error"], "Session deleted", "{refused}");
}

#[test]
fn bad_claims_are_refused_and_change_nothing() {
    let hub = Hub::start();
    let a = session(&hub, "a");
    for args in [
        json!({"session_id": a}),
        json!({"session_id": a, "resource": ""}),
        json!({"session_id": a, "resource": "file:r/\nx"}),
        json!({"session_id": a, "resource": "task:1", "exclusive": "maybe"}),
        json!({"resource": "task:1"}),
        json!({"session_id": a, "resource": "task:1", "owner": "me"}),
    ] {
        let out = hub.tool_raw("claim", args.clone());
        assert!(out.is_error(), "{args} was accepted: {}", out.text());
    }
    let unknown = claim(&hub, "no-such-session", "task:1", true);
    assert_eq!(unknown["error"], "Session not found");
    assert_eq!(hub.tool("list_claims", json!({})), json!([]));
}
