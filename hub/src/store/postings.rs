//! The event index's writes: the names and numbers of its keys, an event's
//! bits set with the event and cleared with it, and a key dropped once no
//! event is left under it (see [`super::index`] for the layout and the read
//! walk).
//!
//! Key numbers come from a counter (`next_index_key` in the meta table),
//! never from the key table's length: keys go when their last event is
//! pruned, so the length no longer says which numbers are taken. A number
//! is never handed out twice.

use redb::{ReadableTable, ReadableTableMetadata, Table, WriteTransaction};

use super::Result;
use super::tables::{EVENT_BITS, EVENT_KEYS, META};

/// Ids per bitmap row.
pub(super) const BLOCK_BITS: u64 = 64;

/// The meta counter that holds the next index key number.
const NEXT_KEY: &str = "next_index_key";

/// The row of `id` under `key`, and its bit in that row.
pub(super) fn slot(key: u64, id: u64) -> ((u64, u64), u64) {
    ((key, id / BLOCK_BITS), 1 << (id % BLOCK_BITS))
}

/// An index key's name: one namespace per filter.
pub(super) fn index_name(kind: char, value: &str) -> String {
    format!("{kind}\0{value}")
}

/// The index entries an event has: its channel, its type, its correlation id.
pub(super) fn index_names(
    channel: &str,
    event_type: &str,
    correlation_id: Option<&str>,
) -> Vec<String> {
    let mut out = vec![index_name('c', channel), index_name('t', event_type)];
    if let Some(c) = correlation_id {
        out.push(index_name('r', c));
    }
    out
}

/// The tables an index write touches, opened once per event (the counter
/// only when a new key is numbered).
pub(super) struct IndexTables<'t> {
    txn: &'t WriteTransaction,
    keys: Table<'t, &'static str, u64>,
    bits: Table<'t, (u64, u64), u64>,
}

impl<'t> IndexTables<'t> {
    pub(super) fn open(txn: &'t WriteTransaction) -> Result<Self> {
        Ok(Self {
            txn,
            keys: txn.open_table(EVENT_KEYS)?,
            bits: txn.open_table(EVENT_BITS)?,
        })
    }

    /// Writes event `id`'s entries under each of `names`.
    pub(super) fn add(&mut self, id: u64, names: Vec<String>) -> Result<()> {
        for name in names {
            let key = self.key_number(&name)?;
            add_entry(&mut self.bits, key, id)?;
        }
        Ok(())
    }

    /// Clears event `id`'s entries under each of `names`; a key left with
    /// no entry goes from the key table.
    pub(super) fn remove(&mut self, id: u64, names: Vec<String>) -> Result<()> {
        for name in names {
            let Some(key) = self.keys.get(name.as_str())?.map(|k| k.value()) else {
                continue;
            };
            if remove_entry(&mut self.bits, key, id)? && is_empty(&self.bits, key)? {
                self.keys.remove(name.as_str())?;
            }
        }
        Ok(())
    }

    /// The number of index key `name`, assigned on first use.
    fn key_number(&mut self, name: &str) -> Result<u64> {
        if let Some(k) = self.keys.get(name)? {
            return Ok(k.value());
        }
        let mut meta = self.txn.open_table(META)?;
        let key = next_key(&self.keys, &meta)?;
        meta.insert(NEXT_KEY, key + 1)?;
        self.keys.insert(name, key)?;
        Ok(key)
    }
}

/// The next key number to hand out. A store from before the counter never
/// dropped a key, so there it is one past the number of keys.
fn next_key(
    keys: &impl ReadableTableMetadata,
    meta: &impl ReadableTable<&'static str, u64>,
) -> Result<u64> {
    match meta.get(NEXT_KEY)? {
        Some(v) => Ok(v.value()),
        None => Ok(keys.len()? + 1),
    }
}

/// Writes the key counter into a store from before it (at open, before any
/// key can be dropped).
pub(super) fn init_key_counter(txn: &WriteTransaction) -> Result<()> {
    let keys = txn.open_table(EVENT_KEYS)?;
    let mut meta = txn.open_table(META)?;
    if meta.get(NEXT_KEY)?.is_none() {
        let next = next_key(&keys, &meta)?;
        meta.insert(NEXT_KEY, next)?;
    }
    Ok(())
}

