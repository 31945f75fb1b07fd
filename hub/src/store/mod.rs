//! The store: one redb file, the only module that names a table.
//!
//! Writes go through one writer thread that batches whatever is queued into
//! one transaction (group commit): a batch that holds any durable write is
//! committed with `Durability::Immediate` before any caller hears back;
//! lazy writes (heartbeats, cursor advances from reads) commit without an
//! fsync and are made durable by the next durable commit or a flush within
//! about a second. Reads run on blocking threads in their own MVCC snapshot
//! and never block the writer. No transaction lives across an `.await`.
//!
//! A failed commit (a full disk, an I/O error) leaves redb's handle refusing
//! everything, so the writer closes and reopens the file itself: the failed
//! batch was never acknowledged, so nothing acknowledged is lost. While it
//! cannot write, every write is refused with [`STORAGE_REFUSAL`] and
//! [`Store::storage_fault`] says why (for `/health`); reads carry on from the
//! reopened file. The file's integrity is checked at open: a damaged file is
//! refused, never written to.
//!
//! The webhook outbox lives here too: a publish enqueues its deliveries in
//! the event's own transaction, and every commit that enqueued any wakes the
//! delivery worker ([`Store::outbox_signal`]).
//!
//! Submodules add their own tables and verbs: [`claims`] (advisory holds
//! that end with their session) and [`receipts`] (direct-message receipts).
//!
//! # Layout
//! - `tables`: every table definition and the encodings of their rows.
//! - `records`: the stored shapes (sessions, events, webhooks, attempts).
//! - `read`: [`Snapshot`], the reads of one MVCC snapshot.
//! - `index`: the event index (a bitmap per key and block of 64 ids) and
//!   the walk that answers filtered reads.
//! - `postings`: the event index's writes: key names and numbers, an
//!   event's bits set and cleared, a key dropped with its last event.
//! - `page`: one page of events from a cursor, within its limit and its
//!   byte limit.
//! - `live`: the live sessions in memory, as committed, each with its
//!   `list_sessions` item rendered once.
//! - `sessions`, `events`, `outbox`: the write verbs of [`Tx`].
//! - `writer`: the writer thread, group commit and reopening.
//! - `waiters`: the long-polls waiting on channels and sessions' ends.
//! - `open`: opening, refusing what is not a redb file.
//! - `migrate`: bringing an older file up to date at open, and compacting
//!   one that is mostly free space.
//! - [`claims`], [`receipts`]: their own tables and verbs.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, PoisonError};
use std::thread;
use std::time::Duration;

use tokio::sync::{Notify, oneshot, watch};

use crate::codec;

pub mod claims;
mod events;
mod index;
mod live;
mod migrate;
mod open;
mod outbox;
mod page;
mod postings;
mod read;
pub mod receipts;
mod records;
mod sessions;
mod tables;
#[cfg(test)]
pub(crate) mod testing;
mod waiters;
mod writer;

pub use claims::ClaimRecord;
pub use live::{HookWait, LiveSession, escaped, reach};
pub use open::{Existing, OpenError, inspect};
pub use outbox::DELIVERY_LOG_KEEP;
pub use read::Snapshot;
pub use receipts::{Change, Receipt};
pub use records::{
    AttemptRecord, AttemptResult, AttemptStatus, DueDelivery, EventPage, EventQuery, EventRecord,
    NewEvent, Queued, SessionRecord, Verdict, WebhookRecord, delivery_id,
};
pub use tables::Counter;
use tables::{decode, encode};
use waiters::ChannelWaiters;
pub use waiters::{ChannelWait, Woken};
pub use writer::Tx;
use writer::{Completion, Job, JobFn, Shared};

