//! Clients of the original never ask for a key, and keep working exactly
//! as before: register, publish, read with resume, and resume by client id.

use serde_json::json;
use support::Hub;

use super::listed;

#[test]
fn the_originals_keyless_flow_still_works() {
    let hub = Hub::start();
    let host = shared::config::hostname();
    let register = json!({"name": "classic", "client_id": "classic-1", "machine": host});
    let reply = hub.tool("register_session", register.clone());
    let id = support::id_of(&reply);
    assert!(reply.get("session_key").is_none(), "{reply}");
    assert_eq!(listed(&hub, &id).expect("live")["keyed"], false);

    let sent = hub.tool(
        "publish_event",
        json!({"session_id": id, "event_type": "task_completed", "payload": "done", "channel": "repo:classic"}),
    );
    assert!(sent["event_id"].as_u64().is_some(), "{sent}");
    let page = hub.tool(
        "get_events",
        json!({"session_id": id, "resume": true, "order": "asc"}),
    );
    let events = page["events"].as_array().expect("events");
    assert!(
        events
            .iter()
            .any(|e| e["id"] == sent["event_id"] && e["session_id"] == id),
        "{page}"
    );
    // Resumed by its client id, with no key, as the original does.
    let again = hub.tool("register_session", register);
    assert_eq!(
        (&again["session_id"], &again["resumed"]),
        (&json!(id), &json!(true))
    );
    assert!(again.get("session_key").is_none(), "{again}");
    let gone = hub.tool("unregister_session", json!({"session_id": id}));
    assert_eq!(gone["success"], true, "{gone}");
}
