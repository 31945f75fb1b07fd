//! End-to-end tests: bad input of every kind gets its documented error, and
//! the hub keeps serving afterwards.

use serde_json::{Value, json};
use support::Hub;

struct Raw {
    status: u16,
    content_type: String,
    /// The `Allow` header, empty when absent.
    allow: String,
    body: String,
}

/// A request with the hub's credential.
fn raw(hub: &Hub, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Raw {
    raw_as(hub, Some(hub.token()), method, path, headers, body)
}

/// A request with `token` as its credential, or none.
fn raw_as(
    hub: &Hub,
    token: Option<&str>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Raw {
    shared::client::install_crypto_provider();
    let client = reqwest::Client::new();
    support::rt().block_on(async {
        let url = format!("{}{path}", hub.base());
        let mut req = client.request(method.parse().unwrap(), url).body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("the hub answers");
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        Raw {
            status: resp.status().as_u16(),
            content_type: header("content-type"),
            allow: header("allow"),
            body: resp.text().await.unwrap_or_default(),
        }
    })
}

fn post_json(hub: &Hub, body: &str) -> Raw {
    raw(
        hub,
        "POST",
        "/mcp",
        &[("content-type", "application/json")],
        body.as_bytes().to_vec(),
    )
}

fn json_of(r: &Raw) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body))
}

fn assert_alive(hub: &Hub) {
    let health = support::rt()
        .block_on(hub.client().health())
        .expect("the hub still answers");
    assert_eq!(health["status"], "ok");
}

#[test]
fn malformed_requests_get_json_rpc_errors() {
    let hub = Hub::start();
    let cases: &[(&str, Vec<u8>, u16, i64)] = &[
        ("truncated JSON", b"{\"jsonrpc\":".to_vec(), 400, -32700),
        ("not JSON", b"hello".to_vec(), 400, -32700),
        ("invalid UTF-8", vec![0x7b, 0xff, 0xfe, 0x7d], 400, -32700),
        ("a batch", b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]".to_vec(), 400, -32600),
        ("a bare number", b"42".to_vec(), 400, -32600),
        ("no method", b"{\"jsonrpc\":\"2.0\",\"id\":1}".to_vec(), 400, -32600),
        ("an object id", b"{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}".to_vec(), 400, -32600),
        ("an unknown method", b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server/discover\"}".to_vec(), 200, -32601),
        ("tools/call without a name", b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{}}".to_vec(), 200, -32602),
        ("an unknown resource", b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":\"x://y\"}}".to_vec(), 200, -32002),
    ];
    for (what, body, status, code) in cases {
        let r = raw(
            &hub,
            "POST",
            "/mcp",
            &[("content-type", "application/json")],
            body.clone(),
        );
        assert_eq!(r.status, *status, "{what}: {}", r.body);
        assert_eq!(json_of(&r)["error"]["code"], *code, "{what}: {}", r.body);
    }
    assert_alive(&hub);
}

