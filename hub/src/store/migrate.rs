//! Bringing an older file up to date at open: the live-session indexes, the
//! event index (built for schema 1, converted to bitmaps for schema 2), and
//! compacting a file that is mostly free space. Each runs once, logs its
//! progress, and keeps every id.

use std::path::Path;
use std::time::Instant;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::open::SCHEMA_VERSION;
use super::postings::{IndexTables, add_entry, index_names};
use super::read::read_live_sessions;
use super::sessions::count_name;
use super::tables::{EVENT_BITS, EVENT_INDEX_V2, EVENTS, LIVE, LIVE_NAMES, META, SESSIONS, decode};
use super::{Result, SessionRecord, codec};

/// The share of the file that may be free space before opening compacts it.
const COMPACT_SLACK: u64 = 4; // a quarter
/// Files smaller than this are never compacted.
const COMPACT_MIN_BYTES: u64 = 16 << 20;

/// Compacts the file when much of it is free space. A serving store reuses
/// the space its commits free, but copy-on-write leaves the file larger than
/// what it holds (by a half or more after a million small commits); at
/// start nothing else has the file, and compacting is quick (about a third
/// of a second per million events). A failure only leaves the file as it
/// was.
pub(super) fn compact_if_slack(db: &mut Database, path: &Path) {
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    if len < COMPACT_MIN_BYTES {
        return;
    }
    let used = match db.begin_write().map(|txn| {
        let stats = txn.stats();
        drop(txn.abort());
        stats
    }) {
        Ok(Ok(s)) => s.allocated_pages() * s.page_size() as u64,
        _ => return,
    };
    if len.saturating_sub(used) < len / COMPACT_SLACK {
        return;
    }
    tracing::info!(bytes = len, in_use = used, "compacting the database file");
    let started = Instant::now();
    match db.compact() {
        Ok(_) => tracing::info!(
            before = len,
            after = std::fs::metadata(path).map_or(0, |m| m.len()),
            seconds = started.elapsed().as_secs_f64(),
            "database file compacted"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "compacting the database file failed; it is used as it is");
        }
    }
}

/// Fills the live-session index from the sessions table when it is empty
/// (a database from before the index existed); a no-op otherwise.
/// Fills the live display-id counts from the live-session index when they
/// are empty (a database from before the counts existed); a no-op otherwise.
pub(super) fn rebuild_live_names(txn: &WriteTransaction) -> Result<()> {
    let mut names = txn.open_table(LIVE_NAMES)?;
    if !names.is_empty()? {
        return Ok(());
    }
    let live = txn.open_table(LIVE)?;
    let sessions = txn.open_table(SESSIONS)?;
    for s in read_live_sessions(&live, &sessions)? {
        count_name(&mut names, &s.display_id, true)?;
    }
    Ok(())
}

pub(super) fn rebuild_live_index(txn: &WriteTransaction) -> Result<()> {
    let mut live = txn.open_table(LIVE)?;
    if !live.is_empty()? {
        return Ok(());
    }
    let sessions = txn.open_table(SESSIONS)?;
    for item in sessions.iter()? {
        let (id, v) = item?;
        let s: SessionRecord = decode(v.value())?;
        if !s.is_deleted() {
            live.insert(id.value(), ())?;
        }
    }
    Ok(())
}

/// Events indexed per transaction while an older store's index is built.
const INDEX_BUILD_BATCH: usize = 50_000;

