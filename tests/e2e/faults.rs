//! End-to-end tests: the hub under faults — a stalled process, a full disk,
//! a damaged database file. Waits are generous deadlines, never speed asserts.

use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use serde_json::{Value, json};
use support::proxy::Proxy;
use support::{Hub, call, rt, wait_until};

const DEADLINE: Duration = Duration::from_secs(30);

fn events(hub: &Hub) -> Vec<Value> {
    let page = rt().block_on(call(
        &hub.client(),
        "get_events",
        json!({"order": "asc", "limit": 1000}),
    ));
    page["events"]
        .as_array()
        .unwrap_or_else(|| panic!("get_events has no events: {page}"))
        .clone()
}

fn live_session(hub: &Hub, id: &str) -> bool {
    let list = rt().block_on(call(&hub.client(), "list_sessions", json!({})));
    list.as_array()
        .unwrap_or_else(|| panic!("list_sessions is not a list: {list}"))
        .iter()
        .any(|s| s["session_id"] == id)
}

fn unregistered(events: &[Value], id: &str) -> usize {
    events
        .iter()
        .filter(|e| e["event_type"] == "session_unregistered" && e["session_id"] == id)
        .count()
}

/// A proxy that has initialized and registered under `name` with a 2 s lease.
fn leased_proxy(hub: &Hub, name: &str) -> (Proxy, String) {
    let mut proxy = Proxy::spawn(
        hub,
        &[
            ("AGENT_EVENT_BUS_SESSION_NAME", name),
            ("AGENT_EVENT_BUS_LEASE_SECONDS", "2"),
        ],
    );
    proxy.initialize();
    let id = wait_until(&format!("{name} to register"), DEADLINE, || {
        let list = rt().block_on(call(&hub.client(), "list_sessions", json!({})));
        list.as_array()?
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["session_id"].as_str().map(str::to_owned))
    });
    (proxy, id)
}

fn signal_hub(hub: &Hub, signal: Signal) {
    let pid = hub.pid().expect("the hub runs");
    let pid = Pid::from_raw(i32::try_from(pid).expect("a pid fits")).expect("a real pid");
    kill_process(pid, signal).expect("the hub can be signalled");
}

#[test]
fn a_stalled_hub_gives_live_leases_a_fresh_term_and_still_ends_dead_ones() {
    let hub = Hub::start();
    let (mut alive, alive_id) = leased_proxy(&hub, "alive");
    let (mut dead, dead_id) = leased_proxy(&hub, "dead");
    dead.signal(Signal::KILL);
    dead.wait_exit(DEADLINE);

    // Stopped for well over the 2 s lease, as a closed laptop lid would.
    signal_hub(&hub, Signal::STOP);
    std::thread::sleep(Duration::from_secs(6));
    signal_hub(&hub, Signal::CONT);

    // The killed proxy's session still ends once its fresh term lapses...
    wait_until("the dead session to end", DEADLINE, || {
        (unregistered(&events(&hub), &dead_id) == 1).then_some(())
    });
    // ...and by then the live one has renewed: a sentinel published after
    // proves nothing ended it in between.
    let sentinel = hub.publish(&alive_id, "sentinel", "after the stall", "all");
    let seen = events(&hub);
    assert!(seen.iter().any(|e| e["id"] == sentinel), "the sentinel is in");
    assert_eq!(
        unregistered(&seen, &alive_id),
        0,
        "a live proxy's session was ended by the stall: {}",
        hub.log()
    );
    assert!(live_session(&hub, &alive_id));
    alive.call_ok("list_sessions", json!({}));
    alive.assert_stdout_is_json_rpc();
}
