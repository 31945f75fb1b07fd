//! Every direct message reaches its agent, and its receipt tells the truth:
//! each interactive client in tmux, set up as README says, gets direct
//! messages from another session while it is idle.
//!
//! Per client and wake path:
//! - a message to the idle session starts a turn of its model (the
//!   stand-in's next request) within 15 s, and its receipt says `delivered`
//!   by that path;
//! - a half-typed line in the pane is never submitted, and the message is
//!   delivered once the line is cleared (the inbox and the hook leave the
//!   line alone and deliver at once);
//! - the agent's next `get_events(resume=true)` returns every direct
//!   message it has not read (waking never consumes);
//! - a session with no wake path never shows `delivered`;
//! - publish → the recipient model's next request, p50 and p95 per path,
//!   printed (never asserted).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Hub, wait_until};

use crate::client::{Client, Connect, Prefs};
use crate::screens::DRAFT;
use crate::tui::Tui;

/// How soon a message to an idle session must reach its model.
const WAKE_LIMIT: Duration = Duration::from_secs(15);
/// Idle wakes measured per path.
const SAMPLES: usize = 4;

/// A wake path, as receipts and reach name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Claude Code's inbox: delivered once the line shows taken in the
    /// client's proven pane.
    Inbox,
    /// The `wait` hook (Stop, asyncRewake): delivered when it prints.
    Hook,
    /// The terminal: delivered once the typed notice was verified.
    Pane,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Self::Inbox => "inbox",
            Self::Hook => "hook",
            Self::Pane => "pane",
        }
    }

    /// The path a receipt's `delivered_path` names after a wake.
    fn delivered_by(self) -> &'static str {
        match self {
            Self::Inbox => "inbox",
            Self::Hook => "hook",
            Self::Pane => "pane",
        }
    }
}

fn sender(hub: &Hub) -> String {
    hub.register("sender", None)["session_id"]
        .as_str()
        .expect("a session id")
        .to_owned()
}

/// Publishes a direct message; its id and the reply.
fn message(hub: &Hub, from: &str, to: &str, text: &str) -> (u64, Value) {
    let reply = hub.tool(
        "publish_event",
        json!({"session_id": from, "event_type": "note", "payload": text, "channel": format!("session:{to}")}),
    );
    let id = reply["event_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no event_id in {reply}"));
    (id, reply)
}

fn receipt(hub: &Hub, id: u64) -> Value {
    hub.tool("message_status", json!({"event_ids": [id]}))[0].clone()
}

