//! The webhook tools and `notify`, and the MCP surface around the tools:
//! `tools/list`, the guide resource, no prompts, initialize.

use std::time::Duration;

use serde_json::json;
use support::Hub;

#[test]
fn webhook_tools() {
    let hub = Hub::start();
    let bad = hub.tool_raw("register_webhook", json!({"url": "ftp://x"}));
    assert!(bad.is_error());
    assert!(bad.text().contains("http:// or https://"), "{}", bad.text());

    let w = hub.tool(
        "register_webhook",
        json!({"url": "http://127.0.0.1:9/hook", "channel": "repo:", "event_types": ["a", "b"], "secret": "s3cret"}),
    );
    let id = w["webhook_id"].as_u64().unwrap();
    assert_eq!(w["channel"], "repo:");
    assert_eq!(w["event_types"], json!(["a", "b"]));
    assert!(w.get("secret").is_none());
    hub.tool("register_webhook", json!({"url": "https://example.com/x"}));

    let list = hub.tool("list_webhooks", json!({}));
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[1]["webhook_id"].as_u64(), Some(id), "newest first");
    assert_eq!(list[1]["has_secret"], true);
    assert!(
        !list.to_string().contains("s3cret"),
        "secrets are never returned"
    );

    let off = hub.tool(
        "set_webhook_active",
        json!({"webhook_id": id, "active": false}),
    );
    assert_eq!(
        off,
        json!({"success": true, "webhook_id": id, "active": false})
    );
    assert_eq!(
        hub.tool("list_webhooks", json!({}))
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        hub.tool("list_webhooks", json!({"active_only": false}))
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let missing = hub.tool(
        "set_webhook_active",
        json!({"webhook_id": 77, "active": true}),
    );
    assert_eq!(
        missing,
        json!({"success": false, "error": "Webhook not found", "webhook_id": 77})
    );
    assert_eq!(
        hub.tool("unregister_webhook", json!({"webhook_id": id})),
        json!({"success": true, "webhook_id": id})
    );
    assert_eq!(
        hub.tool("unregister_webhook", json!({"webhook_id": id}))["error"],
        "Webhook not found"
    );
    assert!(!hub.log().contains("s3cret"), "secrets are never logged");
}

#[test]
fn notify_reports_success_or_failure_as_a_result() {
    let hub = Hub::start();
    let r = hub.tool("notify", json!({"title": "T", "message": "M"}));
    assert!(r["success"].is_boolean());
    assert_eq!(r["title"], "T");
    assert_eq!(r["message"], "M");
}

#[test]
fn mcp_surface_lists_tools_guide_and_no_prompts() {
    let hub = Hub::start();
    let client = hub.client();
    let rt = support::rt();
    let tools = rt
        .block_on(client.request("tools/list", None, Duration::from_secs(5)))
        .unwrap();
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, shared::catalog::TOOL_NAMES);
    let resources = rt
        .block_on(client.request("resources/list", None, Duration::from_secs(5)))
        .unwrap();
    assert_eq!(resources["resources"][0]["uri"], "agent-event-bus://guide");
    let guide = rt
        .block_on(client.request(
            "resources/read",
            Some(json!({"uri": "agent-event-bus://guide"})),
            Duration::from_secs(5),
        ))
        .unwrap();
    assert!(
        guide["contents"][0]["text"]
            .as_str()
            .unwrap()
            .contains("get_events")
    );
    let prompts = rt
        .block_on(client.request("prompts/list", None, Duration::from_secs(5)))
        .unwrap();
    assert_eq!(prompts, json!({"prompts": []}));
    let init = rt
        .block_on(client.request(
            "initialize",
            Some(json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}})),
            Duration::from_secs(5),
        ))
        .unwrap();
    assert_eq!(init["protocolVersion"], "2025-06-18");
    assert_eq!(init["serverInfo"]["name"], "agent-event-bus");
    let list_call = hub.tool_raw("list_sessions", json!({}));
    assert_eq!(
        list_call.result["structuredContent"],
        json!({"result": []}),
        "lists are wrapped"
    );
}
