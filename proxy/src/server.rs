//! The MCP side: an rmcp `ServerHandler` written by hand, because every tool
//! lives in the hub. `initialize` is answered from constants at once; tools
//! go through [`Forwarder`]; the guide resource is served from `shared`.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, ServerCapabilities, ServerConfig,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use shared::catalog;

use crate::forward::{self, Forwarder};
use crate::presence::Presence;
use crate::push::Pusher;

/// What the agent reads about this server when it connects (Claude Code
/// cuts instructions at 2 KB; a unit test keeps them under).
pub const INSTRUCTIONS: &str = include_str!("instructions.md");

/// How long after `notifications/initialized` the session is registered, so
/// a client that connects and leaves at once never creates one.
pub const SETTLE_DELAY: Duration = Duration::from_secs(1);

/// The newest protocol revision offered. Claude Code refuses channel push on
/// 2026-07-28 ("no unsolicited notification path"), so its `server/discover`
/// probe must fail (-32022) and `initialize` negotiate this one.
pub const MAX_PROTOCOL: ProtocolVersion = ProtocolVersion::V_2025_11_25;

/// The stdio MCP server one agent session talks to.
pub struct ProxyServer {
    forwarder: Forwarder,
    presence: Arc<Presence>,
    pusher: Arc<Pusher>,
}

impl ProxyServer {
    pub fn new(forwarder: Forwarder, presence: Arc<Presence>, pusher: Arc<Pusher>) -> Self {
        Self {
            forwarder,
            presence,
            pusher,
        }
    }
}

/// The `initialize` reply: name, capabilities (tools, the guide resource,
/// and `claude/channel` so a client may enable push), instructions.
pub fn server_config() -> ServerConfig {
    let mut experimental = rmcp::model::ExperimentalCapabilities::new();
    experimental.insert("claude/channel".to_owned(), Map::new());
    let capabilities = ServerCapabilities::builder()
        .enable_experimental_with(experimental)
        .enable_resources()
        .enable_tools()
        .build();
    ServerConfig::new(capabilities)
        .with_protocol_version(MAX_PROTOCOL)
        .with_server_info(Implementation::new(shared::SERVER_NAME, shared::VERSION))
        .with_instructions(INSTRUCTIONS)
}

/// Builds an rmcp reply type from the JSON the hub (or `shared`) produced.
fn from_json<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, McpError> {
    serde_json::from_value(value)
        .map_err(|e| McpError::internal_error(format!("malformed {what}: {e}"), None))
}

impl ServerHandler for ProxyServer {
    fn get_info(&self) -> ServerConfig {
        server_config()
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(&MAX_PROTOCOL))
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        tracing::debug!("client initialized; registering after {SETTLE_DELAY:?}");
        self.pusher.attach(context.peer);
        let presence = self.presence.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SETTLE_DELAY).await;
            presence.want();
        });
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let tools = self.forwarder.list_tools().await;
        from_json(json!({ "tools": tools }), "tool list from the hub").or_else(|e| {
            tracing::warn!("{}; serving the built-in catalog", e.message);
            from_json(
                json!({ "tools": forward::builtin_tools() }),
                "built-in catalog",
            )
        })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let name = request.name.to_string();
        let result = tokio::select! {
            result = self.forwarder.call(&name, request.arguments) => result,
            () = context.ct.cancelled() => {
                return Err(McpError::internal_error("the call was cancelled", None));
            }
        };
        let result: CallToolResult = from_json(result, "tool result from the hub")?;
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        from_json(
            json!({ "resources": [catalog::guide_resource()] }),
            "resource list",
        )
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        if request.uri != catalog::GUIDE_URI {
            return Err(McpError::resource_not_found(
                format!(
                    "unknown resource {}; the only one is {}",
                    request.uri,
                    catalog::GUIDE_URI
                ),
                None,
            ));
        }
        let result: ReadResourceResult = from_json(catalog::guide_contents(), "guide")?;
        Ok(result.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_fit_claude_codes_cut() {
        assert!(
            INSTRUCTIONS.len() <= 2048,
            "instructions are {} bytes",
            INSTRUCTIONS.len()
        );
    }

    #[test]
    fn tools_and_instructions_fit_the_budget() {
        let tools = serde_json::to_string(&json!({"tools": catalog::tools()})).unwrap();
        let total = tools.len() + INSTRUCTIONS.len();
        assert!(total <= 8704, "tools/list + instructions = {total} bytes");
    }

    #[test]
    fn declares_channel_push_and_an_old_enough_protocol() {
        let info = serde_json::to_value(server_config()).unwrap();
        assert_eq!(
            info["capabilities"]["experimental"]["claude/channel"],
            json!({})
        );
        assert_eq!(info["protocolVersion"], json!("2025-11-25"));
        assert_eq!(info["serverInfo"]["name"], json!("agent-event-bus"));
        assert!(
            ProtocolVersion::known_up_to(&MAX_PROTOCOL)
                .iter()
                .all(|v| v.as_str() <= "2025-11-25")
        );
    }
}
