//! Webhook delivery from the durable outbox (see [`crate::store`]): a publish
//! enqueues its deliveries in the event's own transaction, and this layer
//! sends them at-least-once, in the background, so a publish never waits for
//! (or fails because of) a receiver.
//!
//! Rules: per webhook, at most `concurrency` attempts are in flight and first
//! attempts start in event order; a failed attempt goes to the retry queue on
//! its own schedule ([`retry_delay`]: about 5 s, 30 s, 2 min, 10 min, 30 min,
//! 1 h, with jitter, `Retry-After` honoured on 429/503) and never holds back
//! the deliveries behind it. 2xx is delivered; 410 disables the webhook; a
//! redirect is not followed (and is a failure). Outcomes are recorded with
//! lazy durability: a crash resends at most the last second's deliveries.
//!
//! The worker runs on its own thread and runtime (at a lower CPU priority on
//! Linux), so a flood of deliveries never takes the request handlers' place;
//! what it cannot send yet waits in the outbox.
//!
//! # Layout
//! - `mod.rs`: [`Delivery`] — starting the worker, draining it at shutdown,
//!   and `test_webhook`'s ping.
//! - `worker.rs`: the outbox worker — scans, starts attempts, records their
//!   outcomes in batches.
//! - `plan.rs`: which due deliveries start now and when to look again — a
//!   plain function of what a scan found, tested without a store.
//! - `send.rs`: one attempt — the body ([`WebhookBody`]), the signed POST,
//!   how it ended; the resolver that refuses private addresses
//!   ([`PrivateTarget`]).
//! - `sign.rs`: the signature headers ([`legacy_signature`],
//!   [`standard_signature`]).
//! - `schedule.rs`: backoff, jitter and `Retry-After` ([`retry_delay`],
//!   [`parse_retry_after`]).
//!
//! Where a webhook may point (special-purpose addresses) and URL redaction
//! live in [`crate::egress`], which the tools use too.

mod plan;
mod schedule;
mod send;
mod sign;
mod worker;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

pub use schedule::{JITTER, RETRY_AFTER_MAX, parse_retry_after, retry_delay};
pub use send::{PrivateTarget, WebhookBody};
pub use sign::{legacy_signature, standard_signature};

use crate::config::DeliveryConfig;
use crate::store::{AttemptRecord, AttemptStatus, EventRecord, Store, WebhookRecord};
use send::{Outcome, PublicOnly, Sent, send};
use worker::Worker;

/// A `test_webhook` ping gives up sooner than a delivery, so the caller
/// (whose own timeout is 10 s) hears the outcome.
const PING_TIMEOUT: Duration = Duration::from_secs(8);
/// The delivery thread's nice value (Linux): it yields to request handling.
#[cfg(target_os = "linux")]
const DELIVERY_NICE: i32 = 10;

/// Sends webhook deliveries from the outbox; cheap to clone.
#[derive(Clone)]
pub struct Delivery {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    config: DeliveryConfig,
    /// Tells the worker to start no more attempts and finish.
    stop: CancellationToken,
    /// Tells the worker to give up on attempts in flight and return.
    abandon: CancellationToken,
    /// The delivery runtime, once started: pings run there too.
    runtime: Mutex<Option<tokio::runtime::Handle>>,
    /// Resolves when the delivery thread has finished.
    finished: Mutex<Option<oneshot::Receiver<()>>>,
}

