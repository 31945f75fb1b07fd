//! An imported bus answers as the original did: the current schema with
//! its events, sessions, cursors and signed webhooks, and the first schema
//! with the defaults the original read.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use support::original::{Original, SCHEMA_V1, local_iso};
use support::sink::WebhookSink;
use support::{Hub, HubOptions};

use super::{
    OFFSET_HOURS, SECRET, T0, assert_summary, current_original, import, names_in, now_secs,
};

fn ids(page: &Value) -> Vec<u64> {
    page["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {page}"))
        .iter()
        .map(|e| e["id"].as_u64().expect("an id"))
        .collect()
}

#[test]
fn an_imported_bus_answers_as_the_original_did() {
    let sink = WebhookSink::ok();
    let dir = Arc::new(tempfile::tempdir().expect("a temp dir"));
    let source = dir.path().join("data.db");
    let target = dir.path().join("data.redb");
    let now = now_secs();
    current_original(&source, &sink, now);
    let before = std::fs::read(&source).expect("read the original");

    let out = import(&[&source], &["--db", target.to_str().unwrap()]);
    assert_summary(
        &out,
        &[
            "(schema version 5)",
            "events:   120 (ids 1 to 120); the next published event gets id 121",
            "sessions: 3 (2 live, 1 ended)",
            "webhooks: 2 (1 active, 1 paused); the next registered gets id 4",
            "skipped:  nothing",
            "1 events whose payload_meta is not a JSON object",
        ],
    );
    assert_eq!(
        std::fs::read(&source).unwrap(),
        before,
        "the original is untouched"
    );
    assert_eq!(
        names_in(dir.path()),
        ["data.db", "data.redb"],
        "no -wal, -shm or temp file"
    );

    let hub = Hub::start_on(dir.clone(), HubOptions::default());

    // get_events pages through the history in the same order with the same cursors.
    let mut cursor = Value::Null;
    let mut seen = Vec::new();
    for (want, more) in [((1..=50), true), ((51..=100), true), ((101..=120), false)] {
        let page = hub.tool(
            "get_events",
            json!({"cursor": cursor, "limit": 50, "order": "asc"}),
        );
        assert_eq!(ids(&page), want.clone().collect::<Vec<_>>());
        assert_eq!(page["has_more"], more);
        assert_eq!(page["next_cursor"], want.end().to_string());
        cursor = page["next_cursor"].clone();
        seen.extend(ids(&page));
    }
    assert_eq!(seen, (1..=120).collect::<Vec<_>>());
    let newest = hub.tool("get_events", json!({"limit": 50}));
    assert_eq!(ids(&newest), (71..=120).rev().collect::<Vec<_>>());
    assert_eq!(newest["next_cursor"], "120");

    // Each event keeps its fields; its local time is now RFC 3339 UTC.
    let page = hub.tool(
        "get_events",
        json!({"cursor": "6", "limit": 4, "order": "asc"}),
    );
    let events = page["events"].as_array().unwrap();
    assert_eq!(
        events[0],
        json!({
            "id": 7, "event_type": "task_completed", "payload": "step 7",
            "session_id": "cli-alpha", "timestamp": "2026-11-29T16:04:34.051614Z",
            "channel": "repo:alpha", "correlation_id": null, "signal_level": "actionable",
            "title": "Build broke", "tags": ["ci", "urgent"]
        })
    );
    assert!(
        events[1].get("title").is_none(),
        "corrupt meta reads as none"
    );
    assert_eq!(events[1]["channel"], "session:beta-0001");
    assert_eq!(events[3]["correlation_id"], "thread-1");
    assert_eq!(events[3]["timestamp"], "2026-11-29T16:04:37.051614Z");
    let thread = hub.tool(
        "get_events",
        json!({"correlation_id": "thread-1", "limit": 100}),
    );
    assert_eq!(
        ids(&thread),
        (1..=12).rev().map(|i| i * 10).collect::<Vec<_>>()
    );

    // list_sessions: the live ones, most recently active first, as stored.
    let sessions = hub.tool("list_sessions", json!({}));
    let sessions = sessions.as_array().unwrap();
    let listed: Vec<&str> = sessions
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["beta-0001", "cli-alpha"]);
    let alpha = &sessions[1];
    assert_eq!(alpha["display_id"], "brave-trex");
    assert_eq!(alpha["name"], "alpha");
    assert_eq!(alpha["machine"], shared::config::hostname());
    assert_eq!(alpha["cwd"], "/src/alpha");
    assert_eq!(alpha["repo"], "alpha");
    assert_eq!(alpha["client_id"], "cli-alpha");
    let utc = |secs_ago: i64| shared::time::format_ms((now - secs_ago) * 1000);
    assert_eq!(alpha["registered_at"], utc(7200));
    assert_eq!(alpha["last_heartbeat"], utc(600));
    assert_eq!(sessions[0]["client_id"], Value::Null);

    // The unregistered session stays unregistered.
    let gamma = hub.tool(
        "get_events",
        json!({"session_id": "gamma-0001", "resume": true}),
    );
    assert_eq!(gamma["error"], "Session deleted", "{gamma}");
    assert_eq!(gamma["display_id"], "quiet-iguanodon");

    // A hook resumes from its saved cursor, under the same ids.
    let again = hub.tool(
        "register_session",
        json!({"name": "alpha", "machine": shared::config::hostname(), "cwd": "/src/alpha", "client_id": "cli-alpha"}),
    );
    assert_eq!(again["resumed"], true, "{again}");
    assert_eq!(again["session_id"], "cli-alpha");
    assert_eq!(again["display_id"], "brave-trex");
    assert_eq!(again["cursor"], "100");
    let resumed = hub.tool(
        "get_events",
        json!({"session_id": "cli-alpha", "resume": true, "order": "asc"}),
    );
    assert_eq!(ids(&resumed), (101..=120).collect::<Vec<_>>());
    assert_eq!(resumed["next_cursor"], "120");

    // list_webhooks: the active one by default; all of them newest first.
    let hooks = hub.tool("list_webhooks", json!({}));
    assert_eq!(hooks.as_array().unwrap().len(), 1, "{hooks}");
    let hook = &hooks[0];
    assert_eq!(hook["webhook_id"], 1);
    assert_eq!(hook["url"], sink.url);
    assert_eq!(hook["channel"], "repo:");
    assert_eq!(hook["event_types"], Value::Null);
    assert_eq!(hook["active"], true);
    assert_eq!(hook["has_secret"], true);
    assert_eq!(hook["created_at"], "2026-11-29T16:04:28.051000Z");
    let all = hub.tool("list_webhooks", json!({"active_only": false}));
    let all: Vec<(u64, bool)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["webhook_id"].as_u64().unwrap(),
                h["active"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(all, [(3, false), (1, true)]);

    // New ids continue after the highest the original handed out.
    let id = hub.publish(
        "cli-alpha",
        "task_completed",
        "after the move",
        "repo:alpha",
    );
    assert_eq!(id, 121);
    let new_hook = hub.tool(
        "register_webhook",
        json!({"url": format!("{}/new", sink.url)}),
    );
    assert_eq!(
        new_hook["webhook_id"], 4,
        "id 2 was handed out once and stays used"
    );

    // The delivery is signed with the secret the receiver already knows.
    let got = sink.wait_for(1, Duration::from_secs(20));
    let first = &got[0];
    assert!(sink.url.ends_with(&first.path), "{}", first.path);
    assert_eq!(first.json()["event_id"], 121, "history is not re-delivered");
    crate::webhooks::assert_signed(first, SECRET);
}

