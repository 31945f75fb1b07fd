//! The HTTP surface: `POST /mcp` (its body answered by [`crate::mcp`],
//! framed as JSON or SSE by `Accept`), `GET /health`, a read-only live view
//! at `GET /`, the request limits (JSON bodies only, the body cap), and
//! `recover`, which turns every rejection into JSON. Who may call is
//! decided before any route, in [`crate::server`] (see [`crate::auth`]).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;
use warp::filters::BoxedFilter;
use warp::http::{Method, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::auth::Verdict;
use crate::caller::Caller;
use crate::mcp::Answer;
use crate::server::Load;
use crate::state::Bus;

/// The live view served at `GET /`.
const DASHBOARD: &str = include_str!("dashboard.html");

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
        .and(warp::ext::optional::<Caller>())
        .then(
            |accept: Option<String>, body: Bytes, bus: Arc<Bus>, caller: Option<Caller>| async move {
                let sse = accept.is_some_and(|a| a.contains("text/event-stream"));
                // Set by the connection's access check when it admitted the
                // caller; without one, nobody was admitted.
                let Some(caller) = caller else {
                    return refusal(&Verdict::Unauthorized(
                        "this hub needs its credential: send Authorization: Bearer <token>".to_owned(),
                    ));
                };
                frame(crate::mcp::answer(&bus, &caller, &body).await, sse)
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
                &crate::mcp::invalid_request(message),
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
    // that reads through POST /mcp like any other client. The page holds
    // nothing of the bus and loads without the credential; its reads send
    // the token it took from its address's fragment.
    let dashboard = warp::path::end().and(warp::get()).map(|| {
        let mut r = warp::reply::html(DASHBOARD).into_response();
        let headers = r.headers_mut();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            warp::http::HeaderValue::from_static(
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
            ),
        );
        headers.insert(
            header::REFERRER_POLICY,
            warp::http::HeaderValue::from_static("no-referrer"),
        );
        headers.insert(
            header::CACHE_CONTROL,
            warp::http::HeaderValue::from_static("no-store"),
        );
        r
    });

    post.or(other_mcp)
        .unify()
        .or(health)
        .unify()
        .or(dashboard)
        .unify()
        .recover(move |rejection| {
            std::future::ready(Ok::<_, Infallible>(recover(&rejection, max_body)))
        })
        .unify()
        .boxed()
}

/// The `/health` reply: `{"status":"ok",...}` with 200, or with 503
/// `{"status":"degraded","storage":"error: ..."}` while writes fail (a full
/// disk), so a monitor alerts on the status code alone. Both carry the
/// connection counts and how many `get_events` long-polls are waiting.
fn health(bus: &Bus, load: &Load) -> Response {
    match bus.store.storage_fault() {
        None => json_response(
            StatusCode::OK,
            &json!({
                "status": "ok",
                "service": shared::SERVER_NAME,
                "version": shared::VERSION,
                "connections": load.snapshot(),
                "long_polls": bus.long_polls(),
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
                "long_polls": bus.long_polls(),
            }),
        ),
    }
}

/// The reply to a request [`crate::auth`] refused.
pub fn refusal(verdict: &Verdict) -> Response {
    let (status, error, message) = match verdict {
        Verdict::Allow(_) | Verdict::Public => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal", String::new())
        }
        Verdict::BadRequest(m) => (StatusCode::BAD_REQUEST, "Bad Request", (*m).to_owned()),
        Verdict::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "Unauthorized", m.clone()),
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

/// Frames the answer to a POST: a JSON-RPC message as JSON, or as a single
/// SSE event when the client accepts `text/event-stream`.
fn frame(answer: Answer, sse: bool) -> Response {
    let Answer::Message { status, body } = answer else {
        return warp::reply::with_status(warp::reply(), StatusCode::ACCEPTED).into_response();
    };
    let (content_type, cache, text) = if sse {
        ("text/event-stream", "no-cache", {
            let mut text = body;
            text.insert_str(0, "event: message\ndata: ");
            text.push_str("\n\n");
            text
        })
    } else {
        ("application/json", "no-store", body)
    };
    let mut r = warp::reply::with_status(text, status).into_response();
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static(content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        warp::http::HeaderValue::from_static(cache),
    );
    r
}

/// Turns every rejection into a JSON reply; nothing reaches the client as
/// warp's plain-text defaults.
fn recover(rejection: &Rejection, max_body: u64) -> Response {
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
        let mut r = json_response(status, &crate::mcp::invalid_request(message));
        // The body of a refused request may be left unread on the wire, so
        // the connection cannot carry another request: say so, or a client
        // that pools connections sends its next call into a closed socket.
        r.headers_mut().insert(
            header::CONNECTION,
            warp::http::HeaderValue::from_static("close"),
        );
        return r;
    }
    if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        return json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"error": "Method Not Allowed"}),
        );
    }
    if rejection.is_not_found() {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "Not Found", "message": "this hub serves POST /mcp, GET /health and GET /"}),
        );
    }
    // Anything else is a rejection this module did not foresee: its debug
    // text names internals, so the client gets a fixed message and the
    // server log gets the detail.
    tracing::warn!(?rejection, "request rejected for an unforeseen reason");
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": "Bad Request", "message": "the hub could not accept this request; POST JSON-RPC to /mcp with Content-Type: application/json"}),
    )
}
