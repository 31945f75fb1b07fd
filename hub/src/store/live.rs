//! The live sessions, mirrored in memory from what has committed.
//!
//! `list_sessions` and `list_channels` read every live session; at
//! thousands of sessions, decoding each row from the file on every call
//! costs more than the rest of the reply. The writer applies each committed
//! batch's session writes here before any of its callers hears back, so a
//! session sees itself in a list it asks for after registering. A failed
//! batch applies nothing; a reopened file is mirrored afresh.
//!
//! Each entry also keeps its `list_sessions` item rendered (built once, on
//! first use): a list is then the items' fixed parts copied around the two
//! fields that move with time, `last_heartbeat` and `age_seconds`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use redb::ReadTransaction;

use super::read::read_live_sessions;
use super::tables::{LIVE, SESSIONS};
use super::{Result, SessionRecord};

/// One live session as last committed.
#[derive(Debug)]
pub struct LiveSession {
    pub record: SessionRecord,
    item: OnceLock<Item>,
}

/// A session's `list_sessions` item around its moving fields, as JSON and
/// as the same JSON escaped inside a JSON string (the text content).
#[derive(Debug)]
struct Item {
    /// Up to and including `"last_heartbeat":`.
    head: String,
    head_text: String,
    /// From the `,` after `age_seconds` to the closing `}`.
    tail: String,
    tail_text: String,
}

/// The moving fields are rendered as these placeholders, then cut out.
const HEARTBEAT_KEY: &str = "\"last_heartbeat\":";
const MOVING: &str = "\"last_heartbeat\":\"\",\"age_seconds\":0.0";

/// `s` as it appears inside a JSON string (serde's escaping, without the
/// quotes). Escaping works character by character, so the escaped parts of
/// a text are the escaped text.
pub fn escaped(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted
        .get(1..quoted.len().saturating_sub(1))
        .unwrap_or_default()
        .to_owned()
}

impl LiveSession {
    fn new(record: SessionRecord) -> Self {
        Self {
            record,
            item: OnceLock::new(),
        }
    }

    fn item(&self) -> &Item {
        self.item.get_or_init(|| {
            let mut wire = self.record.to_wire(self.record.registered_at);
            wire.last_heartbeat = String::new();
            wire.age_seconds = 0.0;
            let json = serde_json::to_string(&wire).unwrap_or_default();
            // The key cannot occur inside a string value (its quotes would be
            // escaped there), so the one match is the field itself.
            let (head, tail) = match json.find(MOVING) {
                Some(at) => (
                    &json[..at + HEARTBEAT_KEY.len()],
                    &json[at + MOVING.len()..],
                ),
                None => (json.as_str(), ""),
            };
            Item {
                head_text: escaped(head),
                tail_text: escaped(tail),
                head: head.to_owned(),
                tail: tail.to_owned(),
            }
        })
    }

    /// About how long [`LiveSession::write_item`] makes each of its two
    /// texts (an upper bound of the moving fields), to size a list's buffers.
    pub fn item_len(&self) -> (usize, usize) {
        // The heartbeat, the age and their keys.
        const MOVING_LEN: usize = 64;
        let item = self.item();
        (
            item.head.len() + item.tail.len() + MOVING_LEN,
            item.head_text.len() + item.tail_text.len() + MOVING_LEN + 8,
        )
    }

    /// Appends this session's `list_sessions` item at `now_ms` to `out`:
    /// its JSON, or with `as_text` the same escaped as inside a JSON string.
    pub fn write_item(&self, now_ms: i64, out: &mut String, as_text: bool) {
        let item = self.item();
        let r = &self.record;
        // A timestamp is digits and `-:.TZ`: nothing in it needs escaping.
        let heartbeat = shared::time::format_ms(r.last_heartbeat);
        debug_assert_eq!(escaped(&heartbeat), heartbeat);
        let age = serde_json::to_string(&((now_ms - r.registered_at).max(0) as f64 / 1000.0))
            .unwrap_or_default();
        let parts = if as_text {
            [
                item.head_text.as_str(),
                "\\\"",
                &heartbeat,
                "\\\",\\\"age_seconds\\\":",
                &age,
                &item.tail_text,
            ]
        } else {
            [
                item.head.as_str(),
                "\"",
                &heartbeat,
                "\",\"age_seconds\":",
                &age,
                &item.tail,
            ]
        };
        for part in parts {
            out.push_str(part);
        }
    }
}

/// Session id → its live session.
#[derive(Debug, Default)]
pub(super) struct LiveMirror {
    map: RwLock<HashMap<String, Arc<LiveSession>>>,
}

impl LiveMirror {
    /// Mirrors the live sessions of `txn` (at open, and after a reopen).
    pub(super) fn load(&self, txn: &ReadTransaction) -> Result<()> {
        let map = match (txn.open_table(LIVE), txn.open_table(SESSIONS)) {
            (Ok(live), Ok(sessions)) => read_live_sessions(&live, &sessions)?
                .into_iter()
                .map(|s| (s.id.clone(), Arc::new(LiveSession::new(s))))
                .collect(),
            _ => HashMap::new(),
        };
        *self.map.write().unwrap_or_else(PoisonError::into_inner) = map;
        Ok(())
    }

    /// Applies a committed batch's session writes, in order.
    pub(super) fn apply(&self, written: Vec<SessionRecord>) {
        if written.is_empty() {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        for record in written {
            if record.is_deleted() {
                map.remove(&record.id);
            } else {
                map.insert(record.id.clone(), Arc::new(LiveSession::new(record)));
            }
        }
    }

    pub(super) fn all(&self) -> Vec<Arc<LiveSession>> {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> SessionRecord {
        SessionRecord {
            id: "3f1c\"id".into(),
            display_id: "brave-otter".into(),
            name: name.into(),
            machine: "laptop".into(),
            cwd: "/src/a \\ b".into(),
            repo: "a\u{1}b".into(),
            registered_at: 1_700_000_000_000,
            last_heartbeat: 1_700_000_012_345,
            client_id: Some("c-1".into()),
            last_cursor: Some(7),
            deleted_at: None,
            client_pid: Some(4242),
            lease_seconds: Some(60),
            lease_deadline: Some(1_700_000_060_000),
            push: vec!["channel".into()],
            key_hash: None,
        }
    }

    #[test]
    fn an_item_is_what_serde_renders() {
        for name in ["plain", "quote \" and \\ and \n", "\"last_heartbeat\":\"\""] {
            let live = LiveSession::new(record(name));
            let now = 1_700_000_100_500;
            let (mut json, mut text) = (String::new(), String::new());
            live.write_item(now, &mut json, false);
            live.write_item(now, &mut text, true);
            let want = serde_json::to_string(&live.record.to_wire(now)).unwrap();
            assert_eq!(json, want);
            assert_eq!(text, escaped(&want));
        }
    }
}
