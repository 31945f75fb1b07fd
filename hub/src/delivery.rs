//! Webhook delivery: each matching webhook gets a signed POST of the event,
//! in the background, so a publish never waits for (or fails because of) a
//! receiver. Today: up to three attempts (0.5 s, then 1 s apart), as the
//! original. The durable outbox with long retries replaces [`Delivery::dispatch`]'s
//! body without changing its callers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;
use tokio_util::task::TaskTracker;

use crate::store::{EventRecord, WebhookRecord};

const TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF: [Duration; 2] = [Duration::from_millis(500), Duration::from_millis(1000)];

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

/// Standard Webhooks: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
pub fn standard_signature(secret: &str, id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Sends webhook deliveries in the background.
#[derive(Clone)]
pub struct Delivery {
    client: reqwest::Client,
    tasks: TaskTracker,
}

impl Delivery {
    pub fn new() -> anyhow::Result<Self> {
        let client = shared::client::http_builder()
            .user_agent(concat!("agent-event-bus/", env!("CARGO_PKG_VERSION")))
            .timeout(TIMEOUT)
            .build()?;
        Ok(Self {
            client,
            tasks: TaskTracker::new(),
        })
    }

    /// Starts delivering `event` to each of `hooks`.
    pub fn dispatch(&self, event: &EventRecord, hooks: Vec<WebhookRecord>) {
        let body = match serde_json::to_vec(&WebhookBody::of(event)) {
            Ok(b) => bytes::Bytes::from(b),
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a webhook body");
                return;
            }
        };
        for hook in hooks {
            let client = self.client.clone();
            let body = body.clone();
            let event_id = event.id;
            self.tasks.spawn(async move {
                deliver(&client, &hook, event_id, body).await;
            });
        }
    }

    /// Waits up to `grace` for deliveries in flight, then gives up on them.
    pub async fn drain(&self, grace: Duration) {
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("webhook deliveries still in flight at shutdown were abandoned");
        }
    }
}

async fn deliver(
    client: &reqwest::Client,
    hook: &WebhookRecord,
    event_id: u64,
    body: bytes::Bytes,
) {
    let delivery_id = format!("evt_{event_id}_wh_{}", hook.id);
    let attempts = BACKOFF.len() + 1;
    for attempt in 1..=attempts {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut request = client
            .post(&hook.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &delivery_id)
            .header("webhook-timestamp", timestamp.to_string())
            .body(body.clone());
        if let Some(secret) = &hook.secret {
            request = request
                .header("X-Event-Bus-Signature", legacy_signature(secret, &body))
                .header(
                    "webhook-signature",
                    standard_signature(secret, &delivery_id, timestamp, &body),
                );
        }
        let failure = match request.send().await {
            Ok(r) if r.status().as_u16() < 400 => {
                tracing::debug!(
                    webhook_id = hook.id,
                    event_id,
                    status = r.status().as_u16(),
                    "delivered"
                );
                return;
            }
            Ok(r) => format!("returned {}", r.status().as_u16()),
            Err(e) if e.is_timeout() => "timed out".to_owned(),
            Err(e) => format!("failed: {e}"),
        };
        tracing::warn!(
            webhook_id = hook.id,
            event_id,
            "webhook {failure}, attempt {attempt}/{attempts}"
        );
        if let Some(pause) = BACKOFF.get(attempt - 1) {
            tokio::time::sleep(*pause).await;
        }
    }
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
        let std = standard_signature("k", "id", 1, b"{}");
        assert!(std.starts_with("v1,") && std.len() > 10);
    }
}
