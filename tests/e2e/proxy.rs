//! End-to-end tests: the proxy, driven over stdio as an MCP client drives it,
//! against a real hub. Waits are generous deadlines, never speed asserts.

use std::time::Duration;

use serde_json::{Value, json};
use support::proxy::{Proxy, ProxyOptions, registered_proxy};
use support::sink::WebhookSink;
use support::{
    Hub, bin_path, call, events, id_of, rt, session_by_id, sessions, wait_registered, wait_until,
};

/// Long enough for a registration (≈1 s after initialized), a lease lapse
/// plus the sweeper, or a hub restart, on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(30);

/// Waits until the session is gone and its `session_unregistered` event exists.
fn wait_ended(hub: &Hub, id: &str) {
    wait_until(&format!("session {id} to end"), DEADLINE, || {
        session_by_id(hub, id).is_none().then_some(())
    });
    wait_until("its session_unregistered event", DEADLINE, || {
        events(hub)
            .iter()
            .any(|e| e["event_type"] == "session_unregistered" && e["session_id"] == id)
            .then_some(())
    });
}

/// A loopback URL where nothing listens: a hub started, noted and stopped.
fn stopped_hub() -> Hub {
    let mut hub = Hub::start();
    hub.stop();
    hub
}

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

#[test]
fn the_agents_register_session_renames_its_session_and_unregister_is_honoured() {
    let hub = Hub::start();
    let (mut proxy, id) = registered_proxy(
        &hub,
        "before",
        &[
            ("AGENT_EVENT_BUS_LEASE_SECONDS", "3"),
            ("AGENT_EVENT_BUS_CLIENT_ID", "agent-client-1"),
        ],
    );
    let reply = proxy.call_ok(
        "register_session",
        json!({"name": "after", "client_id": "something-else"}),
    );
    assert_eq!(
        reply["session_id"],
        json!(id),
        "renamed, not a new session: {reply}"
    );

    // Renewals (every second with a 3 s lease) keep the new name, and there
    // is still one session. Renewals hold the registration lock, as the
    // rename did: one logged from now on started after it.
    let renewed = proxy.logged("lease renewed");
    proxy.wait_logged("lease renewed", renewed + 1);
    let live = sessions(&hub);
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0]["name"], json!("after"));
    assert_eq!(live[0]["client_id"], json!("agent-client-1"));

    // The agent ends its own session: the proxy does not bring it back.
    let reply = proxy.call_ok("unregister_session", json!({}));
    assert_eq!(reply["success"], json!(true), "{reply}");
    wait_ended(&hub, &id);
    // The proxy's loop has seen the release and has nothing to do.
    proxy.wait_logged("idle until woken phase=Released", 1);
    assert!(
        sessions(&hub).is_empty(),
        "the proxy re-registered a session the agent unregistered"
    );

    // Until the agent registers again.
    let reply = proxy.call_ok("register_session", json!({"name": "again"}));
    assert_eq!(reply["session_id"], json!(id));
    wait_registered(&hub, "again");
    proxy.assert_stdout_is_json_rpc();
}

#[test]
fn closing_stdin_unregisters_and_exits() {
    let hub = Hub::start();
    let (mut proxy, id) = registered_proxy(&hub, "eof", &[]);
    proxy.close_stdin();
    assert_eq!(proxy.wait_exit(DEADLINE), Some(0));
    wait_ended(&hub, &id);
}

#[test]
fn sigterm_sigint_and_sighup_unregister_and_exit() {
    use rustix::process::Signal;
    let hub = Hub::start();
    for (signal, name) in [
        (Signal::TERM, "term"),
        (Signal::INT, "int"),
        (Signal::HUP, "hup"),
    ] {
        let (mut proxy, id) = registered_proxy(&hub, name, &[]);
        proxy.signal(signal);
        assert_eq!(proxy.wait_exit(DEADLINE), Some(0), "{name}");
        wait_ended(&hub, &id);
    }
}

