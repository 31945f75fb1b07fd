//! Whether a message needs a wake at all: the agent has it already (its
//! own read, a hook), or the session's wake-up hook is connected and hands
//! it over within a moment.

use std::time::{Duration, Instant};

use shared::tools::receipts::{self, MessageStatus, StatusParams};

use super::{HOOK_GRACE, Waker};

impl Waker {
    /// Whether every one of `ids` reached the agent (its own read, a hook),
    /// or does within [`HOOK_GRACE`] while the session's wake-up hook is
    /// connected: the hook hands it over, and a second wake would only
    /// start a second turn for the same message.
    ///
    /// The hook is looked for first: one that has just handed the messages
    /// over and exited reported them before it let go of its lock.
    pub(super) async fn seen_or_hooked(&self, session: &str, ids: &[u64]) -> bool {
        let hooked = self
            .state_dir()
            .is_some_and(|dir| shared::state::WaiterFiles::new(&dir, session).waiting());
        if self.already_seen(ids).await {
            return true;
        }
        if !hooked {
            return false;
        }
        let deadline = Instant::now() + HOOK_GRACE;
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if self.already_seen(ids).await {
                return true;
            }
        }
        tracing::info!(event_ids = ?ids, "the wake-up hook did not hand these over within {HOOK_GRACE:?}: waking the agent");
        false
    }

    /// Whether every one of `ids` already reached the agent (its own read,
    /// a hook), so no notice is needed.
    async fn already_seen(&self, ids: &[u64]) -> bool {
        let params = StatusParams {
            event_ids: ids.to_vec(),
        };
        match self
            .hub
            .call_within::<MessageStatus>(&params, Duration::from_secs(3))
            .await
        {
            Ok(Ok(receipts)) => {
                !receipts.is_empty()
                    && receipts
                        .iter()
                        .all(|r| r.status.is_some_and(|s| s >= receipts::Status::Delivered))
            }
            _ => false,
        }
    }
}
