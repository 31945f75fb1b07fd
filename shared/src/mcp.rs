//! The MCP framing every part writes and reads, in one place: the JSON-RPC
//! error codes, a `tools/call` result (a reply, or an `isError` whose text
//! says what to do) and [`ToolOutput`], such a result as a client reads it.
//! (The hub writes its large replies in place with the same shape,
//! `hub::tools::render_with`; a test there holds the two together.)

use serde::Serialize;
use serde_json::{Value, json};

use crate::tools::TRUNCATED;

/// JSON-RPC 2.0 error codes, and MCP's for an unknown resource.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
}

/// A successful `tools/call` result: the reply as JSON text and as
/// `structuredContent` (a list wrapped as `{"result": [...]}`, as MCP wants
/// an object there).
pub fn tool_result(reply: &impl Serialize, list: bool) -> Value {
    let value = serde_json::to_value(reply).unwrap_or(Value::Null);
    let text = value.to_string();
    let structured = if list {
        json!({ "result": value })
    } else {
        value
    };
    json!({
        "content": [{"type": "text", "text": text}],
        "structuredContent": structured,
        "isError": false,
    })
}

/// A `tools/call` result for a call that produced no reply (bad arguments,
/// an unknown tool, a hub that cannot be reached): `text` says what to do.
pub fn tool_error(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": true})
}

/// A `tools/call` result as the hub sent it.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    /// The whole `CallToolResult` object (`content`, `structuredContent`, `isError`).
    pub result: Value,
}

impl ToolOutput {
    /// `isError: true` — bad arguments or an unknown tool.
    pub fn is_error(&self) -> bool {
        self.result.get("isError").and_then(Value::as_bool) == Some(true)
    }

    /// The first text block (the JSON text, or the error message).
    pub fn text(&self) -> String {
        self.result
            .get("content")
            .and_then(|c| c.get(0))
            .and_then(|c| c.get("text"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }

    /// The reply value: `structuredContent.result` for list tools (also
    /// when the hub cut the list), else `structuredContent`, else the text
    /// parsed as JSON, else the text.
    pub fn value(&self) -> Value {
        if let Some(structured) = self.result.get("structuredContent") {
            if let Some(list) = structured.get("result")
                && structured
                    .as_object()
                    .is_some_and(|o| o.keys().all(|k| k == "result" || k == TRUNCATED))
            {
                return list.clone();
            }
            return structured.clone();
        }
        let text = self.text();
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    /// Whether a list reply was cut at the hub's list limit (it then holds
    /// the first items only; see [`crate::tools::truncated_note`]).
    pub fn truncated(&self) -> bool {
        self.result
            .get("structuredContent")
            .and_then(|s| s.get(TRUNCATED))
            .and_then(Value::as_bool)
            == Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_read_back_as_written() {
        let out = ToolOutput {
            result: tool_result(&[1], true),
        };
        assert_eq!(
            out.result,
            json!({"content":[{"type":"text","text":"[1]"}],"structuredContent":{"result":[1]},"isError":false})
        );
        assert_eq!(out.value(), json!([1]));
        assert!(!out.truncated());
        let cut = ToolOutput {
            result: json!({"content":[{"type":"text","text":"[1]"},{"type":"text","text":"cut"}],"structuredContent":{"result":[1],"truncated":true},"isError":false}),
        };
        assert_eq!(cut.value(), json!([1]));
        assert!(cut.truncated());
        let out = ToolOutput {
            result: tool_result(&json!({"error": "x"}), false),
        };
        assert!(!out.is_error());
        assert_eq!(out.value(), json!({"error": "x"}));
        let out = ToolOutput {
            result: tool_error("say what to do"),
        };
        assert!(out.is_error());
        assert_eq!(out.text(), "say what to do");
    }
}
