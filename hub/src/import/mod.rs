//! `agent-event-bus import`: brings the Python original's SQLite database
//! (any of its schema versions, 1 to 5) into a new store, all or nothing.
//!
//! One thread streams the original's rows in id order (`source.rs`); this one
//! writes them through the store's own verbs into a temporary file beside
//! the target, one committed transaction per batch, so memory stays flat
//! whatever the size. Only when every row is in, the source is unchanged
//! and the last commit is durable is the file renamed onto the target: a
//! failure at any point leaves the source and the target as they were.

mod convert;
mod source;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::store::{
    self, Counter, Durability, EventRecord, OpenError, SessionRecord, Store, StoreError,
    WebhookRecord,
};
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

/// What one kind of row did that the summary reports: how many, and a few ids.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub count: u64,
    pub examples: Vec<String>,
}

impl Tally {
    fn add(&mut self, id: impl fmt::Display) {
        self.count += 1;
        if self.examples.len() < 3 {
            self.examples.push(id.to_string());
        }
    }
}

/// What an import brought over.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub source: PathBuf,
    pub target: PathBuf,
    /// The original's `schema_version` (`None` before it had that table).
    pub version: Option<i64>,
    pub events: u64,
    pub first_event: Option<u64>,
    pub last_event: Option<u64>,
    pub next_event_id: u64,
    pub sessions_live: u64,
    pub sessions_ended: u64,
    pub webhooks_active: u64,
    pub webhooks_paused: u64,
    pub next_webhook_id: u64,
    /// Rows left out, by why.
    pub skipped: BTreeMap<String, Tally>,
    /// Rows brought over with a value adjusted, by what.
    pub adjusted: BTreeMap<String, Tally>,
    /// Whole parts not brought over, and why.
    pub notes: Vec<String>,
    /// Whether a store with data was replaced (`--force`).
    pub replaced: bool,
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
    summary.source = args.source.clone();
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

/// Progress on stderr: one line redrawn every half second on a terminal; a
/// line per tenth of the events otherwise, and only for large databases.
struct Meter {
    enabled: bool,
    tty: bool,
    range: Option<(i64, i64)>,
    started: Instant,
    last_shown: Instant,
    last_tenth: i64,
    done: u64,
}

/// Fewer events than this get no progress lines when stderr is not a terminal.
const LARGE: i64 = 100_000;

impl Meter {
    fn new(enabled: bool, range: Option<(i64, i64)>) -> Self {
        let now = Instant::now();
        Self {
            enabled: enabled && range.is_some(),
            tty: std::io::stderr().is_terminal(),
            range,
            started: now,
            last_shown: now,
            last_tenth: 0,
            done: 0,
        }
    }

    fn fraction(&self, id: u64) -> f64 {
        let Some((lo, hi)) = self.range else {
            return 1.0;
        };
        if hi <= lo {
            return 1.0;
        }
        ((id as f64 - lo as f64) / (hi - lo) as f64).clamp(0.0, 1.0)
    }

    fn advance(&mut self, last_id: u64, n: u64) {
        self.done += n;
        if !self.enabled {
            return;
        }
        let fraction = self.fraction(last_id);
        let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let line = format!(
            "importing events: {:>3.0}%  {} events  {:.0}/s",
            fraction * 100.0,
            grouped(self.done),
            rate
        );
        if self.tty {
            if self.last_shown.elapsed() >= Duration::from_millis(500) {
                self.last_shown = Instant::now();
                let width = 30;
                let filled = (fraction * f64::from(width)) as usize;
                let bar = format!(
                    "[{}{}]",
                    "#".repeat(filled),
                    " ".repeat(width as usize - filled.min(width as usize))
                );
                let _ = write!(std::io::stderr(), "\r{bar} {line}");
            }
        } else {
            let large = self.range.is_some_and(|(lo, hi)| hi - lo >= LARGE);
            let tenth = (fraction * 10.0) as i64;
            if large && tenth > self.last_tenth {
                self.last_tenth = tenth;
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }

    fn finish(&self, events: u64) {
        if self.enabled && self.tty && self.started.elapsed() >= Duration::from_millis(500) {
            let _ = writeln!(
                std::io::stderr(),
                "\rimported {} events in {:.1}s{}",
                grouped(events),
                self.started.elapsed().as_secs_f64(),
                " ".repeat(40)
            );
        }
    }
}

/// `1234567` as `1,234,567`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = self.version.map_or_else(
            || "no schema version: the earliest schema".to_owned(),
            |v| format!("schema version {v}"),
        );
        writeln!(
            f,
            "Imported {} ({version}) into {}{}",
            self.source.display(),
            self.target.display(),
            if self.replaced {
                " (replacing what it held)"
            } else {
                ""
            }
        )?;
        match (self.first_event, self.last_event) {
            (Some(first), Some(last)) => writeln!(
                f,
                "  events:   {} (ids {first} to {last}); the next published event gets id {}",
                grouped(self.events),
                self.next_event_id
            )?,
            _ => writeln!(
                f,
                "  events:   none; the next published event gets id {}",
                self.next_event_id
            )?,
        }
        writeln!(
            f,
            "  sessions: {} ({} live, {} ended)",
            grouped(self.sessions_live + self.sessions_ended),
            self.sessions_live,
            self.sessions_ended
        )?;
        writeln!(
            f,
            "  webhooks: {} ({} active, {} paused); the next registered gets id {}",
            self.webhooks_active + self.webhooks_paused,
            self.webhooks_active,
            self.webhooks_paused,
            self.next_webhook_id
        )?;
        if self.skipped.is_empty() {
            writeln!(f, "  skipped:  nothing")?;
        } else {
            writeln!(f, "  skipped:")?;
            for (why, t) in &self.skipped {
                writeln!(f, "    {} {why} (e.g. {})", t.count, t.examples.join(", "))?;
            }
        }
        for (what, t) in &self.adjusted {
            writeln!(
                f,
                "  adjusted: {} {what} (e.g. {})",
                t.count,
                t.examples.join(", ")
            )?;
        }
        for note in &self.notes {
            writeln!(f, "  note:     {note}")?;
        }
        write!(
            f,
            "Live sessions come back without a lease and end after the idle timeout unless \
             they call in; hooks keep their cursors and ids."
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