/// A storage failure. Its text is for logs, never for clients: a caller
/// matches on it (or asks [`StoreError::is_unavailable`]) to choose what
/// the client is told. (Clone, for every caller of a failed batch: the
/// errors of other crates are shared behind an `Arc`.)
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The storage itself failed (a full disk, an I/O error, a reopen under
    /// way): the caller may be told [`STORAGE_REFUSAL`] and retry.
    #[error("{STORAGE_REFUSAL} [{0}]")]
    Unavailable(String),
    /// Another write in the same batch failed, so this one was rolled back
    /// with it: a retry is safe.
    #[error("storage: a write in this batch failed; the batch was rolled back")]
    RolledBack,
    /// The writer has stopped (the hub is shutting down).
    #[error("storage: the writer stopped")]
    Stopped,
    /// A read met a record it could not decode (a damaged file).
    #[error("storage: a read met a damaged record")]
    Damaged,
    /// redb refused an operation (a transaction, a table, a commit).
    #[error("storage: {0}")]
    Database(Arc<redb::Error>),
    /// A stored event could not be decoded.
    #[error("storage: {0}")]
    Codec(Arc<codec::CodecError>),
    /// A stored record (not an event) could not be encoded or decoded.
    #[error("storage: {0}")]
    Encoding(Arc<serde_json::Error>),
    /// The file system refused.
    #[error("storage: {0}")]
    Io(Arc<std::io::Error>),
    /// The file was written by a newer hub.
    #[error(
        "storage: the database has schema version {found}, newer than this hub's {supported}; upgrade agent-event-bus"
    )]
    NewerSchema { found: u64, supported: u64 },
    /// A write job panicked: its whole batch was rolled back.
    #[error("storage: a write job panicked")]
    WriteJobPanicked,
    /// A blocking task the store ran (`what`) did not finish: it panicked,
    /// or the runtime is shutting down.
    #[error("storage: {what} failed: {error}")]
    Task {
        what: &'static str,
        error: Arc<tokio::task::JoinError>,
    },
}

macro_rules! store_error_from {
    ($($t:ty => $variant:ident $(via $via:ty)?),* $(,)?) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                Self::$variant(Arc::new($(<$via>::from)?(e)))
            }
        }
    )*};
}
store_error_from!(
    redb::Error => Database,
    redb::DatabaseError => Database via redb::Error,
    redb::TransactionError => Database via redb::Error,
    redb::TableError => Database via redb::Error,
    redb::StorageError => Database via redb::Error,
    redb::CommitError => Database via redb::Error,
    redb::SetDurabilityError => Database via redb::Error,
    serde_json::Error => Encoding,
    std::io::Error => Io,
    codec::CodecError => Codec,
);

pub type Result<T> = std::result::Result<T, StoreError>;

/// What a caller is told when the storage cannot take a write (or serve a
/// read) at the moment. The detail stays in the log and `/health`.
pub const STORAGE_REFUSAL: &str = "storage error (disk full?): the hub could not save or read this, and nothing was acknowledged. Retry in a moment; the hub's /health says when storage is back";

impl StoreError {
    /// A failure of the storage itself, as opposed to a refused write.
    fn unavailable(detail: impl std::fmt::Display) -> Self {
        Self::Unavailable(detail.to_string())
    }

    /// Whether the storage itself failed (disk full, I/O error, reopening):
    /// callers may be told [`STORAGE_REFUSAL`] and retry.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// A blocking task of the store's, `what`, that did not finish.
    pub fn task(what: &'static str, error: tokio::task::JoinError) -> Self {
        Self::Task {
            what,
            error: Arc::new(error),
        }
    }

    /// The failure without the `storage:` prefix, for a message of its own.
    fn detail(&self) -> String {
        match self {
            Self::Database(e) => e.to_string(),
            Self::Codec(e) => e.to_string(),
            Self::Encoding(e) => e.to_string(),
            Self::Io(e) => e.to_string(),
            other => other.to_string().trim_start_matches("storage: ").to_owned(),
        }
    }
}

/// Whether a write must be on disk before the caller hears back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Events, sessions, webhooks, explicit acks.
    Durable,
    /// Heartbeats, lease renewals by reads, cursor advances from reads.
    Lazy,
}

/// The database handle: cheap to clone.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Job>,
    tip: watch::Receiver<u64>,
    /// Notified after each commit that put deliveries in the outbox.
    outbox: Arc<Notify>,
    writer: Arc<std::sync::Mutex<Option<thread::JoinHandle<()>>>>,
    path: PathBuf,
    channel_waiters: Arc<ChannelWaiters>,
}

