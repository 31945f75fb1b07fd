//! The writer thread: jobs queued from any task run in one transaction per
//! batch (group commit), durable batches are fsynced before anyone hears
//! back, and a failed commit makes it reopen the file.

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use redb::{
    Database, Durability as RedbDurability, ReadTransaction, ReadableDatabase, Table,
    WriteTransaction,
};
use tokio::sync::{Notify, watch};

use super::open::{CACHE_BYTES, open_database};
use super::read::committed_tip;
use super::tables::META;
use super::{Durability, Result, StoreError, WebhookRecord};

/// How long lazy writes may stay unsynced.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// The most jobs folded into one commit.
const MAX_BATCH: usize = 4096;

/// A write transaction in the writer thread, with domain verbs.
pub struct Tx<'t> {
    pub(super) txn: &'t WriteTransaction,
    /// The newest event id appended in this batch, if any.
    pub(super) appended_tip: Option<u64>,
    /// Whether this batch put deliveries in the outbox (the worker is woken
    /// after the commit).
    pub(super) enqueued: bool,
    /// The webhooks, decoded once per batch for matching; cleared by any
    /// write to them.
    pub(super) hooks: Option<Vec<WebhookRecord>>,
    /// Channels of the events the running job appended: their waiters are
    /// woken once the batch commits.
    pub(super) appended_channels: Vec<String>,
    /// Sessions the running job ended: their waiters are woken once the
    /// batch commits.
    pub(super) ended_sessions: Vec<String>,
    /// Every session row this batch wrote, in order: mirrored once it commits.
    pub(super) sessions_written: Vec<super::SessionRecord>,
    /// When the running job happens (epoch µs): the hub's clock when the
    /// write was asked for, never before an earlier job's.
    pub(super) now_us: i64,
}

impl Tx<'_> {
    /// When this write happens (epoch ms), on the hub's clock: the time the
    /// write was asked for, and never earlier than any write before it, so
    /// times written in id order rise with the ids.
    pub fn now_ms(&self) -> i64 {
        self.now_us.div_euclid(1000)
    }

    /// [`Tx::now_ms`] in microseconds, the unit of event timestamps.
    pub fn now_micros(&self) -> i64 {
        self.now_us
    }

    pub(super) fn meta(&self) -> Result<Table<'_, &'static str, u64>> {
        Ok(self.txn.open_table(META)?)
    }
}

pub(super) type Completion = Box<dyn FnOnce(Result<()>) + Send>;
/// A job runs in the batch's transaction and returns its completion, and
/// whether it succeeded: one failed job rolls the whole batch back, so no
/// half-done write is ever committed.
pub(super) type JobFn = Box<dyn FnOnce(&mut Tx<'_>) -> (Completion, bool) + Send>;

pub(super) struct Job {
    pub(super) durability: Durability,
    /// When the write was asked for (epoch µs, the hub's clock).
    pub(super) at_us: i64,
    pub(super) run: JobFn,
}

/// The open database, shared by the readers and the writer thread, which
/// swaps it to reopen the file after a failed commit. Readers hold it only
/// while they begin a snapshot, so the old handle can be closed.
pub(super) struct Shared {
    pub(super) db: RwLock<Option<Arc<Database>>>,
    /// Why writes fail, from a failed commit until one succeeds again.
    pub(super) fault: Mutex<Option<String>>,
    /// The live sessions as committed.
    pub(super) live: super::live::LiveMirror,
}

impl Shared {
    pub(super) fn begin_read(&self) -> Result<ReadTransaction> {
        let db = self
            .db
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                StoreError::unavailable(
                    "the database could not be reopened; the hub retries each second",
                )
            })?;
        db.begin_read().map_err(StoreError::unavailable)
    }

    pub(super) fn set_fault(&self, fault: Option<String>) {
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner) = fault;
    }

    /// Records a failure of the storage; returns what its callers are told.
    pub(super) fn fail(&self, detail: impl std::fmt::Display) -> StoreError {
        self.set_fault(Some(detail.to_string()));
        StoreError::unavailable(detail)
    }
}

/// The writer thread's state: the one place that commits and reopens.
pub(super) struct Writer {
    pub(super) shared: Arc<Shared>,
    pub(super) path: PathBuf,
    pub(super) tip: watch::Sender<u64>,
    /// Notified after each commit that put deliveries in the outbox.
    pub(super) outbox: Arc<Notify>,
    /// The latest time a job ran at (epoch µs): no later job runs earlier.
    pub(super) last_us: Cell<i64>,
}

