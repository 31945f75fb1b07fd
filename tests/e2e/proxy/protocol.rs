//! The proxy as an MCP server: initialize without a hub, the hub's tools
//! forwarded with `session_id` filled in, arguments checked as the hub
//! checks them, two proxies messaging, and the official Python client.

use serde_json::{Value, json};
use support::proxy::{Proxy, ProxyOptions, registered_proxy};
use support::{Hub, bin_path, events, id_of, sessions, wait_registered, wait_until};

use super::{DEADLINE, stopped_hub, wait_ended};

#[test]
fn initialize_is_answered_at_once_with_channels_and_a_legacy_protocol() {
    // No hub at all: initialize must not wait for one.
    let hub = stopped_hub();
    let mut proxy = Proxy::spawn(&hub, &[]);

    // Claude Code's probe for the 2026-07-28 revision is refused, so it
    // falls back to initialize (channels need the legacy era).
    let probe = proxy.discover_probe();
    assert_eq!(probe["error"]["code"], json!(-32022), "{probe}");

    let init = proxy.result(
        "initialize",
        Some(json!({
            "protocolVersion": "2026-07-28",
            "capabilities": {},
            "clientInfo": {"name": "e2e", "version": "0"},
        })),
    );
    assert_eq!(init["protocolVersion"], json!("2025-11-25"), "{init}");
    assert_eq!(init["serverInfo"]["name"], json!("agent-event-bus"));
    assert_eq!(
        init["capabilities"]["experimental"]["claude/channel"],
        json!({})
    );
    assert!(init["capabilities"]["tools"].is_object());
    let instructions = init["instructions"].as_str().expect("instructions");
    assert!(!instructions.is_empty() && instructions.len() <= 2048);
    assert!(instructions.contains("session_id"));

    // The guide resource is served without the hub too.
    let resources = proxy.result("resources/list", None);
    assert_eq!(
        resources["resources"][0]["uri"],
        json!("agent-event-bus://guide")
    );
    let guide = proxy.result(
        "resources/read",
        Some(json!({"uri": "agent-event-bus://guide"})),
    );
    assert!(
        guide["contents"][0]["text"]
            .as_str()
            .unwrap()
            .contains("get_events")
    );
    proxy.assert_stdout_is_json_rpc();
}

#[test]
fn tools_are_forwarded_and_session_id_is_filled_in() {
    let hub = Hub::start();
    let (mut proxy, id) = registered_proxy(&hub, "filler", &[]);

    let tools = proxy.tools();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, shared::catalog::TOOL_NAMES, "{names:?}");
    let ack = tools.iter().find(|t| t["name"] == "ack_events").unwrap();
    let required = ack["inputSchema"]["required"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !required.contains(&json!("session_id")),
        "the proxy fills session_id, so it is not required: {ack}"
    );

    // Without session_id: attributed to this proxy's session.
    let mine = proxy.call_ok(
        "publish_event",
        json!({"event_type": "mine", "payload": "filled in"}),
    );
    let all = events(&hub);
    let by_id = |v: &Value| {
        all.iter()
            .find(|e| e["id"] == v["event_id"])
            .unwrap_or_else(|| panic!("event {v} is not on the hub"))
            .clone()
    };
    assert_eq!(by_id(&mine)["session_id"], json!(id));

    // A read with the session filled in resumes from the session's cursor.
    let page = proxy.call_ok("get_events", json!({"resume": true, "order": "asc"}));
    assert!(page["events"].is_array(), "{page}");

    // Still exactly one session for this proxy.
    let live = sessions(&hub);
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0]["lease_seconds"], json!(60));
    assert_eq!(live[0]["client_pid"], json!(std::process::id()));
    proxy.assert_stdout_is_json_rpc();
}

#[test]
fn arguments_a_client_adds_for_itself_pass_the_proxy_and_typos_are_still_refused() {
    let hub = Hub::start();
    let (mut proxy, id) = registered_proxy(&hub, "gemini-like", &[]);
    let out = proxy.call_ok(
        "publish_event",
        json!({"event_type": "ordered", "payload": "p", "wait_for_previous": true}),
    );
    let stored = events(&hub)
        .into_iter()
        .find(|e| e["id"] == out["event_id"])
        .unwrap_or_else(|| panic!("event {out} is not on the hub"));
    assert_eq!(stored["session_id"], json!(id));
    // notify is answered by the proxy itself, with the same rule.
    let typo = proxy.call(
        "notify",
        json!({"title": "t", "mesage": "m", "wait_for_previous": true}),
    );
    assert!(typo.is_error(), "{}", typo.text());
    assert!(
        typo.text().contains("unknown argument mesage;")
            && !typo.text().contains("wait_for_previous"),
        "{}",
        typo.text()
    );
    let typo = proxy.call(
        "publish_event",
        json!({"event_type": "dm", "payload": "p", "chanel": "direct:x", "wait_for_previous": false}),
    );
    assert!(typo.is_error(), "{}", typo.text());
    assert!(
        typo.text().contains("unknown argument chanel;") && typo.text().contains("channel"),
        "{}",
        typo.text()
    );
    proxy.assert_stdout_is_json_rpc();
}

