//! Events: publish, read (cursors, resume, peek, narrowing, levels,
//! long-poll), and ack, with the original's rules as README's *Tools*
//! section states them; the params and replies are
//! [`shared::tools::events`]. `read` holds a call as read and the rule of
//! which reads consume.

use shared::cursor;
use shared::level::SignalLevel;
use shared::text::Shown;
use shared::tools::events::{
    AckParams, Acked, GetParams, Page, PageEvent, PublishParams, Published,
};
use shared::tools::receipts::Path;
use shared::tools::{ArgError, Refusal, events};

use super::receipts::{on_read, on_reply};
use super::{Failure, Outcome, deleted, deleted_refusal};
use crate::caller::{Caller, Reader};
use crate::keys::Presented;
use crate::sessions;
use crate::state::Bus;
use crate::store::{Durability, EventPage, EventQuery, NewEvent, SessionRecord, StoreError, Woken};

mod read;

use self::read::Read;

super::handlers! {
    events::PublishEvent => publish;
    events::GetEvents => get;
    events::AckEvents => ack;
}

const DELETED_READ_HINT: &str = "This session was unregistered or timed out, and its cursor is frozen. Call register_session to get a live session, or stop polling.";
const DELETED_PUBLISH_HINT: &str = "This session was unregistered or timed out. The event was stored anyway, attributed to the deleted session id. Call register_session to get a live session - this id will not come back on its own.";

/// `publish_event(event_type, payload, session_id?, channel="all", title?, tags?, correlation_id?, signal_level?)`
pub async fn publish(bus: &Bus, caller: &Caller, p: PublishParams) -> Outcome<Published> {
    let key = Presented::of(caller);
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
    let every = bus.heartbeat_every_ms;
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
            if event.session_id != "anonymous" {
                on_reply(tx, &event.session_id, event.correlation_id.as_deref(), now)?;
            }
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
    let (reach, reach_note) = match shared::channel::dm_target(&event.channel) {
        Some(to) => {
            let (reach, note) = super::sessions::reach_of(bus, to, dm_target.as_ref());
            (Some(reach), Some(note))
        }
        None => (None, None),
    };
    if let Some(target) = dm_target {
        super::notify::direct_message(bus, &target, publisher.as_ref(), event.id, &event.payload);
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
        reach,
        reach_note,
    })
}

/// What one pass over the store found.
enum Pass {
    /// A finished reply.
    Done(Page),
    /// A page; empty pages may wait for more. With its next cursor: every
    /// event up to it was examined, so a later pass starts there.
    Page(Page, bool, Option<u64>),
}

/// `get_events(...)`: one pass, repeated on each publish while a long-poll
/// waits and the page is empty. A long-poll also returns when the reader's
/// session ends (with the refusal that says so), or a session whose
/// direct messages it waits on ends (with what it has, maybe nothing).
pub async fn get(bus: &Bus, caller: &Caller, p: GetParams) -> Outcome<Page> {
    let mut read = Read::new(p, Presented::of(caller));
    let deadline = tokio::time::Instant::now() + read.wait;
    // A `wait` held as a session's wake-up hook watches its direct messages:
    // while it is connected, the session is reachable by `hook`.
    let _hook = (caller.reader == Reader::Wait && !read.wait.is_zero())
        .then(|| {
            read.channels
                .iter()
                .find_map(|c| shared::channel::dm_target(c))
        })
        .flatten()
        .map(|session| bus.store.hook_wait(session));
    let mut tip = bus.store.tip();
    // A read narrowed to channels wakes only for events on them (and the
    // end of its sessions: that event is on another channel); others wake
    // on every commit that appended events.
    let on_channels = (!read.wait.is_zero() && !read.channels.is_empty())
        .then(|| bus.store.wait_for(&read.channels, &read.sessions_ending()));
    let mut ended = false;
    loop {
        tip.borrow_and_update();
        match pass(bus, caller, &read).await? {
            Pass::Done(reply) => return Ok(reply),
            Pass::Page(reply, empty, next) => {
                if !empty || read.wait.is_zero() || ended {
                    return Ok(reply);
                }
                // The next pass never examines again what this one did.
                if next.is_some() {
                    read.cursor = next;
                }
                let woken = async {
                    match &on_channels {
                        Some(wait) => Some(wait.changed().await),
                        None => tip.changed().await.ok().map(|()| Woken::Events),
                    }
                };
                tokio::select! {
                    woken = woken => match woken {
                        None => return Ok(reply),
                        // One more pass says what the end means for this read.
                        Some(Woken::Ended) => ended = true,
                        Some(Woken::Events) => {}
                    },
                    () = tokio::time::sleep_until(deadline) => return Ok(reply),
                    () = bus.shutdown.cancelled() => return Ok(reply),
                }
            }
        }
    }
}