#[test]
fn a_killed_proxys_session_ends_when_its_lease_lapses() {
    use rustix::process::Signal;
    let hub = Hub::start();
    let (mut proxy, id) =
        registered_proxy(&hub, "killed", &[("AGENT_EVENT_BUS_LEASE_SECONDS", "3")]);
    assert_eq!(session_by_id(&hub, &id).unwrap()["lease_seconds"], json!(3));
    proxy.signal(Signal::KILL);
    proxy.wait_exit(DEADLINE);
    wait_ended(&hub, &id);
}

#[test]
fn a_proxy_whose_parent_dies_exits_and_unregisters() {
    let hub = Hub::start();
    let mut options = ProxyOptions::for_hub(&hub);
    options
        .env
        .push(("AGENT_EVENT_BUS_SESSION_NAME".into(), "orphan".into()));
    options.under_parent = true;
    let mut proxy = Proxy::spawn_with(&options);
    proxy.initialize();
    let session = wait_registered(&hub, "orphan");
    assert_ne!(
        session["client_pid"],
        json!(std::process::id()),
        "the shell is the client"
    );
    // stdin stays open: only the parent's death can tell the proxy to go.
    proxy.kill_parent();
    proxy.wait_exit(DEADLINE);
    wait_ended(&hub, &id_of(&session));
    assert!(
        proxy.stderr().contains("parent process exited"),
        "{}",
        proxy.stderr()
    );
}

