//! Each agent client run once, non-interactively, against a stand-in that
//! makes its model call `publish_event`; and the TypeScript SDK over stdio
//! and Streamable HTTP.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Hub, bin_path, repo_root, wait_until};

use crate::client::{self, Client, Connect, Prefs};
use crate::sandbox::Sandbox;
use crate::standin::{self, StandIn};
use crate::{assert_connected, clients_dir, installed, run};

/// How long one client run may take before the test gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(180);

fn events(hub: &Hub) -> Vec<Value> {
    hub.tool("get_events", json!({"order": "asc", "limit": 1000}))["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn live_sessions(hub: &Hub) -> Vec<Value> {
    hub.tool("list_sessions", json!({}))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A model-driven client run: the client is started, its model (the
/// stand-in) calls `publish_event`; while the stand-in holds the request that
/// carries the result, the event must be on the hub under a live session of
/// the proxy the client started (in the client's project folder); after the
/// client exits, that session must be gone.
fn drive(hub: &Hub, sandbox: &Sandbox, standin: &StandIn, what: &str, mut cmd: Command) -> Value {
    let log = sandbox.home.join(format!("{what}.log"));
    let file = std::fs::File::create(&log).expect("a log file");
    let mut child = cmd
        .stdout(file.try_clone().expect("a log handle"))
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: could not start: {e}"));
    let output = || std::fs::read_to_string(&log).unwrap_or_default();
    let started = Instant::now();
    let held = loop {
        if let Some(held) = standin.held(Duration::from_millis(200)) {
            break held;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}) before its model saw the tool's result.\nmodel requests: {:#?}\noutput:\n{}",
                standin
                    .requests()
                    .iter()
                    .map(|(p, _)| p)
                    .collect::<Vec<_>>(),
                output()
            );
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            panic!(
                "{what} never sent the tool's result.\noutput:\n{}",
                output()
            );
        }
    };
    let event = events(hub)
        .into_iter()
        .find(|e| e["event_type"] == json!(format!("{what}_said")))
        .unwrap_or_else(|| {
            panic!(
                "the event is not on the hub; the model got: {}\noutput:\n{}",
                held.body,
                output()
            )
        });
    let session_id = event["session_id"].as_str().unwrap_or_default().to_owned();
    let live = live_sessions(hub);
    let session = live
        .iter()
        .find(|s| s["session_id"] == json!(session_id))
        .unwrap_or_else(|| {
            panic!("the event's session {session_id} is not live during the run: {live:?}")
        });
    assert_eq!(
        session["cwd"].as_str().map(Path::new),
        Some(sandbox.project.as_path()),
        "the session is the proxy's, started in the client's project: {session}"
    );
    held.release();
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            panic!("{what} did not exit.\noutput:\n{}", output());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = output();
    assert!(status.success(), "{what} failed ({status}):\n{out}");
    assert!(out.contains(standin::FINAL_TEXT), "{what} printed:\n{out}");
    // The proxy unregisters on the client's SIGTERM. Codex may SIGKILL it
    // right after (its MCP transport is killed on drop), and then the lease
    // ends the session, as for any proxy killed outright: wait past it.
    let lease = Duration::from_secs(shared::config::DEFAULT_LEASE_SECONDS);
    wait_until(
        "the session to end with the client",
        lease + Duration::from_secs(30),
        || {
            (!live_sessions(hub)
                .iter()
                .any(|s| s["session_id"] == json!(session_id)))
            .then_some(())
        },
    );
    eprintln!(
        "{what}: refused on its way out: {:?}",
        sandbox.refusing_proxy.tried()
    );
    event
}

/// A client prepared as README says (its server registered by hand) in a
/// new sandbox, with a stand-in whose model calls `publish_event(args)`.
fn prepared(client: Client, hub: &Hub, args: Value) -> Option<(PathBuf, Sandbox, StandIn)> {
    let standin = StandIn::start(client.api(), args);
    let (exe, sandbox) = client::prepared(
        client,
        hub,
        &standin.url,
        Connect::Readme,
        &Prefs::default(),
    )?;
    Some((exe, sandbox, standin))
}