fn wait_receipt(hub: &Hub, id: u64, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + WAKE_LIMIT;
    loop {
        let now = receipt(hub, id);
        if check(&now) {
            return now;
        }
        assert!(
            Instant::now() < until,
            "message {id} never became {what}: {now}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until message `id` was delivered (its status may have moved on
/// to `read` since), and checks it was `path` that delivered it.
fn wait_delivered(hub: &Hub, id: u64, path: Path) {
    let done = wait_receipt(hub, id, "delivered", |r| !r["delivered_path"].is_null());
    assert_eq!(done["delivered_path"], path.delivered_by(), "{done}");
}

/// The text blocks of the user's turns in a model request (tool results
/// aside) that mention `text`.
fn user_texts_with(request: &Value, text: &str) -> Vec<String> {
    request["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "user")
        .flat_map(|m| match &m["content"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(blocks) => blocks
                .iter()
                .filter(|b| b["type"] == "text")
                .filter_map(|b| b["text"].as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        })
        .filter(|t| t.contains(text))
        .collect()
}

fn paths(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["path"].as_str().map(str::to_owned))
        .collect()
}

/// Waits until `list_sessions` says `session` can be reached by `path`;
/// for the hook, until its `wait` holds the waiter's lock too (the hub
/// keeps `hook` in the reach for a moment after a `wait` has left, to
/// bridge its reconnects).
fn wait_reach(hub: &Hub, session: &str, path: Path) {
    if path == Path::Hook {
        let waiter = shared::state::WaiterFiles::new(&hub.client_state_dir(), session);
        wait_until(&format!("a wait hook for {session}"), WAKE_LIMIT, || {
            waiter.waiting().then_some(())
        });
    }
    wait_until(
        &format!("{session} reachable by {}", path.name()),
        WAKE_LIMIT,
        || {
            hub.tool("list_sessions", json!({}))
                .as_array()
                .and_then(|l| {
                    l.iter()
                        .find(|s| s["session_id"] == json!(session))
                        .cloned()
                })
                .filter(|s| paths(&s["reach"]).iter().any(|p| p == path.name()))
        },
    );
}

/// For the pane, waits out the proxy's cooldown since the last typed
/// notice, so a wake is measured rather than the cooldown.
fn past_cooldown(path: Path, last: Option<Instant>) {
    if path == Path::Pane
        && let Some(last) = last
    {
        std::thread::sleep(shared::wake::PANE_COOLDOWN.saturating_sub(last.elapsed()));
    }
}

/// p50 and p95 of `samples` (nearest rank), printed.
fn report(what: &str, mut samples: Vec<Duration>) {
    if samples.is_empty() {
        return;
    }
    samples.sort();
    let rank = |percent: usize| samples[((samples.len() - 1) * percent + 50) / 100].as_millis();
    eprintln!(
        "latency {what}: publish → the model's next request, n={} p50={} ms p95={} ms",
        samples.len(),
        rank(50),
        rank(95)
    );
}

/// One client woken by `path`: idle wakes (measured), a draft, and the
/// resume read after them.
fn wake(client: Client, connect: Connect, prefs: &Prefs, path: Path) {
    let hub = Hub::start();
    let Some(tui) = Tui::start(client, &hub, connect, prefs) else {
        return;
    };
    tui.turn("say hi");
    let me = tui.session_id(&hub);
    let from = sender(&hub);
    let mut unread = Vec::new();
    let mut latencies = Vec::new();
    let mut last: Option<Instant> = None;

    for n in 0..SAMPLES {
        let text = format!("wake-{}-{n}", path.name());
        past_cooldown(path, last);
        // The hook's `wait` reconnects after each turn.
        wait_reach(&hub, &me, path);
        let mark = tui.standin.count();
        let sent = Instant::now();
        last = Some(sent);
        let (id, reply) = message(&hub, &from, &me, &text);
        assert!(
            paths(&reply["reach"]).iter().any(|p| p == path.name()),
            "{reply}"
        );
        let woken = tui.standin.wait_turn(mark, WAKE_LIMIT).unwrap_or_else(|| {
            panic!(
                "no turn within {WAKE_LIMIT:?} of message {id}; screen:\n{}",
                tui.tmux.screen()
            )
        });
        latencies.push(woken.at.saturating_duration_since(sent));
        wait_delivered(&hub, id, path);
        if path == Path::Hook {
            tui.standin
                .wait_mention(mark, &text, WAKE_LIMIT)
                .unwrap_or_else(|| panic!("the hook's wake did not carry {text}"));
        }
        unread.push(text);
        tui.wait_idle();
    }
    report(&format!("{} ({})", path.name(), client.name()), latencies);

    // A person's half-typed line.
    tui.type_draft(DRAFT);
    let text = format!("draft-{}", path.name());
    past_cooldown(path, last);
    wait_reach(&hub, &me, path);
    let mark = tui.standin.count();
    let (id, _) = message(&hub, &from, &me, &text);
    if path == Path::Pane {
        let held = wait_receipt(&hub, id, "held by the draft", |r| {
            r["held"]["path"] == "pane"
        });
        // Nothing was typed: the hold never moves the status.
        assert_eq!(held["status"], "stored", "{held}");
        assert!(
            held["held"]["reason"]
                .as_str()
                .is_some_and(|r| !r.is_empty()),
            "{held}"
        );
        let screen = tui.wait_state("the draft still there", WAKE_LIMIT, |s| {
            s.draft.as_deref() == Some(DRAFT)
        });
        assert!(
            !tui.standin.mentioned_since(mark, DRAFT),
            "the draft was submitted:\n{screen}"
        );
        tui.clear_draft();
    }
    wait_delivered(&hub, id, path);
    last = Some(Instant::now());
    if path != Path::Pane {
        // The inbox and the hook never touch the input line.
        tui.wait_state("the turn's end with the draft kept", WAKE_LIMIT, |s| {
            !s.busy && s.draft.as_deref() == Some(DRAFT)
        });
        tui.clear_draft();
    }
    assert!(
        !tui.standin.mentioned_since(0, DRAFT),
        "the draft reached the model:\n{}",
        tui.tmux.screen()
    );
    unread.push(text);
    tui.wait_idle();

    // Waking never consumed: woken once more, the agent reads with
    // resume=true and gets every direct message it has not read. (No text
    // is typed here: a notice the proxy types could interleave with it.)
    past_cooldown(path, last);
    wait_reach(&hub, &me, path);
    let mark = tui.standin.count();
    tui.standin.fetch_next();
    let text = format!("resume-{}", path.name());
    message(&hub, &from, &me, &text);
    unread.push(text);
    let result = tui
        .standin
        .wait_tool_result(mark, &unread[0], WAKE_LIMIT)
        .unwrap_or_else(|| {
            let last = tui.standin.log().last().map(|r| r.body.to_string()).unwrap_or_default();
            let tail: String = last.chars().skip(last.chars().count().saturating_sub(3000)).collect();
            panic!(
                "no resume read returned {} within {WAKE_LIMIT:?}; {} requests since; the last: {}; screen:\n{}",
                unread[0],
                tui.standin.count() - mark,
                tail,
                tui.tmux.screen()
            )
        });
    for text in &unread {
        assert!(
            result.contains(text.as_str()),
            "the resume read lost {text}: {result}"
        );
    }
    // One wake per message: the hook and the inbox never both put the same
    // message before the model (a second turn for it). The last request
    // (in Anthropic's form) carries the whole conversation; tool results
    // aside, each message is in one user text block.
    if client != Client::ClaudeCode {
        return;
    }
    let last = tui
        .standin
        .log()
        .last()
        .map(|r| r.body.clone())
        .unwrap_or_default();
    for text in unread.iter().filter(|t| !t.starts_with("resume-")) {
        let shown = user_texts_with(&last, text);
        assert_eq!(
            shown.len(),
            1,
            "{text} reached the model other than once: {shown:#?}"
        );
    }
}

#[test]
fn claude_code_set_up_as_readme_says_is_woken_through_its_inbox() {
    wake(
        Client::ClaudeCode,
        Connect::Readme,
        &Prefs::default(),
        Path::Inbox,
    );
}

#[test]
fn claude_code_with_setup_hooks_is_woken_by_the_wait_hook() {
    wake(
        Client::ClaudeCode,
        Connect::Setup,
        &Prefs::default(),
        Path::Hook,
    );
}

#[test]
fn codex_tui_is_woken_through_its_pane() {
    wake(Client::Codex, Connect::Setup, &Prefs::default(), Path::Pane);
}

#[test]
fn gemini_cli_is_woken_through_its_pane() {
    wake(
        Client::Gemini,
        Connect::Setup,
        &Prefs::default(),
        Path::Pane,
    );
}

/// Claude Code told to hold messages from other sessions: the inbox line is
/// held, and the receipt says so instead of claiming delivery.
#[test]
fn claude_code_holding_inbound_messages_gets_no_false_receipt() {
    let hub = Hub::start();
    let Some(tui) = Tui::start(Client::ClaudeCode, &hub, Connect::Readme, &Prefs::holding()) else {
        return;
    };
    tui.turn("say hi");
    let me = tui.session_id(&hub);
    let from = sender(&hub);
    let mark = tui.standin.count();
    let (id, _) = message(&hub, &from, &me, "held-by-claude");
    let held = wait_receipt(&hub, id, "held by the inbox", |r| {
        r["held"]["path"] == "inbox"
    });
    assert!(
        held["held"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("crossSessionInbound")),
        "{held}"
    );
    assert!(
        held["status"] != "delivered" && held["status"] != "read" && held["delivered_at"].is_null(),
        "{held}"
    );
    // A turn the person starts afterwards: nothing went around the hold.
    tui.turn("say hi again");
    let now = receipt(&hub, id);
    assert!(now["delivered_at"].is_null(), "{now}");
    assert!(
        !tui.standin.mentioned_since(mark, "held-by-claude"),
        "a held message reached the model"
    );
}

/// The wake switch off (and no hooks): nothing can wake the session, and
/// the receipt never claims delivery; the sender is told.
fn no_wake_path(client: Client, connect: Connect) {
    let hub = Hub::start();
    let prefs = Prefs {
        wake: Some("off"),
        ..Prefs::default()
    };
    let Some(tui) = Tui::start(client, &hub, connect, &prefs) else {
        return;
    };
    tui.turn("say hi");
    let me = tui.session_id(&hub);
    let from = sender(&hub);
    let mark = tui.standin.count();
    let (id, reply) = message(&hub, &from, &me, "nobody-wakes-me");
    // Claude Code's proxy always offers a channel, which cannot confirm.
    let offered: &[&str] = if client == Client::ClaudeCode {
        &["channel"]
    } else {
        &[]
    };
    assert_eq!(paths(&reply["reach"]), offered, "{reply}");
    assert!(
        reply["reach"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|r| r["confirmed"] == false),
        "{reply}"
    );
    assert!(
        reply["reach_note"].as_str().is_some_and(|n| !n.is_empty()),
        "{reply}"
    );
    // A turn the person starts afterwards: the proxy had its chance.
    tui.turn("say hi again");
    let now = receipt(&hub, id);
    assert!(
        now["status"] != "delivered" && now["status"] != "read" && now["delivered_at"].is_null(),
        "{now}"
    );
    assert!(
        !tui.standin.mentioned_since(mark, "nobody-wakes-me"),
        "the message reached the model"
    );
}

#[test]
fn claude_code_without_a_wake_path_never_shows_delivered() {
    no_wake_path(Client::ClaudeCode, Connect::Readme);
}

#[test]
fn codex_without_a_wake_path_never_shows_delivered() {
    no_wake_path(Client::Codex, Connect::Setup);
}

#[test]
fn gemini_cli_without_a_wake_path_never_shows_delivered() {
    no_wake_path(Client::Gemini, Connect::Setup);
}
