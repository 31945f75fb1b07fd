//! Webhook delivery from the durable outbox (see [`crate::store`]): a publish
//! enqueues its deliveries in the event's own transaction, and this worker
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

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::egress::{is_private, private_literal};

use crate::config::DeliveryConfig;
use crate::store::{
    AttemptRecord, AttemptResult, AttemptStatus, DueDelivery, Durability, EventRecord, Queued,
    Store, Verdict, WebhookRecord,
};

/// Each retry waits its nominal delay times a factor in `1 ± JITTER`.
pub const JITTER: f64 = 0.2;
/// The longest `Retry-After` honoured; a longer one is cut to this.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);
/// A `test_webhook` ping gives up sooner than a delivery, so the caller
/// (whose own timeout is 10 s) hears the outcome.
const PING_TIMEOUT: Duration = Duration::from_secs(8);
/// The most of a receiver's reply body read (and thrown away) so the
/// connection can be reused.
const REPLY_READ_MAX: usize = 64 * 1024;
/// Error texts in the delivery log are cut to this many characters.
const ERROR_MAX: usize = 300;
/// The worker rescans at least this often, whatever it expects.
const RESCAN_MAX: Duration = Duration::from_secs(60);
/// The delivery thread's nice value (Linux): it yields to request handling.
#[cfg(target_os = "linux")]
const DELIVERY_NICE: i32 = 10;

/// The JSON body a receiver gets: the event with its id as `event_id`.
#[derive(Debug, Serialize)]
pub struct WebhookBody<'a> {
    pub event_id: u64,
    pub event_type: &'a str,
    pub payload: &'a str,
    pub session_id: &'a str,
    pub timestamp: String,
    pub channel: &'a str,
    pub correlation_id: Option<&'a str>,
    pub signal_level: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<&'a [String]>,
}

impl<'a> WebhookBody<'a> {
    pub fn of(e: &'a EventRecord) -> Self {
        Self {
            event_id: e.id,
            event_type: &e.event_type,
            payload: &e.payload,
            session_id: &e.session_id,
            timestamp: shared::time::format_micros(e.timestamp),
            channel: &e.channel,
            correlation_id: e.correlation_id.as_deref(),
            signal_level: e.level().as_str(),
            title: e.title.as_deref(),
            tags: e.tags.as_deref(),
        }
    }
}

/// `sha256=<hex HMAC-SHA256 of body>`: the original's signature header value.
pub fn legacy_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Standard Webhooks: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
/// keyed with the secret's bytes (a Standard Webhooks library takes the
/// same key as `whsec_` + base64 of the secret).
pub fn standard_signature(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The wait before the next attempt after `attempts_made` failed ones, or
/// `None` when the schedule is spent (the delivery has failed). `unit` is a
/// random number in `[0, 1)` that picks the jitter; a `Retry-After` (cut to
/// [`RETRY_AFTER_MAX`]) is a floor.
pub fn retry_delay(
    attempts_made: u32,
    delays: &[Duration],
    unit: f64,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let index = usize::try_from(attempts_made).ok()?.checked_sub(1)?;
    let base = *delays.get(index)?;
    let factor = 1.0 - JITTER + 2.0 * JITTER * unit.clamp(0.0, 1.0);
    let wait = base.mul_f64(factor);
    Some(match retry_after {
        Some(floor) => wait.max(floor.min(RETRY_AFTER_MAX)),
        None => wait,
    })
}

/// A `Retry-After` value: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at: SystemTime = time::PrimitiveDateTime::parse(value, &format)
        .ok()?
        .assume_utc()
        .into();
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A target refused by `--webhook-deny-private`.
#[derive(Debug, thiserror::Error)]
#[error(
    "{host} resolves only to private, loopback or link-local addresses (refused by --webhook-deny-private)"
)]
pub struct PrivateTarget {
    host: String,
}