#[test]
fn claude_code_lists_the_proxy_and_publishes_through_it() {
    let hub = Hub::start();
    let args = json!({"event_type": "claude_said", "payload": "hello from Claude Code"});
    let Some((claude, sandbox, standin)) = prepared(Client::ClaudeCode, &hub, args) else {
        return;
    };
    let listed = run(
        "claude mcp list",
        sandbox.command(&claude).args(["mcp", "list"]),
    );
    assert_connected(&listed, "agent-event-bus:");
    // A health check connects and leaves: no session, not even a short one.
    assert_eq!(live_sessions(&hub), Vec::<Value>::new());
    assert!(
        !events(&hub)
            .iter()
            .any(|e| e["event_type"] == "session_registered"),
        "{:?}",
        events(&hub)
    );
    let mut cmd = sandbox.command(&claude);
    cmd.args([
        "-p",
        "Tell the other sessions hello.",
        "--allowedTools",
        "mcp__agent-event-bus__publish_event",
    ]);
    let event = drive(&hub, &sandbox, &standin, "claude", cmd);
    assert_eq!(event["payload"], "hello from Claude Code");
}

#[test]
fn gemini_cli_publishes_through_the_proxy_despite_wait_for_previous() {
    let hub = Hub::start();
    // As a Gemini model does when told to order dependent calls.
    let args = json!({"event_type": "gemini_said", "payload": "hello from Gemini CLI", "wait_for_previous": true});
    let Some((gemini, sandbox, standin)) = prepared(Client::Gemini, &hub, args) else {
        return;
    };
    let listed = run(
        "gemini mcp list",
        sandbox.command(&gemini).args(["mcp", "list"]),
    );
    assert_connected(&listed, "✓ agent-event-bus:");
    let mut cmd = sandbox.command(&gemini);
    cmd.args(Client::Gemini.tui_args(&sandbox.home))
        .args(["-p", "Tell the other sessions hello."]);
    let event = drive(&hub, &sandbox, &standin, "gemini", cmd);
    assert_eq!(event["payload"], "hello from Gemini CLI");
    // The client did add the argument to the tool it offered its model.
    let offered = standin
        .requests()
        .into_iter()
        .flat_map(|(_, body)| body["tools"].as_array().cloned().unwrap_or_default())
        .flat_map(|t| {
            t["functionDeclarations"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|d| {
            d["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("publish_event"))
        })
        .expect("publish_event was offered to the model");
    assert!(
        offered["parametersJsonSchema"]["properties"]
            .get("wait_for_previous")
            .is_some(),
        "{offered}"
    );
}

#[test]
fn codex_publishes_through_the_proxy() {
    let hub = Hub::start();
    let args = json!({"event_type": "codex_said", "payload": "hello from Codex"});
    let Some((codex, sandbox, standin)) = prepared(Client::Codex, &hub, args) else {
        return;
    };
    let mut cmd = sandbox.command(&codex);
    cmd.args([
        "exec",
        "--skip-git-repo-check",
        "Tell the other sessions hello.",
    ]);
    let event = drive(&hub, &sandbox, &standin, "codex", cmd);
    assert_eq!(event["payload"], "hello from Codex");
}

#[test]
fn the_typescript_sdk_uses_every_tool_over_stdio_and_streamable_http() {
    if installed(
        "the TypeScript MCP SDK",
        "node_modules/@modelcontextprotocol/sdk/package.json",
    )
    .is_none()
    {
        return;
    }
    let hub = Hub::start();
    let sandbox = Sandbox::new();
    let script = repo_root().join("tests/clients/sdk.mjs");
    let out = run(
        "tests/clients/sdk.mjs",
        sandbox
            .command(Path::new("node"))
            .arg(&script)
            .env("CLIENTS_DIR", clients_dir())
            .env("HUB_URL", hub.base())
            .env("AGENT_EVENT_BUS_TOKEN", hub.token())
            .env("PROXY", bin_path("agent-event-bus-proxy")),
    );
    let report: Value = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no report from the script:\n{out}"));
    for transport in ["stdio", "http"] {
        let called = report[transport]["called"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let names: Vec<&str> = called.iter().filter_map(Value::as_str).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        let mut all = shared::catalog::TOOL_NAMES.to_vec();
        all.sort_unstable();
        assert_eq!(sorted, all, "{transport}: {report}");
        assert_eq!(
            report[transport]["guide"],
            json!(true),
            "{transport}: {report}"
        );
        assert_eq!(
            report[transport]["long_poll"],
            json!(true),
            "{transport}: {report}"
        );
    }
    // The stdio client's session ended with it.
    wait_until(
        "the SDK's proxy session to end",
        Duration::from_secs(30),
        || live_sessions(&hub).is_empty().then_some(()),
    );
}
