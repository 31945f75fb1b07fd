//! The session a proxy holds: renamed or ended by its agent, and ended
//! when the proxy's stdin closes, it is signalled or killed, its parent
//! dies, or a client only connects and leaves.

use serde_json::json;
use support::proxy::{Proxy, ProxyOptions, registered_proxy};
use support::{Hub, events, id_of, session_by_id, sessions, wait_registered};

use super::{DEADLINE, wait_ended};

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
