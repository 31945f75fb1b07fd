//! Receipts of direct messages move forward only: stored, pushed, read; a
//! later report of an earlier step changes nothing, and each step keeps
//! the hub's time it was first taken at.

use std::time::Duration;

use shared::tools::receipts::{PushedParams, Receipt, StatusParams};

use super::Hub;
use crate::tools::receipts::{message_pushed, message_status};

async fn status(hub: &Hub, id: u64) -> Receipt {
    let params = StatusParams {
        event_ids: vec![id],
    };
    let mut all = message_status(&hub.bus, &hub.caller, params)
        .await
        .expect("receipts");
    all.pop().expect("one receipt")
}

async fn pushed(hub: &Hub, to: &str, id: u64) -> u64 {
    let params = PushedParams {
        session_id: to.to_owned(),
        event_ids: vec![id],
    };
    message_pushed(&hub.bus, &hub.caller, params)
        .await
        .expect("reported")
        .marked
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
    let r = status(&hub, dm).await;
    assert_eq!(r.status.as_deref(), Some("stored"));

    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(pushed(&hub, &to, dm).await, 1);
    let r = status(&hub, dm).await;
    assert_eq!(r.status.as_deref(), Some("pushed"));
    let pushed_at = r.pushed_at.clone();
    assert_eq!(
        pushed_at,
        Some(Some("2026-01-01T00:00:01.000000Z".to_owned()))
    );

    tokio::time::advance(Duration::from_secs(1)).await;
    let page = hub.read_as(&to).await;
    assert!(page.events.iter().any(|e| e.event.id == dm));
    let r = status(&hub, dm).await;
    assert_eq!(r.status.as_deref(), Some("read"));
    assert_eq!(
        r.read_at,
        Some(Some("2026-01-01T00:00:02.000000Z".to_owned()))
    );

    // Reported again later: nothing moves back, no time changes.
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(pushed(&hub, &to, dm).await, 0);
    let again = status(&hub, dm).await;
    assert_eq!(again, r);
}
