//! The store: one redb file, the only module that names a table.
//!
//! Writes go through one writer thread that batches whatever is queued into
//! one transaction (group commit): a batch that holds any durable write is
//! committed with `Durability::Immediate` before any caller hears back;
//! lazy writes (heartbeats, cursor advances from reads) commit without an
//! fsync and are made durable by the next durable commit or a flush within
//! about a second. Reads run on blocking threads in their own MVCC snapshot
//! and never block the writer. No transaction lives across an `.await`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use redb::{
    Database, Durability as RedbDurability, ReadOnlyTable, ReadTransaction, ReadableDatabase,
    ReadableTable, Table, TableDefinition, TableError, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use shared::level::SignalLevel;
use shared::wire;
use tokio::sync::{oneshot, watch};

/// Counters: `next_event_id`, `next_webhook_id`, `schema_version`.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Event id → [`EventRecord`] as JSON.
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Session id → [`SessionRecord`] as JSON.
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// `machine \x1f client_id` → session id: resume lookups.
const CLIENTS: TableDefinition<&str, &str> = TableDefinition::new("clients");
/// (lease deadline in ms, session id) → (): the sweeper's index.
const LEASES: TableDefinition<(u64, &str), ()> = TableDefinition::new("leases");
/// Webhook id → [`WebhookRecord`] as JSON.
const WEBHOOKS: TableDefinition<u64, &[u8]> = TableDefinition::new("webhooks");

const SCHEMA_VERSION: u64 = 1;
/// How long lazy writes may stay unsynced.
const FLUSH_INTERVAL: Duration = Duration::from_millis(1000);
/// The most jobs folded into one commit.
const MAX_BATCH: usize = 4096;

/// A storage failure. Its text is for logs, never for clients.
#[derive(Debug, Clone, thiserror::Error)]
#[error("storage: {0}")]
pub struct StoreError(pub String);

macro_rules! store_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { Self(e.to_string()) }
        }
    )*};
}
store_error_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError,
    serde_json::Error,
    std::io::Error
);

pub type Result<T> = std::result::Result<T, StoreError>;

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
    #[error("cannot open the database {path}: {detail}")]
    Other { path: String, detail: String },
}

/// Whether a write must be on disk before the caller hears back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Events, sessions, webhooks, explicit acks.
    Durable,
    /// Heartbeats, lease renewals by reads, cursor advances from reads.
    Lazy,
}

/// A session as stored. Times are epoch milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionRecord {
    pub id: String,
    pub display_id: String,
    pub name: String,
    pub machine: String,
    pub cwd: String,
    pub repo: String,
    pub registered_at: i64,
    pub last_heartbeat: i64,
    pub client_id: Option<String>,
    pub last_cursor: Option<u64>,
    pub deleted_at: Option<i64>,
    #[serde(default)]
    pub client_pid: Option<u32>,
    #[serde(default)]
    pub lease_seconds: Option<u64>,
    /// When the lease lapses (ms), for leased sessions.
    #[serde(default)]
    pub lease_deadline: Option<i64>,
}

impl SessionRecord {
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// The wire shape for `list_sessions`.
    pub fn to_wire(&self, now_ms: i64) -> wire::SessionInfo {
        wire::SessionInfo {
            session_id: self.id.clone(),
            display_id: self.display_id.clone(),
            name: self.name.clone(),
            machine: self.machine.clone(),
            repo: self.repo.clone(),
            cwd: self.cwd.clone(),
            client_id: self.client_id.clone(),
            registered_at: shared::time::format_ms(self.registered_at),
            last_heartbeat: shared::time::format_ms(self.last_heartbeat),
            age_seconds: (now_ms - self.registered_at).max(0) as f64 / 1000.0,
            subscribed_channels: shared::channel::implicit_channels(
                &self.id,
                &self.repo,
                &self.machine,
            )
            .to_vec(),
            client_pid: self.client_pid,
            lease_seconds: self.lease_seconds,
        }
    }
}

