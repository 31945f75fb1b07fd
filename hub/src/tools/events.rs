//! Events: publish, read (cursors, resume, peek, narrowing, levels,
//! long-poll), and ack. See the original's rules in the contract, §2.3.

use std::time::Duration;

use serde_json::{Value, json};
use shared::cursor::{self, CursorError};
use shared::level::SignalLevel;

use super::args::{ArgError, Args, check_len, check_non_empty};
use super::{Outcome, Reply, deleted_reply};
use crate::sessions;
use crate::state::Bus;
use crate::store::{Durability, EventQuery, NewEvent, SessionRecord};

const EVENT_TYPE_MAX: usize = 128;
const CHANNEL_MAX: usize = 256;
const TITLE_MAX: usize = 256;
const TAGS_MAX: usize = 32;
const TAG_MAX: usize = 64;
const CORRELATION_MAX: usize = 256;
const LIMIT_MAX: i64 = 1000;

const DELETED_READ_HINT: &str = "This session was unregistered or timed out, and its cursor is frozen. Call register_session to get a live session, or stop polling.";
const DELETED_PUBLISH_HINT: &str = "This session was unregistered or timed out. The event was stored anyway, attributed to the deleted session id. Call register_session to get a live session - this id will not come back on its own.";

/// `publish_event(event_type, payload, session_id?, channel="all", title?, tags?, correlation_id?, signal_level?)`
pub async fn publish(bus: &Bus, arguments: Option<Value>) -> Outcome {
    let a = Args::new(
        arguments,
        &[
            "event_type",
            "payload",
            "session_id",
            "channel",
            "title",
            "tags",
            "correlation_id",
            "signal_level",
        ],
    )?;
    let event_type = a.req_str("event_type")?;
    check_non_empty("event_type", &event_type)?;
    check_len("event_type", &event_type, EVENT_TYPE_MAX)?;
    let payload = a.req_str("payload")?;
    if payload.len() > bus.limits.max_payload_bytes {
        return Err(ArgError(format!(
            "payload is {} bytes; the limit is {} (send a summary and a pointer instead)",
            payload.len(),
            bus.limits.max_payload_bytes
        ))
        .into());
    }
    let session_id = a.opt_str("session_id")?;
    let channel = a.opt_str("channel")?.unwrap_or_else(|| "all".to_owned());
    check_non_empty("channel", &channel)?;
    check_len("channel", &channel, CHANNEL_MAX)?;
    let title = a.opt_str("title")?;
    if let Some(t) = &title {
        check_len("title", t, TITLE_MAX)?;
    }
    let tags = a.opt_strings("tags")?;
    if let Some(tags) = &tags {
        if tags.len() > TAGS_MAX {
            return Err(ArgError(format!(
                "tags has {} items; the limit is {TAGS_MAX}",
                tags.len()
            ))
            .into());
        }
        for t in tags {
            check_len("a tag", t, TAG_MAX)?;
        }
    }
    let correlation_id = a.opt_str("correlation_id")?;
    if let Some(c) = &correlation_id {
        check_len("correlation_id", c, CORRELATION_MAX)?;
    }
    let signal_level = a.opt_str("signal_level")?;
    if let Some(level) = &signal_level {
        check_len("signal_level", level, 32)?;
        if SignalLevel::parse(level).is_none() {
            tracing::warn!(
                "Unknown signal_level '{level}' (expected one of lifecycle, info, actionable). Storing as-is."
            );
        }
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
            let publisher = match session_id.as_deref() {
                Some(id) if id != "anonymous" => sessions::touch(tx, id, now)?,
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
            Ok((event, publisher, dm_target))
        })
        .await?;
    tracing::debug!(event_id = event.id, channel = %event.channel, event_type = %event.event_type, "stored");
    if let Some(target) = dm_target {
        super::notify::direct_message(bus, &target, publisher.as_ref(), &event.payload);
    }
    let mut reply = json!({
        "event_id": event.id,
        "event_type": event.event_type,
        "payload": event.payload,
        "channel": event.channel,
        "signal_level": event.level().as_str(),
    });
    if let Some(c) = event.correlation_id.as_ref().filter(|c| !c.is_empty()) {
        reply["correlation_id"] = json!(c);
    }
    if let Some(p) = publisher.filter(SessionRecord::is_deleted) {
        let flags = deleted_reply(&p, DELETED_PUBLISH_HINT);
        for key in [
            "session_deleted",
            "session_id",
            "display_id",
            "deleted_at",
            "hint",
        ] {
            reply[key] = flags[key].clone();
        }
    }
    Ok(Reply::Object(reply))
}

/// A parsed `get_events` call.
#[derive(Debug, Clone)]
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
}

