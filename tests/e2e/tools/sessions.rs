//! Sessions through the tools: registered, resumed by client id, listed,
//! unregistered, refused or flagged once deleted, and ended when a lease
//! lapses, the process is gone or the session sits idle.

use std::time::Duration;

use serde_json::json;
use support::{Hub, sessions, wait_until};

use super::ids;

#[test]
fn register_creates_then_resumes_by_client_id() {
    let hub = Hub::start();
    let first = hub.register("alpha", Some("cc-1"));
    assert_eq!(
        first["session_id"], "cc-1",
        "a client_id is adopted as the id"
    );
    assert_eq!(first["resumed"], false);
    assert_eq!(first["repo"], "repo");
    assert_eq!(first["active_sessions"], 1);
    let display = first["display_id"].as_str().unwrap().to_owned();
    assert!(first["tip"].as_str().unwrap().contains(&display));
    let cursor: u64 = first["cursor"].as_str().unwrap().parse().unwrap();

    // The registration is announced, and the cursor is that event.
    let all = hub.tool("get_events", json!({"order": "asc"}));
    let announced = &all["events"][0];
    assert_eq!(announced["id"].as_u64(), Some(cursor));
    assert_eq!(announced["event_type"], "session_registered");
    assert_eq!(announced["signal_level"], "lifecycle");
    assert!(
        announced["payload"]
            .as_str()
            .unwrap()
            .starts_with("alpha started on")
    );

    let again = hub.register("alpha renamed", Some("cc-1"));
    assert_eq!(again["session_id"], "cc-1");
    assert_eq!(again["resumed"], true);
    assert_eq!(again["display_id"], display.as_str());
    assert_eq!(again["name"], "alpha renamed");
    assert!(again["tip"].as_str().unwrap().contains("Resuming"));
    let sessions = hub.tool("list_sessions", json!({}));
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    assert_eq!(sessions[0]["name"], "alpha renamed");
    // No second announcement on resume.
    assert_eq!(ids(&hub.tool("get_events", json!({}))).len(), 1);
}

#[test]
fn no_client_id_means_no_dedup_and_other_machines_never_overwrite() {
    let hub = Hub::start();
    let a = hub.register("a", None);
    let b = hub.register("a", None);
    assert_ne!(a["session_id"], b["session_id"]);

    let here = hub.tool(
        "register_session",
        json!({"name": "here", "client_id": "shared-id", "machine": "m1"}),
    );
    let there = hub.tool(
        "register_session",
        json!({"name": "there", "client_id": "shared-id", "machine": "m2"}),
    );
    assert_eq!(here["session_id"], "shared-id");
    assert_ne!(
        there["session_id"], "shared-id",
        "the second machine gets its own id"
    );
    assert_eq!(there["resumed"], false);
    let names: Vec<String> = sessions(&hub)
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        names.contains(&"here".to_owned()) && names.contains(&"there".to_owned()),
        "{names:?}"
    );
}

#[test]
fn list_sessions_shape_and_channels_counts() {
    let hub = Hub::start();
    let s = hub.register("one", Some("s1"));
    hub.register("two", Some("s2"));
    let list = hub.tool("list_sessions", json!({}));
    let item = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["session_id"] == "s1")
        .unwrap()
        .clone();
    for key in [
        "session_id",
        "display_id",
        "name",
        "machine",
        "repo",
        "cwd",
        "client_id",
        "registered_at",
        "last_heartbeat",
        "age_seconds",
        "subscribed_channels",
    ] {
        assert!(
            item.get(key).is_some(),
            "list_sessions item lacks {key}: {item}"
        );
    }
    assert!(
        item["registered_at"].as_str().unwrap().ends_with('Z'),
        "UTC timestamps"
    );
    assert_eq!(
        item["subscribed_channels"],
        json!([
            "all",
            "session:s1",
            "repo:repo",
            format!("machine:{}", s["machine"].as_str().unwrap())
        ])
    );
    let channels = hub.tool("list_channels", json!({}));
    let as_pairs: Vec<(String, u64)> = channels
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["channel"].as_str().unwrap().to_owned(),
                c["subscribers"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut sorted = as_pairs.clone();
    sorted.sort();
    assert_eq!(as_pairs, sorted, "sorted by channel");
    assert!(as_pairs.contains(&("all".to_owned(), 2)));
    assert!(as_pairs.contains(&("repo:repo".to_owned(), 2)));
    assert!(as_pairs.contains(&("session:s1".to_owned(), 1)));
}

