//! Databases in the Python original's format, written with the SQL of its
//! `storage.py` (`_init_db` and the `@migration` registry): the current
//! schema (version 5) and the first one (no `channel`, `correlation_id`,
//! `payload_meta`, `display_id`, `deleted_at`, `last_cursor`, no webhooks).

use std::path::Path;

use rusqlite::{Connection, params};

/// Version 5, as a fresh install of the original creates it.
pub const SCHEMA_V5: &str = "
CREATE TABLE schema_version (version INTEGER PRIMARY KEY);
INSERT INTO schema_version (version) VALUES (5);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    display_id TEXT NOT NULL,
    name TEXT NOT NULL,
    machine TEXT NOT NULL,
    cwd TEXT NOT NULL,
    repo TEXT NOT NULL,
    registered_at TIMESTAMP NOT NULL,
    last_heartbeat TIMESTAMP NOT NULL,
    client_id TEXT,
    last_cursor TEXT,
    deleted_at TIMESTAMP
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    session_id TEXT NOT NULL,
    timestamp TIMESTAMP NOT NULL,
    channel TEXT NOT NULL DEFAULT 'all',
    correlation_id TEXT,
    payload_meta TEXT
);
CREATE INDEX idx_events_id ON events(id);
CREATE INDEX idx_events_correlation ON events(correlation_id);
CREATE INDEX idx_sessions_heartbeat ON sessions(last_heartbeat);
CREATE INDEX idx_sessions_dedup ON sessions(machine, client_id);
CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL,
    channel_filter TEXT,
    event_types TEXT,
    created_at TIMESTAMP NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    secret TEXT
);
";

/// Version 1: the client-id sessions table before the migrations added
/// `display_id`/`deleted_at` (v2) and `last_cursor`; events before `channel`
/// and the structured fields (v4); no webhooks table (v3).
pub const SCHEMA_V1: &str = "
CREATE TABLE schema_version (version INTEGER PRIMARY KEY);
INSERT INTO schema_version (version) VALUES (1);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    machine TEXT NOT NULL,
    cwd TEXT NOT NULL,
    repo TEXT NOT NULL,
    registered_at TIMESTAMP NOT NULL,
    last_heartbeat TIMESTAMP NOT NULL,
    client_id TEXT
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    session_id TEXT NOT NULL,
    timestamp TIMESTAMP NOT NULL
);
CREATE INDEX idx_events_id ON events(id);
";

/// An original database being written.
pub struct Original {
    pub conn: Connection,
}

impl Original {
    /// Creates `path` with `schema`, in WAL mode as the original runs it.
    pub fn create(path: &Path, schema: &str) -> Self {
        let conn = Connection::open(path).expect("create the SQLite file");
        conn.pragma_update(None, "journal_mode", "WAL")
            .expect("WAL mode");
        conn.execute_batch(schema).expect("the original's schema");
        Self { conn }
    }

    /// Inserts a version-5 event; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub fn event(
        &self,
        event_type: &str,
        payload: &str,
        session_id: &str,
        timestamp: &str,
        channel: &str,
        correlation_id: Option<&str>,
        payload_meta: Option<&str>,
    ) -> i64 {
        self.conn
            .execute(
                "INSERT INTO events (event_type, payload, session_id, timestamp, channel, correlation_id, payload_meta) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![event_type, payload, session_id, timestamp, channel, correlation_id, payload_meta],
            )
            .expect("insert an event");
        self.conn.last_insert_rowid()
    }

    /// Closes the connection, so the WAL is merged into the file and removed.
    pub fn close(self) {
        self.conn.close().map_err(|(_, e)| e).expect("close");
    }
}

/// A naive local timestamp as the original's `datetime.now().isoformat()`
/// writes it, for the local time `offset_hours` east of UTC, `micros` after
/// the epoch.
pub fn local_iso(micros: i64, offset_hours: i64) -> String {
    let local = micros + offset_hours * 3_600_000_000;
    let text = shared::time::format_micros(local);
    let text = text.trim_end_matches('Z');
    // Python omits the fraction when the microseconds are 0.
    text.strip_suffix(".000000").unwrap_or(text).to_owned()
}