impl Read {
    fn parse(arguments: Option<Value>) -> Result<Self, ArgError> {
        let a = Args::new(
            arguments,
            &[
                "cursor",
                "limit",
                "session_id",
                "order",
                "channel",
                "channels",
                "resume",
                "event_types",
                "peek",
                "correlation_id",
                "min_level",
                "wait_seconds",
                "receipts",
            ],
        )?;
        let cursor = match a.opt_str_or_int("cursor")? {
            Some(raw) if !raw.trim().is_empty() => Some(cursor::parse(&raw).map_err(|e| {
                ArgError(match e {
                    CursorError::NotANumber(_) => format!(
                        "{e}; pass a next_cursor from an earlier reply, or omit cursor to read from the start"
                    ),
                    CursorError::Negative(_) => e.to_string(),
                })
            })?),
            _ => None,
        };
        let limit = a.opt_i64("limit")?.unwrap_or(50);
        if !(1..=LIMIT_MAX).contains(&limit) {
            return Err(ArgError(format!(
                "limit must be from 1 to {LIMIT_MAX} (got {limit}); page with next_cursor for more"
            )));
        }
        let descending = match a.opt_str("order")?.as_deref() {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(other) => {
                return Err(ArgError(format!(
                    "order must be 'asc' or 'desc' (got '{other}')"
                )));
            }
        };
        let mut channels = a.opt_strings("channels")?.unwrap_or_default();
        if let Some(c) = a.opt_str("channel")? {
            channels.push(c);
        }
        channels.retain(|c| !c.is_empty());
        let min_level = match a.opt_str("min_level")? {
            None => None,
            Some(l) => Some(SignalLevel::parse(&l).ok_or_else(|| {
                ArgError(format!(
                    "min_level must be one of lifecycle, info, actionable (got '{l}')"
                ))
            })?),
        };
        let wait = a.opt_i64("wait_seconds")?.unwrap_or(0);
        let max_wait = shared::config::MAX_WAIT_SECONDS as i64;
        if !(0..=max_wait).contains(&wait) {
            return Err(ArgError(format!(
                "wait_seconds must be from 0 to {max_wait} (got {wait})"
            )));
        }
        Ok(Self {
            cursor,
            limit: limit as usize,
            session_id: a
                .opt_str("session_id")?
                .filter(|s| s != "anonymous" && !s.is_empty()),
            descending,
            channels,
            resume: a.bool_or("resume", false)?,
            event_types: a.opt_strings("event_types")?.unwrap_or_default(),
            peek: a.bool_or("peek", false)?,
            correlation_id: a.opt_str("correlation_id")?.filter(|c| !c.is_empty()),
            min_level,
            wait: Duration::from_secs(wait as u64),
            receipts: a.bool_or("receipts", false)?,
        })
    }

    /// Filters that narrow the read; a narrowed read never consumes.
    fn narrowed(&self) -> bool {
        !self.channels.is_empty() || !self.event_types.is_empty() || self.correlation_id.is_some()
    }
}

/// What one pass over the store found.
enum Pass {
    /// A finished reply (an error, or the resume bootstrap).
    Done(Value),
    /// A page; empty pages may wait for more. With its next cursor: every
    /// event up to it was examined, so a later pass starts there.
    Page(Value, bool, Option<u64>),
}

/// `get_events(...)`: one pass, repeated on each publish while a long-poll
/// waits and the page is empty.
pub async fn get(bus: &Bus, arguments: Option<Value>) -> Outcome {
    let mut read = Read::parse(arguments)?;
    let deadline = tokio::time::Instant::now() + read.wait;
    let mut tip = bus.store.tip();
    // A read narrowed to channels wakes only for events on them; others
    // wake on every commit that appended events.
    let on_channels = (!read.wait.is_zero() && !read.channels.is_empty())
        .then(|| bus.store.wait_channels(&read.channels));
    loop {
        tip.borrow_and_update();
        match pass(bus, &read).await? {
            Pass::Done(reply) => return Ok(Reply::Object(reply)),
            Pass::Page(reply, empty, next) => {
                if !empty || read.wait.is_zero() {
                    return Ok(Reply::Object(reply));
                }
                // The next pass never examines again what this one did.
                if next.is_some() {
                    read.cursor = next;
                }
                let woken = async {
                    match &on_channels {
                        Some(wait) => {
                            wait.changed().await;
                            true
                        }
                        None => tip.changed().await.is_ok(),
                    }
                };
                tokio::select! {
                    woken = woken => {
                        if !woken {
                            return Ok(Reply::Object(reply));
                        }
                    }
                    () = tokio::time::sleep_until(deadline) => return Ok(Reply::Object(reply)),
                    () = bus.shutdown.cancelled() => return Ok(Reply::Object(reply)),
                }
            }
        }
    }
}

