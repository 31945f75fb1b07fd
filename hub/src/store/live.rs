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
//! first use): a list is then the items' fixed parts copied around the
//! fields that move with time, `last_heartbeat` and `age_seconds`, and its
//! `reach`, rendered both ways (with and without a connected `wait`).
//!
//! Which sessions have a `wait` connected right now is kept here too
//! ([`HookWaits`]): it lives only in memory, as the connections do.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use redb::ReadTransaction;
use shared::wire::Reach;
use tokio::time::Instant;

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
    /// From the `,` after `age_seconds` to `"reach":` (the last field).
    tail: String,
    tail_text: String,
    /// The `reach` value and the closing `}`: without a `wait` connected,
    /// and with one.
    reach: [String; 2],
    reach_text: [String; 2],
}

/// How a session with these reported `routes` can be reached now, in
/// [`shared::push::ROUTES`] order: the routes (a pane is confirmed, the
/// others cannot be) and `hook`, confirmed while a `wait` is connected.
pub fn reach(routes: &[String], hook: bool) -> Vec<Reach> {
    shared::push::ROUTES
        .iter()
        .filter(|r| routes.iter().any(|k| k == *r) || (hook && **r == "hook"))
        .map(|r| Reach {
            path: (*r).to_owned(),
            confirmed: shared::push::route_confirmed(r) || (hook && *r == "hook"),
        })
        .collect()
}

