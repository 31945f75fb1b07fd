//! Webhook rows and the delivery outbox: what a publish enqueues, what an
//! attempt records, and the bounded delivery log.

use redb::{ReadableTable, WriteTransaction};

use super::read::{first_events, read_webhook, read_webhooks, retry_keys};
use super::tables::{
    Counter, DELIVERY_LOG, DELIVERY_LOG_LEN, OUTBOX, OUTBOX_RETRY, WEBHOOKS, encode, pack_ids,
    packed_contains, unpack_ids,
};
use super::{
    AttemptRecord, AttemptStatus, DueDelivery, EventRecord, NewEvent, Queued, Result, Tx,
    WebhookRecord, delivery_id,
};

/// Delivery-log rows kept per webhook; older ones are dropped.
pub const DELIVERY_LOG_KEEP: u64 = 1000;

impl Tx<'_> {
    pub fn webhooks(&self) -> Result<Vec<WebhookRecord>> {
        read_webhooks(&self.txn.open_table(WEBHOOKS)?)
    }

    /// The webhooks as of now, decoded once per batch (a publish matches
    /// every event against them).
    fn cached_webhooks(&mut self) -> Result<&[WebhookRecord]> {
        if self.hooks.is_none() {
            self.hooks = Some(self.webhooks()?);
        }
        Ok(self.hooks.as_deref().unwrap_or_default())
    }

    pub fn webhook(&self, id: u64) -> Result<Option<WebhookRecord>> {
        read_webhook(&self.txn.open_table(WEBHOOKS)?, id)
    }

    /// How many webhooks are registered, active or not.
    pub fn webhook_count(&self) -> Result<u64> {
        use redb::ReadableTableMetadata;
        Ok(self.txn.open_table(WEBHOOKS)?.len()?)
    }

    /// Assigns the next webhook id.
    pub fn next_webhook_id(&mut self) -> Result<u64> {
        let id = self.counter(Counter::Webhook)?;
        self.bump_counter(Counter::Webhook, id)?;
        Ok(id)
    }

    /// Inserts or replaces a webhook under its id, and moves the webhook
    /// counter past it: the one place a webhook is written.
    pub fn put_webhook(&mut self, record: &WebhookRecord) -> Result<()> {
        self.hooks = None;
        let bytes = encode(record)?;
        self.txn
            .open_table(WEBHOOKS)?
            .insert(record.id, bytes.as_slice())?;
        self.bump_counter(Counter::Webhook, record.id)
    }

    /// Deletes a webhook with its pending deliveries and its delivery log.
    pub fn delete_webhook(&mut self, id: u64) -> Result<bool> {
        self.hooks = None;
        let txn = self.txn;
        let existed = txn.open_table(WEBHOOKS)?.remove(id)?.is_some();
        drop_first_attempts(txn, id)?;
        let mut retry = txn.open_table(OUTBOX_RETRY)?;
        for (key, _) in retry_keys(&retry, id)? {
            retry.remove(key)?;
        }
        let mut log = txn.open_table(DELIVERY_LOG)?;
        let seqs: Vec<u64> = log
            .range((id, 0)..=(id, u64::MAX))?
            .map(|item| item.map(|(k, _)| k.value().1))
            .collect::<std::result::Result<_, _>>()?;
        for seq in seqs {
            log.remove((id, seq))?;
        }
        txn.open_table(DELIVERY_LOG_LEN)?.remove(id)?;
        Ok(existed)
    }

    /// Puts a published event in the first-attempt queue of every webhook
    /// it matches; returns how many. The delivery worker is woken once this
    /// batch commits.
    pub fn enqueue_deliveries(&mut self, event: &EventRecord) -> Result<usize> {
        let hooks: Vec<u64> = self
            .cached_webhooks()?
            .iter()
            .filter(|h| crate::webhooks::takes(h, event))
            .map(|h| h.id)
            .collect();
        self.queue_first_attempts(event.id, &hooks)?;
        Ok(hooks.len())
    }

    /// Appends a session lifecycle event and enqueues it for the webhooks
    /// that opted in to those (`include_system`).
    pub fn append_system_event(&mut self, new: NewEvent) -> Result<EventRecord> {
        let event = self.append_event(new)?;
        let hooks: Vec<u64> = self
            .cached_webhooks()?
            .iter()
            .filter(|h| crate::webhooks::takes_system(h, &event))
            .map(|h| h.id)
            .collect();
        self.queue_first_attempts(event.id, &hooks)?;
        Ok(event)
    }

    fn queue_first_attempts(&mut self, event_id: u64, webhook_ids: &[u64]) -> Result<()> {
        if webhook_ids.is_empty() {
            return Ok(());
        }
        let mut outbox = self.txn.open_table(OUTBOX)?;
        let mut ids = match outbox.get(event_id)? {
            Some(v) => unpack_ids(v.value()),
            None => Vec::new(),
        };
        for id in webhook_ids {
            if !ids.contains(id) {
                ids.push(*id);
            }
        }
        outbox.insert(event_id, pack_ids(&ids).as_slice())?;
        self.enqueued = true;
        Ok(())
    }

    /// Queues one event for one webhook again: a retry due now with no
    /// attempts made, replacing a pending retry of it (a first attempt
    /// still waiting is left as it is).
    pub fn redeliver(&mut self, webhook_id: u64, event_id: u64, now_ms: i64) -> Result<()> {
        let waiting = match self.txn.open_table(OUTBOX)?.get(event_id)? {
            Some(v) => packed_contains(v.value(), webhook_id),
            None => false,
        };
        if waiting {
            return Ok(());
        }
        let mut retry = self.txn.open_table(OUTBOX_RETRY)?;
        for (key, _) in retry_keys(&retry, webhook_id)? {
            if key.2 == event_id {
                retry.remove(key)?;
            }
        }
        retry.insert(
            (webhook_id, u64::try_from(now_ms).unwrap_or(0), event_id),
            0,
        )?;
        self.enqueued = true;
        Ok(())
    }

    /// The webhook `id` as of this batch (decoded once per batch).
    pub fn cached_webhook(&mut self, id: u64) -> Result<Option<WebhookRecord>> {
        Ok(self.cached_webhooks()?.iter().find(|h| h.id == id).cloned())
    }

    /// Takes a delivery out of the queue it waited in (its first-attempt
    /// row, or its retry key), for an attempt that finished.
    pub fn take_delivery(&mut self, due: &DueDelivery) -> Result<()> {
        let (webhook_id, event_id) = (due.webhook_id, due.event_id);
        match due.queued {
            Queued::First => {
                let mut outbox = self.txn.open_table(OUTBOX)?;
                let rest = match outbox.get(event_id)? {
                    Some(v) => {
                        let mut ids = unpack_ids(v.value());
                        ids.retain(|id| *id != webhook_id);
                        Some(ids)
                    }
                    None => None,
                };
                match rest {
                    Some(ids) if ids.is_empty() => {
                        outbox.remove(event_id)?;
                    }
                    Some(ids) => {
                        outbox.insert(event_id, pack_ids(&ids).as_slice())?;
                    }
                    None => {}
                }
            }
            Queued::Retry { due_ms } => {
                self.txn
                    .open_table(OUTBOX_RETRY)?
                    .remove((webhook_id, due_ms, event_id))?;
            }
        }
        Ok(())
    }

    /// Queues the next attempt of a delivery at `when_ms`, `due.attempt`
    /// attempts made.
    pub fn queue_retry(&mut self, due: &DueDelivery, when_ms: i64) -> Result<()> {
        self.txn.open_table(OUTBOX_RETRY)?.insert(
            (
                due.webhook_id,
                u64::try_from(when_ms).unwrap_or(0),
                due.event_id,
            ),
            due.attempt,
        )?;
        Ok(())
    }

    /// Ends every pending delivery to `webhook_id` as failed, with `why` in
    /// its log row (attempt = attempts made); returns how many ended.
    pub fn end_pending_deliveries(
        &mut self,
        webhook_id: u64,
        why: &str,
        now_ms: i64,
    ) -> Result<usize> {
        let txn = self.txn;
        let mut ended: Vec<(u64, u32)> = Vec::new();
        {
            for event_id in drop_first_attempts(txn, webhook_id)? {
                ended.push((event_id, 0));
            }
            let mut retry = txn.open_table(OUTBOX_RETRY)?;
            for (key, attempts) in retry_keys(&retry, webhook_id)? {
                retry.remove(key)?;
                ended.push((key.2, attempts));
            }
        }
        ended.sort_unstable();
        for &(event_id, attempts) in &ended {
            self.log_attempt(
                webhook_id,
                &AttemptRecord {
                    event_id,
                    delivery_id: delivery_id(event_id, webhook_id),
                    attempt: attempts,
                    status: AttemptStatus::Failed,
                    at_ms: now_ms,
                    status_code: None,
                    latency_ms: None,
                    error: Some(why.to_owned()),
                    next_attempt_ms: None,
                },
            )?;
        }
        Ok(ended.len())
    }

    /// Appends a delivery-log row, dropping the webhook's oldest beyond
    /// [`DELIVERY_LOG_KEEP`].
    pub fn log_attempt(&mut self, webhook_id: u64, record: &AttemptRecord) -> Result<()> {
        let seq = {
            let mut meta = self.meta()?;
            let seq = meta.get("next_delivery_log_id")?.map_or(1, |v| v.value());
            meta.insert("next_delivery_log_id", seq + 1)?;
            seq
        };
        let bytes = encode(record)?;
        let mut log = self.txn.open_table(DELIVERY_LOG)?;
        log.insert((webhook_id, seq), bytes.as_slice())?;
        let mut lens = self.txn.open_table(DELIVERY_LOG_LEN)?;
        let mut len = lens.get(webhook_id)?.map_or(0, |v| v.value()) + 1;
        if len > DELIVERY_LOG_KEEP {
            let oldest = log
                .range((webhook_id, 0)..=(webhook_id, u64::MAX))?
                .next()
                .transpose()?
                .map(|(k, _)| k.value());
            if let Some(key) = oldest {
                log.remove(key)?;
                len -= 1;
            }
        }
        lens.insert(webhook_id, len)?;
        Ok(())
    }
}

