//! Tool calls and tool lists, forwarded to the hub: fills in `session_id`,
//! refuses a call that names another session (the bus acts only as this
//! proxy's session, whose key the hub client sends), routes the agent's
//! own register/unregister through [`Presence`], shows `notify` on this
//! machine (where the human is), and turns a hub that cannot be reached
//! into a tool error the agent can act on.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use shared::catalog;
use shared::tools::Tool;
use shared::tools::events::PublishEvent;
use shared::tools::notify::Notify;
use shared::tools::sessions::{RegisterSession, UnregisterSession};
use shared::{ClientError, HubClient, ToolOutput};

use crate::presence::Presence;
use crate::push::Pusher;

/// How long `tools/list` waits for the hub before serving the built-in catalog.
const LIST_TIMEOUT: Duration = Duration::from_secs(3);

/// Forwards MCP tool traffic to the hub.
pub struct Forwarder {
    hub: Arc<HubClient>,
    presence: Arc<Presence>,
    pusher: Arc<Pusher>,
}

impl Forwarder {
    pub fn new(hub: Arc<HubClient>, presence: Arc<Presence>, pusher: Arc<Pusher>) -> Self {
        Self {
            hub,
            presence,
            pusher,
        }
    }

    /// The hub's `tools/list`, or the built-in catalog when the hub is down,
    /// with `session_id` optional wherever the proxy fills it in.
    pub async fn list_tools(&self) -> Vec<Value> {
        let tools = match self.hub.request("tools/list", None, LIST_TIMEOUT).await {
            Ok(result) => {
                if let Some(Value::Array(tools)) = result.get("tools") {
                    tools.clone()
                } else {
                    tracing::warn!(
                        "the hub's tools/list has no tools array; serving the built-in catalog"
                    );
                    return builtin_tools();
                }
            }
            Err(e) => {
                tracing::debug!("serving the built-in tool catalog: {e}");
                return builtin_tools();
            }
        };
        tools.into_iter().map(session_id_optional).collect()
    }

    /// One `tools/call`; always a `CallToolResult` (a failure to reach the
    /// hub is an `isError` result whose text says what to do).
    pub async fn call(&self, name: &str, args: Option<Map<String, Value>>) -> Value {
        let mut args = args.unwrap_or_default();
        // Dropped here as well as in the hub, for `notify` (answered here)
        // and for hubs older than the list.
        args.retain(|key, _| !catalog::is_client_injected(key));
        if name == Notify::NAME {
            return notify_here(args).await;
        }
        let outcome = if name == RegisterSession::NAME {
            self.presence.register_for_agent(args).await
        } else {
            // The first tool call registers at once, so it can carry the id.
            let own = self.presence.session_id().await;
            if let Some(refused) = self.someone_else(name, &args, own.as_deref()).await {
                tracing::debug!(tool = name, "refused a call naming another session");
                return refused;
            }
            match name {
                UnregisterSession::NAME => self.unregister(args, own).await,
                PublishEvent::NAME => {
                    if let Some(peer) = args
                        .get("channel")
                        .and_then(Value::as_str)
                        .and_then(shared::channel::dm_target)
                    {
                        self.pusher.sent_to(peer);
                    }
                    self.session_call(name, args, own).await
                }
                _ if catalog::takes_session_id(name) => self.session_call(name, args, own).await,
                _ => self.hub.call_tool(name, Value::Object(args)).await,
            }
        };
        match outcome {
            Ok(out) => out.result,
            Err(e) => {
                tracing::debug!(tool = %shared::text::Shown(name), "tool call failed: {e}");
                tool_error(&e)
            }
        }
    }

    /// A call that takes a `session_id`: ours when the agent gave none. If the
    /// hub says our session is gone, register again (same `client_id`, so the
    /// same session) and retry once — except a publish, which was stored
    /// anyway.
    async fn session_call(
        &self,
        name: &str,
        mut args: Map<String, Value>,
        own: Option<String>,
    ) -> Result<ToolOutput, ClientError> {
        let filled = match (args.get("session_id"), own) {
            (None | Some(Value::Null), Some(id)) => {
                args.insert("session_id".into(), json!(id));
                Some(id)
            }
            _ => None,
        };
        let out = self
            .hub
            .call_tool(name, Value::Object(args.clone()))
            .await?;
        let Some(id) = filled.filter(|_| session_gone(&out)) else {
            return Ok(out);
        };
        let Some(new_id) = self.presence.session_lost(&id).await else {
            return Ok(out);
        };
        if name == PublishEvent::NAME {
            // The event was stored anyway; publishing again would duplicate it.
            return Ok(out);
        }
        args.insert("session_id".into(), json!(new_id));
        self.hub.call_tool(name, Value::Object(args)).await
    }

    /// `unregister_session` of our own session (no ids given, our id, or
    /// our `client_id`; [`Forwarder::someone_else`] refused any other):
    /// honoured and remembered.
    async fn unregister(
        &self,
        mut args: Map<String, Value>,
        own: Option<String>,
    ) -> Result<ToolOutput, ClientError> {
        let Some(id) = own else {
            return Err(ClientError::Tool(
                "this proxy has no session on the bus yet, so there is nothing to unregister"
                    .to_owned(),
            ));
        };
        args.remove("client_id");
        args.remove("machine");
        self.presence.unregister_for_agent(&id, args).await
    }

