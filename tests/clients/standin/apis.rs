//! The three model APIs' wire shapes, as far as the stand-in speaks them:
//! what a request offers and says last, and a reply that is either a text
//! or one tool call.

use serde_json::{Value, json};

use super::Api;

/// A tool call to make: the name the client offered it under (and, for
/// Responses, its namespace), with its arguments.
#[derive(Debug, Clone)]
pub(super) struct Call {
    /// Unique per call within a stand-in's life (clients match results by it).
    pub id: String,
    pub name: String,
    pub namespace: Option<String>,
    pub args: Value,
}

/// What the stand-in answers.
pub(super) enum Answer {
    Text(String),
    Tool(Call),
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn named<'a>(mut names: impl Iterator<Item = &'a str>, tool: &str) -> Option<Call> {
    names.find(|n| n.ends_with(tool)).map(|n| Call {
        id: String::new(),
        name: n.to_owned(),
        namespace: None,
        args: Value::Null,
    })
}

/// The bus tool `tool` (`publish_event`, `get_events`) as the client offers
/// it in this request, without arguments yet.
pub(super) fn offered(api: Api, body: &Value, tool: &str) -> Option<Call> {
    let tools = array(body, "tools");
    match api {
        Api::Anthropic => named(tools.iter().filter_map(|t| t["name"].as_str()), tool),
        Api::Gemini => named(
            tools
                .iter()
                .flat_map(|t| array(t, "functionDeclarations"))
                .filter_map(|d| d["name"].as_str()),
            tool,
        ),
        // Codex offers each MCP server's tools in a namespace; older builds
        // offered them as plain functions with the server in the name.
        Api::Responses => tools
            .iter()
            .find_map(|t| {
                array(t, "tools")
                    .iter()
                    .filter_map(|f| f["name"].as_str())
                    .find(|n| *n == tool)
                    .map(|n| Call {
                        id: String::new(),
                        name: n.to_owned(),
                        namespace: t["name"].as_str().map(str::to_owned),
                        args: Value::Null,
                    })
            })
            .or_else(|| named(tools.iter().filter_map(|t| t["name"].as_str()), tool)),
    }
}

/// The newest input of the conversation: its last user message (Claude
/// Code puts `system` messages after it), Gemini content or Responses item.
pub(super) fn newest(api: Api, body: &Value) -> Value {
    let last = match api {
        Api::Anthropic => array(body, "messages")
            .iter()
            .rev()
            .find(|m| m["role"] == "user"),
        Api::Gemini => array(body, "contents").last(),
        Api::Responses => array(body, "input").last(),
    };
    last.cloned().unwrap_or(Value::Null)
}

/// Whether the request carries a tool's result anywhere in its conversation.
pub(super) fn has_tool_result(api: Api, body: &Value) -> bool {
    match api {
        Api::Anthropic => array(body, "messages")
            .iter()
            .flat_map(|m| array(m, "content"))
            .any(|c| c["type"] == "tool_result"),
        Api::Gemini => array(body, "contents")
            .iter()
            .flat_map(|c| array(c, "parts"))
            .any(|p| p.get("functionResponse").is_some()),
        Api::Responses => array(body, "input")
            .iter()
            .any(|i| i["type"] == "function_call_output"),
    }
}

/// Whether the newest message is a tool's result (the client answering a
/// call), rather than new input.
pub(super) fn newest_is_tool_result(api: Api, body: &Value) -> bool {
    let last = newest(api, body);
    match api {
        Api::Anthropic => array(&last, "content")
            .iter()
            .any(|c| c["type"] == "tool_result"),
        Api::Gemini => array(&last, "parts")
            .iter()
            .any(|p| p.get("functionResponse").is_some()),
        Api::Responses => last["type"] == "function_call_output",
    }
}

/// The text of the newest message when it is a tool's result.
pub(super) fn tool_result(api: Api, body: &Value) -> Option<String> {
    newest_is_tool_result(api, body).then(|| newest(api, body).to_string())
}

/// The reply: content type and body.
pub(super) fn reply(
    api: Api,
    body: &Value,
    answer: &Answer,
    streaming: bool,
) -> (&'static str, String) {
    match api {
        Api::Anthropic => anthropic(body, answer, streaming),
        Api::Gemini => gemini(answer, streaming),
        Api::Responses => responses(answer),
    }
}

/// A `text/event-stream` body: each event named by its `type`.
fn event_stream(events: &[Value]) -> String {
    let mut text = String::new();
    for e in events {
        let kind = e["type"].as_str().unwrap_or_default();
        text.push_str(&format!("event: {kind}\ndata: {e}\n\n"));
    }
    text
}

fn anthropic(body: &Value, answer: &Answer, streaming: bool) -> (&'static str, String) {
    let usage = json!({"input_tokens": 1, "output_tokens": 1});
    let (whole, block, delta, stop) = match answer {
        Answer::Tool(call) => (
            json!({"type": "tool_use", "id": format!("toolu_{}", call.id), "name": call.name, "input": call.args}),
            json!({"type": "tool_use", "id": format!("toolu_{}", call.id), "name": call.name, "input": {}}),
            json!({"type": "input_json_delta", "partial_json": call.args.to_string()}),
            "tool_use",
        ),
        Answer::Text(text) => (
            json!({"type": "text", "text": text}),
            json!({"type": "text", "text": ""}),
            json!({"type": "text_delta", "text": text}),
            "end_turn",
        ),
    };
    if !streaming {
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

fn gemini(answer: &Answer, streaming: bool) -> (&'static str, String) {
    let part = match answer {
        Answer::Tool(call) => json!({"functionCall": {"name": call.name, "args": call.args}}),
        Answer::Text(text) => json!({"text": text}),
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

fn responses(answer: &Answer) -> (&'static str, String) {
    let item = match answer {
        Answer::Tool(call) => {
            let mut item = json!({"type": "function_call", "id": format!("fc_{}", call.id), "call_id": format!("call_{}", call.id),
                "name": call.name, "arguments": call.args.to_string()});
            if let Some(ns) = &call.namespace {
                item["namespace"] = json!(ns);
            }
            item
        }
        Answer::Text(text) => json!({"type": "message", "id": "msg_standin", "role": "assistant",
            "content": [{"type": "output_text", "text": text}]}),
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
