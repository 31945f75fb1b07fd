//! The original's SQLite file, read without changing a byte of it: refused
//! while another process has it open or holds unmerged writes, then opened
//! read-only and immutable (so SQLite neither locks it nor creates `-wal` or
//! `-shm` files beside it), its schema version read from the columns it has,
//! and its rows streamed in id order.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::ImportError;

/// The columns every version of the original's `events` table has.
const EVENT_COLUMNS: [&str; 5] = ["id", "event_type", "payload", "session_id", "timestamp"];
/// The columns every client-id version of its `sessions` table has.
const SESSION_COLUMNS: [&str; 7] = [
    "id",
    "name",
    "machine",
    "cwd",
    "repo",
    "registered_at",
    "last_heartbeat",
];
const WEBHOOK_COLUMNS: [&str; 3] = ["id", "url", "created_at"];

/// SQLite's lock bytes on the database file (`os_unix.c`): PENDING, then
/// RESERVED, then the 510 SHARED bytes. A write transaction holds RESERVED or
/// more; in WAL mode every open connection holds a SHARED lock.
#[cfg(unix)]
const LOCK_BYTES: (u64, u64) = (0x4000_0000, 512);
/// The `-shm` lock bytes: the WAL write, checkpoint, recover and read-mark
/// locks (120..128) and the dead-man switch (128) every open connection holds.
#[cfg(unix)]
const SHM_LOCK_BYTES: (u64, u64) = (120, 9);

/// What identifies the file's contents cheaply: checked again after the
/// import, so a writer that started meanwhile fails the import.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

/// The open original database.
pub struct Source {
    conn: Connection,
    path: PathBuf,
    stamp: Stamp,
    /// The `schema_version` row (`None` before the table existed).
    pub version: Option<i64>,
    events: HashSet<String>,
    /// `None` without a usable sessions table; see [`Source::sessions_note`].
    sessions: Option<HashSet<String>>,
    /// Why sessions are not imported, when they are not.
    pub sessions_note: Option<String>,
    webhooks: Option<HashSet<String>>,
}

/// One row of `events`, as stored.
pub struct EventRow {
    pub id: i64,
    pub event_type: Option<String>,
    pub payload: Option<String>,
    pub session_id: Option<String>,
    pub timestamp: Option<String>,
    /// The timestamp in UTC epoch seconds, as SQLite reads the local time.
    pub utc_seconds: Option<i64>,
    pub channel: Option<String>,
    pub correlation_id: Option<String>,
    pub payload_meta: Option<String>,
}

/// One row of `sessions`, as stored.
pub struct SessionRow {
    pub id: Option<String>,
    pub display_id: Option<String>,
    pub name: Option<String>,
    pub machine: Option<String>,
    pub cwd: Option<String>,
    pub repo: Option<String>,
    pub registered_at: Option<Time>,
    pub last_heartbeat: Option<Time>,
    pub client_id: Option<String>,
    pub last_cursor: Option<String>,
    /// `Some` when the row is soft-deleted (the time itself may be unreadable).
    pub deleted_at: Option<Option<Time>>,
}

/// One row of `webhooks`, as stored.
pub struct WebhookRow {
    pub id: i64,
    pub url: Option<String>,
    pub channel_filter: Option<String>,
    pub event_types: Option<String>,
    pub created_at: Option<Time>,
    pub active: bool,
    pub secret: Option<String>,
}

/// A stored timestamp: its text and its UTC epoch seconds.
pub struct Time {
    pub text: String,
    pub utc_seconds: i64,
}

impl Time {
    /// Epoch microseconds: the seconds SQLite computed plus the fraction
    /// written in the text (Python's `isoformat()` has up to 6 digits).
    pub fn micros(&self) -> i64 {
        self.utc_seconds
            .saturating_mul(1_000_000)
            .saturating_add(fraction_micros(&self.text))
    }

    pub fn millis(&self) -> i64 {
        self.micros().div_euclid(1000)
    }
}

