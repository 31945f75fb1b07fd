//! End-to-end tests: receipts for direct messages through real proxies and
//! the real CLI — stored, offered (a channel notification to Claude Code),
//! delivered (the agent's own read, a `wait` hook), read (a consuming read,
//! an ack, a reply) — with the path of each step, holds, and the rule that
//! push polls and helpers (hooks, the CLI) never count as the agent's read.

use std::time::Duration;

use serde_json::{Value, json};
use shared::HubClient;
use support::proxy::Proxy;
use support::{Cli, Hub, id_of, wait_registered, wait_until};

const DEADLINE: Duration = Duration::from_secs(60);
const CHANNEL: &str = "notifications/claude/channel";

/// The receipt of one event, as a sender sees it.
pub(crate) fn receipt(hub: &Hub, id: u64) -> Value {
    let list = hub.tool("message_status", json!({"event_ids": [id]}));
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    list[0].clone()
}

/// A client acting as session `id` (a keyed one: its proxy or the CLI
/// saves its key in the state directory this hub's clients share, a moment
/// after the hub lists the session).
pub(crate) fn session_client(hub: &Hub, id: &str) -> HubClient {
    let key = support::keys::wait_saved_key(&hub.client_state_dir(), id);
    support::keys::keyed_client(hub, &key)
}

/// Calls a tool as session `id`; the reply.
fn tool_as(hub: &Hub, id: &str, tool: &str, args: Value) -> Value {
    support::rt().block_on(support::call(&session_client(hub, id), tool, args))
}

/// Waits until event `id`'s status is no longer `from`; the receipt.
fn wait_status_past(hub: &Hub, id: u64, from: &str) -> Value {
    wait_until(&format!("event {id} to leave {from}"), DEADLINE, || {
        let r = receipt(hub, id);
        (r["status"] != from).then_some(r)
    })
}

/// `initialize` as the client named `client` (`claude-code`), then
/// `notifications/initialized`.
pub(crate) fn initialize_as(proxy: &mut Proxy, client: &str) {
    proxy.result(
        "initialize",
        Some(json!({"protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": client, "version": "0"}})),
    );
    proxy.notify("notifications/initialized");
}

/// A proxy whose client says it is `client` in `initialize`, registered
/// under `name` (with `client_id`, so it resumes that session).
pub(crate) fn proxy_as(hub: &Hub, client: &str, name: &str, client_id: &str) -> (Proxy, String) {
    let mut proxy = Proxy::spawn(
        hub,
        &[
            ("AGENT_EVENT_BUS_SESSION_NAME", name),
            ("AGENT_EVENT_BUS_CLIENT_ID", client_id),
        ],
    );
    initialize_as(&mut proxy, client);
    let id = id_of(&wait_registered(hub, name));
    (proxy, id)
}

/// Waits for the proxy's channel notification of event `id`.
fn wait_notified(proxy: &Proxy, id: u64) {
    let id = id.to_string();
    proxy
        .wait_notifications(DEADLINE, |all| {
            all.iter()
                .find(|n| n["method"] == CHANNEL && n["params"]["meta"]["event_id"] == id.as_str())
                .cloned()
        })
        .unwrap_or_else(|| panic!("no channel notification of {id}:\n{}", proxy.stderr()));
}

fn ids(page: &Value) -> Vec<u64> {
    page["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {page}"))
        .iter()
        .filter_map(|e| e["id"].as_u64())
        .collect()
}

fn dm(hub: &Hub, from: &str, to: &str, text: &str) -> u64 {
    hub.publish(from, "question", text, &format!("session:{to}"))
}