#[test]
fn the_proxys_notify_reads_its_arguments_as_the_hub_does() {
    let hub = Hub::start();
    let (mut proxy, _) = registered_proxy(&hub, "notifier", &[]);
    // `sound: "yes"` is a boolean to the hub; the title is over its limit,
    // so nothing is shown and both refuse it with the same message.
    let args = json!({"title": "t".repeat(257), "message": "m", "sound": "yes"});
    let here = proxy.call("notify", args.clone());
    let there = hub.tool_raw("notify", args);
    assert!(
        here.is_error() && there.is_error(),
        "{} / {}",
        here.text(),
        there.text()
    );
    assert_eq!(here.text(), there.text());
    assert_eq!(
        here.text(),
        "Invalid arguments for notify: title is 257 characters; the limit is 256"
    );
    proxy.assert_stdout_is_json_rpc();
}

#[test]
fn two_proxies_see_each_other_and_exchange_a_direct_message() {
    let hub = Hub::start();
    // One of them is given the base URL, without /mcp.
    let mut alice = Proxy::spawn_with(&ProxyOptions {
        url: hub.base(),
        env: [
            hub.client_env(),
            vec![("AGENT_EVENT_BUS_SESSION_NAME".into(), "alice".into())],
        ]
        .concat(),
        ..ProxyOptions::default()
    });
    alice.initialize();
    let (mut bob, bob_id) = registered_proxy(&hub, "bob", &[]);
    let alice_id = id_of(&wait_registered(&hub, "alice"));
    assert_ne!(alice_id, bob_id, "two proxies are two sessions");

    let seen: Vec<Value> = alice
        .call_ok("list_sessions", json!({}))
        .as_array()
        .unwrap()
        .clone();
    let names: Vec<&str> = seen.iter().filter_map(|s| s["name"].as_str()).collect();
    assert!(
        names.contains(&"alice") && names.contains(&"bob"),
        "{names:?}"
    );

    alice.call_ok(
        "publish_event",
        json!({"event_type": "hello", "payload": "hi bob", "channel": format!("session:{bob_id}")}),
    );
    let dm = wait_until("bob to read alice's message", DEADLINE, || {
        let page = bob.call_ok(
            "get_events",
            json!({"channel": format!("session:{bob_id}"), "order": "asc"}),
        );
        page["events"]
            .as_array()
            .and_then(|events| events.iter().find(|e| e["event_type"] == "hello").cloned())
    });
    assert_eq!(dm["payload"], json!("hi bob"));
    assert_eq!(dm["session_id"], json!(alice_id));
    alice.assert_stdout_is_json_rpc();
    bob.assert_stdout_is_json_rpc();
}

/// The official Python SDK's stdio client, which nobody here wrote.
#[test]
fn the_official_python_mcp_client_calls_tools_through_the_proxy() {
    if !crate::interop::python_mcp_available() {
        return;
    }
    let hub = Hub::start();
    let dir = tempfile::tempdir().expect("a temp dir");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/py/stdio_client.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(bin_path("agent-event-bus-proxy"))
        .arg(&hub.url)
        .envs(hub.client_env())
        .current_dir(dir.path())
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python client failed:\n{stdout}\n{stderr}"
    );
    let report: Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{stdout}\n{stderr}"));
    assert_eq!(report["server"], json!("agent-event-bus"), "{report}");
    assert_eq!(
        report["tools"].as_array().map(Vec::len),
        Some(shared::catalog::TOOL_NAMES.len()),
        "{report}"
    );
    assert_eq!(report["published_error"], json!(false), "{report}");
    assert_eq!(report["listed_error"], json!(false), "{report}");
    let listed = report["listed"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let me = listed
        .iter()
        .find(|s| s["name"] == "python-client")
        .unwrap_or_else(|| panic!("the python client's session is not listed: {report}"));
    let event = events(&hub)
        .into_iter()
        .find(|e| e["event_type"] == "from_python")
        .expect("the event reached the hub");
    assert_eq!(event["session_id"], me["session_id"]);
    // The client closed the proxy's stdin on exit: the session ends.
    wait_ended(&hub, &id_of(me));
}
