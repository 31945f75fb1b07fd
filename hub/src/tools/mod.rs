//! The tools. Each module holds its tools' arguments, rules and
//! replies; [`call`] only dispatches. Domain refusals are normal replies
//! with an `"error"` key; bad arguments are [`ToolError::Args`].

pub mod args;
pub mod claims;
pub mod events;
pub mod notify;
pub mod receipts;
pub mod sessions;
pub mod webhooks;

use serde_json::{Value, json};

use crate::json::Json;
use crate::state::Bus;
use crate::store::{SessionRecord, StoreError};
use args::ArgError;

/// What a tool produced.
#[derive(Debug)]
pub enum Reply {
    /// A dict reply (`structuredContent` is the object).
    Object(Value),
    /// A list reply (`structuredContent` is `{"result": [...]}`).
    List(Vec<Value>),
    /// A reply already rendered as a `tools/call` result by [`render`]
    /// (large ones are rendered off the async workers).
    Rendered(Json),
}

impl Reply {
    /// The `tools/call` result: the reply serialised once, as the text
    /// content and, spliced in unparsed, as `structuredContent`.
    pub fn render(self) -> Json {
        match self {
            Self::Object(value) => render(&value, false),
            Self::List(items) => render(&items, true),
            Self::Rendered(raw) => raw,
        }
    }
}

/// Renders a successful `tools/call` result for `value` (a list is wrapped
/// as `{"result": [...]}` in `structuredContent`, as MCP wants an object).
pub fn render(value: &impl serde::Serialize, list: bool) -> Json {
    let json = serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned());
    render_parts(&json, &crate::store::escaped(&json), list)
}

/// [`render`] from the reply's JSON and the same JSON escaped as inside a
/// JSON string (built alongside by a caller that renders from parts).
pub fn render_parts(json: &str, escaped: &str, list: bool) -> Json {
    let (open, close) = if list {
        ("{\"result\":", "}")
    } else {
        ("", "")
    };
    let result = format!(
        "{{\"content\":[{{\"type\":\"text\",\"text\":\"{escaped}\"}}],\"structuredContent\":{open}{json}{close},\"isError\":false}}"
    );
    Json::spliced(result)
}

/// Why a call produced no reply.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("Invalid arguments for {tool}: {message}")]
    Args { tool: String, message: String },
    #[error("Unknown tool: {0}")]
    Unknown(String),
    #[error("internal error")]
    Internal(#[from] StoreError),
}

pub type ToolResult = Result<Reply, ToolError>;

/// Runs one tool.
pub async fn call(bus: &Bus, name: &str, arguments: Option<Value>) -> ToolResult {
    let result = match name {
        "register_session" => sessions::register(bus, arguments).await,
        "list_sessions" => sessions::list(bus, arguments).await,
        "list_channels" => sessions::channels(bus, arguments).await,
        "unregister_session" => sessions::unregister(bus, arguments).await,
        "publish_event" => events::publish(bus, arguments).await,
        "get_events" => events::get(bus, arguments).await,
        "ack_events" => events::ack(bus, arguments).await,
        "notify" => notify::tool(bus, arguments).await,
        "claim" => claims::claim(bus, arguments).await,
        "list_claims" => claims::list(bus, arguments).await,
        "message_status" => receipts::message_status(bus, arguments).await,
        "message_pushed" => receipts::message_pushed(bus, arguments).await,
        "register_webhook" => webhooks::register(bus, arguments).await,
        "list_webhooks" => webhooks::list(bus, arguments).await,
        "set_webhook_active" => webhooks::set_active(bus, arguments).await,
        "unregister_webhook" => webhooks::unregister(bus, arguments).await,
        "list_webhook_deliveries" => webhooks::deliveries(bus, arguments).await,
        "redeliver_webhook" => webhooks::redeliver(bus, arguments).await,
        "test_webhook" => webhooks::test(bus, arguments).await,
        other => return Err(ToolError::Unknown(other.to_owned())),
    };
    result.map_err(|e| match e {
        Failure::Args(ArgError(message)) => ToolError::Args {
            tool: name.to_owned(),
            message,
        },
        Failure::Store(e) => ToolError::Internal(e),
    })
}

/// A tool body's failure: the caller's mistake, or the store's.
#[derive(Debug)]
pub enum Failure {
    Args(ArgError),
    Store(StoreError),
}

impl From<ArgError> for Failure {
    fn from(e: ArgError) -> Self {
        Self::Args(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

pub type Outcome = Result<Reply, Failure>;

/// The reply for a call that names a deleted session.
pub fn deleted_reply(session: &SessionRecord, hint: &str) -> Value {
    json!({
        "error": "Session deleted",
        "session_deleted": true,
        "session_id": session.id,
        "display_id": session.display_id,
        "deleted_at": session.deleted_at.map(shared::time::format_ms),
        "hint": hint,
    })
}