#[test]
fn a_client_that_connects_and_leaves_leaves_nothing_behind() {
    let hub = Hub::start();
    let before = events(&hub).len();
    // What `claude mcp list` does: probe, initialize, list tools, leave.
    let mut proxy = Proxy::spawn(&hub, &[("AGENT_EVENT_BUS_SESSION_NAME", "health-check")]);
    let probe = proxy.request_with_id(
        &json!("server-discover-probe-1"),
        "server/discover",
        Some(json!({"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        }})),
    );
    assert!(probe.get("error").is_some());
    proxy.initialize();
    assert_eq!(proxy.tools().len(), shared::catalog::TOOL_NAMES.len());
    proxy.close_stdin();
    assert_eq!(proxy.wait_exit(DEADLINE), Some(0));
    // The proxy waits for a registration in flight before it exits, so what
    // the hub holds now is final: nothing registered, nothing published.
    assert!(sessions(&hub).is_empty(), "{:?}", sessions(&hub));
    assert_eq!(events(&hub).len(), before, "{:?}", events(&hub));
}

#[test]
fn a_proxy_started_before_the_hub_lists_tools_explains_and_registers_later() {
    let mut hub = stopped_hub();
    let mut proxy = Proxy::spawn(&hub, &[("AGENT_EVENT_BUS_SESSION_NAME", "early")]);
    proxy.initialize();
    assert_eq!(
        proxy.tools().len(),
        shared::catalog::TOOL_NAMES.len(),
        "the built-in catalog"
    );

    let out = proxy.call("list_sessions", json!({}));
    assert!(out.is_error(), "{:?}", out.result);
    let text = out.text();
    assert!(text.contains("hub not reachable at"), "{text}");
    assert!(text.contains("agent-event-bus"), "{text}");
    assert!(text.contains("AGENT_EVENT_BUS_URL"), "{text}");

    hub.restart_same_port();
    let session = wait_registered(&hub, "early");
    let seen = proxy.call_ok("list_sessions", json!({}));
    assert_eq!(seen[0]["session_id"], session["session_id"], "{seen}");
    proxy.assert_stdout_is_json_rpc();
}

#[test]
fn a_hub_restart_mid_session_is_carried_over() {
    let mut hub = Hub::start();
    let (mut proxy, id) = registered_proxy(&hub, "survivor", &[]);
    hub.restart_same_port();
    let reply = wait_until("a call through the proxy to work again", DEADLINE, || {
        let out = proxy.call(
            "publish_event",
            json!({"event_type": "back", "payload": "x"}),
        );
        (!out.is_error()).then(|| out.value())
    });
    assert!(reply["event_id"].is_u64(), "{reply}");
    let session = wait_registered(&hub, "survivor");
    assert_eq!(id_of(&session), id, "the same session carries on");
    let event = events(&hub)
        .into_iter()
        .find(|e| e["id"] == reply["event_id"])
        .expect("the event is stored");
    assert_eq!(event["session_id"], json!(id));
}

#[test]
fn a_remote_hub_gets_the_token_and_a_401_is_explained() {
    // A real HTTP listener that refuses everything, as a hub with another
    // token would; the proxy is given a base URL without /mcp.
    let sink = WebhookSink::with(|_| (401, Duration::ZERO));
    let base = sink.url.trim_end_matches("/hook").to_owned();
    let mut proxy = Proxy::spawn_at(
        &base,
        &[
            ("AGENT_EVENT_BUS_TOKEN", "s3cret-token"),
            ("AGENT_EVENT_BUS_SESSION_NAME", "remote"),
        ],
    );
    proxy.initialize();
    let out = proxy.call("list_sessions", json!({}));
    assert!(out.is_error());
    let text = out.text();
    assert!(text.contains("401"), "{text}");
    assert!(text.contains("AGENT_EVENT_BUS_TOKEN"), "{text}");
    assert!(!text.contains("s3cret-token"), "the token leaked: {text}");
    let requests = sink.received();
    assert!(!requests.is_empty());
    for request in &requests {
        assert_eq!(request.path, "/mcp");
        assert_eq!(
            request.headers.get("authorization").map(String::as_str),
            Some("Bearer s3cret-token")
        );
    }
    assert!(
        !proxy.stderr().contains("s3cret-token"),
        "the token was logged"
    );
    proxy.assert_stdout_is_json_rpc();
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

#[test]
fn socket_stdio_as_node_clients_use_still_exits_on_sigterm_and_eof() {
    let hub = Hub::start();
    for (name, by_signal) in [("socket-term", true), ("socket-eof", false)] {
        let mut options = ProxyOptions::for_hub(&hub);
        options
            .env
            .push(("AGENT_EVENT_BUS_SESSION_NAME".into(), name.into()));
        options.socket_stdio = true;
        let mut proxy = Proxy::spawn_with(&options);
        proxy.initialize();
        let id = id_of(&wait_registered(&hub, name));
        if by_signal {
            proxy.signal(rustix::process::Signal::TERM);
        } else {
            proxy.close_stdin();
        }
        assert_eq!(proxy.wait_exit(DEADLINE), Some(0), "{name}");
        wait_ended(&hub, &id);
        proxy.assert_stdout_is_json_rpc();
    }
}

#[test]
fn a_proxy_that_finds_its_session_gone_registers_it_again() {
    let hub = Hub::start();
    let state = support::keys::StateDir::new();
    let (mut proxy, id) = registered_proxy(&hub, "phoenix", &[state.env()]);
    // Someone else with the session's key (a hook) ends the session under
    // the proxy.
    let reply = rt().block_on(call(
        &state.client(&hub, &id),
        "unregister_session",
        json!({"session_id": id}),
    ));
    assert_eq!(reply["success"], json!(true), "{reply}");
    assert!(session_by_id(&hub, &id).is_none());
    // The agent's next read still works: the proxy registers again with the
    // same client_id, which resumes the same session.
    let page = proxy.call_ok("get_events", json!({"resume": true, "order": "asc"}));
    assert!(page.get("error").is_none(), "{page}");
    assert!(session_by_id(&hub, &id).is_some(), "the session is back");
}

#[test]
fn a_session_whose_lease_lapsed_while_the_hub_was_down_comes_back() {
    let mut hub = Hub::start();
    let (mut proxy, id) =
        registered_proxy(&hub, "patient", &[("AGENT_EVENT_BUS_LEASE_SECONDS", "3")]);
    hub.stop();
    // The scenario, not a wait for an outcome: down for longer than the
    // lease, so the restarted hub's sweeper may end it.
    std::thread::sleep(Duration::from_secs(5));
    hub.restart_same_port();
    let session = wait_registered(&hub, "patient");
    assert_eq!(id_of(&session), id, "the same session (same client_id)");
    // And it stays: renewals (one a second) carry on past a whole lease.
    let renewed = proxy.logged("lease renewed");
    proxy.wait_logged("lease renewed", renewed + 4);
    assert!(session_by_id(&hub, &id).is_some());
    proxy.call_ok("list_sessions", json!({}));
    proxy.assert_stdout_is_json_rpc();
}

#[test]
fn a_long_poll_whose_wait_is_text_or_a_float_is_not_cut_off() {
    // Longer than the client's 10 s allowance for an ordinary call: only a
    // timeout that reads wait_seconds as the hub does lets these finish.
    let hub = Hub::start();
    let (mut proxy, _) = registered_proxy(&hub, "patient-poller", &[]);
    for (id, wait) in [("text", json!("11")), ("float", json!(11.0))] {
        proxy.send(&json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "get_events", "arguments": {
                "channel": "quiet-channel", "wait_seconds": wait,
            }},
        }));
    }
    for id in ["text", "float"] {
        let reply = proxy.wait_reply(&json!(id));
        let result = &reply["result"];
        assert_eq!(result["isError"], json!(false), "{id}: {reply}");
        assert_eq!(
            result["structuredContent"]["events"],
            json!([]),
            "{id}: {reply}"
        );
    }
}

#[test]
fn a_call_the_hub_refuses_as_too_large_is_reported_as_such() {
    let hub = Hub::start();
    let (mut proxy, _) = registered_proxy(&hub, "big-sender", &[]);
    // Over the hub's 1 MiB body limit, under the proxy's frame limit.
    let payload = "y".repeat(2 * 1024 * 1024);
    let out = proxy.call(
        "publish_event",
        json!({"event_type": "big", "payload": payload, "channel": "all"}),
    );
    assert!(out.is_error(), "{}", out.text());
    let text = out.text();
    assert!(
        text.contains("too large") && text.contains("limit") && !text.contains("not reachable"),
        "{text}"
    );
    // The proxy and the hub carry on.
    proxy.call_ok("list_sessions", json!({}));
}

#[test]
fn lines_it_cannot_take_get_json_rpc_errors_and_memory_stays_bounded() {
    let hub = Hub::start();
    let (mut proxy, _) = registered_proxy(&hub, "frames", &[]);
    let before = proxy.rss_kib();

    // Over the frame limit, with a readable id: an error for that id.
    let filler = "z".repeat(6 * 1024 * 1024);
    for id in 0..3 {
        let line = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"tools/call\",\"params\":{{\"name\":\"publish_event\",\"arguments\":{{\"event_type\":\"x\",\"payload\":\"{filler}\"}}}}}}\n",
            1000 + id
        );
        proxy.send_raw(line.as_bytes());
        let reply = proxy.wait_reply(&json!(1000 + id));
        assert_eq!(reply["error"]["code"], json!(-32600), "{reply}");
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("too large"), "{message}");
    }
    // Over the limit with no id to be read, and plain garbage: -32700, id null.
    for line in [format!("{filler}\n"), "this is not json\n".to_owned()] {
        proxy.send_raw(line.as_bytes());
        let reply = proxy.wait_reply(&Value::Null);
        assert_eq!(reply["error"]["code"], json!(-32700), "{reply}");
    }
    // Under the frame limit but over the hub's: answered, as too large.
    let payload = "w".repeat(3 * 1024 * 1024);
    for _ in 0..2 {
        let out = proxy.call(
            "publish_event",
            json!({"event_type": "big", "payload": payload, "channel": "all"}),
        );
        assert!(
            out.is_error() && out.text().contains("too large"),
            "{}",
            out.text()
        );
    }

    // It carries on, and did not keep the big lines' memory.
    proxy.call_ok("list_sessions", json!({}));
    let after = proxy.rss_kib();
    eprintln!("proxy RSS: {before} KiB before, {after} KiB after ~27 MiB of big lines");
    assert!(
        after < before + 32 * 1024,
        "the proxy kept {} KiB after big lines ({before} KiB before)",
        after - before
    );
    proxy.assert_stdout_is_json_rpc();
}