#[test]
fn the_first_schema_imports_with_the_defaults_the_original_read() {
    let dir = Arc::new(tempfile::tempdir().expect("a temp dir"));
    let source = dir.path().join("old.db");
    let db = Original::create(&source, SCHEMA_V1);
    for (i, event_type) in ["session_registered", "note", "help_needed"]
        .iter()
        .enumerate()
    {
        db.conn
            .execute(
                "INSERT INTO events (event_type, payload, session_id, timestamp) VALUES (?1, ?2, 'old-client', ?3)",
                rusqlite::params![event_type, format!("old {i}"), local_iso(T0 + i64::try_from(i).unwrap() * 1_000_000, OFFSET_HOURS)],
            )
            .expect("insert an old event");
    }
    db.conn
        .execute(
            "INSERT INTO sessions (id, name, machine, cwd, repo, registered_at, last_heartbeat, client_id) \
             VALUES ('old-client', 'veteran', ?1, '/src/old', 'old', ?2, ?3, 'old-client')",
            rusqlite::params![
                shared::config::hostname(),
                local_iso((now_secs() - 3600) * 1_000_000, OFFSET_HOURS),
                local_iso((now_secs() - 60) * 1_000_000, OFFSET_HOURS)
            ],
        )
        .expect("insert an old session");
    db.close();

    let out = import(
        &[&source],
        &["--db", dir.path().join("data.redb").to_str().unwrap()],
    );
    assert_summary(
        &out,
        &[
            "(schema version 1)",
            "events:   3 (ids 1 to 3)",
            "sessions: 1 (1 live, 0 ended)",
            "webhooks: 0 (0 active, 0 paused); the next registered gets id 1",
        ],
    );

    let hub = Hub::start_on(dir, HubOptions::default());
    let page = hub.tool("get_events", json!({"order": "asc"}));
    assert_eq!(
        page["events"][1],
        json!({
            "id": 2, "event_type": "note", "payload": "old 1", "session_id": "old-client",
            "timestamp": "2026-11-29T16:04:29.051614Z", "channel": "all",
            "correlation_id": null, "signal_level": "info"
        })
    );
    assert_eq!(page["events"][0]["signal_level"], "lifecycle");
    assert_eq!(page["events"][2]["signal_level"], "actionable");
    let sessions = hub.tool("list_sessions", json!({}));
    assert_eq!(sessions[0]["session_id"], "old-client");
    assert_eq!(
        sessions[0]["display_id"], "old-client",
        "the id stands in, as the original showed it"
    );
    // No saved cursor: a resume starts at the tip, as the original's did.
    let again = hub.tool(
        "register_session",
        json!({"name": "veteran", "machine": shared::config::hostname(), "client_id": "old-client"}),
    );
    assert_eq!(again["resumed"], true, "{again}");
    assert_eq!(again["cursor"], "3");
}
