//! The HTTP surface: `POST /mcp` (stateless MCP Streamable HTTP, one
//! JSON-RPC request per POST, answered as JSON or SSE-framed by `Accept`),
//! `GET /health`, a read-only live view at `GET /`, and JSON errors for
//! everything else. Dispatch only: tool rules live in [`crate::tools`].

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use shared::catalog;
use warp::filters::BoxedFilter;
use warp::http::{Method, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::auth::Verdict;
use crate::server::Load;
use crate::state::Bus;
use crate::store::STORAGE_REFUSAL;
use crate::tools::{self, ToolError};

/// Protocol revisions this hub speaks, oldest first. (2026-07-28 is left
/// out: clients probe it with `server/discover`, get -32601, and fall back.)
const PROTOCOL_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// The live view served at `GET /`.
const DASHBOARD: &str = include_str!("dashboard.html");

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const INTERNAL_ERROR: i64 = -32603;
const RESOURCE_NOT_FOUND: i64 = -32002;

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

#[derive(Debug)]
struct UnsupportedMediaType(Option<String>);
impl warp::reject::Reject for UnsupportedMediaType {}

/// Every route, with JSON errors behind. Who may call is decided before
/// any route, in [`crate::server`] (see [`crate::auth`]).
pub fn routes(bus: Arc<Bus>, load: Arc<Load>) -> BoxedFilter<(Response,)> {
    let max_body = bus.limits.max_body_bytes;
    let mcp_path = warp::path("mcp").and(warp::path::end());

    // POST /mcp — one JSON-RPC request or notification.
    let health_bus = {
        let bus = bus.clone();
        warp::any().map(move || bus.clone())
    };
    let with_bus = warp::any().map(move || bus.clone());
    let post = mcp_path
        .and(warp::post())
        .and(warp::header::optional::<String>("content-type"))
        .and_then(|content_type: Option<String>| async move {
            // A web page can send a body cross-origin without a preflight
            // only as text/plain, form data or multipart; JSON is required.
            let is_json = content_type.as_deref().is_some_and(|ct| {
                ct.split(';')
                    .next()
                    .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
            });
            if is_json {
                Ok(())
            } else {
                Err(warp::reject::custom(UnsupportedMediaType(content_type)))
            }
        })
        .untuple_one()
        .and(warp::body::content_length_limit(max_body))
        .and(warp::header::optional::<String>("accept"))
        .and(warp::body::bytes())
        .and(with_bus)
        .then(
            |accept: Option<String>, body: Bytes, bus: Arc<Bus>| async move {
                let sse = accept.is_some_and(|a| a.contains("text/event-stream"));
                handle_post(&bus, &body, sse).await
            },
        );

    // GET/DELETE /mcp — no server-initiated stream and no sessions.
    let other_mcp = mcp_path
        .and(warp::method())
        .and_then(|method: Method| async move {
            if method == Method::POST {
                Err(warp::reject::not_found())
            } else {
                Ok(method)
            }
        })
        .map(|method: Method| {
            let message = if method == Method::DELETE {
                "Method Not Allowed: this hub is stateless; there is no session to end"
            } else {
                "Method Not Allowed: this hub is stateless; POST JSON-RPC requests to /mcp"
            };
            let mut r = json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                &rpc_error_body(Value::Null, &RpcError::new(INVALID_REQUEST, message)),
            );
            r.headers_mut()
                .insert(header::ALLOW, warp::http::HeaderValue::from_static("POST"));
            r
        });

    // GET /health — 200 `ok`, or 503 `degraded` while storage fails.
    let health = warp::path("health")
        .and(warp::path::end())
        .and(warp::get())
        .and(health_bus)
        .map(move |bus: Arc<Bus>| health(&bus, &load));

    // GET / — a read-only live view (sessions, channels, events, webhooks)
    // that reads through POST /mcp like any other client.
    let dashboard = warp::path::end().and(warp::get()).map(|| {
        let mut r = warp::reply::html(DASHBOARD).into_response();
        r.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            warp::http::HeaderValue::from_static(
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
            ),
        );
        r
    });

    post.or(other_mcp)
        .unify()
        .or(health)
        .unify()
        .or(dashboard)
        .unify()
        .recover(move |rejection| recover(rejection, max_body))
        .unify()
        .boxed()
}

