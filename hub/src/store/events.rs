//! Event writes: appending (gap-free ids), rows written under their own
//! ids (import), counters, and retention's pruning, which takes every row
//! kept for an event with it.

use redb::ReadableTable;

use super::postings::{IndexTables, index_names};
use super::read::{read_event, read_tip};
use super::tables::{Counter, EVENTS};
use super::{EventRecord, NewEvent, Result, Tx, codec};

impl Tx<'_> {
    /// The newest event id (0 when none), including this batch's appends.
    pub fn tip(&self) -> Result<u64> {
        match self.appended_tip {
            Some(t) => Ok(t),
            None => read_tip(&self.meta()?, &self.txn.open_table(EVENTS)?),
        }
    }

    /// Appends one event; ids are gap-free because a failed batch rolls back.
    pub fn append_event(&mut self, new: NewEvent) -> Result<EventRecord> {
        let id = self.tip()? + 1;
        let record = EventRecord {
            id,
            event_type: new.event_type,
            payload: new.payload,
            session_id: new.session_id,
            timestamp: shared::time::now_micros(),
            channel: new.channel,
            correlation_id: new.correlation_id,
            signal_level: new.signal_level,
            title: new.title,
            tags: new.tags,
        };
        self.insert_event(&record)?;
        Ok(record)
    }

    /// Writes one event row under its own id with all its index entries
    /// (replacing a row of that id and its entries). Every event write
    /// goes through here, so the index never disagrees with the rows.
    pub fn insert_event(&mut self, record: &EventRecord) -> Result<()> {
        let bytes = codec::encode_event(record);
        let old = {
            let mut events = self.txn.open_table(EVENTS)?;
            let old = events.insert(record.id, bytes.as_slice())?;
            match old {
                Some(v) => Some(codec::decode_head(record.id, v.value())?),
                None => None,
            }
        };
        if let Some(old) = old {
            self.remove_index_entries(record.id, &old)?;
        }
        IndexTables::open(self.txn)?.add(
            record.id,
            index_names(
                &record.channel,
                &record.event_type,
                record.correlation_id.as_deref(),
            ),
        )?;
        self.appended_tip = Some(self.appended_tip.map_or(record.id, |t| t.max(record.id)));
        self.appended_channels.push(record.channel.clone());
        Ok(())
    }

    fn remove_index_entries(&mut self, id: u64, head: &codec::OwnedHead) -> Result<()> {
        IndexTables::open(self.txn)?.remove(
            id,
            index_names(
                &head.channel,
                &head.event_type,
                head.correlation_id.as_deref(),
            ),
        )
    }

    /// The next id `counter` will hand out.
    pub fn counter(&self, counter: Counter) -> Result<u64> {
        Ok(self.meta()?.get(counter.key())?.map_or(1, |v| v.value()))
    }

    /// Makes sure `counter` never hands out `used` or anything below it.
    pub fn bump_counter(&mut self, counter: Counter, used: u64) -> Result<()> {
        if used >= self.counter(counter)? {
            self.meta()?.insert(counter.key(), used.saturating_add(1))?;
        }
        Ok(())
    }

    /// Deletes up to `max` of the oldest events with ids up to `through`,
    /// each with every row kept for it (its index entries, a direct
    /// message's index row and receipt); returns how many went. Ids are
    /// never reused.
    pub fn prune_events(&mut self, through: u64, max: usize) -> Result<usize> {
        let tip = self.tip()?;
        let doomed: Vec<(u64, codec::OwnedHead)> = {
            let events = self.txn.open_table(EVENTS)?;
            let mut out = Vec::new();
            for item in events.range(..=through)?.take(max) {
                let (k, v) = item?;
                out.push((k.value(), codec::decode_head(k.value(), v.value())?));
            }
            out
        };
        for (id, head) in &doomed {
            self.txn.open_table(EVENTS)?.remove(*id)?;
            self.remove_index_entries(*id, head)?;
            self.forget_direct_message(*id, &head.channel)?;
        }
        // The next id stays past every id handed out, even with no row left.
        let mut meta = self.meta()?;
        if meta.get("next_event_id")?.map_or(0, |v| v.value()) <= tip {
            meta.insert("next_event_id", tip + 1)?;
        }
        Ok(doomed.len())
    }

    pub fn event(&self, id: u64) -> Result<Option<EventRecord>> {
        read_event(&self.txn.open_table(EVENTS)?, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Snapshot;
    use crate::store::testing::*;

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
        let events = oldest_events(&store, 100).await;
        assert_eq!(events.len(), 50);
        assert_eq!(*store.tip().borrow(), 50);
    }

    #[tokio::test]
    async fn records_written_under_their_own_ids_move_the_counters_past_them() {
        let (dir, store) = store_with(0).await;
        let (event, webhook) = store
            .write(Durability::Durable, |t| {
                let mut old = t.append_event(new_event("all"))?;
                old.id = 1000;
                t.insert_event(&old)?;
                t.put_webhook(&hook(7))?;
                t.bump_counter(Counter::Webhook, 3)?;
                Ok((t.append_event(new_event("all"))?.id, t.next_webhook_id()?))
            })
            .await
            .unwrap();
        assert_eq!((event, webhook), (1001, 8));
        assert_eq!(store.read(Snapshot::tip).await.unwrap(), 1001);
        store.close();
        store.join_writer();
        let existing = inspect(&dir.path().join("data.redb")).unwrap();
        assert_eq!((existing.events, existing.webhooks), (3, 1));
    }

    #[tokio::test]
    async fn pruning_drops_index_entries_and_never_reuses_ids() {
        let (_dir, store) = store_with(10).await;
        let removed = store
            .write(Durability::Durable, |t| t.prune_events(10, 100))
            .await
            .unwrap();
        assert_eq!(removed, 10);
        let got = page(
            &store,
            EventQuery {
                limit: 10,
                channels: vec!["all".into()],
                ..Default::default()
            },
        )
        .await;
        assert!(got.events.is_empty());
        let id = store
            .write(Durability::Durable, |t| t.append_event(new_event("all")))
            .await
            .unwrap()
            .id;
        assert_eq!(id, 11);
    }
}
