//! The proxy and its hub: started before the hub, carried across its
//! restarts, given a remote hub's token, and registering again when the
//! session is ended under it.

use std::time::Duration;

use serde_json::json;
use support::proxy::{Proxy, registered_proxy};
use support::sink::WebhookSink;
use support::{Hub, call, events, id_of, rt, session_by_id, wait_registered, wait_until};

use super::{DEADLINE, stopped_hub};

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

/// A leased session carries on across a restart: its proxy's renewals keep
/// it past a whole lease. (A hub down longer than a lease gives every lease
/// a fresh term as it starts: `hub/src/tools/tests/leases.rs`.)
#[test]
fn a_leased_session_is_renewed_across_a_hub_restart() {
    let mut hub = Hub::start();
    let (mut proxy, id) =
        registered_proxy(&hub, "patient", &[("AGENT_EVENT_BUS_LEASE_SECONDS", "3")]);
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