impl Writer {
    pub(super) fn run(&self, jobs: &mpsc::Receiver<Job>) {
        let mut dirty = false;
        let mut last_durable = Instant::now();
        loop {
            let first = match jobs.recv_timeout(FLUSH_INTERVAL) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if dirty {
                        match self.commit(Vec::new(), true) {
                            Ok(_) => {
                                dirty = false;
                                last_durable = Instant::now();
                            }
                            Err(e) => {
                                // Reopened: the unsynced writes are gone.
                                dirty &= !e.is_unavailable();
                                tracing::error!(error = %e, "flushing lazy writes failed");
                            }
                        }
                    } else if self.current().is_none() {
                        self.reopen();
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let durable = batch.iter().any(|j| j.durability == Durability::Durable)
                || (dirty && last_durable.elapsed() >= FLUSH_INTERVAL);
            let reopened = match self.commit(batch, durable) {
                Ok(_) => false,
                Err(e) => {
                    tracing::error!(error = %e, "a write batch failed; its callers were told");
                    // After a reopen, unsynced lazy writes are gone: nothing to flush.
                    e.is_unavailable()
                }
            };
            if durable || reopened {
                dirty = false;
                last_durable = Instant::now();
            } else {
                dirty = true;
            }
        }
        if dirty && let Err(e) = self.commit(Vec::new(), true) {
            tracing::error!(error = %e, "final flush failed");
        }
    }

    fn current(&self) -> Option<Arc<Database>> {
        self.shared
            .db
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Tells the long-polls and the delivery worker what a commit changed,
    /// before any of its callers hears back: a caller that reads the tip
    /// after its write returns sees its own events.
    fn announce(&self, done: &Committed) {
        if let Some(new_tip) = done.tip {
            self.publish_tip(new_tip);
        }
        if done.enqueued {
            self.outbox.notify_one();
        }
    }

    fn publish_tip(&self, new_tip: u64) {
        self.tip.send_if_modified(|t| {
            let changed = *t != new_tip;
            *t = new_tip;
            changed
        });
    }

    /// Commits `batch` on the open database; after a failure of the storage
    /// itself, records the fault and reopens the file. Every job hears the
    /// outcome.
    fn commit(&self, batch: Vec<Job>, durable: bool) -> Result<Committed> {
        // Only a batch that wrote something proves storage is back.
        let writes = !batch.is_empty();
        let Some(db) = self.current().or_else(|| self.reopen()) else {
            // The fault is recorded; dropping the jobs drops their reply
            // channels, and their callers are told it.
            drop(batch);
            return Err(StoreError::unavailable("the database is not open"));
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            commit_batch(&db, &self.shared, batch, durable, &self.last_us, |done| {
                self.announce(done);
            })
        }))
        .unwrap_or_else(|_| Err(self.shared.fail("a commit panicked")));
        drop(db);
        match &outcome {
            Ok(_) if writes => self.shared.set_fault(None),
            Err(e) if e.is_unavailable() => {
                tracing::error!(error = %e, "storage failed; reopening the database");
                self.reopen();
            }
            Ok(_) | Err(_) => {}
        }
        outcome
    }

    /// Closes the current handle (redb refuses everything after an I/O
    /// error) and opens the file again. Returns the new handle. The slot's
    /// lock is held throughout, so a read that arrives meanwhile waits for
    /// the new handle instead of being refused.
    fn reopen(&self) -> Option<Arc<Database>> {
        let mut slot = self
            .shared
            .db
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = slot.take() {
            close_when_unshared(old);
        }
        match open_database(&self.path, false, CACHE_BYTES) {
            Ok(db) => {
                let db = Arc::new(db);
                match db.begin_read().map_err(StoreError::from).and_then(|txn| {
                    // Unsynced lazy writes are gone: mirror what the file holds.
                    self.shared.live.load(&txn)?;
                    committed_tip(&txn)
                }) {
                    Ok(tip) => self.publish_tip(tip),
                    Err(e) => tracing::warn!(error = %e, "reading the tip after reopening"),
                }
                *slot = Some(db.clone());
                tracing::info!("database reopened");
                Some(db)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot reopen the database; writes are refused");
                self.shared
                    .set_fault(Some(format!("cannot reopen the database: {e}")));
                None
            }
        }
    }
}

/// Closes a database handle once no reader holds it. Readers hold one only
/// while they begin a snapshot (they need the slot's lock to get another),
/// so this waits a moment at most; a handle still shared after 5 s closes
/// with its last reader.
fn close_when_unshared(mut old: Arc<Database>) {
    let waited = Instant::now();
    loop {
        match Arc::try_unwrap(old) {
            Ok(db) => {
                if let Err(e) = db.close() {
                    tracing::warn!(error = %e, "closing the failed database handle");
                }
                return;
            }
            Err(still) if waited.elapsed() < Duration::from_secs(5) => {
                old = still;
                thread::sleep(Duration::from_millis(1));
            }
            Err(_) => return,
        }
    }
}

