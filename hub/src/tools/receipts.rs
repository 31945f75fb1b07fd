//! Receipts for direct messages: `message_status(event_ids)` tells a sender
//! how far each got — stored, offered, delivered, read, each step with its
//! time and path, and a hold while a wake waits — and whether the recipient
//! is still live; `get_events(receipts=true)` adds the same to the reader's
//! own direct messages.
//!
//! Recipients' clients report with `message_receipt` (the proxy's channel
//! and desktop notice offer, a wake-up hook delivers, a pane wake holds or
//! delivers) or the older `message_pushed` (offered by channel) — calls for
//! clients, not in the catalog. The hub records the rest itself
//! ([`on_read`], [`on_reply`], and `ack_events`): only what the agent's own
//! calls show counts, never a push poll's or a helper's read.

use shared::tools::events::PageEvent;
use shared::tools::receipts::Status;
use shared::tools::receipts::{
    Held, Marked, Path, PushedParams, Receipt as ReceiptInfo, ReceiptParams, StatusParams, Step,
};
use shared::tools::refusal::EVENT_NOT_FOUND;

use super::Outcome;
use crate::caller::{Caller, Reader};
use crate::keys::Presented;
use crate::state::Bus;
use crate::store::{
    Change, Durability, EventRecord, Receipt, SessionRecord, Snapshot, StoreError, Tx,
};

super::handlers! {
    shared::tools::receipts::MessageStatus => message_status;
    shared::tools::receipts::MessageReceipt => message_receipt;
    shared::tools::receipts::MessagePushed => message_pushed;
}

/// A direct message's receipt as the wire shows it.
pub fn receipt_info(
    event: &EventRecord,
    receipt: &Receipt,
    recipient: Option<&SessionRecord>,
) -> ReceiptInfo {
    let to = shared::channel::dm_target(&event.channel).unwrap_or_default();
    let state = match recipient {
        Some(s) if s.is_deleted() => "ended",
        Some(_) => "live",
        None => "unknown",
    };
    let at = |m: Option<crate::store::receipts::StepMark>| {
        Some(m.map(|m| shared::time::format_ms(m.at)))
    };
    let path = |m: Option<crate::store::receipts::StepMark>| Some(m.and_then(|m| m.path));
    ReceiptInfo {
        event_id: event.id,
        recipient: Some(to.to_owned()),
        recipient_name: Some(recipient.map(|s| s.name.clone())),
        recipient_state: Some(state.to_owned()),
        status: Some(receipt.status()),
        offered_at: at(receipt.offered),
        offered_path: path(receipt.offered),
        delivered_at: at(receipt.delivered),
        delivered_path: path(receipt.delivered),
        read_at: at(receipt.read),
        read_path: path(receipt.read),
        held: receipt.hold().map(|h| Held {
            reason: h.reason.clone(),
            path: h.path,
            at: shared::time::format_ms(h.at),
        }),
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
        &snap.receipt(event.id)?,
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
                            Some(Status::Stored),
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
fn refused(event_id: u64, status: Option<Status>, error: &str) -> ReceiptInfo {
    ReceiptInfo {
        event_id,
        recipient: None,
        recipient_name: None,
        recipient_state: None,
        status,
        offered_at: None,
        offered_path: None,
        delivered_at: None,
        delivered_path: None,
        read_at: None,
        read_path: None,
        held: None,
        error: Some(error.to_owned()),
    }
}

/// Applies `change` to those of `ids` that are direct messages to
/// `session_id`; reporting for a keyed session needs its key.
async fn mark(
    bus: &Bus,
    caller: &Caller,
    session_id: String,
    ids: Vec<u64>,
    change: Change,
) -> Outcome<Marked> {
    let key = Presented::of(caller);
    let marked = bus
        .store
        .write(Durability::Lazy, move |tx| {
            if let Err(refusal) = key.may_act_as_id(tx, &session_id)? {
                return Ok(Err(refusal));
            }
            tx.mark_messages(&session_id, &ids, &change, shared::time::now_ms())
                .map(Ok)
        })
        .await??;
    Ok(Marked {
        success: true,
        marked: marked as u64,
    })
}

/// `message_receipt(session_id, event_ids, step, path, reason?)`: the
/// recipient's client says how far these direct messages got. Ids that are
/// not direct messages to it are passed over; a step the receipt has
/// passed changes nothing.
pub async fn message_receipt(bus: &Bus, caller: &Caller, p: ReceiptParams) -> Outcome<Marked> {
    let change = match (p.step, p.reason) {
        (Step::Offered, _) => Change::Offered(p.path),
        (Step::Delivered, _) => Change::Delivered(p.path),
        (Step::Held, reason) => Change::Held {
            path: p.path,
            reason: reason.unwrap_or_default(),
        },
    };
    mark(bus, caller, p.session_id, p.event_ids, change).await
}

/// `message_pushed(session_id, event_ids)`: the older report, recorded as
/// offered by channel.
pub async fn message_pushed(bus: &Bus, caller: &Caller, p: PushedParams) -> Outcome<Marked> {
    mark(
        bus,
        caller,
        p.session_id,
        p.event_ids,
        Change::Offered(Path::Channel),
    )
    .await
}

/// What a read returned proves, recorded in its own write: the agent's own
/// read (reader `agent`) delivered the direct messages to the session it
/// names among `returned`, and a consuming one read them (path `resume`).
/// A push poll's, a helper's or a `wait`'s read proves nothing.
pub fn on_read(
    tx: &mut Tx<'_>,
    caller: &Caller,
    session_id: &str,
    returned: &[u64],
    consumed: bool,
    now_ms: i64,
) -> Result<(), StoreError> {
    if caller.reader != Reader::Agent || returned.is_empty() {
        return Ok(());
    }
    let change = if consumed {
        Change::Read(Path::Resume)
    } else {
        Change::Delivered(Path::Tool)
    };
    tx.mark_messages(session_id, returned, &change, now_ms)?;
    Ok(())
}

/// A just-appended event from `publisher` answering event `correlation_id`
/// reads that event when it was a direct message to the publisher.
pub fn on_reply(
    tx: &mut Tx<'_>,
    publisher: &str,
    correlation_id: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    if let Some(id) = correlation_id.and_then(|c| c.trim().parse::<u64>().ok()) {
        tx.mark_messages(publisher, &[id], &Change::Read(Path::Reply), now_ms)?;
    }
    Ok(())
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
