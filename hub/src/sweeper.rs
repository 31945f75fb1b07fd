//! The sweeper: ends leased sessions whose lease lapsed (within about a
//! second of the deadline, from the lease index) and idle sessions without a
//! lease, each with a `session_unregistered` event. When the wall clock moved
//! much further than one tick (the process was stopped, the machine slept),
//! every lease gets a fresh term first, as after a restart: proxies could not
//! renew while the hub did not run. Every few seconds it applies retention
//! ([`crate::retention`]).

use std::sync::Arc;
use std::time::Duration;

use crate::sessions::{EndReason, end_sessions, fresh_terms, idle_sessions};
use crate::state::Bus;
use crate::store::Durability;

const LEASE_TICK: Duration = Duration::from_millis(250);
/// A gap between ticks longer than this is a stall, not a slow tick.
const STALL_GAP_MS: i64 = 3_000;
const IDLE_EVERY: Duration = Duration::from_secs(30);
const RETENTION_EVERY: Duration = Duration::from_secs(5);

/// Gives every leased session a full lease from now: after the hub was down,
/// its proxies get the time to renew before anything is swept.
pub async fn grace_after_restart(bus: &Bus) -> Result<(), crate::store::StoreError> {
    bus.store
        .write(Durability::Durable, |tx| {
            fresh_terms(tx, shared::time::now_ms()).map(drop)
        })
        .await
}

/// Runs until the hub shuts down.
pub async fn run(bus: Arc<Bus>) {
    let mut tick = tokio::time::interval(LEASE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let idle_every = IDLE_EVERY.min(Duration::from_millis(
        u64::try_from(bus.idle_timeout_ms / 2).unwrap_or(0).max(250),
    ));
    let mut last_idle_sweep = tokio::time::Instant::now();
    let mut last_retention = tokio::time::Instant::now() - RETENTION_EVERY;
    let mut last_tick_ms = shared::time::now_ms();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = bus.shutdown.cancelled() => return,
        }
        // Measured from the end of the last pass, so a slow pass is no stall.
        let gap_ms = shared::time::now_ms() - last_tick_ms;
        if gap_ms > STALL_GAP_MS {
            tracing::warn!(
                gap_ms,
                "the hub did not run for a while (stopped or asleep): every lease gets a fresh term"
            );
            if let Err(e) = grace_after_restart(&bus).await {
                // Sweeping now would end sessions whose proxies are alive:
                // the next tick tries again.
                tracing::error!(error = %e, "renewing leases after a stall failed");
                continue;
            }
        }
        if let Err(e) = sweep_leases(&bus).await {
            tracing::error!(error = %e, "lease sweep failed");
        }
        if last_retention.elapsed() >= RETENTION_EVERY {
            last_retention = tokio::time::Instant::now();
            if let Err(e) = crate::retention::apply(&bus).await {
                tracing::error!(error = %e, "retention sweep failed");
            }
        }
        if last_idle_sweep.elapsed() >= idle_every {
            last_idle_sweep = tokio::time::Instant::now();
            if let Err(e) = sweep_idle(&bus).await {
                tracing::error!(error = %e, "idle sweep failed");
            }
        }
        last_tick_ms = shared::time::now_ms();
    }
}

async fn sweep_leases(bus: &Bus) -> Result<(), crate::store::StoreError> {
    let now = shared::time::now_ms();
    let expired = bus.store.read(move |s| s.expired_leases(now)).await?;
    if !expired.is_empty() {
        end_sessions(bus, expired, EndReason::LeaseExpired).await?;
    }
    Ok(())
}

async fn sweep_idle(bus: &Bus) -> Result<(), crate::store::StoreError> {
    let idle = idle_sessions(bus, shared::time::now_ms(), bus.idle_timeout_ms).await?;
    if !idle.is_empty() {
        end_sessions(bus, idle, EndReason::Idle).await?;
    }
    Ok(())
}
