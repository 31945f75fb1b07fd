//! The tool catalog: names, descriptions and input schemas of every tool the
//! hub serves. The hub serves it; the proxy falls back to it when the hub is
//! down. Every byte here is paid for in each agent's context, so keep
//! descriptions short.

use serde_json::{Value, json};

/// The usage guide resource (`agent-event-bus://guide`), written for agents.
pub const GUIDE: &str = include_str!("guide.md");
pub const GUIDE_URI: &str = "agent-event-bus://guide";
pub const GUIDE_NAME: &str = "usage_guide";

/// Every tool name `tools/list` shows, in catalog order (from the one
/// list, [`crate::every_tool`]).
pub const TOOL_NAMES: &[&str] = crate::tools::LISTED;

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

/// Whether calls of tool `name` carry a `session_id` the proxy may fill in.
pub fn takes_session_id(name: &str) -> bool {
    crate::tools::takes_session_id(name)
}

/// The `tools/list` array: each tool's name, description and input schema
/// from its [`Tool`](crate::tools::Tool) in [`crate::tools`].
pub fn tools() -> Vec<Value> {
    crate::tools::catalog()
        .into_iter()
        .map(|(name, description, schema)| {
            json!({"name": name, "description": description, "inputSchema": schema})
        })
        .collect()
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

/// The `resources/read` result for the guide (the only resource).
pub fn guide_contents() -> Value {
    json!({"contents": [{"uri": GUIDE_URI, "mimeType": "text/plain", "text": GUIDE}]})
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