/// The microseconds in `YYYY-MM-DDTHH:MM:SS.ffffff…` (0 when there are none).
pub fn fraction_micros(text: &str) -> i64 {
    let Some(rest) = text.get(19..).and_then(|r| r.strip_prefix('.')) else {
        return 0;
    };
    let digits: String = rest
        .chars()
        .take_while(char::is_ascii_digit)
        .take(6)
        .collect();
    format!("{digits:0<6}").parse().unwrap_or(0)
}

/// The SQL for a timestamp column in UTC epoch seconds (NULL when SQLite
/// cannot read it). The original wrote naive local times, so this must run
/// in the time zone the original ran in (`TZ`).
fn utc_seconds_sql(column: &str) -> String {
    format!("CAST(strftime('%s', {column}, 'utc') AS INTEGER)")
}

impl Source {
    /// Checks that nothing is using `path`, then opens it read-only.
    pub fn open(path: &Path) -> Result<Self, ImportError> {
        let stamp = stamp_of(path)?;
        check_header(path)?;
        check_not_in_use(path)?;
        let conn = Connection::open_with_flags(
            immutable_uri(path),
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| corrupt(path, &e))?;
        let mut source = Self {
            conn,
            path: path.to_owned(),
            stamp,
            version: None,
            events: HashSet::new(),
            sessions: None,
            sessions_note: None,
            webhooks: None,
        };
        source.read_schema()?;
        Ok(source)
    }

