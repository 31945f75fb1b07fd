//! Desktop notifications on the hub's machine: the `notify` tool, and a
//! notice for direct messages to local sessions that have no proxy (a proxy
//! notifies on its own machine, where the human is). The argv and wording
//! are [`shared::notify`]'s, shared with the proxy.

use shared::notify;
use shared::tools::notify::{Notified, NotifyParams};

use super::Outcome;
use crate::caller::Caller;
use crate::state::Bus;
use crate::store::SessionRecord;

super::handlers! {
    shared::tools::notify::Notify => tool;
}

/// `notify(title, message, sound=false)` → `{success, title, message}`.
pub async fn tool(_bus: &Bus, _caller: &Caller, p: NotifyParams) -> Outcome<Notified> {
    Ok(shared::tools::notify::show(p).await)
}

/// Notifies a DM's recipient when it is local and has no proxy (no lease).
/// Runs in the background; never fails the publish.
pub fn direct_message(
    bus: &Bus,
    target: &SessionRecord,
    sender: Option<&SessionRecord>,
    payload: &str,
) {
    if !crate::sessions::local_without_lease(&bus.hostname, target) {
        return;
    }
    let (title, body) = notify::dm_text(
        &target.name,
        &notify::project(&target.repo, &target.cwd),
        sender.map(|s| s.name.as_str()),
        payload,
    );
    tokio::spawn(async move {
        notify::send(&title, &body, false).await;
    });
}