#[test]
fn a_direct_message_goes_stored_offered_delivered_read_each_step_with_its_path() {
    let hub = Hub::start();
    let alice = id_of(&hub.register("alice", Some("alice-1")));
    // Bob is on the bus, but his proxy is not running yet.
    let bob = id_of(&hub.register("bob", Some("bob-1")));
    let id = dm(&hub, &alice, &bob, "can you review x.rs?");
    let stored = receipt(&hub, id);
    assert_eq!(stored["status"], "stored", "{stored}");
    assert_eq!(stored["recipient"], bob.as_str());
    assert_eq!(stored["recipient_name"], "bob");
    assert_eq!(stored["recipient_state"], "live");
    for field in ["offered_at", "delivered_at", "read_at", "read_path"] {
        assert!(stored[field].is_null(), "{field}: {stored}");
    }
    assert!(stored.get("held").is_none() && stored.get("pushed_at").is_none());

    // Bob's Claude Code starts: its proxy resumes his session and pushes the
    // message as a channel notification, which Claude Code shows: offered.
    // Its push poll returned the message before the notification went out,
    // and never counts as Bob's read.
    let (mut proxy, resumed) = proxy_as(&hub, "claude-code", "bob", "bob-1");
    assert_eq!(resumed, bob);
    wait_notified(&proxy, id);
    let offered = wait_status_past(&hub, id, "stored");
    assert_eq!(offered["status"], "offered", "{offered}");
    assert_eq!(offered["offered_path"], "channel");
    assert!(offered["offered_at"].is_string() && offered["delivered_at"].is_null());

    // Bob's own peek returns it: delivered by tool, and nothing consumed.
    let peek = proxy.call_ok("get_events", json!({"peek": true, "order": "asc"}));
    assert!(ids(&peek).contains(&id), "{peek}");
    let delivered = receipt(&hub, id);
    assert_eq!(delivered["status"], "delivered", "{delivered}");
    assert_eq!(delivered["delivered_path"], "tool");
    assert_eq!(delivered["offered_path"], "channel", "earlier steps stay");

    // His consuming read returns it: read by resume.
    let page = proxy.call_ok("get_events", json!({"resume": true, "order": "asc"}));
    assert!(ids(&page).contains(&id), "{page}");
    let read = receipt(&hub, id);
    assert_eq!(read["status"], "read", "{read}");
    assert_eq!(read["read_path"], "resume");
    assert!(read["read_at"].is_string() && read["delivered_at"].is_string());

    // Reporting for Bob's keyed session needs his key.
    let stranger = hub.tool(
        "message_receipt",
        json!({"session_id": bob, "event_ids": [id], "step": "offered", "path": "inbox"}),
    );
    assert_eq!(stranger["error"], "Session key required", "{stranger}");
    // Statuses never go back: later reports change nothing.
    for (step, path) in [("offered", "inbox"), ("delivered", "hook")] {
        let marked = tool_as(
            &hub,
            &bob,
            "message_receipt",
            json!({"session_id": bob, "event_ids": [id], "step": step, "path": path}),
        );
        assert_eq!(marked, json!({"success": true, "marked": 0}), "{step}");
    }
    assert_eq!(receipt(&hub, id), read);

    // The sender sees the same on its own messages when it asks.
    let mine = hub.tool(
        "get_events",
        json!({"session_id": alice, "receipts": true, "peek": true, "order": "desc"}),
    );
    let sent = mine["events"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["id"] == id))
        .unwrap_or_else(|| panic!("alice's message in {mine}"));
    assert_eq!(sent["receipt"], read);
}

#[test]
fn a_proxy_whose_client_is_not_claude_code_never_reports_a_channel_offer() {
    let hub = Hub::start();
    let (proxy, me) = proxy_as(&hub, "codex-mcp-client", "codex", "codex-1");
    let mine = support::session_by_id(&hub, &me).expect("its session");
    assert!(
        !mine["push"].as_array().unwrap().contains(&json!("channel")),
        "{mine}"
    );
    let id = dm(&hub, "anonymous", &me, "ping");
    wait_notified(&proxy, id);
    // The proxy logs its decision once the notification is out.
    proxy.wait_logged(&format!("event_id={id} sent=true offered=false"), 1);
    assert_eq!(receipt(&hub, id)["status"], "stored");
}