/// Takes `webhook_id` out of every outbox row; returns the events it was
/// waiting in. Scans the whole outbox: for the rare pause, disable, delete.
fn drop_first_attempts(txn: &WriteTransaction, webhook_id: u64) -> Result<Vec<u64>> {
    let mut outbox = txn.open_table(OUTBOX)?;
    let events = first_events(&outbox, webhook_id)?;
    for &event_id in &events {
        let rest: Vec<u64> = match outbox.get(event_id)? {
            Some(v) => unpack_ids(v.value())
                .into_iter()
                .filter(|id| *id != webhook_id)
                .collect(),
            None => continue,
        };
        if rest.is_empty() {
            outbox.remove(event_id)?;
        } else {
            outbox.insert(event_id, pack_ids(&rest).as_slice())?;
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use super::*;
    use crate::store::testing::*;
    use crate::store::{AttemptResult, Verdict};

    #[tokio::test]
    async fn first_attempts_go_in_event_order_and_a_retry_waits_on_its_own() {
        let (_dir, store) = outbox_with(5).await;
        // The enqueueing commit woke the worker's signal.
        tokio::time::timeout(Duration::from_secs(5), store.outbox_signal().notified())
            .await
            .expect("the outbox signal fired");
        let none = HashSet::new();
        let (firsts, from) = store
            .read(move |s| s.first_deliveries(1, 0, 3, &HashSet::from([1])))
            .await
            .unwrap();
        assert_eq!(firsts, [2, 3, 4], "in flight ones are passed over");
        assert_eq!(from, 1, "the next scan starts at the oldest still waiting");

        let t0: i64 = 1_000_000;
        let now = u64::try_from(t0).unwrap();
        record(
            &store,
            first(2),
            failed_at(t0, Verdict::RetryAt(t0 + 5000)),
            DAY,
        )
        .await;
        let (firsts, due_now, next, due_later, pending) = store
            .read(move |s| {
                Ok((
                    s.first_deliveries(1, 0, 10, &none)?.0,
                    s.due_retries(1, now, 10, &none)?,
                    s.next_retry(1, now)?,
                    s.due_retries(1, now + 5000, 10, &none)?,
                    s.pending_deliveries(1)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(
            firsts,
            [1, 3, 4, 5],
            "the failed one no longer holds a place"
        );
        assert!(due_now.is_empty());
        assert_eq!(next, Some(now + 5000));
        assert_eq!(due_later, [(now + 5000, 2, 1)]);
        assert_eq!(pending, 5);

        let retry = DueDelivery {
            webhook_id: 1,
            event_id: 2,
            queued: Queued::Retry { due_ms: now + 5000 },
            attempt: 2,
        };
        let ok = AttemptResult {
            at_ms: t0 + 5001,
            status_code: Some(200),
            latency_ms: Some(1),
            error: None,
            verdict: Verdict::Delivered,
        };
        record(&store, retry, ok, DAY).await;
        let (log, hook, pending) = store
            .read(|s| {
                Ok((
                    s.delivery_log(1, 10, Some(2))?,
                    s.webhook(1)?,
                    s.pending_deliveries(1)?,
                ))
            })
            .await
            .unwrap();
        let states: Vec<(u32, AttemptStatus)> = log.iter().map(|r| (r.attempt, r.status)).collect();
        assert_eq!(
            states,
            [(2, AttemptStatus::Delivered), (1, AttemptStatus::Retrying)],
            "newest first"
        );
        assert_eq!(log[1].next_attempt_ms, Some(t0 + 5000));
        assert_eq!(log[0].delivery_id, "evt_2_wh_1");
        assert_eq!(
            hook.unwrap().failing_since,
            None,
            "a success ends the streak"
        );
        assert_eq!(pending, 4);
    }

    #[tokio::test]
    async fn each_webhook_scans_from_its_own_oldest_waiting_row() {
        let (_dir, store) = store_with(0).await;
        store
            .write(Durability::Durable, |t| {
                t.put_webhook(&hook(1))?;
                t.put_webhook(&WebhookRecord {
                    channel: Some("repo:".into()),
                    ..hook(2)
                })?;
                for channel in ["all", "all", "repo:x", "all", "repo:y"] {
                    let e = t.append_event(new_event(channel))?;
                    t.enqueue_deliveries(&e)?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let none = HashSet::new();
        let (firsts, from) = store
            .read(move |s| s.first_deliveries(2, 0, 10, &none))
            .await
            .unwrap();
        assert_eq!((firsts, from), (vec![3, 5], 3));
        // Once webhook 2 has both, its next scan starts past every row.
        for event_id in [3, 5] {
            let due = DueDelivery {
                webhook_id: 2,
                ..first(event_id)
            };
            let ok = AttemptResult {
                at_ms: 1,
                status_code: Some(204),
                latency_ms: Some(1),
                error: None,
                verdict: Verdict::Delivered,
            };
            record(&store, due, ok, DAY).await;
        }
        let none = HashSet::new();
        let (again, from, one) = store
            .read(move |s| {
                let (again, from) = s.first_deliveries(2, 3, 10, &none)?;
                Ok((again, from, s.first_deliveries(1, 0, 10, &none)?.0))
            })
            .await
            .unwrap();
        assert!(again.is_empty());
        assert_eq!(from, 6);
        assert_eq!(one, [1, 2, 3, 4, 5], "webhook 1 still has all five");
        // A redelivery is a retry due at once with no attempts made.
        store
            .write(Durability::Durable, |t| t.redeliver(2, 3, 50))
            .await
            .unwrap();
        let none = HashSet::new();
        let due = store
            .read(move |s| s.due_retries(2, 50, 10, &none))
            .await
            .unwrap();
        assert_eq!(due, [(50, 3, 0)]);
    }

    #[tokio::test]
    async fn the_log_keeps_the_newest_rows() {
        let (_dir, store) = outbox_with(0).await;
        store
            .write(Durability::Lazy, |t| {
                for i in 0..(DELIVERY_LOG_KEEP + 5) {
                    t.log_attempt(
                        1,
                        &AttemptRecord {
                            event_id: i + 1,
                            delivery_id: delivery_id(i + 1, 1),
                            attempt: 1,
                            status: AttemptStatus::Delivered,
                            at_ms: 0,
                            status_code: Some(200),
                            latency_ms: Some(1),
                            error: None,
                            next_attempt_ms: None,
                        },
                    )?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let log = store.read(|s| s.delivery_log(1, 5000, None)).await.unwrap();
        assert_eq!(log.len() as u64, DELIVERY_LOG_KEEP);
        assert_eq!(log[0].event_id, DELIVERY_LOG_KEEP + 5);
        assert_eq!(log.last().unwrap().event_id, 6);
    }
}
