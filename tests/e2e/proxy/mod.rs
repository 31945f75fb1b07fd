//! End-to-end tests: the proxy, driven over stdio as an MCP client drives it,
//! against a real hub. Waits are generous deadlines, never speed asserts.
//!
//! # Layout
//! - `protocol`: initialize, the tools forwarded with `session_id` filled
//!   in, argument checks, two proxies messaging, the official Python client.
//! - `lifecycle`: the session a proxy holds, renamed or ended by its agent,
//!   and ended when the proxy's stdin closes, it is signalled or killed, or
//!   its parent dies.
//! - `hub`: a hub not yet started, restarted, remote with a token, or that
//!   ended the session under the proxy.
//! - `limits`: long polls, calls too large for the hub, lines too large for
//!   the proxy.

mod hub;
mod lifecycle;
mod limits;
mod protocol;

use std::time::Duration;

use support::{Hub, events, session_by_id, wait_until};

/// Long enough for a registration (≈1 s after initialized), a lease lapse
/// plus the sweeper, or a hub restart, on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(30);

/// Waits until the session is gone and its `session_unregistered` event exists.
fn wait_ended(hub: &Hub, id: &str) {
    wait_until(&format!("session {id} to end"), DEADLINE, || {
        session_by_id(hub, id).is_none().then_some(())
    });
    wait_until("its session_unregistered event", DEADLINE, || {
        events(hub)
            .iter()
            .any(|e| e["event_type"] == "session_unregistered" && e["session_id"] == id)
            .then_some(())
    });
}

/// A loopback URL where nothing listens: a hub started, noted and stopped.
fn stopped_hub() -> Hub {
    let mut hub = Hub::start();
    hub.stop();
    hub
}
