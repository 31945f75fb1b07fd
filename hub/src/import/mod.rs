//! `agent-event-bus import`: brings the Python original's SQLite database
//! (any of its schema versions, 1 to 5) into a new store, all or nothing.
//!
//! One thread streams the original's rows in id order (`source.rs`); this one
//! writes them through the store's own verbs into a temporary file beside
//! the target, one committed transaction per batch, so memory stays flat
//! whatever the size. Only when every row is in, the source is unchanged
//! and the last commit is durable is the file renamed onto the target: a
//! failure at any point leaves the source and the target as they were.
//!
//! # Layout
//! - `mod.rs`: [`run`] — the arguments, the errors, the reader thread and the
//!   batched writes, the temporary file and its rename onto the target.
//! - `source.rs`: the original's file opened read-only, its schema read, its
//!   rows streamed in id order.
//! - `guard.rs`: the refusals of a file in use — the SQLite header, unmerged
//!   `-wal`/`-journal` writes, a process's lock (`F_GETLK`), the file's stamp
//!   checked again after the import — and the immutable URI it is opened by.
//! - `convert.rs`: one original row into the store's record, or why not.
//! - `report.rs`: the progress meter on stderr and the [`Summary`] printed at
//!   the end.

mod convert;
mod guard;
mod report;
mod source;

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::store::{
    self, Counter, Durability, EventRecord, OpenError, SessionRecord, Store, StoreError,
    WebhookRecord,
};
use report::Meter;
pub use report::{Summary, Tally, grouped};
use source::Source;

/// Events per committed transaction: bounds the memory an import holds.
const BATCH: usize = 10_000;
/// The store's page cache while importing: pages are written once, in key
/// order, so a small cache loses nothing and keeps memory flat.
const CACHE_BYTES: usize = 8 * 1024 * 1024;
/// Batches read ahead of the writer.
const READ_AHEAD: usize = 2;

/// `agent-event-bus import SQLITE_PATH [--db REDB_PATH] [--force]`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The original's database, by default
    /// ~/.claude/contrib/agent-event-bus/data.db. It is only read; stop the
    /// original hub first.
    #[arg(value_name = "SQLITE_PATH")]
    pub source: PathBuf,

    /// The store to create [default: ~/.claude/contrib/agent-event-bus/data.redb].
    #[arg(long, env = "AGENT_EVENT_BUS_DB", value_name = "REDB_PATH")]
    pub db: Option<PathBuf>,

    /// Replace a store that already holds events, sessions or webhooks
    /// (what it holds is lost).
    #[arg(long)]
    pub force: bool,
}

