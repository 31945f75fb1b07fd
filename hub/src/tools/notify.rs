//! Desktop notifications on the hub's machine: the `notify` tool, and a
//! notice for direct messages to local sessions that have no proxy (a proxy
//! notifies on its own machine, where the human is). The argv and wording
//! are [`shared::notify`]'s, shared with the proxy, which also holds the
//! cap on notifiers running at once.

use shared::notify;
use shared::tools::Refusal;
use shared::tools::notify::{Notified, NotifyParams};

use super::Outcome;
use crate::caller::Caller;
use crate::state::Bus;
use crate::store::{Change, Durability, SessionRecord};
use shared::tools::receipts::Path;

super::handlers! {
    shared::tools::notify::Notify => tool;
}

/// `notify(title, message, sound=false)` → `{success, title, message}`;
/// refused to callers on other machines unless `--allow-remote-notify`
/// (their text would appear on this machine's desktop).
pub async fn tool(bus: &Bus, caller: &Caller, p: NotifyParams) -> Outcome<Notified> {
    if !caller.is_local() && !bus.limits.remote_notify {
        return Err(Refusal::NotifyNotLocal.into());
    }
    Ok(shared::tools::notify::show(p).await)
}

/// Notifies a DM's recipient when it is local and has no proxy (no lease);
/// a notice shown marks the message offered by `notice`. Runs in the
/// background; never fails the publish.
pub fn direct_message(
    bus: &Bus,
    target: &SessionRecord,
    sender: Option<&SessionRecord>,
    event_id: u64,
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
    let (store, to) = (bus.store.clone(), target.id.clone());
    tokio::spawn(async move {
        if notify::send(&title, &body, false).await {
            let offered = Change::Offered(Path::Notice);
            let marked = store
                .write(Durability::Lazy, move |tx| {
                    tx.mark_messages(&to, &[event_id], &offered, shared::time::now_ms())
                })
                .await;
            if let Err(e) = marked {
                tracing::warn!(event_id, "cannot record a notice's receipt: {e}");
            }
        }
    });
}
