//! End-to-end tests: session keys. A client that holds the hub's credential
//! but not a session's key acts as that session in no way (`stranger`); the
//! session's own proxy and its hooks act as it, and an agent acts through
//! its proxy as nobody else (`own`); the original's keyless flow still
//! works (`keyless`).
//!
//! # Layout
//! - `stranger`: every acting-as call refused, nothing changed.
//! - `own`: the proxy, its agent, a hook run under it, the CLI's keys.
//! - `keyless`: clients that never ask for a key.

mod keyless;
mod own;
mod stranger;

use serde_json::{Value, json};
use shared::HubClient;
use support::{Hub, call, rt};

/// The refusal every acting-as call without the session's key gets.
const KEYED: &str = "Session key required";

/// Asserts `reply` is the refusal of a call acting as keyed session `id`
/// without its key.
fn assert_keyed(reply: &Value, id: &str) {
    assert_eq!(reply["error"], KEYED, "{reply}");
    assert_eq!(reply["session_id"], id, "{reply}");
    assert_eq!(reply["keyed"], true, "{reply}");
}

/// A keyed session registered directly (as any MCP client may): its id,
/// its key, and a client that presents the key.
fn keyed_session(hub: &Hub, name: &str, extra: Value) -> (String, String, HubClient) {
    let mut args = json!({
        "name": name,
        "client_id": format!("{name}-client"),
        "machine": shared::config::hostname(),
        "cwd": "/src/repo",
        "key": true,
    });
    if let (Value::Object(args), Value::Object(extra)) = (&mut args, extra) {
        args.extend(extra);
    }
    let reply = rt().block_on(call(&hub.client(), "register_session", args));
    let id = support::id_of(&reply);
    let key = reply["session_key"]
        .as_str()
        .unwrap_or_else(|| panic!("a key was asked for: {reply}"))
        .to_owned();
    let owner = support::keys::keyed_client(hub, &key);
    (id, key, owner)
}

/// Calls `tool` as `client` and returns its reply value, refusals included.
fn ask(client: &HubClient, tool: &str, args: Value) -> Value {
    rt().block_on(call(client, tool, args))
}

/// The live session `id` as `list_sessions` shows it.
fn listed(hub: &Hub, id: &str) -> Option<Value> {
    support::session_by_id(hub, id)
}

/// The events attributed to session `id` after event `after`.
fn attributed_after(hub: &Hub, id: &str, after: u64) -> Vec<Value> {
    support::events(hub)
        .into_iter()
        .filter(|e| e["id"].as_u64().is_some_and(|n| n > after) && e["session_id"] == id)
        .collect()
}

/// The newest event id on the bus.
fn tip(hub: &Hub) -> u64 {
    let page = hub.tool("get_events", json!({"limit": 1}));
    page["events"][0]["id"].as_u64().unwrap_or(0)
}

/// A direct message to session `id` from nobody in particular; its event id.
fn direct_message(hub: &Hub, id: &str, text: &str) -> u64 {
    hub.publish("anonymous", "note", text, &format!("session:{id}"))
}

/// The receipt status of direct message `event`.
fn status(hub: &Hub, event: u64) -> Value {
    hub.tool("message_status", json!({"event_ids": [event]}))[0]["status"].clone()
}
