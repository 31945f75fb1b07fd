//! Webhook rows and the delivery outbox: what a publish enqueues, what an
//! attempt records, and the bounded delivery log.

use redb::{ReadableTable, WriteTransaction};

use super::read::{first_events, read_webhook, read_webhooks, retry_keys};
use super::tables::*;
use super::{
    AttemptRecord, AttemptResult, AttemptStatus, DueDelivery, EventRecord, NewEvent, Queued,
    Result, Tx, Verdict, WebhookRecord, delivery_id,
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
            .filter(|h| h.matches(event))
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
            .filter(|h| h.matches_system(&event))
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

    /// Records one attempt: its log row, the delivery's next step, and the
    /// webhook's health. A 410, or every attempt failing for
    /// `disable_after_ms`, disables the webhook and ends its other pending
    /// deliveries. An attempt whose webhook was deleted meanwhile leaves no trace.
    pub fn record_attempt(
        &mut self,
        due: &DueDelivery,
        result: AttemptResult,
        disable_after_ms: i64,
    ) -> Result<()> {
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
        let Some(mut hook) = self
            .cached_webhooks()?
            .iter()
            .find(|h| h.id == webhook_id)
            .cloned()
        else {
            return Ok(());
        };
        let at = result.at_ms;
        let mut changed = false;
        let mut disable = None;
        if result.verdict == Verdict::Delivered {
            changed = hook.failing_since.take().is_some();
        } else {
            if result.verdict == Verdict::Gone {
                disable = Some("the endpoint answered 410 Gone".to_owned());
            } else if hook.failing_too_long(at, disable_after_ms) {
                disable = Some(format!(
                    "every attempt failed for {} (since {})",
                    crate::config::format_span(disable_after_ms),
                    shared::time::format_ms(hook.failing_since.unwrap_or(at))
                ));
            }
            if hook.failing_since.is_none() {
                hook.failing_since = Some(at);
                changed = true;
            }
        }
        let disable = disable.filter(|_| hook.active);
        let (status, next_attempt_ms) = match result.verdict {
            Verdict::Delivered => (AttemptStatus::Delivered, None),
            Verdict::RetryAt(when) if hook.active && disable.is_none() => {
                self.txn.open_table(OUTBOX_RETRY)?.insert(
                    (webhook_id, u64::try_from(when).unwrap_or(0), event_id),
                    due.attempt,
                )?;
                (AttemptStatus::Retrying, Some(when))
            }
            _ => (AttemptStatus::Failed, None),
        };
        self.log_attempt(
            webhook_id,
            &AttemptRecord {
                event_id,
                delivery_id: delivery_id(event_id, webhook_id),
                attempt: due.attempt,
                status,
                at_ms: at,
                status_code: result.status_code,
                latency_ms: result.latency_ms,
                error: result.error,
                next_attempt_ms,
            },
        )?;
        if let Some(reason) = disable {
            tracing::warn!(webhook_id, reason = %reason, "webhook disabled");
            hook.active = false;
            hook.disabled_at = Some(at);
            let why = format!("webhook disabled: {reason}");
            hook.disabled_reason = Some(reason);
            self.put_webhook(&hook)?;
            self.end_pending_deliveries(webhook_id, &why, at)?;
        } else if changed {
            self.put_webhook(&hook)?;
        }
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
mod tests;