/// The moving fields are rendered as these placeholders, then cut out.
const HEARTBEAT_KEY: &str = "\"last_heartbeat\":";
const MOVING: &str = "\"last_heartbeat\":\"\",\"age_seconds\":0.0";
/// How an item rendered with an empty `reach` ends.
const EMPTY_REACH: &str = "[]}";

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
            let mut wire = self.record.to_wire(self.record.registered_at, false);
            wire.last_heartbeat = String::new();
            wire.age_seconds = 0.0;
            wire.reach = Vec::new();
            let json = serde_json::to_string(&wire).unwrap_or_default();
            // The key cannot occur inside a string value (its quotes would be
            // escaped there), so the one match is the field itself; `reach`
            // is the last field, so the item ends with its empty list.
            let json = json.strip_suffix(EMPTY_REACH).unwrap_or(&json);
            let (head, tail) = match json.find(MOVING) {
                Some(at) => (
                    &json[..at + HEARTBEAT_KEY.len()],
                    &json[at + MOVING.len()..],
                ),
                None => (json, ""),
            };
            let reach = [false, true].map(|hook| {
                let list = reach(&self.record.push, hook);
                serde_json::to_string(&list).unwrap_or_else(|_| "[]".to_owned()) + "}"
            });
            Item {
                head_text: escaped(head),
                tail_text: escaped(tail),
                head: head.to_owned(),
                tail: tail.to_owned(),
                reach_text: reach.clone().map(|r| escaped(&r)),
                reach,
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
            item.head.len() + item.tail.len() + item.reach[1].len() + MOVING_LEN,
            item.head_text.len() + item.tail_text.len() + item.reach_text[1].len() + MOVING_LEN + 8,
        )
    }

    /// Appends this session's `list_sessions` item at `now_ms` to `out`:
    /// its JSON, or with `as_text` the same escaped as inside a JSON string;
    /// `hook`: a `wait` for it is connected.
    pub fn write_item(&self, now_ms: i64, hook: bool, out: &mut String, as_text: bool) {
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
                &item.reach_text[usize::from(hook)],
            ]
        } else {
            [
                item.head.as_str(),
                "\"",
                &heartbeat,
                "\",\"age_seconds\":",
                &age,
                &item.tail,
                &item.reach[usize::from(hook)],
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
    pub(super) hooks: Arc<HookWaits>,
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

/// How long after a session's last `wait` long-poll ended it still counts
/// as reachable by `hook`: a waiter's rounds follow one another, with a
/// `list_sessions` between them.
pub(super) const HOOK_GRACE: Duration = Duration::from_secs(2);

/// The `wait` long-polls connected now, per session.
#[derive(Debug, Default)]
pub(super) struct HookWaits {
    map: Mutex<HashMap<String, Waiting>>,
}

#[derive(Debug, Clone, Copy)]
struct Waiting {
    connected: usize,
    /// When the last one ended (while none is connected).
    left: Instant,
}

/// One connected `wait` long-poll; counted until dropped (the request ends,
/// or its connection closes).
#[derive(Debug)]
pub struct HookWait {
    waits: Arc<HookWaits>,
    session: String,
}

impl Drop for HookWait {
    fn drop(&mut self) {
        let mut map = self.waits.lock();
        if let Some(w) = map.get_mut(&self.session) {
            w.connected = w.connected.saturating_sub(1);
            w.left = Instant::now();
        }
    }
}

impl HookWaits {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        // A poisoned lock only means a panic elsewhere; the map is plain data.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a `wait` for `session` as connected until the guard is dropped.
    pub(super) fn connect(self: &Arc<Self>, session: &str) -> HookWait {
        let mut map = self.lock();
        let now = Instant::now();
        map.entry(session.to_owned())
            .or_insert(Waiting {
                connected: 0,
                left: now,
            })
            .connected += 1;
        HookWait {
            waits: self.clone(),
            session: session.to_owned(),
        }
    }

    /// The sessions reachable by `hook` now; forgets those past the grace.
    pub(super) fn now(&self) -> HashSet<String> {
        let mut map = self.lock();
        if map.is_empty() {
            return HashSet::new();
        }
        let now = Instant::now();
        map.retain(|_, w| w.connected > 0 || now.duration_since(w.left) < HOOK_GRACE);
        map.keys().cloned().collect()
    }

    /// Whether `session` is reachable by `hook` now.
    pub(super) fn has(&self, session: &str) -> bool {
        let map = self.lock();
        map.get(session)
            .is_some_and(|w| w.connected > 0 || Instant::now().duration_since(w.left) < HOOK_GRACE)
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
            push: vec!["notify".into(), "pane".into(), "channel".into()],
            key_hash: None,
        }
    }

    #[test]
    fn reach_lists_routes_in_order_and_confirms_a_pane_and_a_connected_wait() {
        let routes = ["notify".to_owned(), "hook".to_owned(), "pane".to_owned()];
        let shown = |hook| {
            reach(&routes, hook)
                .into_iter()
                .map(|r| format!("{}{}", r.path, if r.confirmed { "!" } else { "" }))
                .collect::<Vec<_>>()
        };
        assert_eq!(shown(false), ["pane!", "hook", "notify"]);
        assert_eq!(shown(true), ["pane!", "hook!", "notify"]);
        assert_eq!(reach(&[], true).len(), 1);
        assert!(reach(&[], false).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_counts_while_connected_and_for_a_grace_after() {
        let waits = Arc::new(HookWaits::default());
        assert!(!waits.has("s") && waits.now().is_empty());
        let first = waits.connect("s");
        let second = waits.connect("s");
        drop(first);
        tokio::time::advance(HOOK_GRACE * 3).await;
        assert!(waits.has("s"), "one is still connected");
        drop(second);
        assert!(waits.has("s"));
        tokio::time::advance(HOOK_GRACE / 2).await;
        assert_eq!(
            waits.now(),
            HashSet::from(["s".to_owned()]),
            "between rounds"
        );
        tokio::time::advance(HOOK_GRACE).await;
        assert!(!waits.has("s"));
        assert!(waits.now().is_empty());
        assert!(waits.lock().is_empty(), "forgotten");
    }

    #[test]
    fn an_item_is_what_serde_renders() {
        for name in ["plain", "quote \" and \\ and \n", "\"last_heartbeat\":\"\""] {
            let live = LiveSession::new(record(name));
            let now = 1_700_000_100_500;
            for hook in [false, true] {
                let (mut json, mut text) = (String::new(), String::new());
                live.write_item(now, hook, &mut json, false);
                live.write_item(now, hook, &mut text, true);
                let want = serde_json::to_string(&live.record.to_wire(now, hook)).unwrap();
                assert_eq!(json, want);
                assert_eq!(text, escaped(&want));
                let (json_len, text_len) = live.item_len();
                assert!(json.len() <= json_len && text.len() <= text_len);
            }
        }
    }
}