/// What a committed batch changed.
struct Committed {
    /// The new tip, when events were appended.
    tip: Option<u64>,
    /// Whether deliveries were put in the outbox.
    enqueued: bool,
}

/// Runs every job in one transaction and commits; `on_commit` hears what a
/// successful commit changed, then every job hears the commit's outcome.
/// A failure of the storage itself is recorded in `shared` before any
/// caller hears of it, so `/health` already tells when they do.
fn commit_batch(
    db: &Database,
    shared: &Shared,
    batch: Vec<Job>,
    durable: bool,
    last_us: &Cell<i64>,
    on_commit: impl FnOnce(&Committed),
) -> Result<Committed> {
    let mut txn = match db.begin_write() {
        Ok(t) => t,
        Err(e) => {
            let e = shared.fail(e);
            // Dropping the jobs drops their reply channels: callers get an error.
            drop(batch);
            return Err(e);
        }
    };
    let mode = if durable {
        RedbDurability::Immediate
    } else {
        RedbDurability::None
    };
    if let Err(e) = txn.set_durability(mode) {
        tracing::error!(error = %e, "cannot set durability");
    }
    let mut completions = Vec::with_capacity(batch.len());
    let mut failed = false;
    let appended;
    let enqueued;
    let written;
    {
        let mut tx = Tx {
            txn: &txn,
            appended_tip: None,
            enqueued: false,
            hooks: None,
            appended_channels: Vec::new(),
            ended_sessions: Vec::new(),
            sessions_written: Vec::new(),
            now_us: 0,
        };
        for job in batch {
            tx.now_us = job.at_us.max(last_us.get());
            last_us.set(tx.now_us);
            let run = job.run;
            let Ok((done, ok)) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&mut tx)))
            else {
                // Abort the whole batch: dropping the completions tells
                // every caller that its write did not happen.
                tracing::error!("a write job panicked; its batch was rolled back");
                drop(completions);
                return Err(StoreError::WriteJobPanicked);
            };
            failed |= !ok;
            completions.push(done);
        }
        appended = tx.appended_tip;
        enqueued = tx.enqueued;
        written = std::mem::take(&mut tx.sessions_written);
    }
    let outcome = if failed {
        // Every caller hears that its write did not happen; a retry is safe.
        drop(txn);
        Err(StoreError::RolledBack)
    } else {
        txn.commit().map_err(|e| shared.fail(e))
    };
    let committed = outcome.clone().map(|()| Committed {
        tip: appended,
        enqueued,
    });
    if let Ok(done) = &committed {
        // Before anyone hears back: a caller's next list shows its own write.
        shared.live.apply(written);
        on_commit(done);
    }
    for done in completions {
        done(outcome.clone());
    }
    committed
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::store::testing::*;

    #[tokio::test]
    async fn a_failed_job_commits_nothing() {
        let (_dir, store) = store_with(0).await;
        let err = store
            .write(Durability::Durable, |t| {
                t.append_event(new_event("all"))?;
                Err::<(), _>(StoreError::Damaged)
            })
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Damaged),
            "the job's own error: {err}"
        );
        let events = oldest_events(&store, 10).await;
        assert!(events.is_empty(), "the half-done write was rolled back");
        let id = store
            .write(Durability::Durable, |t| t.append_event(new_event("all")))
            .await
            .unwrap()
            .id;
        assert_eq!(id, 1, "ids stay gap-free after a rollback");
    }

    /// A read racing the writer's reopen (as after a full disk) waits for the
    /// new handle: none is refused.
    #[test]
    fn reads_during_a_reopen_wait_for_the_new_handle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        let db = open_database(&path, true, CACHE_BYTES).unwrap();
        let shared = Arc::new(Shared {
            db: RwLock::new(Some(Arc::new(db))),
            fault: Mutex::new(None),
            live: super::super::live::LiveMirror::default(),
        });
        let writer = Writer {
            shared: shared.clone(),
            path,
            tip: watch::channel(0).0,
            outbox: Arc::new(Notify::new()),
            last_us: Cell::new(0),
        };
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (shared, done) = (shared.clone(), done.clone());
            thread::spawn(move || {
                let mut reads = 0_u32;
                while !done.load(Ordering::Relaxed) {
                    if let Err(e) = shared.begin_read() {
                        return Err(format!("read {reads} refused: {e}"));
                    }
                    reads += 1;
                }
                Ok(reads)
            })
        };
        for _ in 0..50 {
            assert!(writer.reopen().is_some(), "the file reopens");
        }
        done.store(true, Ordering::Relaxed);
        let reads = reader.join().unwrap().unwrap();
        assert!(reads > 0, "the reader ran alongside the reopens");
    }
}