#[test]
fn http_level_refusals() {
    let hub = Hub::start_with(support::HubOptions {
        args: vec!["--max-body-bytes".into(), "4096".into()],
        ..Default::default()
    });
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{{\"x\":\"{}\"}}}}",
        "a".repeat(10_000)
    );
    let r = post_json(&hub, &big);
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(
        json_of(&r)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Too Large")
    );

    let r = raw(
        &hub,
        "POST",
        "/mcp",
        &[("content-type", "text/plain")],
        b"{}".to_vec(),
    );
    assert_eq!(r.status, 415);
    assert!(r.body.contains("application/json"));

    for (method, says) in [
        ("GET", "POST JSON-RPC requests to /mcp"),
        ("DELETE", "there is no session to end"),
    ] {
        let r = raw(&hub, method, "/mcp", &[], Vec::new());
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.allow, "POST", "{method} names the method to use");
        let body = json_of(&r);
        assert_eq!(body["error"]["code"], -32600, "{method}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{method}: {body}");
    }
    let r = raw(&hub, "GET", "/nowhere", &[], Vec::new());
    assert_eq!(r.status, 404);
    assert_eq!(json_of(&r)["error"], "Not Found");

    let r = post_json(
        &hub,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(r.status, 202, "notifications are accepted with no body");
    assert_eq!(r.body, "", "a notification gets no reply body");
    assert_alive(&hub);
}

#[test]
fn replies_are_framed_by_what_the_client_accepts() {
    let hub = Hub::start();
    let ping = br#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#.to_vec();
    let sse = raw(
        &hub,
        "POST",
        "/mcp",
        &[
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
        ],
        ping.clone(),
    );
    assert_eq!(sse.status, 200);
    assert!(
        sse.content_type.starts_with("text/event-stream"),
        "{}",
        sse.content_type
    );
    assert!(
        sse.body.starts_with("event: message\ndata: {"),
        "{}",
        sse.body
    );
    let data: Value = serde_json::from_str(
        sse.body
            .lines()
            .nth(1)
            .unwrap()
            .trim_start_matches("data: "),
    )
    .unwrap();
    assert_eq!(data, json!({"jsonrpc": "2.0", "id": 7, "result": {}}));

    let plain = raw(
        &hub,
        "POST",
        "/mcp",
        &[
            ("content-type", "application/json"),
            ("accept", "application/json"),
        ],
        ping,
    );
    assert!(plain.content_type.starts_with("application/json"));
    assert_eq!(json_of(&plain)["id"], 7);
}

#[test]
fn bad_tool_arguments_are_tool_errors_that_say_what_to_send() {
    let hub = Hub::start();
    let cases: &[(&str, Value, &str)] = &[
        ("nope", json!({}), "Unknown tool: nope"),
        ("register_session", json!({}), "name is required"),
        (
            "register_session",
            json!({"name": 5}),
            "name must be a string",
        ),
        (
            "register_session",
            json!({"name": "x", "lease_seconds": 0}),
            "lease_seconds must be from 1",
        ),
        (
            "register_session",
            json!({"name": "x", "sesion_id": "typo"}),
            "unknown argument sesion_id",
        ),
        (
            "publish_event",
            json!({"event_type": "x"}),
            "payload is required",
        ),
        (
            "publish_event",
            json!({"event_type": "", "payload": "p"}),
            "event_type must not be empty",
        ),
        (
            "publish_event",
            json!({"event_type": "x".repeat(200), "payload": "p"}),
            "the limit is 128",
        ),
        (
            "publish_event",
            json!({"event_type": "x", "payload": "p", "tags": [1]}),
            "list of strings",
        ),
        (
            "publish_event",
            json!({"event_type": "x", "payload": "p", "tags": vec!["t"; 40]}),
            "the limit is 32",
        ),
        (
            "publish_event",
            json!({"event_type": "x", "payload": "p".repeat(70_000)}),
            "the limit is 65536",
        ),
        (
            "ack_events",
            json!({"session_id": "s"}),
            "cursor is required",
        ),
        (
            "set_webhook_active",
            json!({"webhook_id": "one", "active": true}),
            "webhook_id must be a whole number",
        ),
        (
            "list_sessions",
            json!([1, 2]),
            "arguments must be an object",
        ),
    ];
    for (tool, args, needle) in cases {
        let out = hub.tool_raw(tool, args.clone());
        assert!(out.is_error(), "{tool}({args}) should be refused");
        assert!(
            out.text().contains(needle),
            "{tool}: wanted '{needle}', got '{}'",
            out.text()
        );
    }
    // Nothing was stored by any of them.
    assert_eq!(hub.tool("get_events", json!({}))["events"], json!([]));
    assert_alive(&hub);
}

#[test]
fn the_live_view_is_served_behind_the_same_rules() {
    let hub = Hub::start();
    // The page itself needs no credential (its reads of the bus do).
    let page = raw_as(&hub, None, "GET", "/", &[], Vec::new());
    assert_eq!(page.status, 200);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert!(page.body.contains("agent-event-bus") && page.body.contains("list_sessions"));
    assert!(
        !page.body.contains("innerHTML"),
        "the page must put hub data on screen as text only"
    );
    let rebinding = raw_as(
        &hub,
        None,
        "GET",
        "/",
        &[("host", "evil.example")],
        Vec::new(),
    );
    assert_eq!(rebinding.status, 403);
    assert!(
        !page.body.contains(hub.token()),
        "the page carries no credential"
    );
}

#[test]
fn arguments_a_client_adds_for_itself_are_dropped_and_typos_still_refused() {
    let hub = Hub::start();
    let session = hub.register("gemini", None)["session_id"]
        .as_str()
        .expect("a session id")
        .to_owned();
    // Gemini CLI adds `wait_for_previous` to every tool's parameters.
    let stored = hub.tool(
        "publish_event",
        json!({"session_id": session, "event_type": "ordered", "payload": "p", "wait_for_previous": true}),
    );
    let listed = hub.tool("list_channels", json!({"random_string": "x"}));
    assert!(listed.is_array(), "{listed}");

    // A misspelt `channel` must never turn a direct message into a broadcast.
    let typo = hub.tool_raw(
        "publish_event",
        json!({"session_id": session, "event_type": "dm", "payload": "p", "chanel": "direct:someone", "wait_for_previous": false}),
    );
    assert!(typo.is_error(), "a typo must be refused: {}", typo.text());
    assert!(
        typo.text().contains("unknown argument chanel;")
            && typo.text().contains("this tool takes: ")
            && typo.text().contains("channel"),
        "{}",
        typo.text()
    );
    assert!(
        !typo.text().contains("wait_for_previous"),
        "{}",
        typo.text()
    );
    let events = hub.tool("get_events", json!({"order": "asc"}))["events"].clone();
    let types: Vec<&str> = events
        .as_array()
        .expect("a page of events")
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .filter(|t| !t.starts_with("session_"))
        .collect();
    assert_eq!(types, ["ordered"], "{events}");
    assert_eq!(
        events
            .as_array()
            .and_then(|all| all.iter().find(|e| e["id"] == stored["event_id"]))
            .map(|e| e["session_id"].clone()),
        Some(json!(session))
    );
}

/// A rejection the hub did not foresee (here a `Content-Type` that is not
/// text) gets a fixed JSON message, never the rejection's debug text (it
/// names internals); the detail goes to the hub's log, once.
#[test]
fn an_unforeseen_rejection_gets_a_fixed_message_and_one_log_line() {
    let hub = Hub::start();
    shared::client::install_crypto_provider();
    let not_text = reqwest::header::HeaderValue::from_bytes(b"application/json\xff").unwrap();
    let (status, body) = support::rt().block_on(async {
        let resp = reqwest::Client::new()
            .post(format!("{}/mcp", hub.base()))
            .bearer_auth(hub.token())
            .header(reqwest::header::CONTENT_TYPE, not_text)
            .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
            .send()
            .await
            .expect("the hub answers");
        (
            resp.status().as_u16(),
            resp.text().await.unwrap_or_default(),
        )
    });
    assert_eq!(status, 400, "{body}");
    let reply: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    assert_eq!(
        reply,
        json!({
            "error": "Bad Request",
            "message": "the hub could not accept this request; POST JSON-RPC to /mcp with Content-Type: application/json",
        })
    );
    let line = "request rejected for an unforeseen reason";
    support::wait_until(
        "the rejection in the hub's log",
        std::time::Duration::from_secs(10),
        || hub.log().contains(line).then_some(()),
    );
    assert_alive(&hub);
    assert_eq!(hub.log().matches(line).count(), 1, "{}", hub.log());
}