impl Delivery {
    pub fn new(config: DeliveryConfig) -> anyhow::Result<Self> {
        let mut builder = shared::client::http_builder()
            .user_agent(concat!("agent-event-bus/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout);
        if config.deny_private {
            // A proxy would resolve the name itself, out of the policy's
            // sight: while the policy is on, connect directly.
            builder = builder.dns_resolver(PublicOnly).no_proxy();
        }
        Ok(Self {
            inner: Arc::new(Inner {
                client: builder.build()?,
                config,
                stop: CancellationToken::new(),
                abandon: CancellationToken::new(),
                runtime: Mutex::new(None),
                finished: Mutex::new(None),
            }),
        })
    }

    pub fn config(&self) -> &DeliveryConfig {
        &self.inner.config
    }

    /// Starts the worker on its own thread: it sends what the outbox holds
    /// (deliveries left over from before a restart first), then whatever
    /// commits add.
    pub fn start(&self, store: Store) -> std::io::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("webhook-delivery")
            .build()?;
        let worker = Worker::new(self.inner.clone(), store);
        let (finished_tx, finished_rx) = oneshot::channel();
        *lock(&self.inner.runtime) = Some(runtime.handle().clone());
        *lock(&self.inner.finished) = Some(finished_rx);
        std::thread::Builder::new()
            .name("webhook-delivery".into())
            .spawn(move || {
                lower_priority();
                runtime.block_on(worker.run());
                // Dropping the runtime cancels whatever was abandoned.
                drop(runtime);
                let _ = finished_tx.send(());
            })?;
        Ok(())
    }

    /// Starts no more attempts and waits up to `grace` for those in flight
    /// to finish and be recorded. Whatever is still pending stays in the
    /// outbox and goes out after the next start.
    pub async fn drain(&self, grace: Duration) {
        self.inner.stop.cancel();
        let Some(mut finished) = lock(&self.inner.finished).take() else {
            return;
        };
        if tokio::time::timeout(grace, &mut finished).await.is_err() {
            tracing::warn!(
                "webhook attempts still in flight at shutdown were abandoned; they are resent after restart"
            );
            self.inner.abandon.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(2), finished).await;
        }
    }

    /// Sends a `ping` event to `hook` now (`now`, epoch ms) and reports the
    /// attempt (event id 0), for the caller to log. Works on paused
    /// webhooks too.
    pub async fn ping(&self, hook: &WebhookRecord, now: i64) -> AttemptRecord {
        let event = EventRecord {
            id: 0,
            event_type: "ping".to_owned(),
            payload: "agent-event-bus webhook test".to_owned(),
            session_id: "agent-event-bus".to_owned(),
            timestamp: now.saturating_mul(1000),
            channel: "all".to_owned(),
            correlation_id: None,
            signal_level: None,
            title: None,
            tags: None,
        };
        let delivery_id = format!("ping_{}_{now}", hook.id);
        let sent = match serde_json::to_vec(&WebhookBody::of(&event)) {
            Ok(body) => {
                let inner = self.inner.clone();
                let (hook, id) = (hook.clone(), delivery_id.clone());
                let ping = async move {
                    let timeout = inner.config.timeout.min(PING_TIMEOUT);
                    send(&inner, &hook, &id, body.into(), timeout).await
                };
                // On the delivery runtime, where the client's connections live.
                let runtime = lock(&self.inner.runtime).clone();
                match runtime {
                    Some(rt) => rt.spawn(ping).await.unwrap_or_else(|_| {
                        Sent::failed("the delivery worker has stopped".to_owned())
                    }),
                    None => ping.await,
                }
            }
            Err(e) => Sent::failed(format!("cannot encode the body: {e}")),
        };
        AttemptRecord {
            event_id: 0,
            delivery_id,
            attempt: 1,
            status: if sent.outcome == Outcome::Delivered {
                AttemptStatus::Delivered
            } else {
                AttemptStatus::Failed
            },
            at_ms: now,
            status_code: sent.status_code,
            latency_ms: sent.latency_ms,
            error: sent.error,
            next_attempt_ms: None,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Lowers the calling thread's CPU priority (Linux: a thread's own nice
/// value; threads it starts inherit it). Elsewhere deliveries keep the
/// hub's priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), DELIVERY_NICE)
    {
        tracing::debug!(error = %e, "cannot lower the delivery thread's priority");
    }
}