#[test]
fn hooks_and_helper_commands_never_consume_the_agents_cursor_or_mark_it_read() {
    let hub = Hub::start();
    // The agent: a proxy whose client is this test process, so the CLI run
    // from here finds its session through its ancestors, as a hook would.
    let mut agent = Proxy::spawn(&hub, &[("AGENT_EVENT_BUS_SESSION_NAME", "agent")]);
    agent.initialize();
    let me = id_of(&wait_registered(&hub, "agent"));
    let dms: Vec<u64> = (1..=3)
        .map(|n| dm(&hub, "anonymous", &me, &format!("message {n}")))
        .collect();
    hub.publish("anonymous", "note", "newest", "all");

    // What the Stop hook recipe used to run, with the session found through
    // our ancestors and named outright.
    let cli = Cli::new(&hub);
    for args in [
        &["events", "--order", "desc", "--limit", "1"][..],
        &[
            "events",
            "--session-id",
            &me,
            "--order",
            "desc",
            "--limit",
            "1",
        ],
        &["events", "--session-id", &me, "--order", "asc"],
        &["events", "--session-id", &me, "--peek"],
    ] {
        let out = cli.run(args);
        assert_eq!(out.code, 0, "{args:?}: {out:#?}");
    }
    for &id in &dms {
        let r = receipt(&hub, id);
        assert_eq!(r["status"], "stored", "a helper's read proves nothing: {r}");
    }

    // The agent's next resume still returns every one of them, and reads them.
    let page = agent.call_ok("get_events", json!({"resume": true, "order": "asc"}));
    let got = ids(&page);
    assert!(dms.iter().all(|id| got.contains(id)), "{page}");
    for &id in &dms {
        assert_eq!(receipt(&hub, id)["read_path"], "resume");
    }

    // A helper that asks --resume consumes (a watcher hook keeps the agent's
    // cursor for it), and still marks nothing read.
    let late = dm(&hub, "anonymous", &me, "late");
    let out = cli.run(&["events", "--resume", "--order", "asc", "--json"]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(ids(&out.json()).contains(&late), "{out:#?}");
    assert_eq!(receipt(&hub, late)["status"], "stored");
    let page = agent.call_ok("get_events", json!({"resume": true, "order": "asc"}));
    assert!(
        !ids(&page).contains(&late),
        "the helper consumed it: {page}"
    );
}

#[test]
fn after_wait_wakes_the_agent_resume_still_returns_every_unread_message() {
    let hub = Hub::start();
    let hooks = tempfile::tempdir().unwrap();
    let mut agent = Proxy::spawn(&hub, &[("AGENT_EVENT_BUS_SESSION_NAME", "sleeper")]);
    agent.initialize();
    let me = id_of(&wait_registered(&hub, "sleeper"));
    let earlier = dm(&hub, "anonymous", &me, "sent while busy");

    // The Stop hook, as Claude Code runs it, finds the agent's session
    // through its ancestors and waits.
    let input = json!({"session_id": "cc-sleeper", "cwd": "/src/app", "hook_event_name": "Stop"});
    let hook = support::spawn_hook(
        &hub,
        "stop-wait.sh",
        &input,
        // The hub's client state directory holds the agent's key file.
        &[("AGENT_EVENT_BUS_HOOK_STATE", hooks.path().to_str().unwrap())],
    );
    crate::reach::wait_hook(&hub, &me, true);
    let wakes = dm(&hub, "anonymous", &me, "wake up");
    let out: support::Output = hook.wait_with_output().expect("the hook ends").into();
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("wake up"), "{out:#?}");

    let woke = receipt(&hub, wakes);
    assert_eq!(woke["status"], "delivered", "{woke}");
    assert_eq!(woke["delivered_path"], "hook");
    assert_eq!(receipt(&hub, earlier)["status"], "stored");

    // The agent's next resume returns both; neither was consumed by the hook.
    let page = agent.call_ok("get_events", json!({"resume": true, "order": "asc"}));
    let got = ids(&page);
    assert!(got.contains(&earlier) && got.contains(&wakes), "{page}");
    assert_eq!(receipt(&hub, earlier)["status"], "read");
}

#[test]
fn a_session_with_no_wake_path_shows_delivered_only_once_the_agent_fetched() {
    let hub = Hub::start();
    let me = id_of(&hub.register("quiet", Some("quiet-1")));
    let id = dm(&hub, "anonymous", &me, "anyone?");
    // Helpers look: nothing moves.
    let cli = Cli::new(&hub);
    for args in [
        &["events", "--session-id", &me, "--peek"][..],
        &["events", "--channel", &format!("session:{me}")],
        &["events", "--resume", "--session-id", &me],
    ] {
        assert_eq!(cli.run(args).code, 0, "{args:?}");
    }
    assert_eq!(receipt(&hub, id)["status"], "stored");
    // The agent's own read (no reader header: the agent itself).
    hub.tool(
        "get_events",
        json!({"session_id": me, "channel": format!("session:{me}"), "cursor": "0"}),
    );
    let r = receipt(&hub, id);
    assert_eq!(
        (&r["status"], &r["delivered_path"]),
        (&json!("delivered"), &json!("tool"))
    );

    // Its reply (correlation_id = the message's id) reads it.
    hub.tool(
        "publish_event",
        json!({"session_id": me, "event_type": "answer", "payload": "here",
               "channel": "session:someone", "correlation_id": id.to_string()}),
    );
    let r = receipt(&hub, id);
    assert_eq!(
        (&r["status"], &r["read_path"]),
        (&json!("read"), &json!("reply"))
    );
}

