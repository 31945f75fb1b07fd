//! One attempt: the JSON body a receiver gets, one signed POST of it, and
//! how the attempt ended (before the retry schedule is applied). Also the
//! resolver that holds `--webhook-deny-private` at connect time.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;

use super::Inner;
use super::schedule::parse_retry_after;
use super::sign::{legacy_signature, standard_signature};
use crate::store::{EventRecord, WebhookRecord};
use crate::webhooks::{public_address, refused_literal};

/// The most of a receiver's reply body read (and thrown away) so the
/// connection can be reused.
const REPLY_READ_MAX: usize = 64 * 1024;
/// Error texts in the delivery log are cut to this many characters.
const ERROR_MAX: usize = 300;

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

/// The body of `event`, as sent.
pub(super) fn encode_body(event: &EventRecord) -> crate::store::Result<Vec<u8>> {
    Ok(serde_json::to_vec(&WebhookBody::of(event))?)
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
pub(super) struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| public_address(a.ip()))
                .collect();
            if public.is_empty() {
                return Err(Box::new(PrivateTarget { host }) as _);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// How a request ended, before the schedule is applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Outcome {
    Delivered,
    /// 410: the endpoint is gone for good.
    Gone,
    /// Worth another try, not before the `Retry-After`, if any.
    Retry(Option<Duration>),
    /// Retrying cannot help (refused by policy, no event to send).
    Permanent,
}

pub(super) struct Sent {
    pub(super) outcome: Outcome,
    pub(super) status_code: Option<u16>,
    pub(super) latency_ms: Option<u64>,
    pub(super) error: Option<String>,
}

impl Sent {
    pub(super) fn failed(error: String) -> Self {
        Self {
            outcome: Outcome::Permanent,
            status_code: None,
            latency_ms: None,
            error: Some(error),
        }
    }
}

/// One signed POST of `body` to `hook`.
pub(super) async fn send(
    inner: &Inner,
    hook: &WebhookRecord,
    delivery_id: &str,
    body: Bytes,
    timeout: Duration,
) -> Sent {
    if let Some(ip) = refused_literal(&hook.url, inner.config.deny_private) {
        return Sent::failed(PrivateTarget { host: ip }.to_string());
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
            let refused = error_chain(&e).any(<dyn std::error::Error>::is::<PrivateTarget>);
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
