//! The tool catalog: names, descriptions and input schemas of every tool the
//! hub serves. The hub serves it; the proxy falls back to it when the hub is
//! down. Every byte here is paid for in each agent's context, so keep
//! descriptions short.

use serde_json::{Value, json};

/// The usage guide resource (`agent-event-bus://guide`), written for agents.
pub const GUIDE: &str = include_str!("guide.md");
pub const GUIDE_URI: &str = "agent-event-bus://guide";
pub const GUIDE_NAME: &str = "usage_guide";

/// Every tool name, in catalog order.
pub const TOOL_NAMES: [&str; 18] = [
    "register_session",
    "list_sessions",
    "list_channels",
    "publish_event",
    "get_events",
    "ack_events",
    "unregister_session",
    "notify",
    "claim",
    "list_claims",
    "message_status",
    "register_webhook",
    "list_webhooks",
    "set_webhook_active",
    "unregister_webhook",
    "list_webhook_deliveries",
    "redeliver_webhook",
    "test_webhook",
];

/// Argument names MCP clients add to tool calls on their own, for their own
/// bookkeeping. They are dropped before a call's arguments are checked (in
/// the hub, so direct HTTP clients and the proxy alike are served); every
/// other unknown argument is still refused, so a misspelt `chanel` never
/// turns a direct message into a broadcast. Add a name only with evidence of
/// a client that sends it:
///
/// - `wait_for_previous`: Gemini CLI (`@google/gemini-cli`, seen in 0.61.0).
///   Its `addWaitForPreviousParameter` adds a boolean of that name to every
///   tool's parameter schema, MCP tools included, its scheduler reads it to
///   run dependent calls in order, and the call goes on to the server with
///   the argument still in it.
/// - `random_string`: Cursor. For a tool whose schema has no properties it
///   has the model fill a placeholder string of that name, which then reaches
///   the server (reported by server authors; Cursor's source is closed).
pub const CLIENT_INJECTED_ARGS: [&str; 2] = ["wait_for_previous", "random_string"];

/// Whether `name` is one of [`CLIENT_INJECTED_ARGS`].
pub fn is_client_injected(name: &str) -> bool {
    CLIENT_INJECTED_ARGS.contains(&name)
}

/// Tools whose calls carry a `session_id` the proxy may fill in.
pub const SESSION_TOOLS: [&str; 5] = [
    "publish_event",
    "get_events",
    "ack_events",
    "unregister_session",
    "claim",
];

fn plain(ty: &str) -> Value {
    json!({"type": ty})
}

fn strings() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

fn tool(name: &str, description: &str, properties: Value, required: &[&str]) -> Value {
    let mut schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    json!({"name": name, "description": description, "inputSchema": schema})
}