/// DNS that drops private addresses, so the policy holds at connect time
/// (a name cannot be re-pointed at a private address after a check).
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> =
                found.into_iter().filter(|a| !is_private(a.ip())).collect();
            if public.is_empty() {
                return Err(Box::new(PrivateTarget { host }) as _);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

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
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let worker = Worker {
            inner: self.inner.clone(),
            store,
            inflight: HashMap::new(),
            done_tx,
            done_rx,
            scans: 0,
            heads: HashMap::new(),
        };
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

    /// Sends a `ping` event to `hook` now and reports the attempt (event id
    /// 0), for the caller to log. Works on paused webhooks too.
    pub async fn ping(&self, hook: &WebhookRecord) -> AttemptRecord {
        let now = shared::time::now_ms();
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

/// How a request ended, before the schedule is applied.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Delivered,
    /// 410: the endpoint is gone for good.
    Gone,
    /// Worth another try, not before the `Retry-After`, if any.
    Retry(Option<Duration>),
    /// Retrying cannot help (refused by policy, no event to send).
    Permanent,
}

struct Sent {
    outcome: Outcome,
    status_code: Option<u16>,
    latency_ms: Option<u64>,
    error: Option<String>,
}

impl Sent {
    fn failed(error: String) -> Self {
        Self {
            outcome: Outcome::Permanent,
            status_code: None,
            latency_ms: None,
            error: Some(error),
        }
    }
}

/// One signed POST of `body` to `hook`.
async fn send(
    inner: &Inner,
    hook: &WebhookRecord,
    delivery_id: &str,
    body: Bytes,
    timeout: Duration,
) -> Sent {
    if inner.config.deny_private
        && let Some(ip) = private_literal(&hook.url)
    {
        return Sent::failed(
            PrivateTarget {
                host: ip.to_string(),
            }
            .to_string(),
        );
    }
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut request = inner
        .client
        .post(&hook.url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", delivery_id)
        .header("webhook-timestamp", timestamp.to_string());
    if let Some(secret) = &hook.secret {
        request = request
            .header("X-Event-Bus-Signature", legacy_signature(secret, &body))
            .header(
                "webhook-signature",
                standard_signature(secret.as_bytes(), delivery_id, timestamp, &body),
            );
    }
    let started = Instant::now();
    let reply = request.body(body).send().await;
    let latency =
        |started: Instant| Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
    match reply {
        Ok(mut r) => {
            let code = r.status().as_u16();
            let retry_after = r
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            // Read a little of the reply so the connection can be reused.
            let mut read = 0;
            while read < REPLY_READ_MAX {
                match r.chunk().await {
                    Ok(Some(chunk)) => read += chunk.len(),
                    _ => break,
                }
            }
            let (outcome, error) = match code {
                200..=299 => (Outcome::Delivered, None),
                410 => (Outcome::Gone, Some("410 Gone".to_owned())),
                300..=399 => (
                    Outcome::Retry(None),
                    Some(format!("answered {code}; redirects are not followed")),
                ),
                429 | 503 => (
                    Outcome::Retry(retry_after),
                    Some(format!("answered {code}")),
                ),
                _ => (Outcome::Retry(None), Some(format!("answered {code}"))),
            };
            Sent {
                outcome,
                status_code: Some(code),
                latency_ms: latency(started),
                error,
            }
        }
        Err(e) => {
            let refused = error_chain(&e).any(|s| s.is::<PrivateTarget>());
            let error = if e.is_timeout() {
                format!(
                    "timed out after {}",
                    crate::config::format_span(
                        i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX),
                    )
                )
            } else {
                describe(&e)
            };
            Sent {
                outcome: if refused {
                    Outcome::Permanent
                } else {
                    Outcome::Retry(None)
                },
                status_code: None,
                latency_ms: latency(started),
                error: Some(error),
            }
        }
    }
}

fn error_chain<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |e| e.source())
}