async fn pass(bus: &Bus, caller: &Caller, read: &Read) -> Result<Pass, Failure> {
    let consuming = read.consumes(caller.reader);
    let Seen {
        session,
        tip,
        raw,
        after,
    } = snapshot(bus, read, consuming).await?;

    // A read naming a session reads as it (its saved cursor, its lease,
    // receipts of its messages, deliveries to it): a keyed one is named only
    // with its key. Its events are not private — a read that names no
    // session sees them — so a refusal costs no one a thing they may see.
    if let Some(s) = &session {
        read.key.may_act_as(s)?;
    }
    if let Some(s) = session.as_ref().filter(|s| s.is_deleted()) {
        bus.warn_deleted_once(s, "get_events");
        return Err(deleted_refusal(s, DELETED_READ_HINT).into());
    }
    let Some(raw) = raw else {
        return match (&read.session_id, session) {
            // Resume for a session we have never seen.
            (Some(id), None) => Err(Refusal::SessionNotFound {
                session_id: id.clone(),
            }
            .into()),
            // Resume with no saved cursor: start at the tip, consume nothing yet.
            (Some(id), Some(_)) => start_at_tip(bus, read, id, tip).await,
            (None, _) => Ok(Pass::Done(Page {
                events: Vec::new(),
                next_cursor: after.map(|a| a.to_string()),
                has_more: false,
            })),
        };
    };

    let (through, cut) = (raw.through, raw.cut);
    let raw = raw.events;
    let max_id = raw.iter().map(|e| e.id).max();
    // Full, or stopped at the page byte limit: the next page starts right
    // after the last event returned (its `next_cursor`), so nothing is
    // skipped in ascending order.
    let has_more = raw.len() == read.limit || cut;
    // An empty page says how far it looked: a quiet filtered read moves on
    // to the newest id it examined instead of handing back its own cursor.
    let next = max_id
        .or_else(|| (through > after.unwrap_or(0)).then_some(through))
        .or(after);
    let next_cursor = next.map(|c| c.to_string());
    let mut events: Vec<PageEvent> = raw
        .iter()
        .filter(|e| read.min_level.is_none_or(|min| e.level() >= min))
        .map(|e| PageEvent {
            event: e.to_wire(),
            receipt: None,
        })
        .collect();
    if let Some(id) = read.session_id.clone().filter(|_| session.is_some()) {
        record_read(bus, caller, read, id, &events, max_id).await?;
    }
    if let Some(reader) = read.session_id.as_deref().filter(|_| read.receipts) {
        super::receipts::attach(bus, reader, &mut events).await?;
    }
    let empty = events.is_empty();
    let reply = Page {
        events,
        next_cursor,
        has_more,
    };
    Ok(Pass::Page(reply, empty, next))
}

/// What a pass reads in one snapshot of the store.
struct Seen {
    /// The session the read names, if it exists.
    session: Option<SessionRecord>,
    /// The newest event id.
    tip: u64,
    /// The page; none when the session has ended, when a resume names a
    /// session never seen, or when a consuming resume has no saved cursor.
    raw: Option<EventPage>,
    /// Where the page starts (a resume's saved cursor, else the call's).
    after: Option<u64>,
}

