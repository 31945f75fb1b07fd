//! Receipts from the wake paths: each step a message takes (`offered`,
//! `delivered`, `held` with its reason) on a path (`inbox`, `pane`, and the
//! push's `channel` and `notice`) goes to
//! the hub as `message_receipt`, in the background, and to the log as one
//! `receipt` line.

use std::sync::Arc;

use shared::HubClient;
use shared::tools::receipts::{MessageReceipt, Path, ReceiptParams, Step};

/// A step's name as the contract spells it.
pub fn step_name(step: Step) -> &'static str {
    match step {
        Step::Offered => "offered",
        Step::Delivered => "delivered",
        Step::Held => "held",
    }
}

/// Reports `step` on `path` for `event_ids` of session `session_id`.
pub fn report(
    hub: &Arc<HubClient>,
    session_id: &str,
    event_ids: &[u64],
    step: Step,
    path: Path,
    reason: Option<&str>,
) {
    if event_ids.is_empty() {
        return;
    }
    tracing::info!(
        step = step_name(step),
        path = path.name(),
        event_ids = ?event_ids,
        reason = reason.unwrap_or(""),
        "receipt"
    );
    let params = ReceiptParams {
        session_id: session_id.to_owned(),
        event_ids: event_ids.to_vec(),
        step,
        path,
        reason: reason.map(str::to_owned),
    };
    let hub = hub.clone();
    tokio::spawn(async move {
        match hub.call::<MessageReceipt>(&params).await {
            Ok(Ok(_)) => {}
            Ok(Err(refusal)) => tracing::debug!(%refusal, "the hub refused a receipt"),
            Err(e) => tracing::debug!("cannot report a receipt: {e}"),
        }
    });
}