/// An event as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventRecord {
    pub id: u64,
    pub event_type: String,
    pub payload: String,
    pub session_id: String,
    /// Epoch microseconds.
    pub timestamp: i64,
    pub channel: String,
    pub correlation_id: Option<String>,
    /// The level the publisher gave, verbatim (may be unknown).
    pub signal_level: Option<String>,
    pub title: Option<String>,
    pub tags: Option<Vec<String>>,
}

impl EventRecord {
    pub fn level(&self) -> SignalLevel {
        SignalLevel::effective(
            self.signal_level.as_deref(),
            &self.event_type,
            &self.channel,
        )
    }

    pub fn to_wire(&self) -> wire::Event {
        wire::Event {
            id: self.id,
            event_type: self.event_type.clone(),
            payload: self.payload.clone(),
            session_id: self.session_id.clone(),
            timestamp: shared::time::format_micros(self.timestamp),
            channel: self.channel.clone(),
            correlation_id: self.correlation_id.clone(),
            signal_level: self.level().as_str().to_owned(),
            title: self.title.clone(),
            tags: self.tags.clone(),
        }
    }
}

/// An event about to be appended (the store assigns id and time).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_type: String,
    pub payload: String,
    pub session_id: String,
    pub channel: String,
    pub correlation_id: Option<String>,
    pub signal_level: Option<String>,
    pub title: Option<String>,
    pub tags: Option<Vec<String>>,
}

impl NewEvent {
    /// A lifecycle event the hub itself publishes on `all`.
    pub fn system(event_type: &str, payload: String, session_id: &str) -> Self {
        Self {
            event_type: event_type.to_owned(),
            payload,
            session_id: session_id.to_owned(),
            channel: "all".to_owned(),
            correlation_id: None,
            signal_level: None,
            title: None,
            tags: None,
        }
    }
}

/// A webhook as stored (the secret never leaves the hub).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WebhookRecord {
    pub id: u64,
    pub url: String,
    pub channel: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub secret: Option<String>,
    pub active: bool,
    pub created_at: i64,
}

impl WebhookRecord {
    pub fn matches(&self, event: &EventRecord) -> bool {
        self.active
            && shared::channel::filter_matches(self.channel.as_deref(), &event.channel)
            && self
                .event_types
                .as_ref()
                .is_none_or(|types| types.contains(&event.event_type))
    }

    pub fn to_wire(&self) -> wire::WebhookInfo {
        wire::WebhookInfo {
            webhook_id: self.id,
            url: self.url.clone(),
            channel: self.channel.clone(),
            event_types: self.event_types.clone(),
            active: self.active,
            created_at: shared::time::format_ms(self.created_at),
            has_secret: self.secret.is_some(),
        }
    }
}

/// Which events a query wants.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only ids above this.
    pub after: Option<u64>,
    pub descending: bool,
    pub limit: usize,
    /// Any of these channels (exact); empty means all.
    pub channels: Vec<String>,
    /// Any of these types; empty means all.
    pub event_types: Vec<String>,
    pub correlation_id: Option<String>,
}

impl EventQuery {
    fn accepts(&self, e: &EventRecord) -> bool {
        (self.channels.is_empty() || self.channels.contains(&e.channel))
            && (self.event_types.is_empty() || self.event_types.contains(&e.event_type))
            && self
                .correlation_id
                .as_ref()
                .is_none_or(|c| e.correlation_id.as_ref() == Some(c))
    }
}