/// The `tools/list` array.
pub fn tools() -> Vec<Value> {
    let levels = json!({"type": "string", "enum": ["lifecycle", "info", "actionable"]});
    vec![
        tool(
            "register_session",
            "Register with the event bus (resumes by client_id). Returns session_id and cursor for polling.",
            json!({
                "name": plain("string"),
                "machine": plain("string"),
                "cwd": plain("string"),
                "client_id": plain("string"),
                "lease_seconds": {"type": "integer", "minimum": 1, "description": "Presence lease; renew by calling again"},
                "client_pid": plain("integer"),
                "push": {"type": "array", "items": {"type": "string", "enum": crate::push::ROUTES}, "description": "Push routes this client delivers (merged)"},
            }),
            &["name"],
        ),
        tool(
            "list_sessions",
            "List active sessions, ordered by most recently active.",
            json!({}),
            &[],
        ),
        tool(
            "list_channels",
            "List channels with subscriber counts.",
            json!({}),
            &[],
        ),
        tool(
            "publish_event",
            "Publish an event. Channels: all (default), session:<id> (direct message), repo:<name>, machine:<name>. Returns event_id.",
            json!({
                "event_type": plain("string"),
                "payload": plain("string"),
                "session_id": plain("string"),
                "channel": {"type": "string", "default": "all"},
                "title": plain("string"),
                "tags": strings(),
                "correlation_id": plain("string"),
                "signal_level": levels,
            }),
            &["event_type", "payload"],
        ),
        tool(
            "get_events",
            "Get events after cursor. resume=true continues from the session's saved cursor and advances it; peek and filters (channel, channels, event_types, correlation_id) never advance it. Drain with order=asc while has_more. wait_seconds long-polls.",
            json!({
                "cursor": plain("string"),
                "limit": {"type": "integer", "default": 50, "minimum": 1, "maximum": 1000},
                "session_id": plain("string"),
                "order": {"type": "string", "enum": ["asc", "desc"], "default": "desc"},
                "channel": plain("string"),
                "channels": strings(),
                "resume": {"type": "boolean", "default": false},
                "event_types": strings(),
                "peek": {"type": "boolean", "default": false},
                "correlation_id": plain("string"),
                "min_level": levels,
                "wait_seconds": {"type": "integer", "default": 0, "minimum": 0, "maximum": 60},
                "receipts": plain("boolean"),
            }),
            &[],
        ),
        tool(
            "ack_events",
            "Advance a session's saved cursor to an event id it has handled (pairs with peek).",
            json!({
                "session_id": plain("string"),
                "cursor": plain("string"),
                "allow_rewind": {"type": "boolean", "default": false},
            }),
            &["session_id", "cursor"],
        ),
        tool(
            "unregister_session",
            "Unregister from the event bus. session_id takes precedence over client_id.",
            json!({
                "session_id": plain("string"),
                "client_id": plain("string"),
                "machine": plain("string"),
            }),
            &[],
        ),
        tool(
            "notify",
            "Show a desktop notification to the human.",
            json!({
                "title": plain("string"),
                "message": plain("string"),
                "sound": {"type": "boolean", "default": false},
            }),
            &["title", "message"],
        ),
        tool(
            "claim",
            "Advisory claim on a resource (file:<repo>/<path>, task:<id>; a prefix ending in / covers all under it) until release or your session ends. Conflict: error Claimed, held_by.",
            json!({
                "resource": plain("string"),
                "session_id": plain("string"),
                "exclusive": {"type": "boolean", "default": true},
                "note": plain("string"),
                "release": {"type": "boolean", "default": false},
            }),
            &["resource", "session_id"],
        ),
        tool(
            "list_claims",
            "List claims under a prefix and those covering it.",
            json!({"prefix": plain("string")}),
            &[],
        ),
        tool(
            "message_status",
            "Receipts of direct messages: stored, pushed or read; recipient live or ended. get_events(receipts=true) adds them to yours.",
            json!({"event_ids": {"type": "array", "items": {"type": "integer"}}}),
            &["event_ids"],
        ),
        tool(
            "register_webhook",
            "POST matching events to an HTTP endpoint (channel: exact or prefix), HMAC-signed when a secret is given.",
            json!({
                "url": plain("string"),
                "channel": plain("string"),
                "event_types": strings(),
                "secret": plain("string"),
                "include_system": {"type": "boolean", "default": false, "description": "Also session_registered/unregistered"},
            }),
            &["url"],
        ),
        tool(
            "list_webhooks",
            "List webhooks (secrets are never shown).",
            json!({"active_only": {"type": "boolean", "default": true}}),
            &[],
        ),
        tool(
            "set_webhook_active",
            "Pause or resume a webhook.",
            json!({"webhook_id": plain("integer"), "active": plain("boolean")}),
            &["webhook_id", "active"],
        ),
        tool(
            "unregister_webhook",
            "Delete a webhook.",
            json!({"webhook_id": plain("integer")}),
            &["webhook_id"],
        ),
        tool(
            "list_webhook_deliveries",
            "A webhook's delivery log, newest first: attempt, status code, latency, error, next retry.",
            json!({
                "webhook_id": plain("integer"),
                "event_id": plain("integer"),
                "limit": {"type": "integer", "default": 20, "minimum": 1, "maximum": 1000},
            }),
            &["webhook_id"],
        ),
        tool(
            "redeliver_webhook",
            "Send one event to a webhook again.",
            json!({"webhook_id": plain("integer"), "event_id": plain("integer")}),
            &["webhook_id", "event_id"],
        ),
        tool(
            "test_webhook",
            "POST a ping event to a webhook now; returns the attempt.",
            json!({"webhook_id": plain("integer")}),
            &["webhook_id"],
        ),
    ]
    .into_iter()
    .map(|mut t| {
        t["inputSchema"]["additionalProperties"] = json!(false);
        t
    })
    .collect()
}

/// Whether the named tool returns a list (wrapped as `{"result": [...]}`).
pub fn returns_list(name: &str) -> bool {
    matches!(
        name,
        "list_sessions" | "list_channels" | "list_webhooks" | "list_claims" | "message_status"
    )
}

/// The guide as a `resources/list` entry.
pub fn guide_resource() -> Value {
    json!({
        "uri": GUIDE_URI,
        "name": GUIDE_NAME,
        "description": "Usage guide and best practices",
        "mimeType": "text/plain",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_every_tool_in_order() {
        let names: Vec<String> = tools()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, TOOL_NAMES);
    }

    #[test]
    fn catalog_fits_the_token_budget() {
        // tools/list plus the proxy's instructions must stay within 8.5 KB;
        // leave 2 KB of that for the instructions.
        let size = serde_json::to_string(&json!({"tools": tools()}))
            .unwrap()
            .len();
        assert!(size <= 6_500, "tools/list is {size} bytes");
    }
}