#[test]
fn a_hold_shows_while_below_delivered_and_never_moves_the_status() {
    let hub = Hub::start();
    let me = id_of(&hub.register("typist", Some("typist-1")));
    let other = id_of(&hub.register("other", Some("other-1")));
    let id = dm(&hub, "anonymous", &me, "hello");
    let not_mine = dm(&hub, "anonymous", &other, "not yours");
    let report = |args: Value| {
        let mut full = json!({"session_id": me, "event_ids": [id, not_mine]});
        full.as_object_mut()
            .unwrap()
            .extend(args.as_object().unwrap().clone());
        hub.tool("message_receipt", full)["marked"]
            .as_u64()
            .unwrap()
    };

    let draft = json!({"step": "held", "path": "pane", "reason": "a draft in the input line"});
    assert_eq!(
        report(draft.clone()),
        1,
        "only the direct message to the session"
    );
    let held = receipt(&hub, id);
    assert_eq!(held["status"], "stored", "{held}");
    assert_eq!(held["held"]["path"], "pane");
    assert_eq!(held["held"]["reason"], "a draft in the input line");
    assert_eq!(report(draft), 0, "a repeat keeps its time");
    assert_eq!(receipt(&hub, id)["held"], held["held"]);
    assert_eq!(receipt(&hub, not_mine)["status"], "stored");

    assert_eq!(report(json!({"step": "offered", "path": "inbox"})), 1);
    let offered = receipt(&hub, id);
    assert_eq!(offered["status"], "offered");
    assert_eq!(offered["held"]["path"], "pane", "still held there");
    assert_eq!(report(json!({"step": "delivered", "path": "pane"})), 1);
    let delivered = receipt(&hub, id);
    assert_eq!(delivered["delivered_path"], "pane");
    assert!(delivered.get("held").is_none(), "{delivered}");
    assert_eq!(
        report(json!({"step": "held", "path": "inbox", "reason": "late"})),
        0
    );

    // The older report still counts, as offered by channel.
    let second = dm(&hub, "anonymous", &me, "again");
    let pushed = hub.tool(
        "message_pushed",
        json!({"session_id": me, "event_ids": [second]}),
    );
    assert_eq!(pushed["marked"], 1);
    assert_eq!(receipt(&hub, second)["offered_path"], "channel");

    // Reports that cannot be true are refused and change nothing.
    for (args, says) in [
        (
            json!({"step": "delivered", "path": "channel"}),
            "report step offered",
        ),
        (
            json!({"step": "delivered", "path": "notice"}),
            "report step offered",
        ),
        (
            json!({"step": "offered", "path": "tool"}),
            "recorded by the hub",
        ),
        (
            json!({"step": "held", "path": "pane"}),
            "reason is required",
        ),
        (
            json!({"step": "seen", "path": "pane"}),
            "expected one of `offered`",
        ),
    ] {
        let mut full = json!({"session_id": me, "event_ids": [second]});
        full.as_object_mut()
            .unwrap()
            .extend(args.as_object().unwrap().clone());
        let out = hub.tool_raw("message_receipt", full);
        assert!(
            out.is_error() && out.text().contains(says),
            "{args}: {}",
            out.text()
        );
    }
    assert_eq!(receipt(&hub, second)["status"], "offered");
}

#[test]
fn a_message_to_an_ended_session_shows_the_recipient_ended() {
    let hub = Hub::start();
    let gone = id_of(&hub.register("gone", None));
    hub.tool("unregister_session", json!({"session_id": gone}));
    let id = dm(&hub, "anonymous", &gone, "still there?");
    let broadcast = hub.publish("anonymous", "note", "hello all", "all");
    let list = hub.tool(
        "message_status",
        json!({"event_ids": [id, broadcast, 999_999]}),
    );
    assert_eq!(list[0]["recipient_state"], "ended", "{list}");
    assert_eq!(list[0]["status"], "stored");
    assert!(
        list[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("Not a direct message")),
        "{list}"
    );
    assert_eq!(list[2]["error"], "Event not found");
    for bad in [json!({"event_ids": ["x"]}), json!({})] {
        let out = hub.tool_raw("message_status", bad);
        assert!(out.is_error(), "{}", out.text());
    }
}
