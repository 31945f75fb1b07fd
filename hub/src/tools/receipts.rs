//! Receipts for direct messages: `message_status(event_ids)` tells a sender
//! whether each was stored, pushed into the recipient's session, or read,
//! and whether the recipient is still live; `get_events(receipts=true)`
//! adds the same to the reader's own direct messages. Recipients report
//! pushes with `message_pushed` (the proxy after a channel notification,
//! `wait` after printing) — a call for clients, not in the catalog. A
//! message is read once the recipient's cursor passes it (a consuming
//! `get_events` returned it, or `ack_events`); peeks and narrowed reads,
//! which push itself uses, do not count.

use shared::tools::events::PageEvent;
use shared::tools::receipts::{Pushed, PushedParams, Receipt as ReceiptInfo, StatusParams};
use shared::tools::refusal::EVENT_NOT_FOUND;

use super::Outcome;
use crate::caller::Caller;
use crate::keys::Presented;
use crate::state::Bus;
use crate::store::{Durability, EventRecord, Mark, Receipt, SessionRecord, Snapshot, StoreError};

super::handlers! {
    shared::tools::receipts::MessageStatus => message_status;
    shared::tools::receipts::MessagePushed => message_pushed;
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
pub fn receipt_info(
    event: &EventRecord,
    receipt: Receipt,
    recipient: Option<&SessionRecord>,
) -> ReceiptInfo {
    let to = shared::channel::dm_target(&event.channel).unwrap_or_default();
    let state = match recipient {
        Some(s) if s.is_deleted() => "ended",
        Some(_) => "live",
        None => "unknown",
    };
    ReceiptInfo {
        event_id: event.id,
        recipient: Some(to.to_owned()),
        recipient_name: Some(recipient.map(|s| s.name.clone())),
        recipient_state: Some(state.to_owned()),
        status: Some(status(receipt).to_owned()),
        pushed_at: Some(receipt.pushed_at.map(shared::time::format_ms)),
        read_at: Some(receipt.read_at.map(shared::time::format_ms)),
        error: None,
    }
}

/// The receipt of event `id` when it is a direct message.
fn lookup(snap: &Snapshot, event: &EventRecord) -> Result<Option<ReceiptInfo>, StoreError> {
    let Some(to) = shared::channel::dm_target(&event.channel) else {
        return Ok(None);
    };
    let recipient = snap.session(to)?;
    Ok(Some(receipt_info(
        event,
        snap.receipt(event.id)?,
        recipient.as_ref(),
    )))
}

/// `message_status(event_ids)`: one entry per id, in the order asked.
pub async fn message_status(
    bus: &Bus,
    _caller: &Caller,
    p: StatusParams,
) -> Outcome<Vec<ReceiptInfo>> {
    let ids = p.event_ids;
    let items = bus
        .store
        .read(move |snap| {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let item = match snap.event(id)? {
                    None => refused(id, None, EVENT_NOT_FOUND),
                    Some(e) => match lookup(snap, &e)? {
                        Some(receipt) => receipt,
                        None => refused(
                            id,
                            Some("stored"),
                            "Not a direct message (only session:<id> channels have receipts)",
                        ),
                    },
                };
                out.push(item);
            }
            Ok(out)
        })
        .await?;
    Ok(items)
}

/// The entry for an id that has no receipt.
fn refused(event_id: u64, status: Option<&str>, error: &str) -> ReceiptInfo {
    ReceiptInfo {
        event_id,
        recipient: None,
        recipient_name: None,
        recipient_state: None,
        status: status.map(str::to_owned),
        pushed_at: None,
        read_at: None,
        error: Some(error.to_owned()),
    }
}

/// `message_pushed(session_id, event_ids)`: the recipient's client showed
/// these direct messages in its session. Ids that are not direct messages to
/// it are passed over. Reporting for a keyed session needs its key.
pub async fn message_pushed(bus: &Bus, caller: &Caller, p: PushedParams) -> Outcome<Pushed> {
    let PushedParams {
        session_id,
        event_ids: ids,
    } = p;
    let key = Presented::of(caller);
    let marked = bus
        .store
        .write(Durability::Lazy, move |tx| {
            if let Err(refusal) = key.may_act_as_id(tx, &session_id)? {
                return Ok(Err(refusal));
            }
            tx.mark_messages(&session_id, &ids, Mark::Pushed, shared::time::now_ms())
                .map(Ok)
        })
        .await??;
    Ok(Pushed {
        success: true,
        marked: marked as u64,
    })
}

/// Adds `receipt` to the direct messages `reader` sent among `events`.
pub async fn attach(bus: &Bus, reader: &str, events: &mut [PageEvent]) -> Result<(), StoreError> {
    let wanted: Vec<(usize, u64)> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            e.event.session_id == reader && shared::channel::dm_target(&e.event.channel).is_some()
        })
        .map(|(i, e)| (i, e.event.id))
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
        events[i].receipt = Some(receipt);
    }
    Ok(())
}