    /// The refusal of a call that names a session other than ours (`own`):
    /// through the proxy the bus acts only as the proxy's own session, which
    /// is the one whose key it sends. `None` for a call that names no other.
    async fn someone_else(
        &self,
        tool: &str,
        args: &Map<String, Value>,
        own: Option<&str>,
    ) -> Option<Value> {
        let given = |key: &str| {
            args.get(key)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
        };
        let ours = own.unwrap_or("none yet");
        if let Some(id) = given("session_id")
            && Some(id) != own
        {
            return Some(shared::mcp::tool_error(&format!(
                "{tool}: session_id {id} is not this session's ({ours}). Through this proxy the bus \
                 acts only as its own session: omit session_id and the proxy fills it in. To \
                 message session {id}, publish to channel session:{id}."
            )));
        }
        if tool == UnregisterSession::NAME
            && given("session_id").is_none()
            && let Some(client) = given("client_id")
        {
            let identity = self.presence.identity_snapshot().await;
            if client != identity.client_id
                || given("machine").is_some_and(|m| m != identity.machine)
            {
                return Some(shared::mcp::tool_error(&format!(
                    "{tool}: client_id {client} is not this session's. Through this proxy the bus \
                     acts only as its own session ({ours}): call {tool} with no ids to end it."
                )));
            }
        }
        None
    }
}

/// `notify` on the proxy's machine, with the contract's arguments, rules
/// and reply ([`shared::tools::notify`]), as the hub would answer it.
async fn notify_here(args: Map<String, Value>) -> Value {
    use shared::tools::Invalid;
    use shared::tools::notify::show;
    match shared::tools::parse::<Notify>(Some(Value::Object(args))) {
        Ok(params) => shared::mcp::tool_result(&show(params).await, Notify::LIST),
        Err(e) => shared::mcp::tool_error(&Invalid::of::<Notify>(e).to_string()),
    }
}

/// The catalog from `shared`, as served when the hub is down.
pub fn builtin_tools() -> Vec<Value> {
    catalog::tools()
        .into_iter()
        .map(session_id_optional)
        .collect()
}

/// Whether a reply says the session it was made for no longer exists.
fn session_gone(out: &ToolOutput) -> bool {
    let value = out.value();
    // A publish under an ended session is stored, and flagged.
    value.get("session_deleted").and_then(Value::as_bool) == Some(true)
        || shared::tools::Refusal::from_value(&value).is_some_and(|r| r.session_gone())
}

/// A tool's schema with `session_id` no longer required (the proxy fills it).
fn session_id_optional(mut tool: Value) -> Value {
    let is_session_tool = tool
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(catalog::takes_session_id);
    if is_session_tool
        && let Some(Value::Array(required)) = tool
            .get_mut("inputSchema")
            .and_then(|s| s.get_mut("required"))
    {
        required.retain(|r| r != "session_id");
    }
    tool
}

/// A `CallToolResult` for a call the hub never answered.
pub fn tool_error(error: &ClientError) -> Value {
    shared::mcp::tool_error(&error.to_string())
}

#[cfg(test)]
mod tests {
    use shared::mcp::tool_result;

    use super::*;

    #[test]
    fn session_id_becomes_optional_for_session_tools_only() {
        let ack = catalog::tools()
            .into_iter()
            .find(|t| t["name"] == shared::tools::events::AckEvents::NAME)
            .unwrap();
        assert!(
            ack["inputSchema"]["required"]
                .as_array()
                .unwrap()
                .contains(&json!("session_id"))
        );
        let ack = session_id_optional(ack);
        assert_eq!(ack["inputSchema"]["required"], json!(["cursor"]));

        let other = json!({"name": "x", "inputSchema": {"required": ["session_id"]}});
        assert_eq!(session_id_optional(other.clone()), other);
    }

    #[test]
    fn detects_a_lost_session() {
        let gone = ToolOutput {
            result: tool_result(
                &json!({"error": "Session deleted", "session_deleted": true}),
                false,
            ),
        };
        assert!(session_gone(&gone));
        let refusal = shared::tools::Refusal::SessionNotFound {
            session_id: "x".into(),
        };
        let unknown = ToolOutput {
            result: tool_result(&refusal, false),
        };
        assert!(session_gone(&unknown));
        let fine = ToolOutput {
            result: tool_result(&json!({"events": []}), false),
        };
        assert!(!session_gone(&fine));
    }

    #[test]
    fn unreachable_is_an_actionable_tool_error() {
        let e = ClientError::Unreachable {
            url: "http://127.0.0.1:1/mcp".into(),
            detail: "connection refused".into(),
        };
        let result = tool_error(&e);
        assert_eq!(result["isError"], json!(true));
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("start it with `agent-event-bus`"), "{text}");
    }
}