/// Reads the named session, the tip and the page in one snapshot.
async fn snapshot(bus: &Bus, read: &Read, consuming: bool) -> Result<Seen, StoreError> {
    let r = read.clone();
    let max_bytes = bus.limits.max_page_bytes;
    let (session, tip, raw, after) = bus
        .store
        .read(move |snap| {
            let session = match &r.session_id {
                Some(id) => snap.session(id)?,
                None => None,
            };
            let tip = snap.tip()?;
            if session.as_ref().is_some_and(SessionRecord::is_deleted) {
                return Ok((session, tip, None, None));
            }
            let mut after = r.cursor;
            if r.resume && r.cursor.is_none() && r.session_id.is_some() {
                match &session {
                    None => return Ok((None, tip, None, None)),
                    Some(s) => match s.last_cursor {
                        Some(c) => after = Some(c),
                        None if !consuming => after = Some(tip),
                        None => return Ok((session, tip, None, Some(tip))),
                    },
                }
            }
            let page = snap.event_page(&EventQuery {
                after,
                descending: r.descending,
                limit: r.limit,
                channels: r.channels.clone(),
                event_types: r.event_types.clone(),
                correlation_id: r.correlation_id.clone(),
                max_bytes: Some(max_bytes),
            })?;
            Ok((session, tip, Some(page), after))
        })
        .await?;
    Ok(Seen {
        session,
        tip,
        raw,
        after,
    })
}

/// A resumed read of session `id`, which has no saved cursor yet: the
/// cursor starts at `tip`, and nothing is consumed.
async fn start_at_tip(bus: &Bus, read: &Read, id: &str, tip: u64) -> Result<Pass, Failure> {
    let (id, key) = (id.to_owned(), read.key.clone());
    let every = bus.heartbeat_every_ms;
    bus.store
        .write(Durability::Lazy, move |tx| {
            let now = tx.now_ms();
            let mut s = match sessions::touch(tx, &id, &key, now, every)? {
                Ok(Some(s)) => s,
                Ok(None) => return Ok(Ok(())),
                Err(refusal) => return Ok(Err(refusal)),
            };
            if !s.is_deleted() && s.last_cursor.is_none() {
                s.last_cursor = Some(tip);
                tx.put_session(&s)?;
            }
            Ok(Ok(()))
        })
        .await??;
    let reply = Page {
        events: Vec::new(),
        next_cursor: Some(tip.to_string()),
        has_more: false,
    };
    Ok(Pass::Page(reply, true, Some(tip)))
}

/// What a page read as session `id` does to it: renews its lease and
/// heartbeat, records the receipts of its own direct messages among
/// `events`, and moves its saved cursor to `max_id` (the newest id the
/// page looked at) when the read consumes.
async fn record_read(
    bus: &Bus,
    caller: &Caller,
    read: &Read,
    id: String,
    events: &[PageEvent],
    max_id: Option<u64>,
) -> Result<(), Failure> {
    let consuming = read.consumes(caller.reader);
    let consume = if consuming { max_id } else { None };
    let returned: Vec<u64> = events
        .iter()
        .filter(|e| shared::push::is_dm_to(&e.event, &id))
        .map(|e| e.event.id)
        .collect();
    let (caller, key) = (caller.clone(), read.key.clone());
    let every = bus.heartbeat_every_ms;
    bus.store
        .write(Durability::Lazy, move |tx| {
            let now = tx.now_ms();
            let mut s = match sessions::touch(tx, &id, &key, now, every)? {
                Ok(Some(s)) if !s.is_deleted() => s,
                Ok(_) => return Ok(Ok(())),
                Err(refusal) => return Ok(Err(refusal)),
            };
            on_read(tx, &caller, &id, &returned, consuming, now)?;
            if let Some(c) = consume
                && s.last_cursor != Some(c)
            {
                s.last_cursor = Some(c);
                tx.put_session(&s)?;
            }
            Ok(Ok(()))
        })
        .await??;
    Ok(())
}

/// `ack_events(session_id, cursor, allow_rewind=false)`
pub async fn ack(bus: &Bus, caller: &Caller, p: AckParams) -> Outcome<Acked> {
    // Only the agent's own ack reads its messages; a helper's moves the
    // cursor, as asked, and proves nothing.
    let agent = caller.reader == Reader::Agent;
    let key = Presented::of(caller);
    let AckParams {
        session_id,
        cursor: raw,
        allow_rewind,
    } = p;
    let every = bus.heartbeat_every_ms;
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
            if agent && c > position.unwrap_or(0) {
                tx.mark_read_through(&session_id, position.unwrap_or(0), c, Path::Ack, now)?;
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
