//! Scripted stand-ins for the model APIs the real clients call, on loopback.
//! Each answers the first request that offers the bus's `publish_event` tool
//! with a call of it (the arguments the test chose), holds the request that
//! carries the tool's result until the test has looked at the hub, and
//! answers everything else with a short text.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;
use warp::Filter;
use warp::http::Response;

/// The final text every stand-in ends a turn with.
pub const FINAL_TEXT: &str = "Published to the bus.";

/// Which model API to speak.
#[derive(Clone, Copy, Debug)]
pub enum Api {
    /// Anthropic Messages (`POST /v1/messages`), as Claude Code calls it.
    Anthropic,
    /// Gemini `generateContent` / `streamGenerateContent?alt=sse`.
    Gemini,
    /// `OpenAI` Responses (`POST /v1/responses`), as Codex calls it.
    Responses,
}

/// The request that carried the tool's result, held until released.
pub struct Held {
    /// The request body.
    pub body: Value,
    release: oneshot::Sender<()>,
}

impl Held {
    /// Lets the client have its final answer.
    pub fn release(self) {
        let _ = self.release.send(());
    }
}

/// A running stand-in.
pub struct StandIn {
    /// Base URL, `http://127.0.0.1:<port>`.
    pub url: String,
    requests: Arc<Mutex<Vec<(String, Value)>>>,
    held: mpsc::Receiver<Held>,
    _runtime: tokio::runtime::Runtime,
}

struct Script {
    api: Api,
    args: Value,
    requests: Arc<Mutex<Vec<(String, Value)>>>,
    held: Mutex<mpsc::Sender<Held>>,
    holding: AtomicBool,
}

impl StandIn {
    /// Starts a stand-in of `api` whose tool call carries `args`.
    pub fn start(api: Api, args: Value) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the stand-in");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (tx, held) = mpsc::channel();
        let script = Arc::new(Script {
            api,
            args,
            requests: requests.clone(),
            held: Mutex::new(tx),
            holding: AtomicBool::new(false),
        });
        let route = warp::path::full()
            .and(warp::query::raw().or(warp::any().map(String::new)).unify())
            .and(warp::body::bytes())
            .then(
                move |path: warp::path::FullPath, query: String, body: warp::hyper::body::Bytes| {
                    let script = script.clone();
                    async move { script.answer(path.as_str(), &query, &body).await }
                },
            );
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("a local address");
        let server = warp::serve(route).incoming(listener).run();
        runtime.spawn(server);
        Self {
            url: format!("http://{addr}"),
            requests,
            held,
            _runtime: runtime,
        }
    }

    /// Every request so far: path and JSON body.
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.requests.lock().expect("the request log").clone()
    }

    /// The held tool-result request, if one arrives within `wait`.
    pub fn held(&self, wait: Duration) -> Option<Held> {
        self.held.recv_timeout(wait).ok()
    }
}

impl Script {
    async fn answer(&self, path: &str, query: &str, body: &[u8]) -> Response<Vec<u8>> {
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        self.requests
            .lock()
            .expect("the request log")
            .push((format!("{path}?{query}"), body.clone()));
        let (call, answered) = match self.api {
            Api::Anthropic => anthropic_turn(&body),
            Api::Gemini => gemini_turn(&body),
            Api::Responses => responses_turn(&body),
        };
        if call.is_some() && answered && !self.holding.swap(true, Ordering::SeqCst) {
            let (release, released) = oneshot::channel();
            let held = Held {
                body: body.clone(),
                release,
            };
            let sent = self.held.lock().expect("the held channel").send(held);
            if sent.is_ok() {
                // Bounded, so a test that never looks cannot hang the client.
                let _ = tokio::time::timeout(Duration::from_secs(120), released).await;
            }
        }
        let call = call.filter(|_| !answered);
        let streaming = body["stream"] == json!(true) || path.contains(":stream");
        let (content_type, text) = match self.api {
            Api::Anthropic => anthropic_reply(&body, call, &self.args, streaming),
            Api::Gemini => gemini_reply(call, &self.args, streaming),
            Api::Responses => responses_reply(call, &self.args),
        };
        Response::builder()
            .header("content-type", content_type)
            .body(text.into_bytes())
            .expect("a response")
    }
}

/// A tool call to make: the name (and, for Responses, the namespace).
type Call = Option<(String, Option<String>)>;

