//! How replies are framed as `tools/call` results.

use serde_json::{Value, json};

use crate::tools::render;

/// The in-place writer frames a reply as the contract's one wrapper does.
#[test]
fn replies_are_framed_as_the_contract_frames_them() {
    for (reply, list) in [
        (json!({"text": "é \"quoted\"\n", "n": 1}), false),
        (json!([1, {"b": null}]), true),
    ] {
        let written: Value = serde_json::from_str(&render(&reply, list).into_string()).unwrap();
        assert_eq!(written, shared::mcp::tool_result(&reply, list));
    }
}
