//! Events through the tools: the publish reply and the stored event's
//! fields, and every refusal and success of `ack_events`.

use serde_json::json;
use support::Hub;

use super::ids;

#[test]
fn publish_reply_and_event_fields() {
    let hub = Hub::start();
    hub.register("pub", Some("p1"));
    let reply = hub.tool(
        "publish_event",
        json!({
            "session_id": "p1", "event_type": "task_completed", "payload": "done",
            "channel": "repo:x", "title": "T", "tags": ["a", "b"], "correlation_id": "corr-1",
        }),
    );
    assert_eq!(reply["event_type"], "task_completed");
    assert_eq!(reply["channel"], "repo:x");
    assert_eq!(reply["signal_level"], "info");
    assert_eq!(reply["correlation_id"], "corr-1");
    assert!(reply.get("session_deleted").is_none());
    let id = reply["event_id"].as_u64().unwrap();

    let dm = hub.tool(
        "publish_event",
        json!({"event_type": "note", "payload": "hi", "channel": "session:p1"}),
    );
    assert_eq!(
        dm["signal_level"], "actionable",
        "direct messages are actionable"
    );
    assert!(dm.get("correlation_id").is_none());
    let explicit = hub.tool(
        "publish_event",
        json!({"event_type": "help_needed", "payload": "x", "signal_level": "lifecycle"}),
    );
    assert_eq!(
        explicit["signal_level"], "lifecycle",
        "a valid explicit level wins"
    );
    let unknown = hub.tool(
        "publish_event",
        json!({"event_type": "help_needed", "payload": "x", "signal_level": "urgent"}),
    );
    assert_eq!(
        unknown["signal_level"], "actionable",
        "an unknown level falls back to the derived one"
    );

    let page = hub.tool(
        "get_events",
        json!({"cursor": (id - 1).to_string(), "order": "asc", "limit": 1}),
    );
    let e = &page["events"][0];
    assert_eq!(e["id"].as_u64(), Some(id));
    assert_eq!(e["session_id"], "p1");
    assert_eq!(e["title"], "T");
    assert_eq!(e["tags"], json!(["a", "b"]));
    assert_eq!(e["correlation_id"], "corr-1");
    assert!(e["timestamp"].as_str().unwrap().ends_with('Z'));
    let anon = hub.tool(
        "get_events",
        json!({"cursor": id.to_string(), "order": "asc", "limit": 1}),
    );
    assert_eq!(anon["events"][0]["session_id"], "anonymous");
    assert!(
        anon["events"][0].get("title").is_none(),
        "title only when set"
    );
}

#[test]
fn ack_refusals_and_success() {
    let hub = Hub::start();
    let reg = hub.register("acker", Some("a1"));
    let start = reg["cursor"].as_str().unwrap().to_owned();
    let e1 = hub.publish("a1", "t", "1", "all");
    let e2 = hub.publish("a1", "t", "2", "all");

    let cases = [
        (json!("abc"), "Invalid cursor 'abc': expected an event id"),
        (json!("-1"), "Invalid cursor '-1': must not be negative"),
    ];
    for (cursor, message) in cases {
        let r = hub.tool("ack_events", json!({"session_id": "a1", "cursor": cursor}));
        assert_eq!(r["error"], message);
        assert_eq!(r["session_id"], "a1");
        assert_eq!(
            r["cursor"],
            start.as_str(),
            "refusals carry the saved cursor"
        );
    }
    let ahead = hub.tool("ack_events", json!({"session_id": "a1", "cursor": "999"}));
    assert_eq!(
        ahead["error"],
        format!("Cursor 999 is ahead of the newest event ({e2})")
    );
    assert_eq!(ahead["tip"], e2);

    let ok = hub.tool(
        "ack_events",
        json!({"session_id": "a1", "cursor": format!(" +{e2} ")}),
    );
    assert_eq!(ok["success"], true);
    assert_eq!(ok["cursor"], e2.to_string(), "the canonical form is stored");
    assert_eq!(ok["previous_cursor"], start.as_str());

    let behind = hub.tool(
        "ack_events",
        json!({"session_id": "a1", "cursor": e1.to_string()}),
    );
    assert!(
        behind["error"]
            .as_str()
            .unwrap()
            .contains("behind the session's current position")
    );
    assert!(
        behind["error"]
            .as_str()
            .unwrap()
            .contains("allow_rewind=true")
    );
    let rewind = hub.tool(
        "ack_events",
        json!({"session_id": "a1", "cursor": e1, "allow_rewind": true}),
    );
    assert_eq!(rewind["success"], true);
    let resumed = hub.tool(
        "get_events",
        json!({"session_id": "a1", "resume": true, "order": "asc"}),
    );
    assert_eq!(ids(&resumed), vec![e2], "the rewound cursor replays");

    let unknown = hub.tool("ack_events", json!({"session_id": "zz", "cursor": "1"}));
    assert_eq!(
        unknown,
        json!({"error": "Session not found", "session_id": "zz"})
    );
}