/// Why an import did not happen. In every case neither file was changed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {detail}")]
    Missing { path: String, detail: String },
    #[error("{path} is not a SQLite database: {what}")]
    NotSqlite { path: String, what: String },
    #[error(
        "{path} cannot be read as a SQLite database: {detail}. If it is damaged, \
         `sqlite3 {path} .recover | sqlite3 recovered.db` may save what is left; then import recovered.db"
    )]
    Corrupt { path: String, detail: String },
    #[error(
        "{path} is a SQLite database, but not the original agent-event-bus's: it has no events \
         table with the columns id, event_type, payload, session_id and timestamp (its tables: {tables})"
    )]
    Foreign { path: String, tables: String },
    #[error(
        "{path} is in use: {detail}. Stop the original hub first (its launchd agent or systemd \
         service, or the `agent-event-bus` Python process), then import again"
    )]
    InUse { path: String, detail: String },
    #[error(
        "{path} changed while it was being read: is the original hub still running? Stop it, then import again"
    )]
    Changed { path: String },
    #[error(
        "{path} already holds {events} events, {sessions} sessions and {webhooks} webhooks; \
         pass --force to replace them with the import"
    )]
    TargetNotEmpty {
        path: String,
        events: u64,
        sessions: u64,
        webhooks: u64,
    },
    #[error(
        "{original} and the store {target} are the same file; name the store with --db \
         (is AGENT_EVENT_BUS_DB still set for the original?)"
    )]
    SameFile { original: String, target: String },
    #[error("the store: {0}")]
    Target(#[from] OpenError),
    #[error("writing the store: {0}")]
    Write(#[from] StoreError),
    #[error("{what}: {detail}")]
    Io { what: String, detail: String },
}

/// What the reading thread hands the writer.
enum Batch {
    Events(Vec<EventRecord>),
    Sessions(Vec<SessionRecord>),
    Webhooks(Vec<WebhookRecord>),
}

/// Imports `args.source` into the store at `args.db` (or the default path),
/// printing progress on stderr when `progress` is set.
pub fn run(args: &ImportArgs, progress: bool) -> Result<Summary, ImportError> {
    let target = match &args.db {
        Some(p) => p.clone(),
        None => crate::config::default_db_path().map_err(|e| ImportError::Io {
            what: "the store's path".into(),
            detail: e.to_string(),
        })?,
    };
    if let (Ok(a), Ok(b)) = (args.source.canonicalize(), target.canonicalize())
        && a == b
    {
        return Err(ImportError::SameFile {
            original: args.source.display().to_string(),
            target: target.display().to_string(),
        });
    }
    let source = Source::open(&args.source)?;
    // Held until the rename: no hub can open the target meanwhile.
    let existing = store::inspect(&target)?;
    if !existing.is_empty() && !args.force {
        return Err(ImportError::TargetNotEmpty {
            path: target.display().to_string(),
            events: existing.events,
            sessions: existing.sessions,
            webhooks: existing.webhooks,
        });
    }
    let replaced = !existing.is_empty();
    let temp = TempFile::beside(&target)?;
    let store = Store::open_with_cache(&temp.0, CACHE_BYTES)?;
    let written = copy(source, &store, progress);
    store.close();
    store.join_writer();
    let (source, mut summary) = written?;
    source.check_unchanged()?;
    drop(source);
    temp.rename_onto(&target)?;
    drop(existing);
    summary.source.clone_from(&args.source);
    summary.target = target;
    summary.replaced = replaced;
    Ok(summary)
}

/// Streams every row from `source` into `store`.
fn copy(source: Source, store: &Store, progress: bool) -> Result<(Source, Summary), ImportError> {
    let range = source.event_id_range()?;
    let mut meter = Meter::new(progress, range);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| ImportError::Io {
            what: "starting the import".into(),
            detail: e.to_string(),
        })?;
    let (tx, rx) = mpsc::sync_channel::<Batch>(READ_AHEAD);
    let reader = std::thread::Builder::new()
        .name("import-reader".into())
        .spawn(move || {
            let mut summary = Summary {
                version: source.version,
                ..Summary::default()
            };
            let read = read_all(&source, &tx, &mut summary);
            (source, summary, read)
        })
        .map_err(|e| ImportError::Io {
            what: "starting the reader".into(),
            detail: e.to_string(),
        })?;
    let mut wrote: Result<(), ImportError> = Ok(());
    for batch in &rx {
        let done = runtime.block_on(write_batch(store, batch, &mut meter));
        if let Err(e) = done {
            wrote = Err(e);
            break;
        }
    }
    // Dropping the receiver stops the reader at its next send.
    drop(rx);
    let (source, mut summary, read) = reader.join().map_err(|_| ImportError::Io {
        what: "reading".into(),
        detail: "the reader thread panicked".into(),
    })?;
    wrote?;
    read?;
    // The ids the original handed out and then deleted stay used.
    let last_event = summary.last_event.unwrap_or(0);
    let event_seq = u64::try_from(source.sequence("events")?.unwrap_or(0)).unwrap_or(0);
    let webhook_seq = u64::try_from(source.sequence("webhooks")?.unwrap_or(0)).unwrap_or(0);
    let (next_event, next_webhook) =
        runtime.block_on(store.write(Durability::Durable, move |t| {
            t.bump_counter(Counter::Event, last_event.max(event_seq))?;
            t.bump_counter(Counter::Webhook, webhook_seq)?;
            Ok((t.counter(Counter::Event)?, t.counter(Counter::Webhook)?))
        }))?;
    summary.next_event_id = next_event;
    summary.next_webhook_id = next_webhook;
    meter.finish(summary.events);
    Ok((source, summary))
}