/// Sets event `id`'s bit under `key`.
pub(super) fn add_entry(index: &mut Table<'_, (u64, u64), u64>, key: u64, id: u64) -> Result<()> {
    let (row, bit) = slot(key, id);
    let bits = index.get(row)?.map_or(0, |v| v.value());
    if bits & bit == 0 {
        index.insert(row, bits | bit)?;
    }
    Ok(())
}

/// Clears event `id`'s bit under `key`; true when that emptied its row
/// (and the row went).
fn remove_entry(index: &mut Table<'_, (u64, u64), u64>, key: u64, id: u64) -> Result<bool> {
    let (row, bit) = slot(key, id);
    let bits = index.get(row)?.map_or(0, |v| v.value());
    if bits & bit == 0 {
        return Ok(false);
    }
    if bits == bit {
        index.remove(row)?;
        return Ok(true);
    }
    index.insert(row, bits & !bit)?;
    Ok(false)
}

/// Whether no row is left under `key`.
fn is_empty(index: &Table<'_, (u64, u64), u64>, key: u64) -> Result<bool> {
    Ok(index.range((key, 0)..=(key, u64::MAX))?.next().is_none())
}

#[cfg(test)]
mod tests {
    use redb::ReadableDatabase;

    use super::*;
    use crate::store::testing::*;

    async fn key_of(store: &Store, name: &str) -> Option<u64> {
        let name = name.to_owned();
        store
            .read(move |s| {
                Ok(s.table(EVENT_KEYS)?
                    .and_then(|t| t.get(name.as_str()).ok().flatten().map(|v| v.value())))
            })
            .await
            .unwrap()
    }

    /// A key goes with the last event under it; a new key never takes a
    /// number still in use (or ever used), and reads of the keys that
    /// stay answer as before.
    #[tokio::test]
    async fn a_key_goes_with_its_last_event_and_its_number_is_not_reused() {
        let (_dir, store) = store_with(0).await;
        store
            .write(Durability::Durable, |t| {
                for channel in ["session:once", "all", "all", "repo:x"] {
                    t.append_event(new_event(channel))?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let (once, repo) = (
            key_of(&store, "c\0session:once").await.unwrap(),
            key_of(&store, "c\0repo:x").await.unwrap(),
        );
        store
            .write(Durability::Durable, |t| t.prune_events(1, 10))
            .await
            .unwrap();
        assert_eq!(key_of(&store, "c\0session:once").await, None);
        store
            .write(Durability::Durable, |t| {
                t.append_event(new_event("session:new")).map(drop)
            })
            .await
            .unwrap();
        let new = key_of(&store, "c\0session:new").await.unwrap();
        assert!(new > repo && new != once, "{new} after {once}, {repo}");
        let q = |channel: &str| EventQuery {
            limit: 10,
            channels: vec![channel.to_owned()],
            ..Default::default()
        };
        let ids = |page: EventPage| page.events.iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids(page(&store, q("repo:x")).await), [4]);
        assert_eq!(ids(page(&store, q("session:new")).await), [5]);
        assert_eq!(ids(page(&store, q("all")).await), [2, 3]);
        assert!(page(&store, q("session:once")).await.events.is_empty());
    }

    /// A store from before the counter (schema 3) numbers its next key one
    /// past its keys, and is marked so that a hub of that version refuses it.
    #[tokio::test]
    async fn a_schema_3_store_gets_its_key_counter_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        {
            let store = Store::open(&path).unwrap();
            store
                .write(Durability::Durable, |t| {
                    for channel in ["all", "repo:x", "repo:y"] {
                        t.append_event(new_event(channel))?;
                    }
                    Ok(())
                })
                .await
                .unwrap();
            store.close();
            store.join_writer();
        }
        let keys = {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut meta = txn.open_table(META).unwrap();
                meta.insert("schema_version", 3).unwrap();
                meta.remove(NEXT_KEY).unwrap();
            }
            txn.commit().unwrap();
            let read = db.begin_read().unwrap();
            read.open_table(EVENT_KEYS).unwrap().len().unwrap()
        };
        let store = Store::open(&path).unwrap();
        let (next, version) = store
            .read(|s| {
                let meta = s.table(META)?.unwrap();
                let get = |k: &str| meta.get(k).ok().flatten().map(|v| v.value());
                Ok((get(NEXT_KEY), get("schema_version")))
            })
            .await
            .unwrap();
        assert_eq!(next, Some(keys + 1));
        assert_eq!(version, Some(super::super::open::SCHEMA_VERSION));
    }
}