    fn read_schema(&mut self) -> Result<(), ImportError> {
        let tables: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                .map_err(|e| corrupt(&self.path, &e))?;
            stmt.query_map([], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect::<Result<_, _>>())
                .map_err(|e| corrupt(&self.path, &e))?
        };
        let has = |t: &str| tables.iter().any(|n| n == t);
        let foreign = || ImportError::Foreign {
            path: self.path.display().to_string(),
            tables: if tables.is_empty() {
                "none".to_owned()
            } else {
                tables.join(", ")
            },
        };
        if !has("events") {
            return Err(foreign());
        }
        self.events = self.columns("events")?;
        if !EVENT_COLUMNS.iter().all(|c| self.events.contains(*c)) {
            return Err(foreign());
        }
        if has("sessions") {
            let cols = self.columns("sessions")?;
            if cols.contains("pid") && !cols.contains("client_id") {
                self.sessions_note = Some(
                    "the sessions table has the pre-client_id (pid) schema, which the original \
                     itself discards; sessions were not imported"
                        .to_owned(),
                );
            } else if SESSION_COLUMNS.iter().all(|c| cols.contains(*c)) {
                self.sessions = Some(cols);
            } else {
                return Err(foreign());
            }
        }
        if has("webhooks") {
            let cols = self.columns("webhooks")?;
            if !WEBHOOK_COLUMNS.iter().all(|c| cols.contains(*c)) {
                return Err(foreign());
            }
            self.webhooks = Some(cols);
        }
        if has("schema_version") {
            self.version = self
                .conn
                .query_row("SELECT MAX(version) FROM schema_version", [], |r| {
                    r.get::<_, Option<i64>>(0)
                })
                .map_err(|e| corrupt(&self.path, &e))?;
        }
        Ok(())
    }

    fn columns(&self, table: &str) -> Result<HashSet<String>, ImportError> {
        let mut stmt = self
            .conn
            .prepare(&format!("PRAGMA table_info({table})"))
            .map_err(|e| corrupt(&self.path, &e))?;
        stmt.query_map([], |r| r.get::<_, String>(1))
            .and_then(|rows| rows.collect::<Result<_, _>>())
            .map_err(|e| corrupt(&self.path, &e))
    }

    /// `column` when `table` has it, else `fallback` (a SQL literal).
    fn column_or(cols: &HashSet<String>, column: &str, fallback: &str) -> String {
        if cols.contains(column) {
            column.to_owned()
        } else {
            fallback.to_owned()
        }
    }

    /// The lowest and highest event ids (for progress), or `None` when empty.
    pub fn event_id_range(&self) -> Result<Option<(i64, i64)>, ImportError> {
        let (lo, hi) = self
            .conn
            .query_row("SELECT MIN(id), MAX(id) FROM events", [], |r| {
                Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?))
            })
            .map_err(|e| corrupt(&self.path, &e))?;
        Ok(lo.zip(hi))
    }

    /// The AUTOINCREMENT high-water mark of `table` (ids above the highest
    /// row that were handed out and deleted), if SQLite kept one.
    pub fn sequence(&self, table: &str) -> Result<Option<i64>, ImportError> {
        let exists: bool = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| corrupt(&self.path, &e))?
            > 0;
        if !exists {
            return Ok(None);
        }
        match self.conn.query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = ?1",
            [table],
            |r| r.get::<_, Option<i64>>(0),
        ) {
            Ok(seq) => Ok(seq),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(corrupt(&self.path, &e)),
        }
    }

    /// Calls `each` with every event in id order, one row at a time.
    pub fn each_event(
        &self,
        mut each: impl FnMut(EventRow) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        let cols = &self.events;
        let sql = format!(
            "SELECT id, event_type, payload, session_id, timestamp, {utc}, {channel}, {corr}, {meta} \
             FROM events ORDER BY id",
            utc = utc_seconds_sql("timestamp"),
            channel = Self::column_or(cols, "channel", "'all'"),
            corr = Self::column_or(cols, "correlation_id", "NULL"),
            meta = Self::column_or(cols, "payload_meta", "NULL"),
        );
        self.each_row(
            &sql,
            |r| {
                let Some(id) = integer(r.get_ref(0)?) else {
                    return Ok(None);
                };
                Ok(Some(EventRow {
                    id,
                    event_type: text(r.get_ref(1)?),
                    payload: text(r.get_ref(2)?),
                    session_id: text(r.get_ref(3)?),
                    timestamp: text(r.get_ref(4)?),
                    utc_seconds: integer(r.get_ref(5)?),
                    channel: text(r.get_ref(6)?),
                    correlation_id: text(r.get_ref(7)?),
                    payload_meta: text(r.get_ref(8)?),
                }))
            },
            |row| match row {
                Some(row) => each(row),
                None => Err(ImportError::Corrupt {
                    path: self.path.display().to_string(),
                    detail: "an event id is not an integer".into(),
                }),
            },
        )
    }

    /// Every session row, soft-deleted ones first, then by last heartbeat:
    /// the last row written for a (machine, client id) is the one the
    /// original would resume.
    pub fn each_session(
        &self,
        mut each: impl FnMut(SessionRow) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        let Some(cols) = &self.sessions else {
            return Ok(());
        };
        let deleted = Self::column_or(cols, "deleted_at", "NULL");
        let sql = format!(
            "SELECT id, {display}, name, machine, cwd, repo, \
             registered_at, {reg_utc}, last_heartbeat, {hb_utc}, \
             {client}, {cursor}, {deleted}, {del_utc} \
             FROM sessions ORDER BY ({deleted}) IS NULL, last_heartbeat",
            display = Self::column_or(cols, "display_id", "NULL"),
            reg_utc = utc_seconds_sql("registered_at"),
            hb_utc = utc_seconds_sql("last_heartbeat"),
            client = Self::column_or(cols, "client_id", "NULL"),
            cursor = Self::column_or(cols, "last_cursor", "NULL"),
            del_utc = utc_seconds_sql(&deleted),
        );
        self.each_row(
            &sql,
            |r| {
                let deleted_at = match r.get_ref(12)? {
                    ValueRef::Null => None,
                    v => Some(time(v, r.get_ref(13)?)),
                };
                Ok(SessionRow {
                    id: text(r.get_ref(0)?),
                    display_id: text(r.get_ref(1)?),
                    name: text(r.get_ref(2)?),
                    machine: text(r.get_ref(3)?),
                    cwd: text(r.get_ref(4)?),
                    repo: text(r.get_ref(5)?),
                    registered_at: time(r.get_ref(6)?, r.get_ref(7)?),
                    last_heartbeat: time(r.get_ref(8)?, r.get_ref(9)?),
                    client_id: text(r.get_ref(10)?),
                    last_cursor: text(r.get_ref(11)?),
                    deleted_at,
                })
            },
            &mut each,
        )
    }

    /// Every webhook row in id order.
    pub fn each_webhook(
        &self,
        mut each: impl FnMut(WebhookRow) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        let Some(cols) = &self.webhooks else {
            return Ok(());
        };
        let sql = format!(
            "SELECT id, url, {channel}, {types}, created_at, {utc}, {active}, {secret} \
             FROM webhooks ORDER BY id",
            channel = Self::column_or(cols, "channel_filter", "NULL"),
            types = Self::column_or(cols, "event_types", "NULL"),
            utc = utc_seconds_sql("created_at"),
            active = Self::column_or(cols, "active", "1"),
            secret = Self::column_or(cols, "secret", "NULL"),
        );
        self.each_row(
            &sql,
            |r| {
                let Some(id) = integer(r.get_ref(0)?) else {
                    return Ok(None);
                };
                Ok(Some(WebhookRow {
                    id,
                    url: text(r.get_ref(1)?),
                    channel_filter: text(r.get_ref(2)?),
                    event_types: text(r.get_ref(3)?),
                    created_at: time(r.get_ref(4)?, r.get_ref(5)?),
                    active: integer(r.get_ref(6)?).is_none_or(|a| a != 0),
                    secret: text(r.get_ref(7)?),
                }))
            },
            |row| match row {
                Some(row) => each(row),
                None => Ok(()),
            },
        )
    }

    /// Runs `sql`, converting each row with `convert` and handing it to `each`.
    fn each_row<T>(
        &self,
        sql: &str,
        convert: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
        mut each: impl FnMut(T) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        let mut stmt = self
            .conn
            .prepare(sql)
            .map_err(|e| corrupt(&self.path, &e))?;
        let mut rows = stmt.query([]).map_err(|e| corrupt(&self.path, &e))?;
        while let Some(row) = rows.next().map_err(|e| corrupt(&self.path, &e))? {
            each(convert(row).map_err(|e| corrupt(&self.path, &e))?)?;
        }
        Ok(())
    }

    /// Fails when the file changed, or a process opened it, while it was
    /// read: then what was read may not be what the file holds.
    pub fn check_unchanged(&self) -> Result<(), ImportError> {
        check_not_in_use(&self.path)?;
        if stamp_of(&self.path)? != self.stamp {
            return Err(ImportError::Changed {
                path: self.path.display().to_string(),
            });
        }
        Ok(())
    }
}

