//! Events: publish, read (cursors, resume, peek, narrowing, levels,
//! long-poll: `get`, with the call as read in `read`), and ack, with the
//! original's rules as README's *Tools* section states them; the params
//! and replies are [`shared::tools::events`].

use shared::cursor;
use shared::level::SignalLevel;
use shared::text::Shown;
use shared::tools::events::{AckParams, Acked, PublishParams, Published};
use shared::tools::{ArgError, Refusal, events};

use super::{Outcome, deleted, deleted_refusal};
use crate::caller::Caller;
use crate::keys::Presented;
use crate::sessions;
use crate::state::Bus;
use crate::store::{Durability, NewEvent, SessionRecord};

pub mod get;
mod read;

super::handlers! {
    events::PublishEvent => publish;
    events::GetEvents => get::get;
    events::AckEvents => ack;
}

const DELETED_READ_HINT: &str = "This session was unregistered or timed out, and its cursor is frozen. Call register_session to get a live session, or stop polling.";
const DELETED_PUBLISH_HINT: &str = "This session was unregistered or timed out. The event was stored anyway, attributed to the deleted session id. Call register_session to get a live session - this id will not come back on its own.";

/// `publish_event(event_type, payload, session_id?, channel="all", title?, tags?, correlation_id?, signal_level?)`
pub async fn publish(bus: &Bus, caller: &Caller, p: PublishParams) -> Outcome<Published> {
    let key = Presented::of(caller);
    let every = bus.heartbeat_every_ms;
    if p.payload.len() > bus.limits.max_payload_bytes {
        return Err(ArgError::PayloadTooLarge {
            len: p.payload.len(),
            max: bus.limits.max_payload_bytes,
        }
        .into());
    }
    let PublishParams {
        event_type,
        payload,
        session_id,
        channel,
        title,
        tags,
        correlation_id,
        signal_level,
    } = p;
    if let Some(level) = &signal_level
        && SignalLevel::parse(level).is_none()
    {
        tracing::warn!(
            "Unknown signal_level '{}' (expected one of lifecycle, info, actionable). Storing as-is.",
            Shown(level)
        );
    }
    if let Some(warning) = shared::channel::format_warning(&channel) {
        tracing::warn!("{}", Shown(&warning));
    }
    let new = NewEvent {
        event_type,
        payload,
        session_id: session_id.clone().unwrap_or_else(|| "anonymous".to_owned()),
        channel,
        correlation_id,
        signal_level,
        title,
        tags,
    };
    let (event, publisher, dm_target) = bus
        .store
        .write(Durability::Durable, move |tx| {
            let now = tx.now_ms();
            // Attributing the event to a session acts as it.
            let publisher = match session_id.as_deref() {
                Some(id) if id != "anonymous" => match sessions::touch(tx, id, &key, now, every)? {
                    Ok(publisher) => publisher,
                    Err(refusal) => return Ok(Err(refusal)),
                },
                _ => None,
            };
            let event = tx.append_event(new)?;
            // The deliveries commit with the event; the commit wakes the worker.
            tx.enqueue_deliveries(&event)?;
            tx.index_direct_message(&event)?;
            let dm_target = match shared::channel::dm_target(&event.channel) {
                Some(target) => tx.session(target)?.filter(|s| !s.is_deleted()),
                None => None,
            };
            Ok(Ok((event, publisher, dm_target)))
        })
        .await??;
    tracing::debug!(
        event_id = event.id,
        channel = %Shown(&event.channel),
        event_type = %Shown(&event.event_type),
        "stored"
    );
    if let Some(target) = dm_target {
        super::notify::direct_message(bus, &target, publisher.as_ref(), &event.payload);
    }
    let deleted = publisher
        .filter(SessionRecord::is_deleted)
        .map(|p| deleted(&p, DELETED_PUBLISH_HINT));
    Ok(Published {
        event_id: event.id,
        signal_level: event.level().as_str().to_owned(),
        correlation_id: event.correlation_id.filter(|c| !c.is_empty()),
        event_type: event.event_type,
        payload: event.payload,
        channel: event.channel,
        session_deleted: deleted.as_ref().map(|_| true),
        deleted,
    })
}

/// `ack_events(session_id, cursor, allow_rewind=false)`
pub async fn ack(bus: &Bus, caller: &Caller, p: AckParams) -> Outcome<Acked> {
    let key = Presented::of(caller);
    let every = bus.heartbeat_every_ms;
    let AckParams {
        session_id,
        cursor: raw,
        allow_rewind,
    } = p;
    let (reply, ended) = bus
        .store
        .write(Durability::Durable, move |tx| {
            let now = tx.now_ms();
            let mut s = match sessions::touch(tx, &session_id, &key, now, every)? {
                Ok(Some(s)) => s,
                Ok(None) => return Ok((Err(Refusal::SessionNotFound { session_id }), None)),
                Err(refusal) => return Ok((Err(refusal), None)),
            };
            if s.is_deleted() {
                return Ok((Err(deleted_refusal(&s, DELETED_READ_HINT)), Some(s)));
            }
            let position = s.last_cursor;
            let c = match cursor::parse(&raw) {
                Ok(c) => c,
                Err(e) => {
                    return Ok((Err(Refusal::cursor_invalid(session_id, position, &e)), None));
                }
            };
            let tip = tx.tip()?;
            if c > tip {
                return Ok((
                    Err(Refusal::cursor_ahead(session_id, position, c, tip)),
                    None,
                ));
            }
            if let Some(p) = position
                && c < p
                && !allow_rewind
            {
                return Ok((Err(Refusal::cursor_behind(session_id, p, c)), None));
            }
            if c > position.unwrap_or(0) {
                tx.mark_read_through(&session_id, position.unwrap_or(0), c, now)?;
            }
            s.last_cursor = Some(c);
            tx.put_session(&s)?;
            Ok((
                Ok(Acked {
                    success: true,
                    session_id,
                    cursor: c.to_string(),
                    previous_cursor: position.map(|p| p.to_string()),
                }),
                None,
            ))
        })
        .await?;
    if let Some(s) = ended {
        bus.warn_deleted_once(&s, "ack_events");
    }
    Ok(reply?)
}
