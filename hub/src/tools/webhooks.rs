//! Webhook tools: registration, listing, pause/resume, removal, the
//! delivery log, redelivery and a test ping. Delivery lives in
//! [`crate::delivery`].

use shared::tools::webhooks::{
    Deliveries, DeliveriesParams, ListWebhooks, ListWebhooksParams, RedeliverParams, Redelivered,
    RegisterWebhookParams, SetActiveParams, Tested, WebhookActive, WebhookParams,
    WebhookRegistered, WebhookRemoved,
};
use shared::tools::{ArgError, Refusal, webhooks};
use shared::wire::WebhookInfo;

use super::Outcome;
use crate::caller::Caller;
use crate::json::Json;
use crate::state::Bus;
use crate::store::{AttemptRecord, Durability, Snapshot, WebhookRecord};

super::handlers! {
    webhooks::RegisterWebhook => register;
    webhooks::ListWebhooks => rendered list;
    webhooks::SetWebhookActive => set_active;
    webhooks::UnregisterWebhook => unregister;
    webhooks::ListWebhookDeliveries => deliveries;
    webhooks::RedeliverWebhook => redeliver;
    webhooks::TestWebhook => test;
}

/// `register_webhook(url, channel?, event_types?, secret?, include_system=false)`:
/// refused past `--max-webhooks` webhooks, and with more than
/// `--max-webhook-event-types` event types.
pub async fn register(
    bus: &Bus,
    _caller: &Caller,
    p: RegisterWebhookParams,
) -> Outcome<WebhookRegistered> {
    let url = p.url.trim().to_owned();
    let parsed = url::Url::parse(&url).map_err(ArgError::UrlInvalid)?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(ArgError::UrlNotHttp(url).into());
    }
    if let Some(ip) = crate::webhooks::refused_literal(&url, bus.delivery.config().deny_private) {
        return Err(ArgError::UrlPrivate(ip).into());
    }
    let channel = p.channel.filter(|c| !c.is_empty());
    let event_types = p
        .event_types
        .map(|types| {
            let mut unique: Vec<String> = Vec::with_capacity(types.len());
            for t in types {
                if !t.is_empty() && !unique.contains(&t) {
                    unique.push(t);
                }
            }
            unique
        })
        .filter(|types| !types.is_empty());
    let max_types = bus.limits.max_webhook_event_types;
    if let Some(types) = event_types.as_ref().filter(|t| t.len() > max_types) {
        return Err(ArgError::TooMany {
            key: "event_types",
            count: types.len(),
            max: max_types,
        }
        .into());
    }
    let secret = p.secret.filter(|s| !s.is_empty());
    let include_system = p.include_system;
    let max_hooks = bus.limits.max_webhooks;
    let record = bus
        .store
        .write(Durability::Durable, move |tx| {
            if tx.webhook_count()? >= u64::try_from(max_hooks).unwrap_or(u64::MAX) {
                return Ok(Err(Refusal::WebhookLimit {
                    limit: u64::try_from(max_hooks).unwrap_or(u64::MAX),
                }));
            }
            let record = WebhookRecord {
                id: tx.next_webhook_id()?,
                url,
                channel,
                event_types,
                secret,
                active: true,
                created_at: shared::time::now_ms(),
                include_system,
                failing_since: None,
                disabled_reason: None,
                disabled_at: None,
            };
            tx.put_webhook(&record)?;
            Ok(Ok(record))
        })
        .await??;
    // Only the host: webhook URLs often carry tokens in their path.
    tracing::info!(
        webhook_id = record.id,
        host = parsed.host_str().unwrap_or("-"),
        "webhook registered"
    );
    let w = shown(&record);
    Ok(WebhookRegistered {
        webhook_id: w.webhook_id,
        url: w.url,
        channel: w.channel,
        event_types: w.event_types,
        created_at: w.created_at,
        include_system: w.include_system,
    })
}

/// `list_webhooks(active_only=true)`: newest first, secrets never shown,
/// the first `--max-list-items` only.
pub async fn list(bus: &Bus, _caller: &Caller, p: ListWebhooksParams) -> Outcome<Json> {
    let mut hooks = bus.store.read(Snapshot::webhooks).await?;
    hooks.retain(|h| h.active || !p.active_only);
    hooks.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let max = bus.limits.max_list_items;
    let items: Vec<WebhookInfo> = hooks
        .iter()
        .take(max.saturating_add(1))
        .map(shown)
        .collect();
    Ok(super::render_list::<ListWebhooks, _>(items, max))
}

/// A webhook as callers see it: credentials in its URL are redacted.
fn shown(record: &WebhookRecord) -> shared::wire::WebhookInfo {
    let mut info = record.to_wire();
    info.url = crate::egress::redact_url(&info.url);
    info
}

// The contract's limit is all the log keeps.
const _: () =
    assert!(shared::tools::webhooks::DELIVERIES_MAX as u64 == crate::store::DELIVERY_LOG_KEEP);

/// A webhook id the params checked is not below zero.
fn id(webhook_id: i64) -> u64 {
    u64::try_from(webhook_id).unwrap_or_default()
}

