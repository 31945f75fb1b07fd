//! End-to-end tests: how a session can be reached now — `list_sessions`'
//! `reach` (the routes its proxy reports, and `hook` while a `wait` for it
//! is connected) and the sentence a `publish_event` to it answers with.

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Cli, Hub, id_of, session_by_id, wait_until};

use crate::wait::finish;

const DEADLINE: Duration = Duration::from_secs(60);

/// The session's `reach`, as `list_sessions` shows it.
fn reach(hub: &Hub, id: &str) -> Value {
    session_by_id(hub, id).map_or(Value::Null, |s| s["reach"].clone())
}

/// Waits until the session is (`present`) or is no longer reachable by a
/// connected `wait`.
pub(crate) fn wait_hook(hub: &Hub, id: &str, present: bool) {
    let hook = json!({"path": "hook", "confirmed": true});
    wait_until(
        &format!("hook reach to be {present} for {id}"),
        DEADLINE,
        || {
            let now = reach(hub, id);
            let has = now.as_array().is_some_and(|r| r.contains(&hook));
            (has == present).then_some(())
        },
    );
}

/// `agent-event-bus-cli wait` for `id`, in the background.
fn spawn_wait(hub: &Hub, state: &Path, id: &str) -> Child {
    crate::wait::spawn_wait(hub, state, &["--session-id", id, "--timeout", "600"], &[])
}

/// Publishes a direct message to `to`; the reply.
fn send(hub: &Hub, to: &str) -> Value {
    hub.tool(
        "publish_event",
        json!({"event_type": "ping", "payload": "there?", "channel": format!("session:{to}")}),
    )
}

#[test]
fn reach_shows_hook_while_a_wait_is_connected_and_not_after_it_ends() {
    let hub = Hub::start();
    let state = tempfile::tempdir().unwrap();
    let me = id_of(&hub.register("sleeper", Some("sleeper-1")));

    assert_eq!(reach(&hub, &me), json!([]));
    let reply = send(&hub, &me);
    assert_eq!(reply["reach"], json!([]), "{reply}");
    assert_eq!(
        reply["reach_note"],
        format!(
            "Session \"sleeper\" ({me}) cannot be woken now: it will see the message at its next read."
        )
    );

    let waiter = spawn_wait(&hub, state.path(), &me);
    wait_hook(&hub, &me, true);
    assert_eq!(
        reach(&hub, &me),
        json!([{"path": "hook", "confirmed": true}])
    );
    let text = Cli::new(&hub).run(&["sessions"]).stdout;
    assert!(text.contains("    reach: hook\n"), "{text}");
    let reply = send(&hub, &me);
    assert_eq!(reply["reach"], json!([{"path": "hook", "confirmed": true}]));
    assert!(
        reply["reach_note"]
            .as_str()
            .is_some_and(|n| n
                .ends_with("can be woken now by hook; message_status shows when it is delivered.")),
        "{reply}"
    );
    // The message wakes the waiter; once it has gone, so has the hook.
    assert_eq!(finish(waiter).code, 2);
    wait_hook(&hub, &me, false);

    // A waiter stopped mid-wait (its connection closes) leaves no hook either.
    let waiter = spawn_wait(&hub, state.path(), &me);
    wait_hook(&hub, &me, true);
    let pid = rustix::process::Pid::from_raw(i32::try_from(waiter.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert_eq!(finish(waiter).code, 0);
    wait_hook(&hub, &me, false);
}

#[test]
fn reported_routes_are_reach_replaced_on_each_registration() {
    let hub = Hub::start();
    let headless = [("DISPLAY", ""), ("DBUS_SESSION_BUS_ADDRESS", "")];
    let mut proxy = support::proxy::Proxy::spawn(
        &hub,
        &[
            ("AGENT_EVENT_BUS_SESSION_NAME", "cc"),
            ("AGENT_EVENT_BUS_CLIENT_ID", "cc-1"),
            headless[0],
            headless[1],
        ],
    );
    crate::receipts::initialize_as(&mut proxy, "claude-code");
    let me = id_of(&support::wait_registered(&hub, "cc"));
    let mine = session_by_id(&hub, &me).unwrap();
    assert_eq!(mine["push"], json!(["channel"]), "{mine}");
    assert_eq!(
        mine["reach"],
        json!([{"path": "channel", "confirmed": false}])
    );
    let reply = send(&hub, &me);
    assert_eq!(
        reply["reach_note"],
        format!(
            "Session \"cc\" ({me}) may be reached by channel (unconfirmed), none confirmed to reach its model: if not, it will see the message at its next read."
        )
    );
    drop(proxy);

    // A client reports what it has now; the list replaces the last one.
    let register = |push: Option<Value>| {
        let mut args = json!({"name": "routes", "client_id": "routes-1",
                              "machine": shared::config::hostname()});
        if let Some(push) = push {
            args["push"] = push;
        }
        hub.tool_raw("register_session", args)
    };
    let id = id_of(&register(Some(json!(["notify", "pane", "inbox"]))).value());
    let s = session_by_id(&hub, &id).unwrap();
    assert_eq!(s["push"], json!(["inbox", "pane", "notify"]));
    assert_eq!(
        s["reach"],
        json!([{"path": "inbox", "confirmed": false}, {"path": "pane", "confirmed": true},
               {"path": "notify", "confirmed": false}])
    );
    register(None);
    assert_eq!(
        session_by_id(&hub, &id).unwrap()["push"],
        json!(["inbox", "pane", "notify"])
    );
    register(Some(json!([])));
    assert_eq!(session_by_id(&hub, &id).unwrap()["reach"], json!([]));
    let bad = register(Some(json!(["sms"])));
    assert!(
        bad.is_error()
            && bad.text().contains(
                "push items must be one of inbox, pane, channel, hook, notify (got 'sms')"
            ),
        "{}",
        bad.text()
    );
}

#[test]
fn a_message_to_no_live_session_says_so() {
    let hub = Hub::start();
    let reply = send(&hub, "nobody-here");
    assert_eq!(reply["reach"], json!([]));
    assert!(
        reply["reach_note"]
            .as_str()
            .is_some_and(|n| n.starts_with("No live session nobody-here")),
        "{reply}"
    );
    let broadcast = hub.tool(
        "publish_event",
        json!({"event_type": "note", "payload": "all", "channel": "all"}),
    );
    assert!(broadcast.get("reach").is_none() && broadcast.get("reach_note").is_none());
}
