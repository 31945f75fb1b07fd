//! The hub's one clock: what "now" is for leases, heartbeats, receipts,
//! claims, webhook attempts, event timestamps and the sweeper.
//!
//! It is the wall clock read once at start, carried forward by tokio's
//! monotonic clock. Invariants:
//! - It never goes back: a wall clock set back (an NTP correction) is not
//!   followed, so no deadline moves back and event timestamps rise with
//!   their ids; the hub's times then stay ahead of the wall clock by that
//!   much until it restarts.
//! - It moves with tokio's clock, so a test under `tokio::time::pause`
//!   moves the hub's "now" with `tokio::time::advance`.
//! - The monotonic clock does not count a machine's sleep (Linux's
//!   `CLOCK_MONOTONIC`), and the wall clock may be set forward: the
//!   sweeper calls [`Clock::catch_up`] on every tick, which jumps forward
//!   to the wall clock. The sweeper sees that jump as a stall (its ticks
//!   are measured on this clock) and gives every lease a fresh term
//!   before it sweeps, as after a process stop (`SIGSTOP`), which the
//!   monotonic clock does count.
//! - Read it on a runtime thread: off the runtime, tokio's `Instant` is the
//!   system's and a paused test clock is not seen. The store stamps each
//!   write with the time of the call ([`crate::store::Tx::now_ms`]), so
//!   code in the writer thread never reads a clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::time::Instant;

/// The hub's clock; clones share it (one per hub).
#[derive(Debug, Clone)]
pub struct Clock(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// When the clock started, on tokio's clock.
    origin: Instant,
    /// Epoch microseconds at `origin`; only [`Clock::catch_up`] moves it,
    /// and only forward.
    wall_at_origin_us: AtomicI64,
    /// Whether [`Clock::catch_up`] follows the wall clock (a test on paused
    /// time runs on tokio's clock alone).
    follows_wall: bool,
}

impl Clock {
    /// The hub's clock: the wall clock now, carried forward from here.
    pub fn system() -> Self {
        Self::new(shared::time::now_micros(), true)
    }

    /// A clock that reads `start_ms` now and moves only with tokio's clock,
    /// never looking at the wall clock: for tests under paused time.
    pub fn starting_at(start_ms: i64) -> Self {
        Self::new(start_ms.saturating_mul(1000), false)
    }

    fn new(wall_us: i64, follows_wall: bool) -> Self {
        Self(Arc::new(Inner {
            origin: Instant::now(),
            wall_at_origin_us: AtomicI64::new(wall_us),
            follows_wall,
        }))
    }

    /// Microseconds since the Unix epoch, as the hub reckons them.
    pub fn now_micros(&self) -> i64 {
        let elapsed = i64::try_from(self.0.origin.elapsed().as_micros()).unwrap_or(i64::MAX);
        self.0
            .wall_at_origin_us
            .load(Ordering::Acquire)
            .saturating_add(elapsed)
    }

    /// Milliseconds since the Unix epoch, as the hub reckons them.
    pub fn now_ms(&self) -> i64 {
        self.now_micros().div_euclid(1000)
    }

    /// Moves the clock forward to the wall clock when the wall clock is
    /// ahead (the machine slept, or the clock was set forward); returns
    /// how far it moved, in ms (0: it did not). A clock that does not
    /// follow the wall clock never moves.
    pub fn catch_up(&self) -> i64 {
        if !self.0.follows_wall {
            return 0;
        }
        self.catch_up_to(shared::time::now_micros())
    }

    /// [`Clock::catch_up`] to a wall clock reading `wall_us`.
    pub(crate) fn catch_up_to(&self, wall_us: i64) -> i64 {
        let behind_us = wall_us.saturating_sub(self.now_micros());
        if behind_us <= 0 {
            return 0;
        }
        self.0
            .wall_at_origin_us
            .fetch_add(behind_us, Ordering::AcqRel);
        behind_us.div_euclid(1000)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Clock;

    #[tokio::test(start_paused = true)]
    async fn it_moves_with_tokio_time_only() {
        let clock = Clock::starting_at(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        tokio::time::advance(Duration::from_millis(2_500)).await;
        assert_eq!(clock.now_ms(), 3_500);
        assert_eq!(clock.clone().now_micros(), 3_500_000, "clones share it");
        assert_eq!(clock.catch_up(), 0, "a test clock ignores the wall clock");
        assert_eq!(clock.now_ms(), 3_500);
    }

    #[tokio::test(start_paused = true)]
    async fn it_catches_up_with_the_wall_clock_forward_only() {
        let clock = Clock::starting_at(10_000);
        assert_eq!(clock.catch_up_to(4_000_000), 0, "a wall clock set back");
        assert_eq!(clock.now_ms(), 10_000, "is not followed");
        assert_eq!(clock.catch_up_to(70_000_000), 60_000, "a sleep of a minute");
        assert_eq!(clock.now_ms(), 70_000);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(clock.now_ms(), 71_000, "and it carries on from there");
    }

    #[test]
    fn the_system_clock_starts_at_the_wall_clock() {
        let before = shared::time::now_ms();
        let now = Clock::system().now_ms();
        assert!(now >= before && now <= shared::time::now_ms());
    }
}
