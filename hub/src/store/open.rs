//! Opening the file: refusing what is not a redb database (the original's
//! SQLite file) or is damaged, creating the tables, and migrating an older
//! store (its live indexes, its event index). Also `--check` and the
//! read-only look `import` takes before replacing a store.

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::thread;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableError};
use tokio::sync::{Notify, watch};

use super::migrate::{build_event_index, compact_if_slack, rebuild_live_index, rebuild_live_names};
use super::postings::init_key_counter;
use super::read::{committed_tip, read_tip};
use super::tables::{
    CLIENTS, DELIVERY_LOG, DELIVERY_LOG_LEN, EVENT_BITS, EVENTS, LEASES, META, OUTBOX,
    OUTBOX_RETRY, SESSIONS, WEBHOOKS,
};
use super::writer::{Job, Shared, Writer};
use super::{Result, Store, StoreError, claims, receipts};

/// 2: compact event rows and a posting list per entry ([`EVENT_INDEX_V2`]);
/// 3: the posting lists as bitmaps ([`EVENT_BITS`]); 4: index keys numbered
/// by a counter and dropped with their last event (a hub of version 3
/// would number keys by the table's length, which pruning shrinks, so it
/// must refuse the file).
pub(super) const SCHEMA_VERSION: u64 = 4;
/// redb's page cache for a serving hub.
pub(super) const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Why the database file cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "{path} is not an agent-event-bus database (redb): it looks like {kind}. \
         Nothing was changed. Point AGENT_EVENT_BUS_DB (or --db) at a new file, \
         e.g. data.redb next to it"
    )]
    NotRedb { path: String, kind: String },
    #[error(
        "{path} is in use by another agent-event-bus process. Stop it first \
         (only one hub can own a database file)"
    )]
    InUse { path: String },
    #[error(
        "{path} is damaged ({detail}). The hub will not write into a damaged file. \
         Stop here and restore a copy of it from a backup (or move it aside to start \
         afresh with an empty bus); `agent-event-bus --check --db FILE` tells whether \
         a copy is sound"
    )]
    Damaged { path: String, detail: String },
    #[error("cannot open the database {path}: {detail}")]
    Other { path: String, detail: String },
}

impl Store {
    /// Opens (or creates) the database at `path`, refusing files that are
    /// not redb databases, and starts the writer thread.
    pub fn open(path: &Path) -> std::result::Result<Self, OpenError> {
        Self::open_with_cache(path, CACHE_BYTES)
    }

    /// [`Store::open`] with a page cache of `cache_bytes` (a bulk load
    /// that writes each page once needs little).
    pub fn open_with_cache(
        path: &Path,
        cache_bytes: usize,
    ) -> std::result::Result<Self, OpenError> {
        let display = path.display().to_string();
        check_is_redb(path)?;
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| OpenError::Other {
                path: display.clone(),
                detail: format!("cannot create its directory: {e}"),
            })?;
        }
        let mut db = open_database(path, true, cache_bytes)?;
        let tip = init_tables(&db).map_err(|e| OpenError::Other {
            path: display.clone(),
            detail: e.detail(),
        })?;
        build_event_index(&db).map_err(|e| OpenError::Other {
            path: display.clone(),
            detail: format!("building the event index: {}", e.detail()),
        })?;
        compact_if_slack(&mut db, path);
        let live = super::live::LiveMirror::default();
        db.begin_read()
            .map_err(StoreError::from)
            .and_then(|txn| live.load(&txn))
            .map_err(|e| OpenError::Other {
                path: display.clone(),
                detail: format!("reading the live sessions: {}", e.detail()),
            })?;
        let shared = Arc::new(Shared {
            db: RwLock::new(Some(Arc::new(db))),
            fault: Mutex::new(None),
            live,
        });
        let (tip_tx, tip_rx) = watch::channel(tip);
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let writer = Writer {
            shared: shared.clone(),
            path: path.to_owned(),
            tip: tip_tx,
            outbox: Arc::new(Notify::new()),
        };
        let outbox = writer.outbox.clone();
        let handle = thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(&jobs_rx))
            .map_err(|e| OpenError::Other {
                path: display.clone(),
                detail: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(Self {
            shared,
            jobs: jobs_tx,
            tip: tip_rx,
            outbox,
            writer: Arc::new(std::sync::Mutex::new(Some(handle))),
            path: path.to_owned(),
            channel_waiters: Arc::default(),
        })
    }

    /// Checks the file at `path` as [`Store::open`] does, without serving:
    /// returns the newest event id when it is sound.
    pub fn check(path: &Path) -> std::result::Result<u64, OpenError> {
        let display = path.display().to_string();
        if !path.exists() {
            return Err(OpenError::Other {
                path: display,
                detail: "no such file".into(),
            });
        }
        check_is_redb(path)?;
        let db = open_database(path, true, CACHE_BYTES)?;
        let other = |e: StoreError| OpenError::Other {
            path: display.clone(),
            detail: e.detail(),
        };
        let txn = db.begin_read().map_err(|e| other(e.into()))?;
        committed_tip(&txn).map_err(other)
    }
}

/// What an existing database file holds, read without changing a byte of
/// it. While this lives, no hub can open the file for writing.
pub struct Existing {
    _db: Option<redb::ReadOnlyDatabase>,
    pub events: u64,
    pub sessions: u64,
    pub webhooks: u64,
}

