//! The original's rows as our records: the same ids, texts and meanings,
//! times in UTC. A row that cannot be brought over is skipped with why; a
//! value that had to change is counted in `adjusted`, with what changed.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Tally;
use super::source::{Deletion, EventRow, SessionRow, Time, WebhookRow};
use crate::store::{EventRecord, SessionRecord, WebhookRecord};

/// A row left out: its id and why.
pub(super) type Skip = (String, String);

fn note(adjusted: &mut BTreeMap<String, Tally>, what: &str, id: impl std::fmt::Display) {
    adjusted.entry(what.to_owned()).or_default().add(id);
}

/// An event, keeping its id. `last_micros` carries the previous event's time
/// for a row whose own cannot be read.
pub(super) fn event(
    row: EventRow,
    last_micros: &mut i64,
    adjusted: &mut BTreeMap<String, Tally>,
) -> Result<EventRecord, Skip> {
    let id = row.id;
    let skip = |why: &str| (id.to_string(), format!("events: {why}"));
    let id = u64::try_from(id)
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| skip("id below 1"))?;
    let event_type = row
        .event_type
        .ok_or_else(|| skip("event_type is not text"))?;
    let payload = row.payload.ok_or_else(|| skip("payload is not text"))?;
    let session_id = row
        .session_id
        .ok_or_else(|| skip("session_id is not text"))?;
    let timestamp = if let (Some(text), Some(utc_seconds)) = (row.timestamp, row.utc_seconds) {
        Time { text, utc_seconds }.micros()
    } else {
        note(
            adjusted,
            "events with an unreadable timestamp, given the previous event's",
            id,
        );
        *last_micros
    };
    *last_micros = timestamp;
    let mut record = EventRecord {
        id,
        event_type,
        payload,
        session_id,
        timestamp,
        channel: row.channel.unwrap_or_else(|| "all".to_owned()),
        correlation_id: row.correlation_id,
        signal_level: None,
        title: None,
        tags: None,
    };
    if let Some(meta) = row.payload_meta.filter(|m| !m.is_empty()) {
        match serde_json::from_str::<Value>(&meta) {
            Ok(Value::Object(meta)) => {
                record.title = meta.get("title").and_then(as_text);
                record.signal_level = meta.get("signal_level").and_then(as_text);
                record.tags = meta.get("tags").and_then(|t| match t {
                    Value::Array(items) => Some(items.iter().filter_map(as_text).collect()),
                    _ => None,
                });
            }
            // The original reads corrupt meta as none, never fails on it.
            Ok(Value::Null) => {}
            _ => note(
                adjusted,
                "events whose payload_meta is not a JSON object: title, tags and level \
                 dropped, as the original read them",
                id,
            ),
        }
    }
    Ok(record)
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A session, keeping its ids, place, saved cursor and ended state. A live
/// one comes without a lease, so the idle rule applies to it.
pub(super) fn session(
    row: SessionRow,
    adjusted: &mut BTreeMap<String, Tally>,
) -> Result<SessionRecord, Skip> {
    let Some(id) = row.id else {
        return Err(("?".into(), "sessions: id is not text".into()));
    };
    let registered = row.registered_at.as_ref().map(Time::millis);
    let heartbeat = row.last_heartbeat.as_ref().map(Time::millis);
    let (registered_at, last_heartbeat) = match (registered, heartbeat) {
        (Some(r), Some(h)) => (r, h),
        (Some(t), None) | (None, Some(t)) => {
            note(
                adjusted,
                "sessions with one unreadable time, given the other",
                &id,
            );
            (t, t)
        }
        (None, None) => {
            return Err((
                id,
                "sessions: registered_at and last_heartbeat are unreadable".into(),
            ));
        }
    };
    let deleted_at = match row.deleted_at {
        Deletion::Live => None,
        Deletion::At(t) => Some(t.millis()),
        Deletion::Unreadable => {
            note(
                adjusted,
                "ended sessions with an unreadable deleted_at, given their last heartbeat",
                &id,
            );
            Some(last_heartbeat)
        }
    };
    let last_cursor = row.last_cursor.and_then(|c| match cursor(&c) {
        Cursor::None => None,
        Cursor::At(n) => Some(n),
        Cursor::FromStart => {
            note(
                adjusted,
                "sessions whose saved cursor is not an event id, set to 0 (the start, as the \
                 original read it)",
                &id,
            );
            Some(0)
        }
    });
    Ok(SessionRecord {
        display_id: row.display_id.unwrap_or_else(|| id.clone()),
        name: row.name.unwrap_or_default(),
        machine: row.machine.unwrap_or_default(),
        cwd: row.cwd.unwrap_or_default(),
        repo: row.repo.unwrap_or_default(),
        registered_at,
        last_heartbeat,
        client_id: row.client_id,
        last_cursor,
        deleted_at,
        client_pid: None,
        lease_seconds: None,
        lease_deadline: None,
        push: Vec::new(),
        key_hash: None,
        id,
    })
}

/// A saved cursor as the original read it.
#[derive(Debug, PartialEq, Eq)]
enum Cursor {
    /// Empty: the original treated it as no cursor.
    None,
    At(u64),
    /// Not a whole number, or negative: the original read from the start.
    FromStart,
}

fn cursor(text: &str) -> Cursor {
    if text.is_empty() {
        return Cursor::None;
    }
    match text.trim().parse::<i64>() {
        Ok(n) if n >= 0 => Cursor::At(n.unsigned_abs()),
        _ => Cursor::FromStart,
    }
}

/// A webhook, keeping its id, filters, active flag and secret (so receivers'
/// signature checks keep passing).
pub(super) fn webhook(
    row: WebhookRow,
    adjusted: &mut BTreeMap<String, Tally>,
) -> Result<WebhookRecord, Skip> {
    let id = row.id;
    let skip = |why: &str| (id.to_string(), format!("webhooks: {why}"));
    let id = u64::try_from(id)
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| skip("id below 1"))?;
    let url = row.url.ok_or_else(|| skip("url is not text"))?;
    let created_at = row.created_at.as_ref().map_or_else(
        || {
            note(
                adjusted,
                "webhooks with an unreadable created_at, given the import's time",
                id,
            );
            shared::time::now_ms()
        },
        Time::millis,
    );
    Ok(WebhookRecord {
        id,
        url,
        channel: row.channel_filter,
        event_types: row
            .event_types
            .filter(|t| !t.is_empty())
            .map(|t| t.split(',').map(str::to_owned).collect()),
        // The original signs only with a non-empty secret.
        secret: row.secret.filter(|s| !s.is_empty()),
        active: row.active,
        created_at,
        include_system: false,
        failing_since: None,
        disabled_reason: None,
        disabled_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_as_the_original_read_them() {
        assert_eq!(cursor(""), Cursor::None);
        assert_eq!(cursor("42"), Cursor::At(42));
        assert_eq!(cursor(" 42 "), Cursor::At(42));
        assert_eq!(cursor("0"), Cursor::At(0));
        assert_eq!(cursor("-3"), Cursor::FromStart);
        assert_eq!(cursor("abc"), Cursor::FromStart);
    }
}
