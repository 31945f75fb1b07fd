//! Webhook tools: registration, listing, pause/resume, removal, the
//! delivery log, redelivery and a test ping. Delivery lives in
//! [`crate::delivery`].

use shared::tools::webhooks::{
    Deliveries, DeliveriesParams, ListWebhooksParams, RedeliverParams, Redelivered,
    RegisterWebhookParams, SetActiveParams, Tested, WebhookActive, WebhookParams,
    WebhookRegistered, WebhookRemoved,
};
use shared::tools::{ArgError, Refusal, webhooks};
use shared::wire::WebhookInfo;

use super::Outcome;
use crate::caller::Caller;
use crate::state::Bus;
use crate::store::{AttemptRecord, Durability, Snapshot, WebhookRecord};

super::handlers! {
    webhooks::RegisterWebhook => register;
    webhooks::ListWebhooks => list;
    webhooks::SetWebhookActive => set_active;
    webhooks::UnregisterWebhook => unregister;
    webhooks::ListWebhookDeliveries => deliveries;
    webhooks::RedeliverWebhook => redeliver;
    webhooks::TestWebhook => test;
}

/// `register_webhook(url, channel?, event_types?, secret?, include_system=false)`
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
            types
                .into_iter()
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|types| !types.is_empty());
    let secret = p.secret.filter(|s| !s.is_empty());
    let include_system = p.include_system;
    let record = bus
        .store
        .write(Durability::Durable, move |tx| {
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
            Ok(record)
        })
        .await?;
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

/// `list_webhooks(active_only=true)`: newest first, secrets never shown.
pub async fn list(bus: &Bus, _caller: &Caller, p: ListWebhooksParams) -> Outcome<Vec<WebhookInfo>> {
    let mut hooks = bus.store.read(Snapshot::webhooks).await?;
    hooks.retain(|h| h.active || !p.active_only);
    hooks.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    Ok(hooks.iter().map(shown).collect())
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

/// `test_webhook(webhook_id)`: POSTs a `ping` event (`event_id` 0) now and
/// returns the attempt, which also goes in the delivery log.
pub async fn test(bus: &Bus, _caller: &Caller, p: WebhookParams) -> Outcome<Tested> {
    let id = id(p.webhook_id);
    let Some(hook) = bus.store.read(move |s| s.webhook(id)).await? else {
        return Err(Refusal::WebhookNotFound { webhook_id: id }.into());
    };
    let attempt = bus.delivery.ping(&hook).await;
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