/// A `text/event-stream` body: each event named by its `type`.
fn event_stream(events: &[Value]) -> String {
    let mut text = String::new();
    for e in events {
        let kind = e["type"].as_str().unwrap_or_default();
        text.push_str(&format!("event: {kind}\ndata: {e}\n\n"));
    }
    text
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn anthropic_turn(body: &Value) -> (Call, bool) {
    let name = "mcp__agent-event-bus__publish_event";
    let offered = array(body, "tools").iter().any(|t| t["name"] == name);
    let answered = array(body, "messages")
        .iter()
        .flat_map(|m| array(m, "content"))
        .any(|c| c["type"] == "tool_result");
    (offered.then(|| (name.to_owned(), None)), answered)
}

fn anthropic_reply(
    body: &Value,
    call: Call,
    args: &Value,
    streaming: bool,
) -> (&'static str, String) {
    let (block, delta, stop) = match call {
        Some((name, _)) => (
            json!({"type": "tool_use", "id": "toolu_standin_1", "name": name, "input": {}}),
            json!({"type": "input_json_delta", "partial_json": args.to_string()}),
            "tool_use",
        ),
        None => (
            json!({"type": "text", "text": ""}),
            json!({"type": "text_delta", "text": FINAL_TEXT}),
            "end_turn",
        ),
    };
    let usage = json!({"input_tokens": 1, "output_tokens": 1});
    if !streaming {
        let mut whole = block.clone();
        match stop {
            "tool_use" => whole["input"] = args.clone(),
            _ => whole["text"] = json!(FINAL_TEXT),
        }
        let message = json!({"id": "msg_standin", "type": "message", "role": "assistant",
            "model": body["model"], "content": [whole], "stop_reason": stop,
            "stop_sequence": null, "usage": usage});
        return ("application/json", message.to_string());
    }
    let events = [
        json!({"type": "message_start", "message": {"id": "msg_standin", "type": "message",
            "role": "assistant", "model": body["model"], "content": [], "stop_reason": null,
            "stop_sequence": null, "usage": usage}}),
        json!({"type": "content_block_start", "index": 0, "content_block": block}),
        json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": {"output_tokens": 1}}),
        json!({"type": "message_stop"}),
    ];
    ("text/event-stream", event_stream(&events))
}

fn gemini_turn(body: &Value) -> (Call, bool) {
    let name = array(body, "tools")
        .iter()
        .flat_map(|t| array(t, "functionDeclarations"))
        .filter_map(|d| d["name"].as_str())
        .find(|n| n.ends_with("publish_event"));
    let answered = array(body, "contents")
        .iter()
        .flat_map(|c| array(c, "parts"))
        .any(|p| p.get("functionResponse").is_some());
    (name.map(|n| (n.to_owned(), None)), answered)
}

fn gemini_reply(call: Call, args: &Value, streaming: bool) -> (&'static str, String) {
    let part = match call {
        Some((name, _)) => json!({"functionCall": {"name": name, "args": args}}),
        None => json!({"text": FINAL_TEXT}),
    };
    let chunk = json!({
        "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
        "modelVersion": "stand-in",
    });
    if streaming {
        ("text/event-stream", format!("data: {chunk}\r\n\r\n"))
    } else {
        ("application/json", chunk.to_string())
    }
}

fn responses_turn(body: &Value) -> (Call, bool) {
    let tools = array(body, "tools");
    // Codex offers each MCP server's tools in a namespace; older builds
    // offered them as plain functions with the server in the name.
    let namespaced = tools.iter().find_map(|t| {
        let inner = array(t, "tools")
            .iter()
            .filter_map(|f| f["name"].as_str())
            .find(|n| *n == "publish_event")?;
        Some((inner.to_owned(), t["name"].as_str().map(str::to_owned)))
    });
    let plain = || {
        tools
            .iter()
            .filter_map(|t| t["name"].as_str())
            .find(|n| n.ends_with("publish_event"))
            .map(|n| (n.to_owned(), None))
    };
    let answered = array(body, "input")
        .iter()
        .any(|i| i["type"] == "function_call_output");
    (namespaced.or_else(plain), answered)
}

fn responses_reply(call: Call, args: &Value) -> (&'static str, String) {
    let item = match call {
        Some((name, namespace)) => {
            let mut item = json!({"type": "function_call", "id": "fc_standin", "call_id": "call_standin_1",
                "name": name, "arguments": args.to_string()});
            if let Some(ns) = namespace {
                item["namespace"] = json!(ns);
            }
            item
        }
        None => json!({"type": "message", "id": "msg_standin", "role": "assistant",
            "content": [{"type": "output_text", "text": FINAL_TEXT}]}),
    };
    let events = [
        json!({"type": "response.created", "response": {"id": "resp_standin"}}),
        json!({"type": "response.output_item.done", "item": item}),
        json!({"type": "response.completed", "response": {"id": "resp_standin", "usage": {
            "input_tokens": 1, "input_tokens_details": null, "output_tokens": 1,
            "output_tokens_details": null, "total_tokens": 2}}}),
    ];
    ("text/event-stream", event_stream(&events))
}
