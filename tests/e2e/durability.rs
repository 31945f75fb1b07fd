//! End-to-end tests: a restarted hub has every session, cursor, event and
//! webhook; a hub killed with SIGKILL mid-publish keeps every event it
//! acknowledged, with gap-free ids; a database that is not ours is refused.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use support::Hub;

#[test]
fn a_restart_keeps_sessions_cursors_events_and_webhooks() {
    let mut hub = Hub::start();
    hub.register("keeper", Some("k1"));
    hub.publish("k1", "t", "first", "all");
    let consumed = hub.tool("get_events", json!({"session_id": "k1", "resume": true}));
    let cursor = consumed["next_cursor"].clone();
    let second = hub.publish("k1", "t", "second", "all");
    hub.tool(
        "register_webhook",
        json!({"url": "http://127.0.0.1:9/x", "secret": "s"}),
    );
    hub.restart();

    let sessions = hub.tool("list_sessions", json!({}));
    assert_eq!(sessions[0]["session_id"], "k1");
    let resumed = hub.tool(
        "get_events",
        json!({"session_id": "k1", "resume": true, "order": "asc"}),
    );
    assert_eq!(
        resumed["events"].as_array().unwrap().len(),
        1,
        "the cursor survived: {resumed} (was {cursor})"
    );
    assert_eq!(resumed["events"][0]["id"].as_u64(), Some(second));
    let hooks = hub.tool("list_webhooks", json!({}));
    assert_eq!(hooks[0]["has_secret"], true);
    let again = hub.register("keeper", Some("k1"));
    assert_eq!(again["resumed"], true);
    let next = hub.publish("k1", "t", "third", "all");
    assert_eq!(next, second + 1, "ids continue without a gap");
}

#[test]
fn sigkill_mid_publish_loses_no_acknowledged_event() {
    let mut hub = Hub::start();
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let url = hub.url.clone();
    let token = hub.token().to_owned();
    let mut writers = Vec::new();
    for w in 0..8 {
        let acked = acked.clone();
        let (url, token) = (url.clone(), token.clone());
        writers.push(std::thread::spawn(move || {
            let client = shared::HubClient::new(&url, Some(token.clone())).unwrap();
            let rt = support::rt();
            for i in 0..10_000 {
                let out = rt.block_on(client.call_tool(
                    "publish_event",
                    json!({"event_type": "load", "payload": format!("{w}-{i}")}),
                ));
                match out {
                    Ok(o) if !o.is_error() => {
                        let id = o.value()["event_id"].as_u64().expect("an id");
                        acked.lock().unwrap().push(id);
                    }
                    _ => return, // the hub is gone
                }
            }
        }));
    }
    support::wait_until(
        "a few hundred acknowledged publishes",
        Duration::from_secs(60),
        || (acked.lock().unwrap().len() >= 300).then_some(()),
    );
    hub.kill9();
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    hub.restart();

    let client = hub.client();
    let rt = support::rt();
    let mut seen = Vec::new();
    let mut cursor = "0".to_owned();
    loop {
        let page = rt.block_on(support::call(
            &client,
            "get_events",
            json!({"cursor": cursor, "order": "asc", "limit": 1000}),
        ));
        let events = page["events"].as_array().unwrap();
        seen.extend(events.iter().map(|e| e["id"].as_u64().unwrap()));
        if page["has_more"] != true {
            break;
        }
        cursor = page["next_cursor"].as_str().unwrap().to_owned();
    }
    let expected: Vec<u64> = (1..=seen.len() as u64).collect();
    assert_eq!(seen, expected, "ids are gap-free");
    let max = seen.last().copied().unwrap_or(0);
    let lost: Vec<&u64> = acked.iter().filter(|id| **id > max).collect();
    assert!(
        lost.is_empty(),
        "acknowledged but lost after SIGKILL: {} of {}",
        lost.len(),
        acked.len()
    );
}

#[test]
fn a_database_that_is_not_redb_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.db");
    let original = b"SQLite format 3\0 pretend this is the original hub's data".to_vec();
    std::fs::write(&path, &original).unwrap();
    let out = support::command("agent-event-bus")
        .args(["--port", "0", "--db"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not an agent-event-bus database") && stderr.contains("SQLite"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        original,
        "nothing was overwritten"
    );
}

#[test]
fn a_second_hub_on_the_same_file_is_refused() {
    let hub = Hub::start();
    let out = support::command("agent-event-bus")
        .args(["--port", "0", "--db"])
        .arg(hub.db_path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in use by another agent-event-bus"),
        "{stderr}"
    );
}

#[test]
fn retention_keeps_the_newest_events_and_ids_go_on() {
    let hub = Hub::start_with(support::HubOptions {
        args: vec!["--retain-events".into(), "3".into()],
        ..Default::default()
    });
    let mut last = 0;
    for i in 0..10 {
        last = hub.publish("s", "t", &i.to_string(), "all");
    }
    let kept = support::wait_until("old events to be pruned", Duration::from_secs(30), || {
        let page = hub.tool("get_events", json!({"order": "asc", "limit": 100}));
        let ids: Vec<u64> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_u64().unwrap())
            .collect();
        (ids.len() == 3).then_some(ids)
    });
    assert_eq!(kept, vec![last - 2, last - 1, last]);
    assert_eq!(
        hub.publish("s", "t", "next", "all"),
        last + 1,
        "ids are never reused"
    );
}