impl Existing {
    pub fn is_empty(&self) -> bool {
        self.events == 0 && self.sessions == 0 && self.webhooks == 0
    }
}

/// Counts what the database at `path` holds (a missing or empty file holds
/// nothing), refusing a file another process has open ([`OpenError::InUse`])
/// or one that is not a redb database.
pub fn inspect(path: &Path) -> std::result::Result<Existing, OpenError> {
    let display = path.display().to_string();
    let nothing = Existing {
        _db: None,
        events: 0,
        sessions: 0,
        webhooks: 0,
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(nothing),
        Ok(m) if m.len() == 0 => return Ok(nothing),
        _ => {}
    }
    check_is_redb(path)?;
    let other = |detail: String| OpenError::Other {
        path: display.clone(),
        detail,
    };
    let db = redb::ReadOnlyDatabase::open(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse {
            path: display.clone(),
        },
        e => other(e.to_string()),
    })?;
    let count = |def| -> Result<u64> {
        let txn = db.begin_read()?;
        match txn.open_table(def) {
            Ok(t) => Ok(t.len()?),
            Err(TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(e.into()),
        }
    };
    let events = count(EVENTS).map_err(|e| other(e.detail()))?;
    let webhooks = count(WEBHOOKS).map_err(|e| other(e.detail()))?;
    let sessions = {
        let txn = db.begin_read().map_err(|e| other(e.to_string()))?;
        match txn.open_table(SESSIONS) {
            Ok(t) => t.len().map_err(|e| other(e.to_string()))?,
            Err(TableError::TableDoesNotExist(_)) => 0,
            Err(e) => return Err(other(e.to_string())),
        }
    };
    Ok(Existing {
        _db: Some(db),
        events,
        sessions,
        webhooks,
    })
}

/// Opens the redb file, checking every page of it first when `check`
/// (at start): a damaged file is refused rather than trusted, where a plain
/// open may panic on it.
pub(super) fn open_database(
    path: &Path,
    check: bool,
    cache_bytes: usize,
) -> std::result::Result<Database, OpenError> {
    let display = path.display().to_string();
    Database::builder()
        .set_cache_size(cache_bytes)
        .set_check_integrity_on_open(check)
        .create(path)
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse { path: display },
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
                OpenError::Damaged {
                    path: display,
                    detail,
                }
            }
            other => OpenError::Other {
                path: display,
                detail: other.to_string(),
            },
        })
}

/// Refuses a non-empty file that does not start with redb's magic number.
fn check_is_redb(path: &Path) -> std::result::Result<(), OpenError> {
    use std::io::Read;
    const REDB_MAGIC: &[u8] = b"redb\x1a\x0a\xa9\x0d\x0a";
    let Ok(mut file) = std::fs::File::open(path) else {
        return Ok(()); // missing: will be created
    };
    let mut head = [0u8; 16];
    let n = file.read(&mut head).unwrap_or(0);
    if n == 0 {
        return Ok(());
    }
    if n >= REDB_MAGIC.len() && &head[..REDB_MAGIC.len()] == REDB_MAGIC {
        return Ok(());
    }
    let kind = if head.starts_with(b"SQLite format 3") {
        format!(
            "a SQLite database (the original Python hub's data.db; `agent-event-bus import {}` \
             brings its data into a new store)",
            path.display()
        )
    } else {
        "some other file".to_owned()
    };
    Err(OpenError::NotRedb {
        path: path.display().to_string(),
        kind,
    })
}

/// Creates every table, records the schema version, and returns the tip.
fn init_tables(db: &Database) -> Result<u64> {
    let txn = db.begin_write()?;
    let tip;
    {
        let mut meta = txn.open_table(META)?;
        let version = meta.get("schema_version")?.map(|v| v.value());
        match version {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::NewerSchema {
                    found: v,
                    supported: SCHEMA_VERSION,
                });
            }
            // A new file, or one of schema 3, which differs only in how
            // index keys are numbered; older ones are raised once their
            // index is built (`migrate`).
            None | Some(3) => {
                meta.insert("schema_version", SCHEMA_VERSION)?;
            }
            Some(_) => {}
        }
        tip = read_tip(&meta, &txn.open_table(EVENTS)?)?;
        txn.open_table(EVENT_BITS)?;
        txn.open_table(SESSIONS)?;
        txn.open_table(CLIENTS)?;
        rebuild_live_index(&txn)?;
        rebuild_live_names(&txn)?;
        txn.open_table(LEASES)?;
        txn.open_table(WEBHOOKS)?;
        txn.open_table(OUTBOX)?;
        txn.open_table(OUTBOX_RETRY)?;
        txn.open_table(DELIVERY_LOG)?;
        txn.open_table(DELIVERY_LOG_LEN)?;
        claims::init(&txn)?;
        receipts::init(&txn)?;
    }
    // Numbered from where the keys so far end, before any can be dropped.
    init_key_counter(&txn)?;
    txn.commit()?;
    Ok(tip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_sqlite_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.db");
        std::fs::write(&path, b"SQLite format 3\0rest").unwrap();
        let err = Store::open(&path).err().unwrap();
        assert!(err.to_string().contains("SQLite"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"SQLite format 3\0rest");
    }
}