/// Gives a store from before the event index (schema version 1) its index,
/// once: every row is read in id order and its entries written, in batches
/// that each commit, with a progress line per batch. Rows keep their ids and
/// their bytes. A build cut short resumes where it stopped
/// (`index_built_through`); the version is raised only when it is complete.
pub(super) fn build_event_index(db: &Database) -> Result<()> {
    let (version, mut done, total) = {
        let txn = db.begin_read()?;
        let meta = txn.open_table(META)?;
        let events = txn.open_table(EVENTS)?;
        (
            meta.get("schema_version")?
                .map_or(SCHEMA_VERSION, |v| v.value()),
            meta.get("index_built_through")?.map_or(0, |v| v.value()),
            events.len()?,
        )
    };
    if version == 2 {
        return convert_event_index(db);
    }
    if version > 2 {
        return Ok(());
    }
    tracing::info!(
        events = total,
        "building the event index of a store from an older version (one time)"
    );
    let started = Instant::now();
    let mut indexed = 0u64;
    loop {
        let txn = db.begin_write()?;
        let mut last = None;
        let mut n = 0;
        {
            let events = txn.open_table(EVENTS)?;
            let mut index = IndexTables::open(&txn)?;
            for item in events
                .range(done.saturating_add(1)..)?
                .take(INDEX_BUILD_BATCH)
            {
                let (k, v) = item?;
                let id = k.value();
                let head = codec::decode_head(id, v.value())?;
                index.add(
                    id,
                    index_names(
                        &head.channel,
                        &head.event_type,
                        head.correlation_id.as_deref(),
                    ),
                )?;
                last = Some(id);
                n += 1;
            }
            let mut meta = txn.open_table(META)?;
            if let Some(id) = last {
                meta.insert("index_built_through", id)?;
            } else {
                meta.remove("index_built_through")?;
                meta.insert("schema_version", SCHEMA_VERSION)?;
            }
        }
        txn.commit()?;
        let Some(id) = last else { break };
        done = id;
        indexed += n;
        tracing::info!(
            indexed,
            of = total,
            "event index: {}%",
            (indexed * 100).checked_div(total).unwrap_or(100)
        );
    }
    tracing::info!(
        events = indexed,
        seconds = started.elapsed().as_secs_f64(),
        "event index built"
    );
    Ok(())
}