impl Store {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in the writer's next batch; resolves after that batch commits
    /// (after its fsync when `durability` is [`Durability::Durable`]).
    pub async fn write<R, F>(&self, durability: Durability, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<R>>();
        let waiters = self.channel_waiters.clone();
        let run: JobFn = Box::new(move |t: &mut Tx<'_>| {
            let outcome = f(t);
            let ok = outcome.is_ok();
            let appended = std::mem::take(&mut t.appended_channels);
            let ended = std::mem::take(&mut t.ended_sessions);
            let done: Completion = Box::new(move |commit: Result<()>| {
                if commit.is_ok() && ok {
                    waiters.wake(&appended, &ended);
                }
                let _ = tx.send(outcome.and_then(|r| commit.map(|()| r)));
            });
            (done, ok)
        });
        self.jobs
            .send(Job { durability, run })
            .map_err(|_| StoreError::Stopped)?;
        rx.await.unwrap_or_else(|_| {
            // The writer dropped the job: the storage failed, or it stopped.
            Err(match self.storage_fault() {
                Some(fault) => StoreError::unavailable(fault),
                None => StoreError::Stopped,
            })
        })
    }

    /// Runs `f` on a blocking thread against a fresh snapshot. A read that
    /// meets a damaged record fails with an error, never a panic.
    pub async fn read<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Snapshot) -> Result<R> + Send + 'static,
    {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let snapshot = Snapshot {
                txn: shared.begin_read()?,
            };
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&snapshot))).unwrap_or_else(
                |_| {
                    tracing::error!("a read panicked: the database file may be damaged");
                    Err(StoreError::Damaged)
                },
            )
        })
        .await
        .map_err(|e| StoreError::task("read task", e))?
    }

    /// Why writes are failing (a full disk, an I/O error), from a failed
    /// commit until a write succeeds again; `None` while storage is fine.
    pub fn storage_fault(&self) -> Option<String> {
        self.shared
            .fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Interest in events on `channels`: [`ChannelWait::changed`] resolves
    /// after a commit that appended one on any of them.
    pub fn wait_channels(&self, channels: &[String]) -> ChannelWait {
        self.wait_for(channels, &[])
    }

    /// [`Store::wait_channels`], also woken ([`Woken::Ended`]) by a commit
    /// that ended one of `sessions`.
    pub fn wait_for(&self, channels: &[String], sessions: &[String]) -> ChannelWait {
        ChannelWaiters::register(&self.channel_waiters, channels, sessions)
    }

    /// The live sessions as committed, from memory (no read of the file).
    pub fn live_sessions(&self) -> Vec<Arc<LiveSession>> {
        self.shared.live.all()
    }

    /// Counts a `wait` long-poll for `session` as connected (it is reachable
    /// by `hook`) until the guard is dropped, and briefly after.
    pub fn hook_wait(&self, session: &str) -> HookWait {
        self.shared.live.hooks.connect(session)
    }

    /// The sessions a `wait` is connected for now.
    pub fn hooked(&self) -> std::collections::HashSet<String> {
        self.shared.live.hooks.now()
    }

    /// Whether a `wait` is connected for `session` now.
    pub fn is_hooked(&self, session: &str) -> bool {
        self.shared.live.hooks.has(session)
    }

    /// A receiver of the newest committed event id; it changes after each
    /// commit that appended events.
    pub fn tip(&self) -> watch::Receiver<u64> {
        self.tip.clone()
    }

    /// Notified after every commit that put deliveries in the outbox (a
    /// permit is stored when nobody waits, so no wake-up is lost).
    pub fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox.clone()
    }

    /// Flushes lazy writes and stops the writer. Later writes fail.
    pub fn close(&self) {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        // A durable no-op makes every lazy write before it durable.
        let _ = self.jobs.send(Job {
            durability: Durability::Durable,
            run: Box::new(move |_| {
                let done: Completion = Box::new(move |_| {
                    let _ = tx.send(());
                });
                (done, true)
            }),
        });
        let _ = rx.recv_timeout(Duration::from_secs(10));
    }

    /// Waits for the writer thread to finish once every handle is dropped.
    pub fn join_writer(self) {
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(self);
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::*;

    #[tokio::test]
    async fn a_read_that_panics_fails_that_call_only() {
        let (_dir, store) = store_with(0).await;
        let err = store
            .read(|_| -> Result<()> { panic!("a damaged record") })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("damaged record"), "{err}");
        assert_eq!(store.read(Snapshot::tip).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_channel_wait_wakes_only_for_its_channels() {
        let (_dir, store) = store_with(0).await;
        let wait = store.wait_channels(&["session:a".to_owned()]);
        store
            .write(Durability::Durable, |t| t.append_event(new_event("all")))
            .await
            .unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(0), wait.changed()).await;
        assert!(quiet.is_err(), "an event elsewhere does not wake it");
        store
            .write(Durability::Durable, |t| {
                t.append_event(new_event("session:a"))
            })
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), wait.changed())
            .await
            .expect("woken by an event on its channel");
        drop(wait);
        assert!(store.channel_waiters.lock().is_empty());
    }
}