fn client_key(machine: &str, client_id: &str) -> String {
    format!("{machine}\u{1f}{client_id}")
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T> {
    Ok(serde_json::from_slice(bytes)?)
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}

// ---- reads shared by read and write transactions -------------------------

fn read_session(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<SessionRecord>> {
    match table.get(id)? {
        Some(v) => Ok(Some(decode(v.value())?)),
        None => Ok(None),
    }
}

fn read_sessions(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Vec<SessionRecord>> {
    let mut out = Vec::new();
    for item in table.iter()? {
        let (_, v) = item?;
        out.push(decode(v.value())?);
    }
    Ok(out)
}

fn read_events(
    table: &impl ReadableTable<u64, &'static [u8]>,
    q: &EventQuery,
) -> Result<Vec<EventRecord>> {
    let start = q.after.map_or(0, |a| a.saturating_add(1));
    let mut out = Vec::new();
    if q.limit == 0 {
        return Ok(out);
    }
    let range = table.range(start..)?;
    let mut push = |item: std::result::Result<
        (redb::AccessGuard<u64>, redb::AccessGuard<&[u8]>),
        redb::StorageError,
    >|
     -> Result<bool> {
        let (_, v) = item?;
        let e: EventRecord = decode(v.value())?;
        if q.accepts(&e) {
            out.push(e);
        }
        Ok(out.len() >= q.limit)
    };
    if q.descending {
        for item in range.rev() {
            if push(item)? {
                break;
            }
        }
    } else {
        for item in range {
            if push(item)? {
                break;
            }
        }
    }
    Ok(out)
}

fn read_webhooks(table: &impl ReadableTable<u64, &'static [u8]>) -> Result<Vec<WebhookRecord>> {
    let mut out = Vec::new();
    for item in table.iter()? {
        let (_, v) = item?;
        out.push(decode(v.value())?);
    }
    Ok(out)
}

fn read_tip(table: &impl ReadableTable<&'static str, u64>) -> Result<u64> {
    Ok(table
        .get("next_event_id")?
        .map_or(1, |v| v.value())
        .saturating_sub(1))
}

/// A read snapshot. Methods mirror [`Tx`]'s reads.
pub struct Snapshot {
    txn: ReadTransaction,
}

impl Snapshot {
    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<Option<ReadOnlyTable<K, V>>> {
        match self.txn.open_table(def) {
            Ok(t) => Ok(Some(t)),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub fn session(&self, id: &str) -> Result<Option<SessionRecord>> {
        match self.table(SESSIONS)? {
            Some(t) => read_session(&t, id),
            None => Ok(None),
        }
    }

    pub fn sessions(&self) -> Result<Vec<SessionRecord>> {
        match self.table(SESSIONS)? {
            Some(t) => read_sessions(&t),
            None => Ok(Vec::new()),
        }
    }

    pub fn events(&self, q: &EventQuery) -> Result<Vec<EventRecord>> {
        match self.table(EVENTS)? {
            Some(t) => read_events(&t, q),
            None => Ok(Vec::new()),
        }
    }

    pub fn webhooks(&self) -> Result<Vec<WebhookRecord>> {
        match self.table(WEBHOOKS)? {
            Some(t) => read_webhooks(&t),
            None => Ok(Vec::new()),
        }
    }

    /// The newest event id (0 when none).
    pub fn tip(&self) -> Result<u64> {
        match self.table(META)? {
            Some(t) => read_tip(&t),
            None => Ok(0),
        }
    }

    /// The id of the newest event stamped before `micros` (events are
    /// appended in time order), scanning from the oldest.
    pub fn last_event_before(&self, micros: i64) -> Result<Option<u64>> {
        let Some(t) = self.table(EVENTS)? else {
            return Ok(None);
        };
        let mut last = None;
        for item in t.iter()? {
            let (k, v) = item?;
            let e: EventRecord = decode(v.value())?;
            if e.timestamp >= micros {
                break;
            }
            last = Some(k.value());
        }
        Ok(last)
    }

    /// Ids of leased sessions whose deadline is at or before `now_ms`.
    pub fn expired_leases(&self, now_ms: i64) -> Result<Vec<String>> {
        let Some(t) = self.table(LEASES)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let end = u64::try_from(now_ms).unwrap_or(0);
        for item in t.range(..=(end, "\u{10ffff}"))? {
            let (k, _) = item?;
            out.push(k.value().1.to_owned());
        }
        Ok(out)
    }
}

/// A write transaction in the writer thread, with domain verbs.
pub struct Tx<'t> {
    txn: &'t WriteTransaction,
    /// The newest event id appended in this batch, if any.
    appended_tip: Option<u64>,
}

impl Tx<'_> {
    fn meta(&self) -> Result<Table<'_, &'static str, u64>> {
        Ok(self.txn.open_table(META)?)
    }

    pub fn session(&self, id: &str) -> Result<Option<SessionRecord>> {
        read_session(&self.txn.open_table(SESSIONS)?, id)
    }

    pub fn sessions(&self) -> Result<Vec<SessionRecord>> {
        read_sessions(&self.txn.open_table(SESSIONS)?)
    }

    /// The session registered by `client_id` on `machine`, deleted or not.
    pub fn session_by_client(
        &self,
        machine: &str,
        client_id: &str,
    ) -> Result<Option<SessionRecord>> {
        let id = {
            let clients = self.txn.open_table(CLIENTS)?;
            clients
                .get(client_key(machine, client_id).as_str())?
                .map(|v| v.value().to_owned())
        };
        match id {
            Some(id) => self.session(&id),
            None => Ok(None),
        }
    }

    /// Inserts or replaces a session and keeps the client and lease indexes true.
    pub fn put_session(&mut self, record: &SessionRecord) -> Result<()> {
        let old = self.session(&record.id)?;
        {
            let mut leases = self.txn.open_table(LEASES)?;
            if let Some(deadline) = old.as_ref().and_then(|o| o.lease_deadline) {
                leases.remove((u64::try_from(deadline).unwrap_or(0), record.id.as_str()))?;
            }
            if let (Some(deadline), None) = (record.lease_deadline, record.deleted_at) {
                leases.insert(
                    (u64::try_from(deadline).unwrap_or(0), record.id.as_str()),
                    (),
                )?;
            }
        }
        if let Some(client_id) = &record.client_id {
            let mut clients = self.txn.open_table(CLIENTS)?;
            clients.insert(
                client_key(&record.machine, client_id).as_str(),
                record.id.as_str(),
            )?;
        }
        let bytes = encode(record)?;
        self.txn
            .open_table(SESSIONS)?
            .insert(record.id.as_str(), bytes.as_slice())?;
        Ok(())
    }

    /// The newest event id (0 when none), including this batch's appends.
    pub fn tip(&self) -> Result<u64> {
        read_tip(&self.meta()?)
    }

    /// Appends one event; ids are gap-free because a failed batch rolls back.
    pub fn append_event(&mut self, new: NewEvent) -> Result<EventRecord> {
        let id = {
            let mut meta = self.meta()?;
            let id = meta.get("next_event_id")?.map_or(1, |v| v.value());
            meta.insert("next_event_id", id + 1)?;
            id
        };
        let record = EventRecord {
            id,
            event_type: new.event_type,
            payload: new.payload,
            session_id: new.session_id,
            timestamp: shared::time::now_ms() * 1000 + i64::from(subsec_micros()),
            channel: new.channel,
            correlation_id: new.correlation_id,
            signal_level: new.signal_level,
            title: new.title,
            tags: new.tags,
        };
        let bytes = encode(&record)?;
        self.txn.open_table(EVENTS)?.insert(id, bytes.as_slice())?;
        self.appended_tip = Some(id);
        Ok(record)
    }

    pub fn webhooks(&self) -> Result<Vec<WebhookRecord>> {
        read_webhooks(&self.txn.open_table(WEBHOOKS)?)
    }

    /// Deletes up to `max` of the oldest events with ids up to `through`;
    /// returns how many went. Ids are never reused.
    pub fn prune_events(&mut self, through: u64, max: usize) -> Result<usize> {
        let mut events = self.txn.open_table(EVENTS)?;
        let doomed: Vec<u64> = events
            .range(..=through)?
            .take(max)
            .map(|item| item.map(|(k, _)| k.value()))
            .collect::<std::result::Result<_, _>>()?;
        for id in &doomed {
            events.remove(*id)?;
        }
        Ok(doomed.len())
    }

    pub fn webhook(&self, id: u64) -> Result<Option<WebhookRecord>> {
        match self.txn.open_table(WEBHOOKS)?.get(id)? {
            Some(v) => Ok(Some(decode(v.value())?)),
            None => Ok(None),
        }
    }

    /// Assigns the next webhook id.
    pub fn next_webhook_id(&mut self) -> Result<u64> {
        let mut meta = self.meta()?;
        let id = meta.get("next_webhook_id")?.map_or(1, |v| v.value());
        meta.insert("next_webhook_id", id + 1)?;
        Ok(id)
    }

    pub fn put_webhook(&mut self, record: &WebhookRecord) -> Result<()> {
        let bytes = encode(record)?;
        self.txn
            .open_table(WEBHOOKS)?
            .insert(record.id, bytes.as_slice())?;
        Ok(())
    }

    pub fn delete_webhook(&mut self, id: u64) -> Result<bool> {
        Ok(self.txn.open_table(WEBHOOKS)?.remove(id)?.is_some())
    }
}

/// Microseconds within the current millisecond, so timestamps keep µs.
fn subsec_micros() -> u32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.subsec_micros() % 1000
}

type Completion = Box<dyn FnOnce(Result<()>) + Send>;
type JobFn = Box<dyn FnOnce(&mut Tx<'_>) -> Completion + Send>;

struct Job {
    durability: Durability,
    run: JobFn,
}

/// The database handle: cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    jobs: mpsc::Sender<Job>,
    tip: watch::Receiver<u64>,
    writer: Arc<std::sync::Mutex<Option<thread::JoinHandle<()>>>>,
    path: PathBuf,
}

impl Store {
    /// Opens (or creates) the database at `path`, refusing files that are
    /// not redb databases, and starts the writer thread.
    pub fn open(path: &Path) -> std::result::Result<Self, OpenError> {
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
        let db = Database::builder()
            .set_cache_size(64 * 1024 * 1024)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse {
                    path: display.clone(),
                },
                other => OpenError::Other {
                    path: display.clone(),
                    detail: other.to_string(),
                },
            })?;
        let db = Arc::new(db);
        let tip = init_tables(&db).map_err(|e| OpenError::Other {
            path: display.clone(),
            detail: e.0,
        })?;
        let (tip_tx, tip_rx) = watch::channel(tip);
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let writer_db = db.clone();
        let handle = thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(&writer_db, &jobs_rx, &tip_tx))
            .map_err(|e| OpenError::Other {
                path: display.clone(),
                detail: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(Self {
            db,
            jobs: jobs_tx,
            tip: tip_rx,
            writer: Arc::new(std::sync::Mutex::new(Some(handle))),
            path: path.to_owned(),
        })
    }

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
        let run: JobFn = Box::new(move |t: &mut Tx<'_>| {
            let outcome = f(t);
            Box::new(move |commit: Result<()>| {
                let _ = tx.send(commit.and(outcome));
            })
        });
        self.jobs
            .send(Job { durability, run })
            .map_err(|_| StoreError("the store is closed".into()))?;
        rx.await
            .unwrap_or_else(|_| Err(StoreError("the writer stopped".into())))
    }

    /// Runs `f` on a blocking thread against a fresh snapshot.
    pub async fn read<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Snapshot) -> Result<R> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let snapshot = Snapshot {
                txn: db.begin_read()?,
            };
            f(&snapshot)
        })
        .await
        .map_err(|e| StoreError(format!("read task failed: {e}")))?
    }

    /// A receiver of the newest committed event id; it changes after each
    /// commit that appended events.
    pub fn tip(&self) -> watch::Receiver<u64> {
        self.tip.clone()
    }

    /// Flushes lazy writes and stops the writer. Later writes fail.
    pub fn close(&self) {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        // A durable no-op makes every lazy write before it durable.
        let _ = self.jobs.send(Job {
            durability: Durability::Durable,
            run: Box::new(move |_| {
                Box::new(move |_| {
                    let _ = tx.send(());
                })
            }),
        });
        let _ = rx.recv_timeout(Duration::from_secs(10));
    }

    /// Waits for the writer thread to finish once every handle is dropped.
    pub fn join_writer(self) {
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(self);
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// Refuses a non-empty file that does not start with redb's magic number.
fn check_is_redb(path: &Path) -> std::result::Result<(), OpenError> {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return Ok(()); // missing: will be created
    };
    let mut head = [0u8; 16];
    let n = file.read(&mut head).unwrap_or(0);
    if n == 0 {
        return Ok(());
    }
    const REDB_MAGIC: &[u8] = b"redb\x1a\x0a\xa9\x0d\x0a";
    if n >= REDB_MAGIC.len() && &head[..REDB_MAGIC.len()] == REDB_MAGIC {
        return Ok(());
    }
    let kind = if head.starts_with(b"SQLite format 3") {
        "a SQLite database (the original Python hub's data.db)".to_owned()
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
            None => {
                meta.insert("schema_version", SCHEMA_VERSION)?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError(format!(
                    "the database has schema version {v}, newer than this hub's {SCHEMA_VERSION}; upgrade agent-event-bus"
                )));
            }
            Some(_) => {}
        }
        tip = read_tip(&meta)?;
        txn.open_table(EVENTS)?;
        txn.open_table(SESSIONS)?;
        txn.open_table(CLIENTS)?;
        txn.open_table(LEASES)?;
        txn.open_table(WEBHOOKS)?;
    }
    txn.commit()?;
    Ok(tip)
}

