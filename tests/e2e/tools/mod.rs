//! End-to-end tests: every tool's normal path and each error shape in the
//! contract, against the real hub.
//!
//! # Layout
//! - `sessions`: registering, listing and unregistering sessions, deleted
//!   sessions, and the ends of a lease, a process or an idle spell.
//! - `events`: publishing and acknowledging events.
//! - `surface`: the webhook tools, `notify`, and the MCP surface (tools,
//!   the guide resource, prompts, initialize).

mod events;
mod sessions;
mod surface;

use serde_json::Value;

fn ids(events: &Value) -> Vec<u64> {
    events["events"]
        .as_array()
        .expect("an events array")
        .iter()
        .map(|e| e["id"].as_u64().expect("an id"))
        .collect()
}
