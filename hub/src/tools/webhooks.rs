//! Webhook registration tools. Delivery lives in [`crate::delivery`].

use serde_json::{Value, json};

use super::args::{ArgError, Args, check_len};
use super::{Outcome, Reply};
use crate::state::Bus;
use crate::store::{Durability, WebhookRecord};

const URL_MAX: usize = 2048;
const SECRET_MAX: usize = 1024;

/// `register_webhook(url, channel?, event_types?, secret?)`
pub async fn register(bus: &Bus, arguments: Option<Value>) -> Outcome {
    let a = Args::new(arguments, &["url", "channel", "event_types", "secret"])?;
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
    let w = record.to_wire();
    Ok(Reply::Object(json!({
        "webhook_id": w.webhook_id,
        "url": w.url,
        "channel": w.channel,
        "event_types": w.event_types,
        "created_at": w.created_at,
    })))
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
        .map(|h| serde_json::to_value(h.to_wire()).unwrap_or(Value::Null))
        .collect();
    Ok(Reply::List(items))
}

fn webhook_id(a: &Args) -> Result<u64, ArgError> {
    let id = a.req_i64("webhook_id")?;
    u64::try_from(id).map_err(|_| ArgError(format!("webhook_id must be a positive id (got {id})")))
}

fn not_found(id: u64) -> Value {
    json!({"success": false, "error": "Webhook not found", "webhook_id": id})
}

/// `set_webhook_active(webhook_id, active)`
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
