//! The idle rule: a session without a lease that does nothing for a day
//! (`--idle-timeout-secs`) is ended by the sweeper, with a
//! `session_unregistered` event that says so; any call acting as it is
//! activity. Time jumps here (the sweeper takes each jump for a stall,
//! which only gives leases a fresh term).

use std::time::Duration;

use super::Hub;
use crate::sweeper::Sweeper;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3_600);

/// `span` later, in one jump, a sweeper pass.
async fn later(sweeper: &mut Sweeper, span: Duration) {
    tokio::time::advance(span).await;
    sweeper.pass().await;
}

#[tokio::test(start_paused = true)]
async fn a_session_without_a_lease_idle_for_a_day_is_ended() {
    let hub = Hub::start();
    assert_eq!(hub.bus.idle_timeout_ms, 86_400_000, "the default: a day");
    let mut sweeper = hub.sweeper();
    let quiet = hub.register("quiet", None).await.session_id;
    let busy = hub.register("busy", None).await.session_id;
    later(&mut sweeper, 12 * HOUR).await;
    hub.publish(&busy, "all", "working").await;

    later(&mut sweeper, 11 * HOUR + 59 * MINUTE).await;
    assert!(!hub.ended(&quiet).await, "a minute short of a day");
    later(&mut sweeper, MINUTE).await;
    assert!(hub.ended(&quiet).await, "a day idle");
    assert!(!hub.ended(&busy).await, "active half a day ago");
    let said = hub.said("session_unregistered", &quiet).await;
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].ends_with(" (idle timeout)"), "{said:?}");

    later(&mut sweeper, 12 * HOUR).await;
    assert!(hub.ended(&busy).await, "a day after its publish");
}