/// The `/health` reply: `{"status":"ok",...}` with 200, or with 503
/// `{"status":"degraded","storage":"error: ..."}` while writes fail (a full
/// disk), so a monitor alerts on the status code alone. Both carry the
/// connection counts.
fn health(bus: &Bus, load: &Load) -> Response {
    match bus.store.storage_fault() {
        None => json_response(
            StatusCode::OK,
            &json!({
                "status": "ok",
                "service": shared::SERVER_NAME,
                "version": shared::VERSION,
                "connections": load.snapshot(),
            }),
        ),
        Some(fault) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({
                "status": "degraded",
                "storage": format!("error: {fault}"),
                "service": shared::SERVER_NAME,
                "version": shared::VERSION,
                "connections": load.snapshot(),
            }),
        ),
    }
}

/// The reply to a request [`crate::auth`] refused.
pub fn refusal(verdict: &Verdict) -> Response {
    let (status, error, message) = match verdict {
        Verdict::Allow => (StatusCode::INTERNAL_SERVER_ERROR, "internal", String::new()),
        Verdict::BadRequest(m) => (StatusCode::BAD_REQUEST, "Bad Request", (*m).to_owned()),
        Verdict::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "Unauthorized", (*m).to_owned()),
        Verdict::Forbidden(m) => (StatusCode::FORBIDDEN, "Forbidden", m.clone()),
    };
    json_response(status, &json!({"error": error, "message": message}))
}

fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let mut r = warp::reply::with_status(warp::reply::json(body), status).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        warp::http::HeaderValue::from_static("no-store"),
    );
    r
}

fn rpc_error_body(id: Value, e: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": e.code, "message": e.message}})
}

/// Frames one JSON-RPC message as JSON or as a single SSE event.
fn rpc_response(status: StatusCode, body: &impl serde::Serialize, sse: bool) -> Response {
    if !sse {
        return json_response(status, body);
    }
    let body = serde_json::to_string(body).unwrap_or_default();
    let text = format!("event: message\ndata: {body}\n\n");
    let mut r = warp::reply::with_status(text, status).into_response();
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        warp::http::HeaderValue::from_static("no-cache"),
    );
    r
}

/// One POST body: parsed, dispatched, answered (`fuzz` drives it directly).
pub(crate) async fn handle_post(bus: &Bus, body: &[u8], sse: bool) -> Response {
    let message: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            let detail = if std::str::from_utf8(body).is_err() {
                "the body is not valid UTF-8".to_owned()
            } else {
                e.to_string()
            };
            let err = RpcError::new(PARSE_ERROR, format!("Parse error: {detail}"));
            return rpc_response(
                StatusCode::BAD_REQUEST,
                &rpc_error_body(Value::Null, &err),
                sse,
            );
        }
    };
    let Value::Object(obj) = message else {
        let reason = if message.is_array() {
            "Invalid Request: batches are not supported (MCP 2025-06-18 removed them); send one request per POST"
        } else {
            "Invalid Request: expected a JSON-RPC object"
        };
        let err = RpcError::new(INVALID_REQUEST, reason);
        return rpc_response(
            StatusCode::BAD_REQUEST,
            &rpc_error_body(Value::Null, &err),
            sse,
        );
    };
    let id = obj.get("id").cloned();
    let method = obj.get("method").and_then(Value::as_str);
    let Some(method) = method else {
        if id.is_some() && (obj.contains_key("result") || obj.contains_key("error")) {
            // A response to a request we never send: accept and ignore.
            return warp::reply::with_status(warp::reply(), StatusCode::ACCEPTED).into_response();
        }
        let err = RpcError::new(
            INVALID_REQUEST,
            "Invalid Request: 'method' must be a string",
        );
        return rpc_response(
            StatusCode::BAD_REQUEST,
            &rpc_error_body(id.unwrap_or(Value::Null), &err),
            sse,
        );
    };
    let Some(id) = id.filter(|i| i.is_string() || i.is_number()) else {
        if obj.contains_key("id") {
            let err = RpcError::new(
                INVALID_REQUEST,
                "Invalid Request: 'id' must be a string or a number",
            );
            return rpc_response(
                StatusCode::BAD_REQUEST,
                &rpc_error_body(Value::Null, &err),
                sse,
            );
        }
        // A notification: nothing to answer.
        return warp::reply::with_status(warp::reply(), StatusCode::ACCEPTED).into_response();
    };
    let params = obj.get("params").cloned();
    match dispatch(bus, method, params).await {
        Ok(result) => rpc_response(
            StatusCode::OK,
            &RpcResult {
                jsonrpc: "2.0",
                id: &id,
                result: &result,
            },
            sse,
        ),
        Err(e) => rpc_response(StatusCode::OK, &rpc_error_body(id, &e), sse),
    }
}