/// A request error as one line, without the URL (it may carry a token).
fn describe(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for source in error_chain(e).skip(1) {
        let text = source.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    let head = if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut text = if parts.is_empty() {
        head.to_owned()
    } else {
        format!("{head}: {}", parts.join(": "))
    };
    if text.len() > ERROR_MAX {
        let mut cut = ERROR_MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// An attempt about to start: the delivery, its webhook and the body (none
/// when the event is no longer stored).
struct Job {
    due: DueDelivery,
    hook: Arc<WebhookRecord>,
    body: Option<Bytes>,
}

/// What one scan of the outbox found.
struct Plan {
    jobs: Vec<Job>,
    /// When the earliest retry not taken falls due (ms).
    next_due: Option<u64>,
    /// Per webhook, where its next scan for first attempts may start.
    heads: HashMap<u64, u64>,
}

/// The outbox worker: one task that scans, starts attempts as tasks, and
/// records their outcomes in batches.
struct Worker {
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
    async fn run(mut self) {
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
                        Some(now_ms_u64().saturating_add(1000))
                    }
                };
            }
            if stopping && self.inflight.is_empty() {
                return;
            }
            let wait = next_due.map_or(RESCAN_MAX, |due| {
                Duration::from_millis(due.saturating_sub(now_ms_u64())).min(RESCAN_MAX)
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
        let cap = self.inner.config.concurrency;
        let inflight = self.inflight.clone();
        let mut heads = std::mem::take(&mut self.heads);
        let odd_turn = self.scans % 2 == 1;
        let now = now_ms_u64();
        let plan = self
            .store
            .read(move |snap| {
                let empty = HashSet::new();
                let mut jobs = Vec::new();
                let mut next_due: Option<u64> = None;
                let mut bodies: HashMap<u64, Option<Bytes>> = HashMap::new();
                let hooks: Vec<WebhookRecord> = snap.webhooks()?;
                heads.retain(|id, _| hooks.iter().any(|h| h.id == *id));
                for hook in hooks.into_iter().filter(|h| h.active) {
                    let skip = inflight.get(&hook.id).unwrap_or(&empty);
                    let free = cap.saturating_sub(skip.len());
                    if free == 0 {
                        continue;
                    }
                    let retry_share = if odd_turn { free.div_ceil(2) } else { free / 2 };
                    let retries = snap.due_retries(hook.id, now, free, skip)?;
                    let from = heads.get(&hook.id).copied().unwrap_or(0);
                    let (firsts, next_from) = snap.first_deliveries(
                        hook.id,
                        from,
                        free - retries.len().min(retry_share),
                        skip,
                    )?;
                    heads.insert(hook.id, next_from);
                    let retries = &retries[..retries.len().min(free - firsts.len())];
                    if retries.len() + firsts.len() < free
                        && let Some(due) = snap.next_retry(hook.id, now)?
                    {
                        next_due = Some(next_due.map_or(due, |n| n.min(due)));
                    }
                    let hook = Arc::new(hook);
                    let taken = retries
                        .iter()
                        .map(|&(due_ms, event_id, attempts)| DueDelivery {
                            webhook_id: hook.id,
                            event_id,
                            queued: Queued::Retry { due_ms },
                            attempt: attempts.saturating_add(1),
                        })
                        .chain(firsts.iter().map(|&event_id| DueDelivery {
                            webhook_id: hook.id,
                            event_id,
                            queued: Queued::First,
                            attempt: 1,
                        }));
                    for due in taken {
                        let body = match bodies.get(&due.event_id) {
                            Some(body) => body.clone(),
                            None => {
                                let body = match snap.event(due.event_id)? {
                                    Some(e) => Some(Bytes::from(encode_body(&e)?)),
                                    None => None,
                                };
                                bodies.insert(due.event_id, body.clone());
                                body
                            }
                        };
                        jobs.push(Job {
                            due,
                            hook: hook.clone(),
                            body,
                        });
                    }
                }
                Ok(Plan {
                    jobs,
                    next_due,
                    heads,
                })
            })
            .await?;
        self.heads = plan.heads;
        for job in plan.jobs {
            self.launch(job);
        }
        Ok(plan.next_due)
    }

    fn launch(&mut self, job: Job) {
        self.inflight
            .entry(job.due.webhook_id)
            .or_default()
            .insert(job.due.event_id);
        let inner = self.inner.clone();
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            let Job { due, hook, body } = job;
            let at_ms = shared::time::now_ms();
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
                        shared::time::now_ms()
                            .saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)),
                    ),
                    None => Verdict::Failed,
                },
            };
            if verdict != Verdict::Delivered {
                tracing::warn!(
                    webhook_id = due.webhook_id,
                    event_id = due.event_id,
                    attempt = due.attempt,
                    error = sent.error.as_deref().unwrap_or("-"),
                    "webhook attempt failed"
                );
            } else {
                tracing::debug!(
                    webhook_id = due.webhook_id,
                    event_id = due.event_id,
                    attempt = due.attempt,
                    "delivered"
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
                    tx.record_attempt(&due, result, disable_after)?;
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

fn encode_body(event: &EventRecord) -> crate::store::Result<Vec<u8>> {
    Ok(serde_json::to_vec(&WebhookBody::of(event))?)
}

fn now_ms_u64() -> u64 {
    u64::try_from(shared::time::now_ms()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_known_vectors() {
        // RFC 4231 test case 2.
        let sig = legacy_signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // The Standard Webhooks / Svix published vector: secret
        // whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw (the key is its base64 part).
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        assert_eq!(
            standard_signature(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    fn secs(list: &[u64]) -> Vec<Duration> {
        list.iter().map(|s| Duration::from_secs(*s)).collect()
    }

    #[test]
    fn the_schedule_is_about_5s_30s_2m_10m_30m_1h_then_failed() {
        let delays = secs(&[5, 30, 120, 600, 1800, 3600]);
        let nominal: Vec<Option<Duration>> = (1..=7)
            .map(|n| retry_delay(n, &delays, 0.5, None))
            .collect();
        assert_eq!(
            nominal,
            [
                Some(Duration::from_secs(5)),
                Some(Duration::from_secs(30)),
                Some(Duration::from_secs(120)),
                Some(Duration::from_secs(600)),
                Some(Duration::from_secs(1800)),
                Some(Duration::from_secs(3600)),
                None,
            ],
            "seven attempts in all, then failed"
        );
        assert_eq!(retry_delay(0, &delays, 0.5, None), None);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let delays = secs(&[30]);
        for i in 0..=100 {
            let unit = f64::from(i) / 100.0;
            let d = retry_delay(1, &delays, unit, None).unwrap();
            assert!(
                d >= Duration::from_secs(24) && d <= Duration::from_secs(36),
                "{d:?}"
            );
        }
        assert_eq!(
            retry_delay(1, &delays, 0.0, None),
            Some(Duration::from_secs(24))
        );
        assert_eq!(
            retry_delay(1, &delays, 1.0, None),
            Some(Duration::from_secs(36))
        );
        // Out-of-range randomness is clamped, never a negative wait.
        assert_eq!(
            retry_delay(1, &delays, -3.0, None),
            Some(Duration::from_secs(24))
        );
    }

    #[test]
    fn retry_after_is_a_floor_with_a_cap() {
        let delays = secs(&[5, 30]);
        let ra = |s| Some(Duration::from_secs(s));
        assert_eq!(retry_delay(1, &delays, 0.5, ra(60)), ra(60));
        assert_eq!(
            retry_delay(1, &delays, 0.5, ra(1)),
            ra(5),
            "never sooner than the schedule"
        );
        assert_eq!(
            retry_delay(1, &delays, 0.5, ra(86_400)),
            Some(RETRY_AFTER_MAX)
        );
        assert_eq!(
            retry_delay(3, &delays, 0.5, ra(10)),
            None,
            "the schedule still ends"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
