//! The shared state every request handler sees.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use shared::text::Shown;
use shared::tools::webhooks::{TEST_EVERY_SECONDS, TESTS_PER_MINUTE};

use tokio_util::sync::CancellationToken;

use crate::config::{Limits, Retention};
use crate::delivery::Delivery;
use crate::rate::Limiter;
use crate::store::{SessionRecord, Store};

/// How many deleted-session warnings are remembered; an older one may be
/// logged again, which is all forgetting it costs.
const WARNED_KEEP: usize = 4096;

/// The hub's state: the store, settings, background workers.
pub struct Bus {
    pub store: Store,
    pub limits: Limits,
    /// This machine's host name: the default `machine`, and which sessions
    /// are local (PID liveness, desktop notifications).
    pub hostname: String,
    /// The hub's working directory: the default `cwd`, as the original.
    pub cwd: String,
    /// Sessions without a lease idle longer than this are ended.
    pub idle_timeout_ms: i64,
    pub retention: Retention,
    pub delivery: Delivery,
    /// Cancelled when the hub shuts down; long-polls return at once.
    pub shutdown: CancellationToken,
    /// Deleted-session refusals already logged: (session, `deleted_at`, tool),
    /// the newest [`WARNED_KEEP`] only, so an orphan storm cannot grow it.
    warned: Mutex<Recent<(String, i64, &'static str)>>,
    /// `get_events` calls with a wait in progress (`/health` shows it, so a
    /// client can tell its long-poll has reached the hub).
    long_polls: AtomicUsize,
    /// How often `test_webhook` may ping, per webhook and over the hub.
    pub webhook_tests: Limiter<u64>,
}

/// One long-poll in progress; counted until it is dropped.
pub struct LongPoll<'a>(&'a AtomicUsize);

impl Drop for LongPoll<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Bus {
    pub fn new(
        store: Store,
        limits: Limits,
        idle_timeout_ms: i64,
        retention: Retention,
        delivery: Delivery,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            store,
            limits,
            hostname: shared::config::hostname(),
            cwd: std::env::current_dir()
                .map_or_else(|_| "/".to_owned(), |p| p.display().to_string()),
            idle_timeout_ms,
            retention,
            delivery,
            shutdown,
            warned: Mutex::new(Recent::new(WARNED_KEEP)),
            long_polls: AtomicUsize::new(0),
            webhook_tests: Limiter::new(
                Duration::from_secs(TEST_EVERY_SECONDS),
                Duration::from_secs(60 / TESTS_PER_MINUTE),
                u32::try_from(TESTS_PER_MINUTE).unwrap_or(1),
            ),
        }
    }

    /// Counts a long-poll until the returned guard is dropped.
    pub fn long_poll(&self) -> LongPoll<'_> {
        self.long_polls.fetch_add(1, Ordering::Relaxed);
        LongPoll(&self.long_polls)
    }

    /// Long-polls in progress.
    pub fn long_polls(&self) -> usize {
        self.long_polls.load(Ordering::Relaxed)
    }

    /// Logs, once per deleted session and tool, that an orphaned client is
    /// still calling the bus.
    pub fn warn_deleted_once(&self, session: &SessionRecord, tool: &'static str) {
        let key = (session.id.clone(), session.deleted_at.unwrap_or(0), tool);
        let first = self
            .warned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key);
        if first {
            tracing::warn!(
                display_id = %Shown(&session.display_id),
                session_id = %Shown(&session.id),
                deleted_at = %shared::time::format_ms(session.deleted_at.unwrap_or(0)),
                "{tool}: rejecting calls from a deleted session - an orphaned client is still calling the bus"
            );
        }
    }
}

/// A set that remembers only its newest `cap` keys (oldest out first).
struct Recent<K> {
    cap: usize,
    keys: HashSet<K>,
    order: VecDeque<K>,
}

impl<K: Hash + Eq + Clone> Recent<K> {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            keys: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Adds `key`; false when it is already remembered.
    fn insert(&mut self, key: K) -> bool {
        if self.keys.contains(&key) {
            return false;
        }
        if self.order.len() >= self.cap
            && let Some(oldest) = self.order.pop_front()
        {
            self.keys.remove(&oldest);
        }
        self.keys.insert(key.clone());
        self.order.push_back(key);
        true
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Recent;

    #[test]
    fn the_warned_set_keeps_only_the_newest_keys() {
        let mut recent = Recent::new(3);
        for k in 0..100 {
            assert!(recent.insert(k), "{k} is new");
            assert!(!recent.insert(k), "{k} is remembered");
            assert!(recent.len() <= 3);
        }
        assert!(!recent.insert(99) && !recent.insert(98) && !recent.insert(97));
        assert!(recent.insert(0), "the oldest was forgotten");
        assert_eq!(recent.len(), 3);
    }
}
