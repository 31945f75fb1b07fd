//! Retention (`--retain-days`, `--retain-events`): which events go, and
//! pruning them in small batches. An event goes with every row kept for it
//! (its index entries, index keys no event is left under, a direct
//! message's index row and receipt; see `Tx::prune_events`), so a hub under
//! a rolling window stops growing. Webhook deliveries of a pruned event
//! still waiting end at their next attempt as failed, with the reason in
//! the delivery log (itself capped per webhook).

use crate::state::Bus;
use crate::store::{Durability, StoreError};

/// Events deleted per transaction, so a large prune never stalls publishes.
const PRUNE_BATCH: usize = 10_000;

/// Deletes events beyond the configured retention, in small batches.
pub async fn apply(bus: &Bus) -> Result<(), StoreError> {
    let retention = bus.retention;
    if retention.days.is_none() && retention.events.is_none() {
        return Ok(());
    }
    let cutoff_us = retention.days.map(|d| {
        let keep_ms = i64::try_from(d.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
        shared::time::now_ms()
            .saturating_sub(keep_ms)
            .saturating_mul(1000)
    });
    let (tip, by_age) = bus
        .store
        .read(move |s| {
            let by_age = match cutoff_us {
                Some(c) => s.last_event_before(c)?,
                None => None,
            };
            Ok((s.tip()?, by_age))
        })
        .await?;
    let by_count = retention.events.map(|keep| tip.saturating_sub(keep));
    let through = by_age.into_iter().chain(by_count).max().unwrap_or(0);
    if through == 0 {
        return Ok(());
    }
    loop {
        let removed = bus
            .store
            .write(Durability::Lazy, move |tx| {
                tx.prune_events(through, PRUNE_BATCH)
            })
            .await?;
        if removed > 0 {
            tracing::info!(removed, through, "retention: deleted old events");
        }
        if removed < PRUNE_BATCH || bus.shutdown.is_cancelled() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests;
