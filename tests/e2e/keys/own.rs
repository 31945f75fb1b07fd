//! A keyed session's own: its proxy does everything as it (and its agent
//! through it acts as nobody else), a hook run under the agent acts as it
//! with the key from its key file, the CLI keys what it registers, and a
//! proxy restarted with the same client id finds its key again.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::{Value, json};
use support::keys::StateDir;
use support::proxy::{Proxy, registered_proxy};
use support::{Cli, Hub, Output, id_of, wait_until};

use super::{attributed_after, direct_message, listed, status, tip};

fn assert_ok(out: &Output) {
    assert_eq!(out.code, 0, "expected success: {out:#?}");
}

/// The event `id`'s publisher, read back from the hub.
fn publisher(hub: &Hub, event: &Value) -> Value {
    support::events(hub)
        .into_iter()
        .find(|e| e["id"] == *event)
        .unwrap_or_else(|| panic!("event {event} is on the hub"))["session_id"]
        .clone()
}

#[test]
fn a_proxy_acts_as_its_own_session_and_its_agent_as_nobody_else() {
    let hub = Hub::start();
    let state = StateDir::new();
    // A Claude Code client, so the proxy reports its channel offers.
    let mut proxy = Proxy::spawn(
        &hub,
        &[state.env(), ("AGENT_EVENT_BUS_SESSION_NAME", "own")],
    );
    crate::receipts::initialize_as(&mut proxy, "claude-code");
    let id = id_of(&support::wait_registered(&hub, "own"));
    state.wait_key(&id);
    let key_file = shared::keys::file(std::path::Path::new(state.env().1), &id);
    let mode = std::fs::metadata(&key_file)
        .expect("a key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(listed(&hub, &id).expect("live")["keyed"], true);
    // An old client's session, with no key: only the proxy stands guard.
    let peer = id_of(&hub.register("peer", Some("peer-client")));
    assert_eq!(listed(&hub, &peer).expect("live")["keyed"], false);

    // Its own receipts: the proxy pushes a direct message and reports it.
    let dm = direct_message(&hub, &id, "for the agent");
    wait_until("the proxy's offer report", Duration::from_secs(20), || {
        (status(&hub, dm) == "offered").then_some(())
    });
    // Everything else, as itself.
    let sent = proxy.call_ok(
        "publish_event",
        json!({"event_type": "hello", "payload": "hi", "channel": format!("session:{peer}")}),
    );
    assert_eq!(publisher(&hub, &sent["event_id"]), json!(id));
    let page = proxy.call_ok("get_events", json!({"resume": true, "order": "asc"}));
    assert!(page["events"].is_array(), "{page}");
    assert_eq!(status(&hub, dm), "read");
    let acked = proxy.call_ok("ack_events", json!({"cursor": tip(&hub).to_string()}));
    assert_eq!(acked["success"], true, "{acked}");
    let held = proxy.call_ok("claim", json!({"resource": "task:mine"}));
    assert_eq!(held["session_id"], json!(id), "{held}");
    let released = proxy.call_ok("claim", json!({"resource": "task:mine", "release": true}));
    assert_eq!(released["released"], true, "{released}");
    let renamed = proxy.call_ok("register_session", json!({"name": "renamed"}));
    assert_eq!(renamed["session_id"], json!(id), "{renamed}");
    assert!(
        renamed.get("session_key").is_none(),
        "the agent never sees the key: {renamed}"
    );
    assert!(
        !proxy
            .stdout_lines()
            .iter()
            .any(|l| l.contains(&state.key(&id).unwrap()))
    );

    // Naming another session: refused by the proxy, whoever that session is.
    let start = tip(&hub);
    for (tool, args) in [
        (
            "publish_event",
            json!({"session_id": peer, "event_type": "forged", "payload": "p"}),
        ),
        ("get_events", json!({"session_id": peer, "resume": true})),
        ("get_events", json!({"session_id": peer, "peek": true})),
        (
            "ack_events",
            json!({"session_id": peer, "cursor": start.to_string()}),
        ),
        (
            "claim",
            json!({"session_id": peer, "resource": "task:theirs"}),
        ),
        (
            "message_pushed",
            json!({"session_id": peer, "event_ids": [sent["event_id"]]}),
        ),
        ("unregister_session", json!({"session_id": peer})),
        ("unregister_session", json!({"client_id": "peer-client"})),
    ] {
        let out = proxy.call(tool, args.clone());
        assert!(out.is_error(), "{tool}({args}): {}", out.text());
        assert!(
            out.text().contains("is not this session's"),
            "{}",
            out.text()
        );
    }
    // Its own register_session with the peer's client id is still its own.
    let again = proxy.call_ok(
        "register_session",
        json!({"name": "still-me", "client_id": "peer-client"}),
    );
    assert_eq!(again["session_id"], json!(id), "{again}");
    let sentinel = hub.publish("anonymous", "sentinel", "after the attempts", "all");
    assert!(attributed_after(&hub, &peer, start).is_empty());
    let seen = listed(&hub, &peer).expect("the peer is untouched");
    assert_eq!(seen["name"], "peer");
    let claims = hub.tool("list_claims", json!({}));
    assert_eq!(claims, json!([]), "nobody claimed for the peer");
    assert_eq!(status(&hub, sent["event_id"].as_u64().unwrap()), "stored");
    assert!(support::events(&hub).iter().any(|e| e["id"] == sentinel));

    // The agent ends its own session: the key file goes with it.
    let gone = proxy.call_ok("unregister_session", json!({}));
    assert_eq!(gone["success"], true, "{gone}");
    assert!(listed(&hub, &id).is_none());
    assert!(!key_file.exists(), "the key file is removed");
    proxy.assert_stdout_is_json_rpc();
}

#[test]
fn a_hook_under_the_agent_acts_as_its_session_with_the_key() {
    let hub = Hub::start();
    let state = StateDir::new();
    // The proxy's client is this test process, an ancestor of every CLI
    // it runs: the CLI finds the session as a hook run by the agent would.
    let (_proxy, id) = registered_proxy(&hub, "hooked", &[state.env()]);
    let (var, dir) = state.env();
    let hook = Cli::new(&hub).env(var, dir);
    let out = hook.run(&["publish", "--type", "from-hook", "--payload", "p"]);
    assert_ok(&out);
    assert_eq!(publisher(&hub, &out.json()["event_id"]), json!(id));
    let out = hook.run(&["claim", "task:hook", "--json"]);
    assert_ok(&out);
    assert_eq!(out.json()["session_id"], json!(id));
    assert_ok(&hook.run(&["release", "task:hook"]));
    assert_ok(&hook.run(&["events", "--resume", "--order", "asc", "--json"]));
    assert_ok(&hook.run(&["ack", "--cursor", &tip(&hub).to_string()]));
    // The same hook where this user keeps no key for it is refused.
    let elsewhere = StateDir::new();
    let (var, dir) = elsewhere.env();
    let out = Cli::new(&hub)
        .env(var, dir)
        .run(&["publish", "--type", "t", "--payload", "p"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out.stderr.contains("Session key required"), "{out:#?}");
    assert!(out.stderr.contains("is keyed"), "{out:#?}");
}

#[test]
fn the_cli_keys_its_sessions_and_a_restarted_proxy_finds_its_key() {
    let hub = Hub::start();
    let state = StateDir::new();
    let (var, dir) = state.env();
    let cli = Cli::new(&hub).env(var, dir);
    let register = [
        "register",
        "--name",
        "scripted",
        "--client-id",
        "cli-1",
        "--json",
    ];
    let out = cli.run(&register);
    assert_ok(&out);
    let id = id_of(&out.json());
    assert!(out.json().get("session_key").is_none(), "{out:#?}");
    assert!(state.key(&id).is_some(), "saved for later commands");
    let out = cli.run(&[
        "publish",
        "--session-id",
        &id,
        "--type",
        "t",
        "--payload",
        "p",
    ]);
    assert_ok(&out);
    assert_eq!(publisher(&hub, &out.json()["event_id"]), json!(id));
    // Registering by its client id needs the key; this user has it.
    let other = StateDir::new();
    let (var2, dir2) = other.env();
    let out =
        Cli::new(&hub)
            .env(var2, dir2)
            .run(&["register", "--name", "x", "--client-id", "cli-1"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out.stderr.contains("Session key required"), "{out:#?}");
    let out = cli.run(&register);
    assert_ok(&out);
    assert_eq!(out.json()["resumed"], true);
    let out = cli.run(&["unregister", "--client-id", "cli-1"]);
    assert_ok(&out);
    assert!(state.key(&id).is_none(), "its key file goes with it");

    // A proxy killed outright leaves its key file; the next proxy of the
    // same agent (same client id) finds it and resumes the session.
    let env = [
        state.env(),
        ("AGENT_EVENT_BUS_CLIENT_ID", "agent-7"),
        ("AGENT_EVENT_BUS_SESSION_NAME", "restarted"),
    ];
    let mut first = Proxy::spawn(&hub, &env);
    first.initialize();
    let agent = id_of(&support::wait_registered(&hub, "restarted"));
    state.wait_key(&agent);
    first.signal(rustix::process::Signal::KILL);
    first.wait_exit(Duration::from_secs(20));
    let mut second = Proxy::spawn(&hub, &env);
    second.initialize();
    let sent = second.call_ok(
        "publish_event",
        json!({"event_type": "back", "payload": "p"}),
    );
    assert_eq!(
        publisher(&hub, &sent["event_id"]),
        json!(agent),
        "resumed with its key"
    );
    // One that exits cleanly ends the session and its key; the next starts
    // it afresh under a new key.
    second.close_stdin();
    second.wait_exit(Duration::from_secs(20));
    wait_until("the session to end", Duration::from_secs(20), || {
        listed(&hub, &agent).is_none().then_some(())
    });
    assert!(state.key(&agent).is_none());
    let mut third = Proxy::spawn(&hub, &env);
    third.initialize();
    let sent = third.call_ok(
        "publish_event",
        json!({"event_type": "anew", "payload": "p"}),
    );
    assert_eq!(publisher(&hub, &sent["event_id"]), json!(agent));
    assert!(state.key(&agent).is_some());
}

/// A hook run as the agent starts (Claude Code runs `SessionStart` hooks
/// while it starts its MCP servers) can find the agent's session listed
/// before the proxy has saved the key the hub just gave it: the hook waits
/// a moment for the key file instead of acting without it.
#[test]
fn a_hook_run_as_the_agent_starts_waits_for_its_proxy_to_save_the_key() {
    let hub = Hub::start();
    let state = StateDir::new();
    // This test process plays the agent's client: its proxy has registered
    // the session, keyed, and not saved the key yet.
    let pid = std::process::id();
    let (id, key, _) = super::keyed_session(&hub, "starting", json!({"client_pid": pid}));
    let lookups = || hub.log().matches("tool=list_sessions").count();
    let before = lookups();
    let (var, dir) = state.env();
    let cli = Cli::new(&hub).env(var, dir);
    let hook =
        std::thread::spawn(move || cli.run(&["publish", "--type", "started", "--payload", "p"]));
    // The hook has found its session through its ancestors; now the proxy
    // saves the key.
    wait_until(
        "the hook to look up its session",
        Duration::from_secs(20),
        || (lookups() > before).then_some(()),
    );
    shared::state::write_private(&shared::keys::file(std::path::Path::new(dir), &id), &key)
        .expect("the key file");
    let out = hook.join().expect("the hook ran");
    assert_ok(&out);
    assert_eq!(publisher(&hub, &out.json()["event_id"]), json!(id));
}
