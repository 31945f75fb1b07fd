//! The original's SQLite file, read without changing a byte of it: refused
//! while another process has it open or holds unmerged writes (`guard.rs`),
//! then opened read-only and immutable (so SQLite neither locks it nor
//! creates `-wal` or `-shm` files beside it), its schema version read from
//! the columns it has, and its rows streamed in id order.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::ImportError;
use super::guard::{self, Stamp};

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

/// The open original database.
pub(super) struct Source {
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
pub(super) struct EventRow {
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
pub(super) struct SessionRow {
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
    pub deleted_at: Deletion,
}

/// Whether a session row is soft-deleted, and when.
pub(super) enum Deletion {
    /// `deleted_at` is NULL: the session was not ended.
    Live,
    /// Ended at a readable time.
    At(Time),
    /// Ended, but the time is unreadable.
    Unreadable,
}

/// One row of `webhooks`, as stored.
pub(super) struct WebhookRow {
    pub id: i64,
    pub url: Option<String>,
    pub channel_filter: Option<String>,
    pub event_types: Option<String>,
    pub created_at: Option<Time>,
    pub active: bool,
    pub secret: Option<String>,
}

/// A stored timestamp: its text and its UTC epoch seconds.
pub(super) struct Time {
    pub text: String,
    pub utc_seconds: i64,
}

impl Time {
    /// Epoch microseconds: the seconds SQLite computed plus the fraction
    /// written in the text (Python's `isoformat()` has up to 6 digits).
    pub(super) fn micros(&self) -> i64 {
        self.utc_seconds
            .saturating_mul(1_000_000)
            .saturating_add(fraction_micros(&self.text))
    }

    pub(super) fn millis(&self) -> i64 {
        self.micros().div_euclid(1000)
    }
}

/// The microseconds in `YYYY-MM-DDTHH:MM:SS.ffffff…` (0 when there are none).
pub(super) fn fraction_micros(text: &str) -> i64 {
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
    pub(super) fn open(path: &Path) -> Result<Self, ImportError> {
        let stamp = guard::stamp_of(path)?;
        guard::check_header(path)?;
        guard::check_not_in_use(path)?;
        let conn = Connection::open_with_flags(
            guard::immutable_uri(path),
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
    pub(super) fn event_id_range(&self) -> Result<Option<(i64, i64)>, ImportError> {
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
    pub(super) fn sequence(&self, table: &str) -> Result<Option<i64>, ImportError> {
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
    pub(super) fn each_event(
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
    pub(super) fn each_session(
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
                    ValueRef::Null => Deletion::Live,
                    v => time(v, r.get_ref(13)?).map_or(Deletion::Unreadable, Deletion::At),
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
    pub(super) fn each_webhook(
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
    pub(super) fn check_unchanged(&self) -> Result<(), ImportError> {
        guard::check_not_in_use(&self.path)?;
        if guard::stamp_of(&self.path)? != self.stamp {
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
}