async fn write_batch(store: &Store, batch: Batch, meter: &mut Meter) -> Result<(), ImportError> {
    let events = match &batch {
        Batch::Events(events) => events.last().map(|e| (e.id, events.len() as u64)),
        _ => None,
    };
    store
        .write(Durability::Lazy, move |t| match &batch {
            Batch::Events(events) => events.iter().try_for_each(|e| t.insert_event(e)),
            Batch::Sessions(sessions) => sessions.iter().try_for_each(|s| t.put_session(s)),
            Batch::Webhooks(hooks) => hooks.iter().try_for_each(|h| t.put_webhook(h)),
        })
        .await?;
    if let Some((last, n)) = events {
        meter.advance(last, n);
    }
    Ok(())
}

/// Reads every table, converting rows and sending them in batches; stops
/// quietly when the writer has hung up.
fn read_all(
    source: &Source,
    tx: &mpsc::SyncSender<Batch>,
    summary: &mut Summary,
) -> Result<(), ImportError> {
    let send = |batch: Batch| {
        tx.send(batch).map_err(|_| ImportError::Io {
            what: "writing".into(),
            detail: "the writer stopped".into(),
        })
    };
    let mut events = Vec::with_capacity(BATCH);
    let mut last_micros = 0;
    source.each_event(|row| {
        match convert::event(row, &mut last_micros, &mut summary.adjusted) {
            Ok(e) => {
                summary.events += 1;
                summary.first_event.get_or_insert(e.id);
                summary.last_event = Some(e.id);
                events.push(e);
            }
            Err((id, why)) => summary.skipped.entry(why).or_default().add(id),
        }
        if events.len() >= BATCH {
            send(Batch::Events(std::mem::replace(
                &mut events,
                Vec::with_capacity(BATCH),
            )))?;
        }
        Ok(())
    })?;
    if !events.is_empty() {
        send(Batch::Events(events))?;
    }
    if let Some(note) = &source.sessions_note {
        summary.notes.push(note.clone());
    }
    let mut sessions = Vec::new();
    source.each_session(|row| {
        match convert::session(row, &mut summary.adjusted) {
            Ok(s) => {
                if s.is_deleted() {
                    summary.sessions_ended += 1;
                } else {
                    summary.sessions_live += 1;
                }
                sessions.push(s);
            }
            Err((id, why)) => summary.skipped.entry(why).or_default().add(id),
        }
        if sessions.len() >= BATCH {
            send(Batch::Sessions(std::mem::take(&mut sessions)))?;
        }
        Ok(())
    })?;
    if !sessions.is_empty() {
        send(Batch::Sessions(sessions))?;
    }
    let mut hooks = Vec::new();
    source.each_webhook(|row| {
        match convert::webhook(row, &mut summary.adjusted) {
            Ok(h) => {
                if h.active {
                    summary.webhooks_active += 1;
                } else {
                    summary.webhooks_paused += 1;
                }
                hooks.push(h);
            }
            Err((id, why)) => summary.skipped.entry(why).or_default().add(id),
        }
        Ok(())
    })?;
    if !hooks.is_empty() {
        send(Batch::Webhooks(hooks))?;
    }
    Ok(())
}

/// The temporary store beside the target; removed unless renamed onto it.
struct TempFile(PathBuf);

impl TempFile {
    fn beside(target: &Path) -> Result<Self, ImportError> {
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| ImportError::Io {
            what: format!("creating {}", dir.display()),
            detail: e.to_string(),
        })?;
        let name = target
            .file_name()
            .map_or_else(|| "data.redb".into(), |n| n.to_string_lossy().into_owned());
        let path = dir.join(format!(".{name}.import-{}", std::process::id()));
        // A leftover of an import that was killed under this same pid.
        let _ = std::fs::remove_file(&path);
        Ok(Self(path))
    }

    /// Moves the finished file onto `target` in one step, and makes the
    /// rename itself durable.
    fn rename_onto(self, target: &Path) -> Result<(), ImportError> {
        std::fs::rename(&self.0, target).map_err(|e| ImportError::Io {
            what: format!("renaming {} onto {}", self.0.display(), target.display()),
            detail: e.to_string(),
        })?;
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        std::mem::forget(self);
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
