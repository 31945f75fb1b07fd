//! Receipts of direct messages move forward only: stored, offered,
//! delivered, read; a later report of an earlier step changes nothing, and
//! each step keeps the hub's time it was first taken at and its path.

use std::time::Duration;

use shared::tools::receipts::{Path, Receipt, ReceiptParams, Status, StatusParams, Step};

use super::Hub;
use crate::tools::receipts::{message_receipt, message_status};

async fn status(hub: &Hub, id: u64) -> Receipt {
    let params = StatusParams {
        event_ids: vec![id],
    };
    let mut all = message_status(&hub.bus, &hub.caller, params)
        .await
        .expect("receipts");
    all.pop().expect("one receipt")
}

/// `to`'s client reports `step` by the pane for message `id`.
async fn report(hub: &Hub, to: &str, id: u64, step: Step) -> u64 {
    let params = ReceiptParams {
        session_id: to.to_owned(),
        event_ids: vec![id],
        step,
        path: Path::Pane,
        reason: None,
    };
    message_receipt(&hub.bus, &hub.caller, params)
        .await
        .expect("reported")
        .marked
}

/// A step's time `seconds` after the test clock's start.
fn at(seconds: u32) -> String {
    format!("2026-01-01T00:00:{seconds:02}.000000Z")
}

#[tokio::test(start_paused = true)]
async fn a_receipt_moves_forward_only() {
    let hub = Hub::start();
    let from = hub.register("from", None).await.session_id;
    let to = hub.register("to", None).await.session_id;
    let dm = hub
        .publish(&from, &format!("session:{to}"), "hi")
        .await
        .event_id;
    assert_eq!(status(&hub, dm).await.status, Some(Status::Stored));

    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(report(&hub, &to, dm, Step::Offered).await, 1);
    let r = status(&hub, dm).await;
    assert_eq!(r.status, Some(Status::Offered));
    assert_eq!(
        (r.offered_at.flatten(), r.offered_path.flatten()),
        (Some(at(1)), Some(Path::Pane))
    );

    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(report(&hub, &to, dm, Step::Delivered).await, 1);
    assert_eq!(status(&hub, dm).await.delivered_at.flatten(), Some(at(2)));

    tokio::time::advance(Duration::from_secs(1)).await;
    let page = hub.read_as(&to).await;
    assert!(page.events.iter().any(|e| e.event.id == dm));
    let r = status(&hub, dm).await;
    assert_eq!(r.status, Some(Status::Read));
    assert_eq!(
        (r.read_at.clone().flatten(), r.offered_at.clone().flatten()),
        (Some(at(3)), Some(at(1)))
    );

    // Reported again later: nothing moves back, no time changes.
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(report(&hub, &to, dm, Step::Offered).await, 0);
    assert_eq!(report(&hub, &to, dm, Step::Delivered).await, 0);
    assert_eq!(status(&hub, dm).await, r);
}