/// `set_webhook_active(webhook_id, active)`: pausing ends the webhook's
/// pending deliveries as failed (logged, so they can be redelivered);
/// resuming clears a disable by the hub and its failure streak.
pub async fn set_active(bus: &Bus, _caller: &Caller, p: SetActiveParams) -> Outcome<WebhookActive> {
    let (id, active) = (id(p.webhook_id), p.active);
    let reply = bus
        .store
        .write(Durability::Durable, move |tx| {
            let Some(mut hook) = tx.webhook(id)? else {
                return Ok(Err(Refusal::WebhookNotFound { webhook_id: id }));
            };
            let now = shared::time::now_ms();
            if active {
                hook.disabled_reason = None;
                hook.disabled_at = None;
                hook.failing_since = None;
            } else if hook.active {
                tx.end_pending_deliveries(id, "webhook paused", now)?;
            }
            hook.active = active;
            tx.put_webhook(&hook)?;
            Ok(Ok(WebhookActive {
                success: true,
                webhook_id: id,
                active,
            }))
        })
        .await?;
    Ok(reply?)
}

/// `unregister_webhook(webhook_id)`
pub async fn unregister(bus: &Bus, _caller: &Caller, p: WebhookParams) -> Outcome<WebhookRemoved> {
    let id = id(p.webhook_id);
    if bus
        .store
        .write(Durability::Durable, move |tx| tx.delete_webhook(id))
        .await?
    {
        Ok(WebhookRemoved {
            success: true,
            webhook_id: id,
        })
    } else {
        Err(Refusal::WebhookNotFound { webhook_id: id }.into())
    }
}

/// `list_webhook_deliveries(webhook_id, event_id?, limit=20)`: the delivery
/// log, newest first, with how many deliveries are still pending.
pub async fn deliveries(bus: &Bus, _caller: &Caller, p: DeliveriesParams) -> Outcome<Deliveries> {
    let id = id(p.webhook_id);
    // Above zero and in range: checked with the params.
    let event_id = p.event_id.map(|e| u64::try_from(e).unwrap_or_default());
    let limit = usize::try_from(p.limit).unwrap_or(1);
    let reply = bus
        .store
        .read(move |s| {
            if s.webhook(id)?.is_none() {
                return Ok(Err(Refusal::WebhookNotFound { webhook_id: id }));
            }
            Ok(Ok(Deliveries {
                webhook_id: id,
                pending: s.pending_deliveries(id)? as u64,
                deliveries: s
                    .delivery_log(id, limit, event_id)?
                    .iter()
                    .map(AttemptRecord::to_wire)
                    .collect(),
            }))
        })
        .await?;
    Ok(reply?)
}

/// `redeliver_webhook(webhook_id, event_id)`: queues the event for the
/// webhook again (same `webhook-id`), whatever happened to it before.
pub async fn redeliver(bus: &Bus, _caller: &Caller, p: RedeliverParams) -> Outcome<Redelivered> {
    // Above zero: checked with the params.
    let (id, event_id) = (
        id(p.webhook_id),
        u64::try_from(p.event_id).unwrap_or_default(),
    );
    let reply = bus
        .store
        .write(Durability::Durable, move |tx| {
            let Some(hook) = tx.webhook(id)? else {
                return Ok(Err(Refusal::WebhookNotFound { webhook_id: id }));
            };
            if !hook.active {
                return Ok(Err(Refusal::WebhookPaused { webhook_id: id }));
            }
            if tx.event(event_id)?.is_none() {
                return Ok(Err(Refusal::EventNotFound {
                    webhook_id: id,
                    event_id,
                }));
            }
            tx.redeliver(id, event_id, shared::time::now_ms())?;
            Ok(Ok(Redelivered {
                success: true,
                webhook_id: id,
                event_id,
                delivery_id: crate::store::delivery_id(event_id, id),
            }))
        })
        .await?;
    Ok(reply?)
}

/// What a caller on another machine hears of a failed ping to a private
/// address, in place of the error, code and latency that would tell it what
/// listens there.
const WITHHELD: &str = "the test failed; details are withheld from callers on other machines when the webhook points at a private address (see the hub's log)";

/// `test_webhook(webhook_id)`: POSTs a `ping` event (`event_id` 0) now and
/// returns the attempt, which also goes in the delivery log. Rate-limited
/// (per webhook and per hub), held to `--webhook-deny-private` like any
/// delivery; a caller on another machine hears only whether a ping to a
/// private address succeeded, so the tool is no probe of the hub's network.
pub async fn test(bus: &Bus, caller: &Caller, p: WebhookParams) -> Outcome<Tested> {
    let id = id(p.webhook_id);
    let Some(hook) = bus.store.read(move |s| s.webhook(id)).await? else {
        return Err(Refusal::WebhookNotFound { webhook_id: id }.into());
    };
    if let Err(wait) = bus.webhook_tests.check(&id) {
        return Err(Refusal::TestsLimited {
            webhook_id: id,
            retry_after_seconds: crate::rate::retry_seconds(wait),
        }
        .into());
    }
    let mut attempt = bus.delivery.ping(&hook).await;
    if attempt.status != crate::store::AttemptStatus::Delivered
        && !caller.is_local()
        && crate::egress::resolves_private(&hook.url).await
    {
        tracing::debug!(
            webhook_id = id,
            status_code = ?attempt.status_code,
            latency_ms = ?attempt.latency_ms,
            error = ?attempt.error,
            "test ping to a private address failed; the caller is told no more"
        );
        attempt.status_code = None;
        attempt.latency_ms = None;
        attempt.error = Some(WITHHELD.to_owned());
    }
    let logged = attempt.clone();
    bus.store
        .write(Durability::Lazy, move |tx| {
            if tx.webhook(id)?.is_some() {
                tx.log_attempt(id, &logged)?;
            }
            Ok(())
        })
        .await?;
    Ok(Tested {
        success: attempt.status == crate::store::AttemptStatus::Delivered,
        webhook_id: id,
        attempt: attempt.to_wire(),
    })
}