#[test]
fn unregister_shapes() {
    let hub = Hub::start();
    hub.register("bye", Some("u1"));
    let done = hub.tool("unregister_session", json!({"session_id": "u1"}));
    assert_eq!(done["success"], true);
    assert_eq!(done["session_id"], "u1");
    assert_eq!(done["active_sessions"], 0);
    let page = hub.tool("get_events", json!({"limit": 1}));
    assert_eq!(page["events"][0]["event_type"], "session_unregistered");
    assert_eq!(page["events"][0]["session_id"], "u1");

    let again = hub.tool("unregister_session", json!({"session_id": "u1"}));
    assert_eq!(again["error"], "Session deleted");
    assert_eq!(again["session_deleted"], true);
    assert!(
        again["hint"]
            .as_str()
            .unwrap()
            .contains("nothing left to clean up")
    );
    assert!(again["deleted_at"].as_str().is_some());

    let unknown = hub.tool("unregister_session", json!({"session_id": "nope"}));
    assert_eq!(
        unknown,
        json!({"error": "Session not found", "session_id": "nope"})
    );
    let neither = hub.tool("unregister_session", json!({}));
    assert_eq!(
        neither,
        json!({"error": "Must provide either session_id or client_id"})
    );

    hub.tool(
        "register_session",
        json!({"name": "m", "client_id": "c9", "machine": "far"}),
    );
    let wrong_machine = hub.tool("unregister_session", json!({"client_id": "c9"}));
    assert_eq!(wrong_machine["error"], "Session not found");
    assert_eq!(wrong_machine["client_id"], "c9");
    let by_client = hub.tool(
        "unregister_session",
        json!({"client_id": "c9", "machine": "far"}),
    );
    assert_eq!(by_client["success"], true);
}

#[test]
fn deleted_sessions_are_refused_flagged_or_already_gone() {
    let hub = Hub::start();
    hub.register("ghost", Some("g1"));
    hub.tool("unregister_session", json!({"session_id": "g1"}));

    for args in [
        json!({"session_id": "g1", "resume": true}),
        json!({"session_id": "g1", "cursor": "0"}),
        json!({"session_id": "g1", "peek": true}),
        json!({"session_id": "g1", "channel": "all"}),
    ] {
        let r = hub.tool("get_events", args.clone());
        assert_eq!(r["error"], "Session deleted", "{args}");
        assert_eq!(r["session_deleted"], true);
        assert!(r["hint"].as_str().unwrap().contains("stop polling"));
        assert!(r.get("cursor").is_none());
    }
    let ack = hub.tool("ack_events", json!({"session_id": "g1", "cursor": "1"}));
    assert_eq!(ack["error"], "Session deleted");
    assert!(ack.get("cursor").is_none());

    let published = hub.tool(
        "publish_event",
        json!({"session_id": "g1", "event_type": "x", "payload": "late"}),
    );
    assert!(
        published.get("error").is_none(),
        "a deleted publisher is flagged, not refused"
    );
    assert_eq!(published["session_deleted"], true);
    assert!(published["hint"].as_str().unwrap().contains("stored"));
    let stored = hub.tool("get_events", json!({"limit": 1}));
    assert_eq!(stored["events"][0]["payload"], "late");
    assert_eq!(stored["events"][0]["session_id"], "g1");
    // Only one warning per session and tool, however often it calls.
    let log = hub.log();
    assert_eq!(
        log.matches("get_events: rejecting calls from a deleted session")
            .count(),
        1,
        "{log}"
    );

    // Registering again with the same client_id revives it, announced.
    let back = hub.register("ghost", Some("g1"));
    assert_eq!(back["resumed"], true);
    let announced = hub.tool("get_events", json!({"limit": 1}));
    assert_eq!(announced["events"][0]["event_type"], "session_registered");
    assert_eq!(announced["events"][0]["session_id"], "g1");
    assert!(
        hub.tool("get_events", json!({"session_id": "g1", "resume": true}))
            .get("error")
            .is_none()
    );
}

#[test]
fn a_lapsed_lease_ends_the_session_with_an_event() {
    let hub = Hub::start();
    let reg = hub.tool(
        "register_session",
        json!({"name": "leased", "client_id": "l1", "lease_seconds": 1}),
    );
    assert_eq!(reg["lease_seconds"], 1);
    wait_until("the lease to lapse", Duration::from_secs(15), || {
        sessions(&hub).is_empty().then_some(())
    });
    let last = hub.tool("get_events", json!({"limit": 1}));
    assert_eq!(last["events"][0]["event_type"], "session_unregistered");
    assert!(
        last["events"][0]["payload"]
            .as_str()
            .unwrap()
            .contains("lease expired")
    );
}

#[test]
fn a_local_session_whose_process_is_gone_is_ended() {
    let hub = Hub::start();
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("sleep runs");
    let pid = child.id();
    hub.tool(
        "register_session",
        json!({"name": "pid", "client_id": "p-1", "client_pid": pid, "machine": shared::config::hostname()}),
    );
    assert_eq!(sessions(&hub).len(), 1);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(sessions(&hub).is_empty());
    assert_eq!(
        hub.tool("get_events", json!({"limit": 1}))["events"][0]["event_type"],
        "session_unregistered"
    );
}

#[test]
fn idle_sessions_without_a_lease_time_out() {
    let hub = Hub::start_with(support::HubOptions {
        args: vec!["--idle-timeout-secs".into(), "1".into()],
        ..Default::default()
    });
    hub.register("idle", Some("i1"));
    wait_until(
        "the idle session to be ended",
        Duration::from_secs(15),
        || sessions(&hub).is_empty().then_some(()),
    );
}
