//! Leases: any call acting as a session renews its lease; one left alone
//! lapses within about a second of its deadline (the sweeper's tick), with
//! a `session_unregistered` event that says so; after a stall, a sleep or
//! a restart, every lease gets a fresh term before anything is swept.

use std::time::Duration;

use super::{Hub, START_MS};

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn a_lease_left_alone_lapses_within_a_second_of_its_deadline() {
    let hub = Hub::start();
    let mut sweeper = hub.sweeper();
    let id = hub.register("brief", Some(5)).await.session_id;
    let at = hub.sweep_until_ended(&mut sweeper, &id, 10 * SECOND).await;
    assert!(
        (5_000..6_000).contains(&at),
        "ended {at} ms after it registered"
    );
    assert_eq!(hub.session(&id).await.deleted_at, Some(START_MS + at));
    let said = hub.said("session_unregistered", &id).await;
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].starts_with("brief ended on ") && said[0].ends_with(" (lease expired)"));
}

#[tokio::test(start_paused = true)]
async fn any_call_acting_as_a_session_renews_its_lease() {
    let hub = Hub::start();
    let mut sweeper = hub.sweeper();
    let id = hub.register("kept", Some(2)).await.session_id;
    // Three terms, renewed each second by its proxy registering again, a
    // read, a publish.
    for round in 0..6 {
        hub.sweep_for(&mut sweeper, SECOND).await;
        match round % 3 {
            0 => assert!(hub.register("kept", None).await.resumed),
            1 => drop(hub.read_as(&id).await),
            _ => drop(hub.publish(&id, "all", "still here").await),
        }
        assert!(!hub.ended(&id).await, "ended at {} ms", hub.elapsed_ms());
    }
    // Left alone, it lapses a term after its last renewal.
    let renewed = hub.session(&id).await.last_heartbeat - START_MS;
    assert_eq!(renewed, 6_000);
    let at = hub.sweep_until_ended(&mut sweeper, &id, 5 * SECOND).await;
    assert!((8_000..9_000).contains(&at), "ended at {at} ms");
}

/// A stopped process (`SIGSTOP`, a closed lid) runs on where it stopped;
/// its clock counted the stop, so the sweeper's next pass sees the gap and
/// gives every lease a fresh term first. A session whose proxy is gone
/// still ends a term later; one whose proxy renews stays.
#[tokio::test(start_paused = true)]
async fn after_a_stall_every_lease_gets_a_fresh_term_and_dead_ones_still_end() {
    let hub = Hub::start();
    let mut sweeper = hub.sweeper();
    let alive = hub.register("alive", Some(2)).await.session_id;
    let dead = hub.register("dead", Some(2)).await.session_id;
    hub.sweep_for(&mut sweeper, SECOND).await;

    // Stopped for three times the lease: the next tick comes 6 s later.
    tokio::time::advance(6 * SECOND).await;
    sweeper.pass().await;
    let woke = hub.elapsed_ms();
    for id in [&alive, &dead] {
        let s = hub.session(id).await;
        assert!(!s.is_deleted(), "{} ended by the stall", s.name);
        assert_eq!(s.lease_deadline, Some(START_MS + woke + 2_000));
    }

    // The live proxy renews each second; the dead one's fresh term lapses.
    for _ in 0..4 {
        hub.read_as(&alive).await;
        hub.sweep_for(&mut sweeper, SECOND).await;
    }
    let ended = hub.session(&dead).await.deleted_at.expect("dead ended") - START_MS;
    assert!((woke + 2_000..woke + 3_000).contains(&ended), "{ended}");
    assert!(!hub.ended(&alive).await);
    assert!(hub.said("session_unregistered", &alive).await.is_empty());
}

/// A machine that slept: the monotonic clock did not count the sleep, so
/// the hub's clock catches up with the wall clock in one jump, which the
/// sweeper takes for the stall it is.
#[tokio::test(start_paused = true)]
async fn a_sleep_the_clock_catches_up_with_is_a_stall_too() {
    let hub = Hub::start();
    let mut sweeper = hub.sweeper();
    let id = hub.register("lid", Some(2)).await.session_id;
    hub.sweep_for(&mut sweeper, SECOND).await;
    let clock = &hub.bus.clock;
    assert_eq!(
        clock.catch_up_to(clock.now_micros() + 3_600_000_000),
        3_600_000
    );
    tokio::time::advance(Duration::from_millis(250)).await;
    sweeper.pass().await;
    let s = hub.session(&id).await;
    assert!(!s.is_deleted(), "ended by the sleep");
    assert_eq!(s.lease_deadline, Some(clock.now_ms() + 2_000));
}

/// A hub down for longer than a lease gives every lease a fresh term as it
/// starts, and the proxy's renewals carry on from there.
#[tokio::test(start_paused = true)]
async fn a_lease_that_lapsed_while_the_hub_was_down_gets_a_fresh_term() {
    let hub = Hub::start();
    let id = hub.register("patient", Some(3)).await.session_id;
    let hub = hub.restart(5 * SECOND).await;
    let up = hub.elapsed_ms();
    assert_eq!(up, 5_000);
    assert_eq!(
        hub.session(&id).await.lease_deadline,
        Some(START_MS + up + 3_000)
    );
    let mut sweeper = hub.sweeper();
    for _ in 0..3 {
        hub.sweep_for(&mut sweeper, 2 * SECOND).await;
        let again = hub.register("patient", None).await;
        assert_eq!(
            (again.session_id.as_str(), again.resumed),
            (id.as_str(), true)
        );
    }
    assert!(!hub.ended(&id).await);
    let at = hub.sweep_until_ended(&mut sweeper, &id, 5 * SECOND).await;
    assert!((up + 9_000..up + 10_000).contains(&at), "{at}");
}