async fn pass(bus: &Bus, read: &Read) -> Result<Pass, super::Failure> {
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

    if let Some(s) = session.as_ref().filter(|s| s.is_deleted()) {
        bus.warn_deleted_once(s, "get_events");
        return Ok(Pass::Done(deleted_reply(s, DELETED_READ_HINT)));
    }
    let Some(raw) = raw else {
        return match (&read.session_id, session) {
            // Resume for a session we have never seen.
            (Some(id), None) => Ok(Pass::Done(
                json!({"error": "Session not found", "session_id": id}),
            )),
            // Resume with no saved cursor: start at the tip, consume nothing yet.
            (Some(id), Some(_)) => {
                let id = id.clone();
                bus.store
                    .write(Durability::Lazy, move |tx| {
                        let now = shared::time::now_ms();
                        if let Some(mut s) = sessions::touch(tx, &id, now)?
                            && !s.is_deleted()
                            && s.last_cursor.is_none()
                        {
                            s.last_cursor = Some(tip);
                            tx.put_session(&s)?;
                        }
                        Ok(())
                    })
                    .await?;
                let reply =
                    json!({"events": [], "next_cursor": tip.to_string(), "has_more": false});
                Ok(Pass::Page(reply, true, Some(tip)))
            }
            (None, _) => Ok(Pass::Done(
                json!({"events": [], "next_cursor": after.map(|a| a.to_string()), "has_more": false}),
            )),
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
        bus.store
            .write(Durability::Lazy, move |tx| {
                let now = shared::time::now_ms();
                if let Some(mut s) = sessions::touch(tx, &id, now)?
                    && let Some(c) = consume
                    && !s.is_deleted()
                    && s.last_cursor != Some(c)
                {
                    // The direct messages its cursor passes are read.
                    let passed = s.last_cursor.or(after).unwrap_or(0);
                    tx.mark_read_through(&id, passed, c, now)?;
                    s.last_cursor = Some(c);
                    tx.put_session(&s)?;
                }
                Ok(())
            })
            .await?;
    }
    let mut events: Vec<Value> = raw
        .iter()
        .filter(|e| read.min_level.is_none_or(|min| e.level() >= min))
        .map(|e| serde_json::to_value(e.to_wire()).unwrap_or(Value::Null))
        .collect();
    if let Some(reader) = read.session_id.as_deref().filter(|_| read.receipts) {
        super::receipts::attach(bus, reader, &mut events).await?;
    }
    let empty = events.is_empty();
    let reply = json!({"events": events, "next_cursor": next_cursor, "has_more": has_more});
    Ok(Pass::Page(reply, empty, next))
}

/// `ack_events(session_id, cursor, allow_rewind=false)`
pub async fn ack(bus: &Bus, arguments: Option<Value>) -> Outcome {
    let a = Args::new(arguments, &["session_id", "cursor", "allow_rewind"])?;
    let session_id = a.req_str("session_id")?;
    let raw = a
        .opt_str_or_int("cursor")?
        .ok_or_else(|| ArgError("cursor is required (an event id such as a next_cursor)".into()))?;
    let allow_rewind = a.bool_or("allow_rewind", false)?;
    let (reply, deleted) = bus
        .store
        .write(Durability::Durable, move |tx| {
            let now = shared::time::now_ms();
            let Some(mut s) = sessions::touch(tx, &session_id, now)? else {
                return Ok((json!({"error": "Session not found", "session_id": session_id}), None));
            };
            if s.is_deleted() {
                return Ok((deleted_reply(&s, DELETED_READ_HINT), Some(s)));
            }
            let position = s.last_cursor;
            let refuse = |message: String| {
                json!({
                    "error": message,
                    "session_id": session_id,
                    "cursor": position.map(|p| p.to_string()),
                })
            };
            let c = match cursor::parse(&raw) {
                Ok(c) => c,
                Err(e) => return Ok((refuse(e.to_string()), None)),
            };
            let tip = tx.tip()?;
            if c > tip {
                let newest = if tip == 0 { "none published yet".to_owned() } else { tip.to_string() };
                let mut reply = refuse(format!("Cursor {c} is ahead of the newest event ({newest})"));
                reply["tip"] = json!(tip);
                return Ok((reply, None));
            }
            if let Some(p) = position
                && c < p
                && !allow_rewind
            {
                return Ok((
                    refuse(format!(
                        "Cursor {c} is behind the session's current position ({p}). Pass allow_rewind=true to replay deliberately."
                    )),
                    None,
                ));
            }
            if c > position.unwrap_or(0) {
                tx.mark_read_through(&session_id, position.unwrap_or(0), c, now)?;
            }
            s.last_cursor = Some(c);
            tx.put_session(&s)?;
            Ok((
                json!({
                    "success": true,
                    "session_id": session_id,
                    "cursor": c.to_string(),
                    "previous_cursor": position.map(|p| p.to_string()),
                }),
                None,
            ))
        })
        .await?;
    if let Some(s) = deleted {
        bus.warn_deleted_once(&s, "ack_events");
    }
    Ok(Reply::Object(reply))
}
