//! Claims end with their session, however it ends: unregistered, its lease
//! lapsed, or idle for a day. Each release is announced with why, and the
//! resource is free for the next session.

use std::time::Duration;

use shared::tools::Refusal;
use shared::tools::claims::{ClaimParams, ClaimReply};

use super::Hub;
use crate::tools::Failure;

const RESOURCE: &str = "file:r/src/x.rs";

/// Claims [`RESOURCE`] for session `id`.
async fn claim(hub: &Hub, id: &str) -> Result<ClaimReply, Failure> {
    let params = ClaimParams {
        resource: RESOURCE.to_owned(),
        session_id: id.to_owned(),
        exclusive: true,
        note: None,
        release: false,
    };
    crate::tools::claims::claim(&hub.bus, &hub.caller, params).await
}

/// A hub where `holder` (with a lease when given) holds [`RESOURCE`], and
/// `next` is refused it.
async fn held(lease_seconds: Option<i64>) -> (Hub, String, String) {
    let hub = Hub::start();
    let holder = hub.register("holder", lease_seconds).await.session_id;
    let next = hub.register("next", None).await.session_id;
    let granted = claim(&hub, &holder).await.expect("granted");
    assert!(matches!(
        granted,
        ClaimReply::Held {
            already_held: false,
            ..
        }
    ));
    assert!(matches!(
        claim(&hub, &next).await,
        Err(Failure::Refused(Refusal::Claimed { .. }))
    ));
    (hub, holder, next)
}

/// The claim is gone, its release said `why`, and `next` gets it.
async fn released(hub: &Hub, holder: &str, next: &str, why: &str) {
    assert!(hub.ended(holder).await);
    let left = hub.bus.store.read(|s| s.claims("", usize::MAX)).await;
    assert!(left.expect("a read").is_empty());
    assert_eq!(
        hub.said("claim_released", holder).await,
        [format!("holder released {RESOURCE} ({why})")]
    );
    let granted = claim(hub, next).await.expect("free again");
    assert!(matches!(
        granted,
        ClaimReply::Held {
            already_held: false,
            ..
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn a_claim_ends_when_its_session_unregisters() {
    let (hub, holder, next) = held(None).await;
    hub.unregister(&holder).await;
    released(&hub, &holder, &next, "session ended").await;
}

#[tokio::test(start_paused = true)]
async fn a_claim_ends_when_its_sessions_lease_lapses() {
    let (hub, holder, next) = held(Some(5)).await;
    let mut sweeper = hub.sweeper();
    hub.sweep_until_ended(&mut sweeper, &holder, Duration::from_secs(10))
        .await;
    released(&hub, &holder, &next, "lease lapsed").await;
}

#[tokio::test(start_paused = true)]
async fn a_claim_ends_when_its_session_idles_out() {
    let (hub, holder, next) = held(None).await;
    let mut sweeper = hub.sweeper();
    // `next` stays active; the holder does nothing for a day.
    tokio::time::advance(Duration::from_secs(86_000)).await;
    hub.read_as(&next).await;
    tokio::time::advance(Duration::from_secs(400)).await;
    sweeper.pass().await;
    released(&hub, &holder, &next, "idle timeout").await;
}
