//! The outbox worker: one task that scans the outbox, starts the attempts
//! [`plan`](super::plan) picks as tasks, and records their outcomes in
//! batches.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::Inner;
use super::plan::{self, Found};
use super::schedule::retry_delay;
use super::send::{Outcome, Sent, encode_body, send};
use crate::clock::Clock;
use crate::store::{AttemptResult, DueDelivery, Durability, Store, Verdict, WebhookRecord};

/// The worker rescans at least this often, whatever it expects.
const RESCAN_MAX: Duration = Duration::from_secs(60);

/// An attempt about to start: the delivery, its webhook and the body (none
/// when the event is no longer stored).
struct Job {
    due: DueDelivery,
    hook: Arc<WebhookRecord>,
    body: Option<Bytes>,
}

/// What one scan of the outbox yields.
struct Scan {
    jobs: Vec<Job>,
    /// When the earliest retry not started falls due (ms).
    wake_at: Option<u64>,
    /// Per webhook, where its next scan for first attempts may start.
    heads: HashMap<u64, u64>,
}

/// The outbox worker: one task that scans, starts attempts as tasks, and
/// records their outcomes in batches.
pub(super) struct Worker {
    inner: Arc<Inner>,
    store: Store,
    /// Per webhook, the events with an attempt in flight (not yet recorded).
    inflight: HashMap<u64, HashSet<u64>>,
    done_tx: mpsc::UnboundedSender<(DueDelivery, AttemptResult)>,
    done_rx: mpsc::UnboundedReceiver<(DueDelivery, AttemptResult)>,
    /// Scans so far: its parity splits an odd free slot between retries
    /// and first attempts in turn.
    scans: u64,
    /// Per webhook, the outbox row its first attempts start from: every
    /// older row holds none for it (rows only gain webhooks when appended).
    heads: HashMap<u64, u64>,
}