/// Gives a schema-2 store the bitmap index: its one-row-per-entry posting
/// lists are moved into [`EVENT_BITS`] a batch at a time, each batch
/// removed from the old table in the same commit (so a conversion cut short
/// resumes where it stopped), with a progress line per batch; then the old
/// table goes and the version is raised. Events and their ids are untouched.
fn convert_event_index(db: &Database) -> Result<()> {
    let total = {
        let txn = db.begin_read()?;
        match txn.open_table(EVENT_INDEX_V2) {
            Ok(old) => old.len()?,
            Err(redb::TableError::TableDoesNotExist(_)) => 0,
            Err(e) => return Err(e.into()),
        }
    };
    tracing::info!(
        entries = total,
        "converting the event index to bitmaps (one time)"
    );
    let started = Instant::now();
    let mut moved = 0u64;
    loop {
        let txn = db.begin_write()?;
        let n = {
            let mut old = txn.open_table(EVENT_INDEX_V2)?;
            let mut bits = txn.open_table(EVENT_BITS)?;
            let batch: Vec<(u64, u64)> = old
                .iter()?
                .take(INDEX_BUILD_BATCH)
                .map(|item| item.map(|(k, _)| k.value()))
                .collect::<std::result::Result<_, _>>()?;
            for &(key, id) in &batch {
                add_entry(&mut bits, key, id)?;
                old.remove((key, id))?;
            }
            batch.len()
        };
        if n == 0 {
            txn.delete_table(EVENT_INDEX_V2)?;
            txn.open_table(META)?
                .insert("schema_version", SCHEMA_VERSION)?;
            txn.commit()?;
            break;
        }
        txn.commit()?;
        moved += n as u64;
        tracing::info!(
            moved,
            of = total,
            "event index conversion: {}%",
            (moved * 100).checked_div(total).unwrap_or(100)
        );
    }
    tracing::info!(
        entries = moved,
        seconds = started.elapsed().as_secs_f64(),
        "event index converted"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use redb::Database;

    use super::super::tables::EVENT_KEYS;
    use super::*;
    use crate::store::testing::*;
    use crate::store::{EventRecord, Store};

    /// A store written before the index existed (JSON rows, a counter
    /// table, schema version 1) gains the index on open, keeps every id and
    /// answers every read as before.
    #[tokio::test]
    async fn an_older_store_gains_its_index_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        let old = older_events(120);
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut meta = txn.open_table(META).unwrap();
                meta.insert("schema_version", 1).unwrap();
                meta.insert("next_event_id", 121).unwrap();
                let mut events = txn.open_table(EVENTS).unwrap();
                for e in &old {
                    events
                        .insert(e.id, serde_json::to_vec(e).unwrap().as_slice())
                        .unwrap();
                }
            }
            txn.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(*store.tip().borrow(), 120);
        let q = EventQuery {
            limit: 1000,
            channels: vec!["session:a".into()],
            ..Default::default()
        };
        let got = page(&store, q.clone()).await;
        let want: Vec<&EventRecord> = old.iter().filter(|e| q.accepts(e)).collect();
        assert_eq!(got.events.iter().collect::<Vec<_>>(), want);
        let id = store
            .write(Durability::Durable, |t| {
                t.append_event(new_event("session:a"))
            })
            .await
            .unwrap()
            .id;
        assert_eq!(id, 121, "ids continue where the older store left off");
        assert_eq!(schema_version(&store).await, SCHEMA_VERSION);
    }

    /// Events as an older hub wrote them, ids 1..=n.
    fn older_events(n: u64) -> Vec<EventRecord> {
        (1..=n)
            .map(|id| {
                let e = varied(id);
                EventRecord {
                    id,
                    event_type: e.event_type,
                    payload: e.payload,
                    session_id: e.session_id,
                    timestamp: 1_700_000_000_000_000 + i64::try_from(id).unwrap(),
                    channel: e.channel,
                    correlation_id: e.correlation_id,
                    signal_level: None,
                    title: None,
                    tags: None,
                }
            })
            .collect()
    }

    async fn schema_version(store: &Store) -> u64 {
        store
            .read(|s| {
                Ok(s.table(META)?
                    .unwrap()
                    .get("schema_version")?
                    .unwrap()
                    .value())
            })
            .await
            .unwrap()
    }

    /// A schema-2 store (a posting row per entry) opens with its index
    /// converted to bitmaps, answering every filter as before, and the old
    /// table gone.
    #[tokio::test]
    async fn a_schema_2_store_converts_its_index_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        let old = older_events(300);
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                txn.open_table(META)
                    .unwrap()
                    .insert("schema_version", 2)
                    .unwrap();
                let mut events = txn.open_table(EVENTS).unwrap();
                let mut keys = txn.open_table(EVENT_KEYS).unwrap();
                let mut index = txn.open_table(EVENT_INDEX_V2).unwrap();
                for e in &old {
                    events
                        .insert(e.id, codec::encode_event(e).as_slice())
                        .unwrap();
                    let names = index_names(&e.channel, &e.event_type, e.correlation_id.as_deref());
                    for name in names {
                        // Numbered as schema 2 did: one past the keys so far.
                        let known = keys.get(name.as_str()).unwrap().map(|k| k.value());
                        let key = known.unwrap_or_else(|| {
                            let key = keys.len().unwrap() + 1;
                            keys.insert(name.as_str(), key).unwrap();
                            key
                        });
                        index.insert((key, e.id), ()).unwrap();
                    }
                }
            }
            txn.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(*store.tip().borrow(), 300);
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        for (channels, event_types, correlation_id, descending) in [
            (strings(&["session:a"]), vec![], None, false),
            (strings(&["all", "repo:x"]), strings(&["note"]), None, true),
            (vec![], strings(&["help_needed"]), None, false),
            (vec![], vec![], Some("req-1".to_owned()), true),
        ] {
            let q = EventQuery {
                limit: 1000,
                descending,
                channels,
                event_types,
                correlation_id,
                ..Default::default()
            };
            let mut want: Vec<u64> = old.iter().filter(|e| q.accepts(e)).map(|e| e.id).collect();
            if descending {
                want.reverse();
            }
            assert!(!want.is_empty());
            let got: Vec<u64> = page(&store, q.clone())
                .await
                .events
                .iter()
                .map(|e| e.id)
                .collect();
            assert_eq!(got, want, "{q:?}");
        }
        assert_eq!(schema_version(&store).await, SCHEMA_VERSION);
        let gone = store
            .read(|s| Ok(s.table(EVENT_INDEX_V2)?.is_none()))
            .await
            .unwrap();
        assert!(gone, "the one-row-per-entry table is deleted");
    }
}
