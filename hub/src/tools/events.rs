//! Events: publish, read (cursors, resume, peek, narrowing, levels,
//! long-poll), and ack, with the original's rules as README's *Tools*
//! section states them; the params and replies are
//! [`shared::tools::events`].

use std::time::Duration;

use shared::cursor;
use shared::level::SignalLevel;
use shared::tools::events::{
    AckParams, Acked, GetParams, Page, PageEvent, PublishParams, Published,
};
use shared::tools::{ArgError, Refusal, events};

use super::{Failure, Outcome, deleted, deleted_refusal};
use crate::caller::Caller;
use crate::keys::Presented;
use crate::sessions;
use crate::state::Bus;
use crate::store::{Durability, EventQuery, NewEvent, SessionRecord, Woken};

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
            "Unknown signal_level '{level}' (expected one of lifecycle, info, actionable). Storing as-is."
        );
    }
    if let Some(warning) = shared::channel::format_warning(&channel) {
        tracing::warn!("{warning}");
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
            let now = shared::time::now_ms();
            // Attributing the event to a session acts as it.
            let publisher = match session_id.as_deref() {
                Some(id) if id != "anonymous" => match sessions::touch(tx, id, &key, now)? {
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
    tracing::debug!(event_id = event.id, channel = %event.channel, event_type = %event.event_type, "stored");
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

/// A parsed `get_events` call.
#[derive(Debug, Clone)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "the call's own independent switches, as the contract names them"
)]
struct Read {
    cursor: Option<u64>,
    limit: usize,
    session_id: Option<String>,
    descending: bool,
    channels: Vec<String>,
    resume: bool,
    event_types: Vec<String>,
    peek: bool,
    correlation_id: Option<String>,
    min_level: Option<SignalLevel>,
    wait: Duration,
    /// Add receipts to the reader's own direct messages.
    receipts: bool,
    /// The session key the call presented: a read naming a keyed session
    /// needs it.
    key: Presented,
}

impl Read {
    fn new(p: GetParams, key: Presented) -> Self {
        let descending = p.descending();
        let mut channels = p.channels.unwrap_or_default();
        if let Some(c) = p.channel {
            channels.push(c);
        }
        channels.retain(|c| !c.is_empty());
        Self {
            cursor: p.cursor,
            limit: p.limit,
            descending,
            min_level: p.min_level,
            wait: Duration::from_secs(p.wait_seconds),
            session_id: p.session_id.filter(|s| s != "anonymous" && !s.is_empty()),
            channels,
            resume: p.resume,
            event_types: p.event_types.unwrap_or_default(),
            peek: p.peek,
            correlation_id: p.correlation_id.filter(|c| !c.is_empty()),
            receipts: p.receipts.unwrap_or(false),
            key,
        }
    }

    /// Filters that narrow the read; a narrowed read never consumes.
    fn narrowed(&self) -> bool {
        !self.channels.is_empty() || !self.event_types.is_empty() || self.correlation_id.is_some()
    }

    /// The sessions whose end a long-poll returns for: the reader's own,
    /// and those whose direct messages it waits on.
    fn sessions_ending(&self) -> Vec<String> {
        self.session_id
            .iter()
            .map(String::as_str)
            .chain(
                self.channels
                    .iter()
                    .filter_map(|c| shared::channel::dm_target(c)),
            )
            .map(str::to_owned)
            .collect()
    }
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
    let mut tip = bus.store.tip();
    // A read narrowed to channels wakes only for events on them (and the
    // end of its sessions: that event is on another channel); others wake
    // on every commit that appended events.
    let on_channels = (!read.wait.is_zero() && !read.channels.is_empty())
        .then(|| bus.store.wait_for(&read.channels, &read.sessions_ending()));
    let mut ended = false;
    loop {
        tip.borrow_and_update();
        match pass(bus, &read).await? {
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

async fn pass(bus: &Bus, read: &Read) -> Result<Pass, Failure> {
    let r = read.clone();
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
                        None if r.peek || r.narrowed() => after = Some(tip),
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
            })?;
            Ok((session, tip, Some(page), after))
        })
        .await?;

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
            (Some(id), Some(_)) => {
                let (id, key) = (id.clone(), read.key.clone());
                bus.store
                    .write(Durability::Lazy, move |tx| {
                        let now = shared::time::now_ms();
                        let mut s = match sessions::touch(tx, &id, &key, now)? {
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
            (None, _) => Ok(Pass::Done(Page {
                events: Vec::new(),
                next_cursor: after.map(|a| a.to_string()),
                has_more: false,
            })),
        };
    };

    let through = raw.through;
    let raw = raw.events;
    let max_id = raw.iter().map(|e| e.id).max();
    let has_more = raw.len() == read.limit;
    // An empty page says how far it looked: a quiet filtered read moves on
    // to the newest id it examined instead of handing back its own cursor.
    let next = max_id
        .or_else(|| (through > after.unwrap_or(0)).then_some(through))
        .or(after);
    let next_cursor = next.map(|c| c.to_string());
    if let Some(id) = read.session_id.clone().filter(|_| session.is_some()) {
        let consume = if read.peek || read.narrowed() {
            None
        } else {
            max_id
        };
        let key = read.key.clone();
        bus.store
            .write(Durability::Lazy, move |tx| {
                let now = shared::time::now_ms();
                let mut s = match sessions::touch(tx, &id, &key, now)? {
                    Ok(Some(s)) => s,
                    Ok(None) => return Ok(Ok(())),
                    Err(refusal) => return Ok(Err(refusal)),
                };
                if let Some(c) = consume
                    && !s.is_deleted()
                    && s.last_cursor != Some(c)
                {
                    // The direct messages its cursor passes are read.
                    let passed = s.last_cursor.or(after).unwrap_or(0);
                    tx.mark_read_through(&id, passed, c, now)?;
                    s.last_cursor = Some(c);
                    tx.put_session(&s)?;
                }
                Ok(Ok(()))
            })
            .await??;
    }
    let mut events: Vec<PageEvent> = raw
        .iter()
        .filter(|e| read.min_level.is_none_or(|min| e.level() >= min))
        .map(|e| PageEvent {
            event: e.to_wire(),
            receipt: None,
        })
        .collect();
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

/// `ack_events(session_id, cursor, allow_rewind=false)`
pub async fn ack(bus: &Bus, caller: &Caller, p: AckParams) -> Outcome<Acked> {
    let key = Presented::of(caller);
    let AckParams {
        session_id,
        cursor: raw,
        allow_rewind,
    } = p;
    let (reply, ended) = bus
        .store
        .write(Durability::Durable, move |tx| {
            let now = shared::time::now_ms();
            let mut s = match sessions::touch(tx, &session_id, &key, now)? {
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
