//! Reading the hub's sessions from a test: the live list, one session by id
//! or name, and waiting for a registration; and its events.

use std::time::Duration;

use serde_json::{Value, json};

use shared::tools::events::{GetParams, Order};
use shared::tools::sessions::NoParams;

use crate::{Hub, rt, wait_until};

/// Long enough for a proxy's registration (≈1 s after `initialized`) or a
/// hub restart on a loaded 2-core machine; a deadline, never a speed assert.
pub const REGISTER_DEADLINE: Duration = Duration::from_secs(60);

/// The live sessions, as `list_sessions` returns them.
pub fn sessions(hub: &Hub) -> Vec<Value> {
    let list = rt()
        .block_on(hub.shared_client().sessions(&NoParams {}))
        .unwrap_or_else(|e| panic!("listing sessions failed: {e}"))
        .unwrap_or_else(|refusal| panic!("listing sessions was refused: {refusal}"));
    list.iter().map(|s| json!(s)).collect()
}

/// The live session with this id.
pub fn session_by_id(hub: &Hub, id: &str) -> Option<Value> {
    sessions(hub).into_iter().find(|s| s["session_id"] == id)
}

/// The live session with this name.
pub fn session_named(hub: &Hub, name: &str) -> Option<Value> {
    sessions(hub).into_iter().find(|s| s["name"] == name)
}

/// The `session_id` of a session or of a `register_session` reply.
pub fn id_of(session: &Value) -> String {
    session["session_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no session_id in {session}"))
        .to_owned()
}

/// Waits until a session with this name is live; returns it.
pub fn wait_registered(hub: &Hub, name: &str) -> Value {
    wait_until(
        &format!("session {name} to register"),
        REGISTER_DEADLINE,
        || session_named(hub, name),
    )
}

/// The oldest 1,000 events on the bus, oldest first.
pub fn events(hub: &Hub) -> Vec<Value> {
    let oldest = GetParams {
        order: Order::Asc,
        limit: 1000,
        ..GetParams::default()
    };
    let page = rt()
        .block_on(hub.shared_client().events(&oldest))
        .unwrap_or_else(|e| panic!("reading events failed: {e}"))
        .unwrap_or_else(|refusal| panic!("reading events was refused: {refusal}"));
    page.events.iter().map(|e| json!(e)).collect()
}

/// The ids of a `get_events` page's events, in order.
pub fn page_ids(page: &Value) -> Vec<u64> {
    page["events"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page of events: {page}"))
        .iter()
        .filter_map(|e| e["id"].as_u64())
        .collect()
}