impl Worker {
    pub(super) fn new(inner: Arc<Inner>, store: Store) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Self {
            inner,
            store,
            inflight: HashMap::new(),
            done_tx,
            done_rx,
            scans: 0,
            heads: HashMap::new(),
        }
    }

    pub(super) async fn run(mut self) {
        let wake = self.store.outbox_signal();
        let stop = self.inner.stop.clone();
        let abandon = self.inner.abandon.clone();
        let mut scan = true;
        let mut stopping = false;
        let mut next_due: Option<u64> = None;
        loop {
            if scan && !stopping {
                scan = false;
                next_due = match self.scan().await {
                    Ok(next) => next,
                    Err(e) => {
                        tracing::error!(error = %e, "scanning the webhook outbox failed");
                        Some(now_ms_u64(self.store.clock()).saturating_add(1000))
                    }
                };
            }
            if stopping && self.inflight.is_empty() {
                return;
            }
            let wait = next_due.map_or(RESCAN_MAX, |due| {
                Duration::from_millis(due.saturating_sub(now_ms_u64(self.store.clock())))
                    .min(RESCAN_MAX)
            });
            tokio::select! {
                () = wake.notified(), if !stopping => scan = true,
                Some(first) = self.done_rx.recv() => {
                    let mut batch = vec![first];
                    while let Ok(more) = self.done_rx.try_recv() {
                        batch.push(more);
                    }
                    self.record(batch).await;
                    scan = true;
                }
                () = tokio::time::sleep(wait), if !stopping => scan = true,
                () = stop.cancelled(), if !stopping => stopping = true,
                () = abandon.cancelled() => return,
            }
        }
    }

    /// Reads what is due and starts those attempts; returns when the next
    /// retry falls due.
    async fn scan(&mut self) -> crate::store::Result<Option<u64>> {
        self.scans += 1;
        let concurrency = self.inner.config.concurrency;
        let inflight = self.inflight.clone();
        let mut heads = std::mem::take(&mut self.heads);
        let odd_turn = self.scans % 2 == 1;
        let now = now_ms_u64(self.store.clock());
        let scan = self
            .store
            .read(move |snap| {
                let empty = HashSet::new();
                let hooks: Vec<WebhookRecord> = snap.webhooks()?;
                heads.retain(|id, _| hooks.iter().any(|h| h.id == *id));
                let mut found = Vec::new();
                for hook in hooks.into_iter().filter(|h| h.active) {
                    let skip = inflight.get(&hook.id).unwrap_or(&empty);
                    let free = plan::free_slots(concurrency, skip.len());
                    if free == 0 {
                        continue;
                    }
                    let retries = snap.due_retries(hook.id, now, free, skip)?;
                    let from = heads.get(&hook.id).copied().unwrap_or(0);
                    let (firsts, next_from) = snap.first_deliveries(hook.id, from, free, skip)?;
                    heads.insert(hook.id, next_from);
                    // The plan starts fewer than `free` only when these
                    // two together are fewer: only then is the wake time read.
                    let next_retry = if retries.len() + firsts.len() < free {
                        snap.next_retry(hook.id, now)?
                    } else {
                        None
                    };
                    found.push(Found {
                        webhook_id: hook.id,
                        hook: Arc::new(hook),
                        in_flight: skip.len(),
                        retries,
                        firsts,
                        next_retry,
                    });
                }
                let plan = plan::plan(&found, concurrency, odd_turn);
                let mut bodies: HashMap<u64, Option<Bytes>> = HashMap::new();
                let mut jobs = Vec::with_capacity(plan.start.len());
                for (due, hook) in plan.start {
                    let body = if let Some(body) = bodies.get(&due.event_id) {
                        body.clone()
                    } else {
                        let body = match snap.event(due.event_id)? {
                            Some(e) => Some(Bytes::from(encode_body(&e)?)),
                            None => None,
                        };
                        bodies.insert(due.event_id, body.clone());
                        body
                    };
                    jobs.push(Job { due, hook, body });
                }
                Ok(Scan {
                    jobs,
                    wake_at: plan.wake_at,
                    heads,
                })
            })
            .await?;
        self.heads = scan.heads;
        for job in scan.jobs {
            self.launch(job);
        }
        Ok(scan.wake_at)
    }

    fn launch(&mut self, job: Job) {
        self.inflight
            .entry(job.due.webhook_id)
            .or_default()
            .insert(job.due.event_id);
        let inner = self.inner.clone();
        let done = self.done_tx.clone();
        let clock = self.store.clock().clone();
        tokio::spawn(async move {
            let Job { due, hook, body } = job;
            let at_ms = clock.now_ms();
            let sent = match body {
                Some(body) => {
                    let id = crate::store::delivery_id(due.event_id, due.webhook_id);
                    send(&inner, &hook, &id, body, inner.config.timeout).await
                }
                None => Sent::failed("the event is no longer stored (retention)".to_owned()),
            };
            let verdict = match sent.outcome {
                Outcome::Delivered => Verdict::Delivered,
                Outcome::Gone => Verdict::Gone,
                Outcome::Permanent => Verdict::Failed,
                Outcome::Retry(retry_after) => match retry_delay(
                    due.attempt,
                    &inner.config.retry_delays,
                    rand::random::<f64>(),
                    retry_after,
                ) {
                    Some(wait) => Verdict::RetryAt(
                        clock
                            .now_ms()
                            .saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)),
                    ),
                    None => Verdict::Failed,
                },
            };
            if verdict == Verdict::Delivered {
                tracing::debug!(
                    webhook_id = due.webhook_id,
                    event_id = due.event_id,
                    attempt = due.attempt,
                    "delivered"
                );
            } else {
                tracing::warn!(
                    webhook_id = due.webhook_id,
                    event_id = due.event_id,
                    attempt = due.attempt,
                    error = sent.error.as_deref().unwrap_or("-"),
                    "webhook attempt failed"
                );
            }
            let result = AttemptResult {
                at_ms,
                status_code: sent.status_code,
                latency_ms: sent.latency_ms,
                error: sent.error,
                verdict,
            };
            let _ = done.send((due, result));
        });
    }

    /// Records finished attempts in one lazy write; their deliveries leave
    /// the in-flight set either way (a failed write leaves them in the
    /// outbox, so they are tried again).
    async fn record(&mut self, batch: Vec<(DueDelivery, AttemptResult)>) {
        let keys: Vec<(u64, u64)> = batch
            .iter()
            .map(|(d, _)| (d.webhook_id, d.event_id))
            .collect();
        let disable_after =
            i64::try_from(self.inner.config.disable_after.as_millis()).unwrap_or(i64::MAX);
        let written = self
            .store
            .write(Durability::Lazy, move |tx| {
                for (due, result) in batch {
                    crate::webhooks::record_attempt(tx, &due, result, disable_after)?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = written {
            tracing::error!(error = %e, "recording webhook attempts failed; they will be retried");
        }
        for (webhook_id, event_id) in keys {
            if let Some(set) = self.inflight.get_mut(&webhook_id) {
                set.remove(&event_id);
                if set.is_empty() {
                    self.inflight.remove(&webhook_id);
                }
            }
        }
    }
}

/// Now on the hub's clock, as the outbox's retry keys hold it.
fn now_ms_u64(clock: &Clock) -> u64 {
    u64::try_from(clock.now_ms()).unwrap_or(0)
}