/// A JSON-RPC success whose result is already serialised (written as is).
#[derive(serde::Serialize)]
struct RpcResult<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    result: &'a RawValue,
}

async fn dispatch(
    bus: &Bus,
    method: &str,
    params: Option<Value>,
) -> Result<Box<RawValue>, RpcError> {
    if method == "tools/call" {
        return call_tool(bus, params).await;
    }
    let value = dispatch_value(method, params)?;
    serde_json::value::to_raw_value(&value)
        .map_err(|e| RpcError::new(INTERNAL_ERROR, format!("Internal error: {e}")))
}

fn dispatch_value(method: &str, params: Option<Value>) -> Result<Value, RpcError> {
    match method {
        "initialize" => Ok(initialize(params.as_ref())),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({"tools": catalog::tools()})),
        "resources/list" => Ok(json!({"resources": [catalog::guide_resource()]})),
        "resources/templates/list" => Ok(json!({"resourceTemplates": []})),
        "resources/read" => read_resource(params.as_ref()),
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
    Ok(json!({"contents": [{"uri": uri, "mimeType": "text/plain", "text": catalog::GUIDE}]}))
}

async fn call_tool(bus: &Bus, params: Option<Value>) -> Result<Box<RawValue>, RpcError> {
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
    let caller = arguments
        .as_ref()
        .and_then(|a| a.get("session_id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let started = Instant::now();
    let outcome = tools::call(bus, &name, arguments).await;
    let micros = started.elapsed().as_micros() as u64;
    let result = match outcome {
        Ok(reply) => {
            let summary = reply.summary();
            tracing::debug!(tool = %name, caller = caller.as_deref().unwrap_or("-"), micros, "{summary}");
            return Ok(reply.render());
        }
        Err(ToolError::Internal(e)) => {
            tracing::error!(tool = %name, error = %e, "tool failed");
            let text = if e.is_unavailable() {
                STORAGE_REFUSAL
            } else {
                "internal error: the hub could not complete this call (see the hub's log); nothing was acknowledged, so it is safe to retry"
            };
            json!({"content": [{"type": "text", "text": text}], "isError": true})
        }
        Err(e) => {
            tracing::debug!(tool = %name, "refused: {e}");
            json!({"content": [{"type": "text", "text": e.to_string()}], "isError": true})
        }
    };
    serde_json::value::to_raw_value(&result)
        .map_err(|e| RpcError::new(INTERNAL_ERROR, format!("Internal error: {e}")))
}

/// Turns every rejection into a JSON reply; nothing reaches the client as
/// warp's plain-text defaults.
async fn recover(rejection: Rejection, max_body: u64) -> Result<Response, Infallible> {
    let refusal = if let Some(UnsupportedMediaType(ct)) = rejection.find::<UnsupportedMediaType>() {
        Some((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            match ct {
                Some(ct) => format!(
                    "Unsupported Media Type: send Content-Type: application/json (got '{ct}')"
                ),
                None => "Unsupported Media Type: send Content-Type: application/json".to_owned(),
            },
        ))
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        Some((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Payload Too Large: the request body is over the hub's limit of {max_body} bytes (its --max-body)"
            ),
        ))
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        Some((
            StatusCode::LENGTH_REQUIRED,
            "Length Required: send a Content-Length header".to_owned(),
        ))
    } else {
        None
    };
    if let Some((status, message)) = refusal {
        let err = RpcError::new(INVALID_REQUEST, message);
        let mut r = json_response(status, &rpc_error_body(Value::Null, &err));
        // The body of a refused request may be left unread on the wire, so
        // the connection cannot carry another request: say so, or a client
        // that pools connections sends its next call into a closed socket.
        r.headers_mut().insert(
            header::CONNECTION,
            warp::http::HeaderValue::from_static("close"),
        );
        return Ok(r);
    }
    if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        return Ok(json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"error": "Method Not Allowed"}),
        ));
    }
    if rejection.is_not_found() {
        return Ok(json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "Not Found", "message": "this hub serves POST /mcp, GET /health and GET /"}),
        ));
    }
    // Anything else is a rejection this module did not foresee: its debug
    // text names internals, so the client gets a fixed message and the
    // server log gets the detail.
    tracing::warn!(?rejection, "request rejected for an unforeseen reason");
    Ok(json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": "Bad Request", "message": "the hub could not accept this request; POST JSON-RPC to /mcp with Content-Type: application/json"}),
    ))
}
