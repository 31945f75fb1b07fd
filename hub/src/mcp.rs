//! The JSON-RPC dispatcher behind `POST /mcp` (stateless MCP Streamable
//! HTTP: one JSON-RPC request per POST). A body is parsed, dispatched to a
//! protocol method or to [`crate::tools`], and answered as one JSON-RPC
//! message; framing it (JSON or SSE) and every route live in
//! [`crate::http`]. Dispatch only: tool rules live in [`crate::tools`].

use shared::text::Shown;
use std::time::Instant;

use serde_json::{Value, json};
use shared::catalog;
use shared::mcp::code::{
    INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR, RESOURCE_NOT_FOUND,
};
use shared::mcp::tool_error;
use shared::tools::Tool;
use shared::tools::events::GetEvents;
use warp::http::StatusCode;

use crate::caller::Caller;
use crate::json::Json;
use crate::state::Bus;
use crate::store::STORAGE_REFUSAL;
use crate::tools::{self, ToolError};

/// Protocol revisions this hub speaks, oldest first. (2026-07-28 is left
/// out: clients probe it with `server/discover`, get -32601, and fall back.)
const PROTOCOL_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// A JSON-RPC error.
#[derive(Debug)]
struct RpcError {
    code: i64,
    message: String,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// What one POST body comes to.
#[derive(Debug)]
pub enum Answer {
    /// One JSON-RPC message, serialised, sent with this HTTP status.
    Message { status: StatusCode, body: String },
    /// A notification, or a response to nothing the hub asked: 202, no body.
    Accepted,
}

impl Answer {
    /// A JSON-RPC success whose result is already serialised (written as is).
    fn result(id: &Value, result: Json) -> Self {
        let id = serde_json::to_string(id).unwrap_or_else(|_| "null".to_owned());
        // Framed in place: a result can be megabytes, and a renderer that
        // leaves room for the frame (`tools::render_with`) is never copied.
        let mut body = result.into_string();
        body.insert_str(
            0,
            &["{\"jsonrpc\":\"2.0\",\"id\":", &id, ",\"result\":"].concat(),
        );
        body.push('}');
        Self::Message {
            status: StatusCode::OK,
            body,
        }
    }

    fn of(status: StatusCode, message: &impl serde::Serialize) -> Self {
        Self::Message {
            status,
            body: serde_json::to_string(message).unwrap_or_default(),
        }
    }

    fn error(status: StatusCode, id: &Value, e: &RpcError) -> Self {
        Self::of(status, &error_body(id, e))
    }
}

fn error_body(id: &Value, e: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": e.code, "message": e.message}})
}

/// The JSON-RPC error a request refused at the HTTP level carries (its id
/// is unknown): `Invalid Request` with `message`.
pub fn invalid_request(message: impl Into<String>) -> Value {
    error_body(&Value::Null, &RpcError::new(INVALID_REQUEST, message))
}

/// One POST body: parsed, dispatched, answered (`fuzz` drives it directly).
pub async fn answer(bus: &Bus, caller: &Caller, body: &[u8]) -> Answer {
    let message: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            let detail = if std::str::from_utf8(body).is_err() {
                "the body is not valid UTF-8".to_owned()
            } else {
                e.to_string()
            };
            let err = RpcError::new(PARSE_ERROR, format!("Parse error: {detail}"));
            return Answer::error(StatusCode::BAD_REQUEST, &Value::Null, &err);
        }
    };
    let Value::Object(obj) = message else {
        let reason = if message.is_array() {
            "Invalid Request: batches are not supported (MCP 2025-06-18 removed them); send one request per POST"
        } else {
            "Invalid Request: expected a JSON-RPC object"
        };
        let err = RpcError::new(INVALID_REQUEST, reason);
        return Answer::error(StatusCode::BAD_REQUEST, &Value::Null, &err);
    };
    let id = obj.get("id").cloned();
    let method = obj.get("method").and_then(Value::as_str);
    let Some(method) = method else {
        if id.is_some() && (obj.contains_key("result") || obj.contains_key("error")) {
            // A response to a request we never send: accept and ignore.
            return Answer::Accepted;
        }
        let err = RpcError::new(
            INVALID_REQUEST,
            "Invalid Request: 'method' must be a string",
        );
        return Answer::error(
            StatusCode::BAD_REQUEST,
            id.as_ref().unwrap_or(&Value::Null),
            &err,
        );
    };
    let Some(id) = id.filter(|i| i.is_string() || i.is_number()) else {
        if obj.contains_key("id") {
            let err = RpcError::new(
                INVALID_REQUEST,
                "Invalid Request: 'id' must be a string or a number",
            );
            return Answer::error(StatusCode::BAD_REQUEST, &Value::Null, &err);
        }
        // A notification: nothing to answer.
        return Answer::Accepted;
    };
    let params = obj.get("params").cloned();
    match dispatch(bus, caller, method, params).await {
        Ok(result) => Answer::result(&id, result),
        Err(e) => Answer::error(StatusCode::OK, &id, &e),
    }
}