fn writer_loop(db: &Database, jobs: &mpsc::Receiver<Job>, tip: &watch::Sender<u64>) {
    let mut dirty = false;
    let mut last_durable = Instant::now();
    loop {
        let first = match jobs.recv_timeout(FLUSH_INTERVAL) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if dirty {
                    match commit_batch(db, Vec::new(), true) {
                        Ok(_) => {
                            dirty = false;
                            last_durable = Instant::now();
                        }
                        Err(e) => tracing::error!(error = %e, "flushing lazy writes failed"),
                    }
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
        match commit_batch(db, batch, durable) {
            Ok(Some(new_tip)) => {
                tip.send_if_modified(|t| {
                    let changed = *t != new_tip;
                    *t = new_tip;
                    changed
                });
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "a write batch failed; its callers were told"),
        }
        if durable {
            dirty = false;
            last_durable = Instant::now();
        } else {
            dirty = true;
        }
    }
    if dirty && let Err(e) = commit_batch(db, Vec::new(), true) {
        tracing::error!(error = %e, "final flush failed");
    }
}

/// Runs every job in one transaction and commits; every job hears the
/// commit's outcome. Returns the new tip when events were appended.
fn commit_batch(db: &Database, batch: Vec<Job>, durable: bool) -> Result<Option<u64>> {
    let mut txn = match db.begin_write() {
        Ok(t) => t,
        Err(e) => {
            // Dropping the jobs drops their reply channels: callers get an error.
            drop(batch);
            return Err(StoreError::from(e));
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
    let appended;
    {
        let mut tx = Tx {
            txn: &txn,
            appended_tip: None,
        };
        for job in batch {
            let run = job.run;
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&mut tx))) {
                Ok(done) => completions.push(done),
                Err(_) => {
                    // Abort the whole batch: dropping the completions tells
                    // every caller that its write did not happen.
                    tracing::error!("a write job panicked; its batch was rolled back");
                    drop(completions);
                    return Err(StoreError("a write job panicked".into()));
                }
            }
        }
        appended = tx.appended_tip;
    }
    let outcome = txn.commit().map_err(StoreError::from);
    for done in completions {
        done(outcome.clone());
    }
    outcome.map(|()| appended)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_event(channel: &str) -> NewEvent {
        NewEvent {
            channel: channel.to_owned(),
            ..NewEvent::system("t", "p".into(), "s")
        }
    }

    #[tokio::test]
    async fn appends_are_gap_free_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        let store = Store::open(&path).unwrap();
        let mut handles = Vec::new();
        for i in 0..50 {
            let s = store.clone();
            handles.push(tokio::spawn(async move {
                s.write(Durability::Durable, move |t| {
                    t.append_event(new_event(&format!("c{i}")))
                })
                .await
                .unwrap()
                .id
            }));
        }
        let mut ids = Vec::new();
        for h in handles {
            ids.push(h.await.unwrap());
        }
        ids.sort_unstable();
        assert_eq!(ids, (1..=50).collect::<Vec<_>>());
        assert_eq!(*store.tip().borrow(), 50);
        store.close();
        store.join_writer();

        let store = Store::open(&path).unwrap();
        let events = store
            .read(|s| {
                s.events(&EventQuery {
                    limit: 100,
                    ..Default::default()
                })
            })
            .await
            .unwrap();
        assert_eq!(events.len(), 50);
        assert_eq!(*store.tip().borrow(), 50);
    }

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
