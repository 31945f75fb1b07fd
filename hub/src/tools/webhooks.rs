//! Webhook tools: registration, listing, pause/resume, removal, the
//! delivery log, redelivery and a test ping. Delivery lives in
//! [`crate::delivery`].

use serde_json::{Value, json};

use super::args::{ArgError, Args, check_len};
use super::{Outcome, Reply};
use crate::state::Bus;
use crate::store::{Durability, WebhookRecord};

const URL_MAX: usize = 2048;
const SECRET_MAX: usize = 1024;
const DELIVERIES_DEFAULT: i64 = 20;
const DELIVERIES_MAX: i64 = crate::store::DELIVERY_LOG_KEEP as i64;

/// `register_webhook(url, channel?, event_types?, secret?, include_system=false)`
pub async fn register(bus: &Bus, arguments: Option<Value>) -> Outcome {
    let a = Args::new(
        arguments,
        &["url", "channel", "event_types", "secret", "include_system"],
    )?;
    let url = a.req_str("url")?.trim().to_owned();
    check_len("url", &url, URL_MAX)?;
    let parsed = url::Url::parse(&url).map_err(|e| {
        ArgError(format!(
            "url is not a valid URL ({e}); send e.g. https://example.com/hook"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(ArgError(format!(
            "url must be an http:// or https:// URL with a host (got '{url}')"
        ))
        .into());
    }
    if let Some(ip) = crate::webhooks::refused_literal(&url, bus.delivery.config().deny_private) {
        return Err(ArgError(format!(
            "url points at a private address ({ip}), which this hub refuses (--webhook-deny-private); use a public address"
        ))
        .into());
    }
    let channel = a.opt_str("channel")?.filter(|c| !c.is_empty());
    if let Some(c) = &channel {
        check_len("channel", c, 256)?;
    }
    let event_types = a
        .opt_strings("event_types")?
        .map(|types| {
            types
                .into_iter()
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|types| !types.is_empty());
    let secret = a.opt_str("secret")?.filter(|s| !s.is_empty());
    if let Some(s) = &secret {
        check_len("secret", s, SECRET_MAX)?;
    }
    let include_system = a.bool_or("include_system", false)?;
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
    let mut reply = json!({
        "webhook_id": w.webhook_id,
        "url": w.url,
        "channel": w.channel,
        "event_types": w.event_types,
        "created_at": w.created_at,
    });
    if w.include_system {
        reply["include_system"] = json!(true);
    }
    Ok(Reply::Object(reply))
}

/// `list_webhooks(active_only=true)`: newest first, secrets never shown.
pub async fn list(bus: &Bus, arguments: Option<Value>) -> Outcome {
    let a = Args::new(arguments, &["active_only"])?;
    let active_only = a.bool_or("active_only", true)?;
    let mut hooks = bus.store.read(|s| s.webhooks()).await?;
    hooks.retain(|h| h.active || !active_only);
    hooks.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let items = hooks
        .iter()
        .map(|h| serde_json::to_value(shown(h)).unwrap_or(Value::Null))
        .collect();
    Ok(Reply::List(items))
}

/// A webhook as callers see it: credentials in its URL are redacted.
fn shown(record: &WebhookRecord) -> shared::wire::WebhookInfo {
    let mut info = record.to_wire();
    info.url = crate::egress::redact_url(&info.url);
    info
}

fn webhook_id(a: &Args) -> Result<u64, ArgError> {
    let id = a.req_i64("webhook_id")?;
    u64::try_from(id).map_err(|_| ArgError(format!("webhook_id must be a positive id (got {id})")))
}

fn not_found(id: u64) -> Value {
    json!({"success": false, "error": "Webhook not found", "webhook_id": id})
}

/// `set_webhook_active(webhook_id, active)`: pausing ends the webhook's
/// pending deliveries as failed (logged, so they can be redelivered);
/// resuming clears a disable by the hub and its failure streak.
pub async fn set_active(bus: &Bus, arguments: Option<Value>) -> Outcome {
    let a = Args::new(arguments, &["webhook_id", "active"])?;
    let id = webhook_id(&a)?;
    let active = a.req_bool("active")?;
    let reply = bus
        .store
        .write(Durability::Durable, move |tx| {
            let Some(mut hook) = tx.webhook(id)? else {
                return Ok(not_found(id));
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
            Ok(json!({"success": true, "webhook_id": id, "active": active}))
        })
        .await?;
    Ok(Reply::Object(reply))
}

/// `unregister_webhook(webhook_id)`
pub async fn unregister(bus: &Bus, arguments: Option<Value>) -> Outcome {
    let a = Args::new(arguments, &["webhook_id"])?;
    let id = webhook_id(&a)?;
    let reply = bus
        .store
        .write(Durability::Durable, move |tx| {
            Ok(if tx.delete_webhook(id)? {
                json!({"success": true, "webhook_id": id})
            } else {
                not_found(id)
            })
        })
        .await?;
    Ok(Reply::Object(reply))
}

/// `list_webhook_deliveries(webhook_id, event_id?, limit=20)`: the delivery
/// log, newest first, with how many deliveries are still pending.
pub async fn deliveries(bus: &Bus, arguments: Option<Value>) -> Outcome {
    let a = Args::new(arguments, &["webhook_id", "event_id", "limit"])?;
    let id = webhook_id(&a)?;
    let event_id = opt_event_id(&a)?;
    let limit = a.opt_i64("limit")?.unwrap_or(DELIVERIES_DEFAULT);
    if !(1..=DELIVERIES_MAX).contains(&limit) {
        return Err(ArgError(format!(
            "limit must be from 1 to {DELIVERIES_MAX} (got {limit})"
        ))
        .into());
    }
    let limit = usize::try_from(limit).unwrap_or(1);
    let reply = bus
        .store
        .read(move |s| {
            if s.webhook(id)?.is_none() {
                return Ok(not_found(id));
            }
            let rows: Vec<Value> = s
                .delivery_log(id, limit, event_id)?
                .iter()
                .map(|r| serde_json::to_value(r.to_wire()).unwrap_or(Value::Null))
                .collect();
            Ok(json!({
                "webhook_id": id,
                "pending": s.pending_deliveries(id)?,
                "deliveries": rows,
            }))
        })
        .await?;
    Ok(Reply::Object(reply))
}

/// `redeliver_webhook(webhook_id, event_id)`: queues the event for the
/// webhook again (same `webhook-id`), whatever happened to it before.
pub async fn redeliver(bus: &Bus, arguments: Option<Value>) -> Outcome {
    let a = Args::new(arguments, &["webhook_id", "event_id"])?;
    let id = webhook_id(&a)?;
    let Some(event_id) = opt_event_id(&a)? else {
        return Err(
            ArgError("event_id is required: the id of the event to send again".into()).into(),
        );
    };
    let reply = bus
        .store
        .write(Durability::Durable, move |tx| {
            let Some(hook) = tx.webhook(id)? else {
                return Ok(not_found(id));
            };
            if !hook.active {
                return Ok(json!({
                    "success": false,
                    "error": "Webhook is paused; enable it first (set_webhook_active)",
                    "webhook_id": id,
                }));
            }
            if tx.event(event_id)?.is_none() {
                return Ok(json!({
                    "success": false,
                    "error": "Event not found",
                    "webhook_id": id,
                    "event_id": event_id,
                }));
            }
            tx.redeliver(id, event_id, shared::time::now_ms())?;
            Ok(json!({
                "success": true,
                "webhook_id": id,
                "event_id": event_id,
                "delivery_id": crate::store::delivery_id(event_id, id),
            }))
        })
        .await?;
    Ok(Reply::Object(reply))
}

/// `test_webhook(webhook_id)`: POSTs a `ping` event (event_id 0) now and
/// returns the attempt, which also goes in the delivery log.
pub async fn test(bus: &Bus, arguments: Option<Value>) -> Outcome {
    let a = Args::new(arguments, &["webhook_id"])?;
    let id = webhook_id(&a)?;
    let Some(hook) = bus.store.read(move |s| s.webhook(id)).await? else {
        return Ok(Reply::Object(not_found(id)));
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
    let mut reply = json!({
        "success": attempt.status == crate::store::AttemptStatus::Delivered,
        "webhook_id": id,
    });
    if let (Value::Object(out), Ok(Value::Object(row))) =
        (&mut reply, serde_json::to_value(attempt.to_wire()))
    {
        out.extend(row);
    }
    Ok(Reply::Object(reply))
}

fn opt_event_id(a: &Args) -> Result<Option<u64>, ArgError> {
    match a.opt_i64("event_id")? {
        None => Ok(None),
        Some(n) => u64::try_from(n)
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| ArgError(format!("event_id must be a positive event id (got {n})"))),
    }
}