async fn dispatch(
    bus: &Bus,
    caller: &Caller,
    method: &str,
    params: Option<Value>,
) -> Result<Json, RpcError> {
    if method == "tools/call" {
        return call_tool(bus, caller, params).await;
    }
    Ok(Json::of(&dispatch_value(method, params.as_ref())?))
}

fn dispatch_value(method: &str, params: Option<&Value>) -> Result<Value, RpcError> {
    match method {
        "initialize" => Ok(initialize(params)),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({"tools": catalog::tools()})),
        "resources/list" => Ok(json!({"resources": [catalog::guide_resource()]})),
        "resources/templates/list" => Ok(json!({"resourceTemplates": []})),
        "resources/read" => read_resource(params),
        "prompts/list" => Ok(json!({"prompts": []})),
        other => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("Method not found: {other}"),
        )),
    }
}

fn initialize(params: Option<&Value>) -> Value {
    let requested = params
        .and_then(|p| p.get("protocolVersion"))
        .and_then(Value::as_str);
    let latest = PROTOCOL_VERSIONS[PROTOCOL_VERSIONS.len() - 1];
    let version = requested
        .filter(|v| PROTOCOL_VERSIONS.contains(v))
        .unwrap_or(latest);
    json!({
        "protocolVersion": version,
        "capabilities": {
            "tools": {"listChanged": false},
            "resources": {"subscribe": false, "listChanged": false},
            "prompts": {"listChanged": false},
        },
        "serverInfo": {"name": shared::SERVER_NAME, "version": shared::VERSION},
        "instructions": "An event bus shared by coding-agent sessions: register_session, then poll get_events(resume=true, order=asc) and publish_event. Read agent-event-bus://guide for the loop and etiquette.",
    })
}

fn read_resource(params: Option<&Value>) -> Result<Value, RpcError> {
    let uri = params
        .and_then(|p| p.get("uri"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            RpcError::new(INVALID_PARAMS, "resources/read needs params.uri (a string)")
        })?;
    if uri != catalog::GUIDE_URI {
        return Err(RpcError::new(
            RESOURCE_NOT_FOUND,
            format!(
                "Resource not found: {uri} (this hub has {})",
                catalog::GUIDE_URI
            ),
        ));
    }
    Ok(catalog::guide_contents())
}

async fn call_tool(bus: &Bus, caller: &Caller, params: Option<Value>) -> Result<Json, RpcError> {
    let Some(Value::Object(mut params)) = params else {
        return Err(RpcError::new(
            INVALID_PARAMS,
            "tools/call needs params {name, arguments}",
        ));
    };
    let Some(Value::String(name)) = params.remove("name") else {
        return Err(RpcError::new(
            INVALID_PARAMS,
            "tools/call needs params.name (a string)",
        ));
    };
    let arguments = params.remove("arguments");
    let named = arguments
        .as_ref()
        .and_then(|a| a.get("session_id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let waits = name == GetEvents::NAME
        && arguments
            .as_ref()
            .and_then(|a| a.get("wait_seconds"))
            .and_then(shared::coerce::whole_number)
            .is_some_and(|w| w > 0);
    let _counted = waits.then(|| bus.long_poll());
    let started = Instant::now();
    let outcome = tools::call(bus, caller, &name, arguments).await;
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let result = match outcome {
        Ok(reply) => {
            let summary = reply.summary();
            tracing::debug!(
                tool = %Shown(&name),
                caller = %Shown(named.as_deref().unwrap_or("-")),
                micros,
                "{}",
                Shown(summary)
            );
            return Ok(reply.render());
        }
        Err(ToolError::Internal(e)) => {
            tracing::error!(tool = %Shown(&name), error = %e, "tool failed");
            let text = if e.is_unavailable() {
                STORAGE_REFUSAL
            } else {
                "internal error: the hub could not complete this call (see the hub's log); nothing was acknowledged, so it is safe to retry"
            };
            tool_error(text)
        }
        Err(e) => {
            tracing::debug!(tool = %Shown(&name), "refused: {}", Shown(&e.to_string()));
            tool_error(&e.to_string())
        }
    };
    Ok(Json::of(&result))
}