/// A text value (numbers as their text, like SQLite's TEXT affinity);
/// `None` for NULL and for bytes that are not UTF-8.
fn text(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(b) | ValueRef::Blob(b) => String::from_utf8(b.to_vec()).ok(),
    }
}

/// A stored time and the UTC seconds SQLite read from it.
fn time(text_value: ValueRef<'_>, utc_seconds: ValueRef<'_>) -> Option<Time> {
    text(text_value)
        .zip(integer(utc_seconds))
        .map(|(text, utc_seconds)| Time { text, utc_seconds })
}

fn integer(v: ValueRef<'_>) -> Option<i64> {
    match v {
        ValueRef::Integer(i) => Some(i),
        _ => None,
    }
}

fn corrupt(path: &Path, e: &rusqlite::Error) -> ImportError {
    ImportError::Corrupt {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

fn stamp_of(path: &Path) -> Result<Stamp, ImportError> {
    let meta = std::fs::metadata(path).map_err(|e| ImportError::Missing {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    if !meta.is_file() {
        return Err(ImportError::Missing {
            path: path.display().to_string(),
            detail: "not a regular file".into(),
        });
    }
    Ok(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// Refuses anything but a SQLite 3 database file.
fn check_header(path: &Path) -> Result<(), ImportError> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| ImportError::Missing {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
    if n == 16 && &head == b"SQLite format 3\0" {
        return Ok(());
    }
    let what = if n == 0 {
        "it is empty".to_owned()
    } else if head.starts_with(b"redb") {
        "it is already an agent-event-bus (redb) store".to_owned()
    } else {
        "it does not start with the SQLite header".to_owned()
    };
    Err(ImportError::NotSqlite {
        path: path.display().to_string(),
        what,
    })
}

/// Refuses a database another process has open (a lock on it or on its
/// `-shm`), or whose `-wal` or `-journal` holds writes not yet in the file.
fn check_not_in_use(path: &Path) -> Result<(), ImportError> {
    let in_use = |detail: String| ImportError::InUse {
        path: path.display().to_string(),
        detail,
    };
    let side = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    for suffix in ["-wal", "-journal"] {
        let file = side(suffix);
        if let Ok(meta) = std::fs::metadata(&file)
            && meta.len() > 0
        {
            let age = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .map_or_else(String::new, |d| {
                    format!(", last written {}s ago", d.as_secs())
                });
            return Err(in_use(format!(
                "{} holds {} bytes of writes not yet merged into the database{age} (if no \
                 process has it open, the last one did not close cleanly: \
                 `sqlite3 {} 'PRAGMA wal_checkpoint(TRUNCATE);'` merges them)",
                file.display(),
                meta.len(),
                path.display()
            )));
        }
    }
    #[cfg(unix)]
    {
        if let Some(pid) = lock_holder(path, LOCK_BYTES)? {
            return Err(in_use(format!("process {pid} has it open")));
        }
        if let Some(pid) = lock_holder(&side("-shm"), SHM_LOCK_BYTES)? {
            return Err(in_use(format!("process {pid} has it open (WAL)")));
        }
    }
    Ok(())
}

/// The process holding any POSIX lock on `bytes` (start, length) of `file`,
/// asked without taking one; `None` when there is none or no such file.
#[cfg(unix)]
fn lock_holder(file: &Path, (start, length): (u64, u64)) -> Result<Option<String>, ImportError> {
    use rustix::process::{Flock, FlockOffsetType, FlockType, fcntl_getlk};
    let handle = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ImportError::Missing {
                path: file.display().to_string(),
                detail: e.to_string(),
            });
        }
    };
    let probe = Flock {
        start,
        length,
        pid: None,
        typ: FlockType::WriteLock,
        offset_type: FlockOffsetType::Set,
    };
    match fcntl_getlk(&handle, &probe) {
        Ok(Some(held)) => Ok(Some(held.pid.map_or_else(
            || "(unknown)".to_owned(),
            |p| p.as_raw_nonzero().to_string(),
        ))),
        Ok(None) => Ok(None),
        // A file system without POSIX locks cannot tell; the after-import
        // check still catches a writer.
        Err(_) => Ok(None),
    }
}

/// `file:` URI for `path`, read-only and immutable: SQLite takes no locks and
/// creates no `-wal`/`-shm` files (safe once [`check_not_in_use`] passed).
fn immutable_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                uri.push(char::from(*b));
            }
            _ => uri.push_str(&format!("%{b:02X}")),
        }
    }
    uri.push_str("?mode=ro&immutable=1");
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_of_a_second() {
        assert_eq!(fraction_micros("2026-11-29T16:04:28.051614"), 51_614);
        assert_eq!(fraction_micros("2026-11-29T16:04:28.5"), 500_000);
        assert_eq!(fraction_micros("2026-11-29T16:04:28"), 0);
        assert_eq!(fraction_micros("2026-11-29 16:04:28.051614+00:00"), 51_614);
        assert_eq!(fraction_micros("2026-11-29T16:04:28.0516149"), 51_614);
    }

    #[test]
    fn uris_escape_what_sqlite_would_read() {
        assert_eq!(
            immutable_uri(Path::new("/a b/data?.db")),
            "file:/a%20b/data%3F.db?mode=ro&immutable=1"
        );
    }
}
