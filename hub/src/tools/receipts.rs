//! Receipts for direct messages: `message_status(event_ids)` tells a sender
//! whether each was stored, pushed into the recipient's session, or read,
//! and whether the recipient is still live; `get_events(receipts=true)`
//! adds the same to the reader's own direct messages. Recipients report
//! pushes with `message_pushed` (the proxy after a channel notification,
//! `wait` after printing) — a call for clients, not in the catalog. A
//! message is read once the recipient's cursor passes it (a consuming
//! `get_events` returned it, or `ack_events`); peeks and narrowed reads,
//! which push itself uses, do not count.

use serde_json::{Value, json};

use super::args::{ArgError, Args};
use super::{Outcome, Reply};
use crate::state::Bus;
use crate::store::{Durability, EventRecord, Mark, Receipt, SessionRecord, Snapshot, StoreError};

/// The most ids one call may ask about.
const IDS_MAX: usize = 1000;

/// `event_ids`: whole numbers (or their text), one or a list.
fn event_ids(value: Option<Value>) -> Result<Vec<u64>, ArgError> {
    let items = match value {
        None | Some(Value::Null) => {
            return Err(ArgError(
                "event_ids is required (a list of event ids)".into(),
            ));
        }
        Some(Value::Array(items)) => items,
        Some(one) => vec![one],
    };
    if items.len() > IDS_MAX {
        return Err(ArgError(format!(
            "event_ids has {} items; the limit is {IDS_MAX}",
            items.len()
        )));
    }
    items
        .iter()
        .map(|v| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
        .map(|id| {
            id.ok_or_else(|| {
                ArgError(format!(
                    "event_ids must be event ids (whole numbers), got {}",
                    Value::Array(items.clone())
                ))
            })
        })
        .collect()
}

/// Where a direct message got to: `read` beats `pushed` beats `stored`.
fn status(r: Receipt) -> &'static str {
    match (r.pushed_at, r.read_at) {
        (_, Some(_)) => "read",
        (Some(_), None) => "pushed",
        (None, None) => "stored",
    }
}

/// A direct message's receipt as the wire shows it.
pub fn receipt_json(
    event: &EventRecord,
    receipt: Receipt,
    recipient: Option<&SessionRecord>,
) -> Value {
    let to = shared::channel::dm_target(&event.channel).unwrap_or_default();
    let state = match recipient {
        Some(s) if s.is_deleted() => "ended",
        Some(_) => "live",
        None => "unknown",
    };
    json!({
        "event_id": event.id,
        "recipient": to,
        "recipient_name": recipient.map(|s| &s.name),
        "recipient_state": state,
        "status": status(receipt),
        "pushed_at": receipt.pushed_at.map(shared::time::format_ms),
        "read_at": receipt.read_at.map(shared::time::format_ms),
    })
}

/// The receipt of event `id` when it is a direct message.
fn lookup(snap: &Snapshot, event: &EventRecord) -> Result<Option<Value>, StoreError> {
    let Some(to) = shared::channel::dm_target(&event.channel) else {
        return Ok(None);
    };
    let recipient = snap.session(to)?;
    Ok(Some(receipt_json(
        event,
        snap.receipt(event.id)?,
        recipient.as_ref(),
    )))
}

/// `message_status(event_ids)`: one entry per id, in the order asked.
pub async fn message_status(bus: &Bus, arguments: Option<Value>) -> Outcome {
    let raw = arguments.as_ref().and_then(|a| a.get("event_ids")).cloned();
    Args::new(arguments, &["event_ids"])?;
    let ids = event_ids(raw)?;
    let items = bus
        .store
        .read(move |snap| {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let item = match snap.event(id)? {
                    None => json!({"event_id": id, "error": "Event not found"}),
                    Some(e) => match lookup(snap, &e)? {
                        Some(receipt) => receipt,
                        None => json!({
                            "event_id": id,
                            "status": "stored",
                            "error": "Not a direct message (only session:<id> channels have receipts)",
                        }),
                    },
                };
                out.push(item);
            }
            Ok(out)
        })
        .await?;
    Ok(Reply::List(items))
}

/// `message_pushed(session_id, event_ids)`: the recipient's client showed
/// these direct messages in its session. Ids that are not direct messages to
/// it are passed over.
pub async fn message_pushed(bus: &Bus, arguments: Option<Value>) -> Outcome {
    let raw = arguments.as_ref().and_then(|a| a.get("event_ids")).cloned();
    let a = Args::new(arguments, &["session_id", "event_ids"])?;
    let session_id = a.req_str("session_id")?;
    let ids = event_ids(raw)?;
    let marked = bus
        .store
        .write(Durability::Lazy, move |tx| {
            tx.mark_messages(&session_id, &ids, Mark::Pushed, shared::time::now_ms())
        })
        .await?;
    Ok(Reply::Object(json!({"success": true, "marked": marked})))
}

/// Adds `receipt` to the direct messages `reader` sent among `events`.
pub async fn attach(bus: &Bus, reader: &str, events: &mut [Value]) -> Result<(), StoreError> {
    let wanted: Vec<(usize, u64)> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            e["session_id"] == reader
                && e["channel"]
                    .as_str()
                    .is_some_and(|c| shared::channel::dm_target(c).is_some())
        })
        .filter_map(|(i, e)| Some((i, e["id"].as_u64()?)))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let found = bus
        .store
        .read(move |snap| {
            let mut out = Vec::new();
            for (i, id) in wanted {
                if let Some(e) = snap.event(id)?
                    && let Some(r) = lookup(snap, &e)?
                {
                    out.push((i, r));
                }
            }
            Ok(out)
        })
        .await?;
    for (i, receipt) in found {
        events[i]["receipt"] = receipt;
    }
    Ok(())
}
