//! Receipts for direct messages (events on a `session:<id>` channel): when
//! the recipient's proxy or `wait` hook pushed one into its session, and when
//! the recipient read it (a read returned it, or its cursor passed it).
//! Written lazily, like cursor moves: they ride the next commit's fsync.

use redb::{ReadableTable, TableDefinition};

use super::{EventRecord, Result, Snapshot, Tx};

/// (recipient session id, event id) → (): the direct messages to a session.
const DIRECT_MESSAGES: TableDefinition<(&str, u64), ()> = TableDefinition::new("direct_messages");
/// Event id → (pushed at ms, read at ms), 0 for not yet.
const RECEIPTS: TableDefinition<u64, (u64, u64)> = TableDefinition::new("receipts");

/// What the hub knows of one direct message's progress (epoch ms).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Receipt {
    pub pushed_at: Option<i64>,
    pub read_at: Option<i64>,
}

fn at(ms: u64) -> Option<i64> {
    (ms > 0).then(|| i64::try_from(ms).unwrap_or(i64::MAX))
}

impl Snapshot {
    /// The receipt of event `id` (empty when nothing was recorded).
    pub fn receipt(&self, id: u64) -> Result<Receipt> {
        let Some(t) = self.table(RECEIPTS)? else {
            return Ok(Receipt::default());
        };
        Ok(t.get(id)?.map_or_else(Receipt::default, |v| {
            let (pushed, read) = v.value();
            Receipt {
                pushed_at: at(pushed),
                read_at: at(read),
            }
        }))
    }
}

/// Which receipt column a mark sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Pushed,
    Read,
}

impl Tx<'_> {
    /// Indexes a just-appended event under its recipient when it is a
    /// direct message.
    pub fn index_direct_message(&mut self, event: &EventRecord) -> Result<()> {
        if let Some(recipient) = shared::channel::dm_target(&event.channel) {
            self.txn
                .open_table(DIRECT_MESSAGES)?
                .insert((recipient, event.id), ())?;
        }
        Ok(())
    }

    /// Drops every row kept for event `id` (on `channel`) as a direct
    /// message: its recipient's index row and its receipt. Retention calls
    /// it with each event it prunes; a table keyed by event added here must
    /// be cleared here too, or it grows for ever under a rolling window.
    pub(super) fn forget_direct_message(&mut self, id: u64, channel: &str) -> Result<()> {
        let Some(recipient) = shared::channel::dm_target(channel) else {
            return Ok(());
        };
        self.txn
            .open_table(DIRECT_MESSAGES)?
            .remove((recipient, id))?;
        self.txn.open_table(RECEIPTS)?.remove(id)?;
        Ok(())
    }

    /// Marks those of `ids` that are direct messages to `recipient`, keeping
    /// the first time of each; returns how many changed.
    pub fn mark_messages(
        &mut self,
        recipient: &str,
        ids: &[u64],
        mark: Mark,
        now_ms: i64,
    ) -> Result<usize> {
        let mut mine = Vec::with_capacity(ids.len());
        {
            let dms = self.txn.open_table(DIRECT_MESSAGES)?;
            for &id in ids {
                if dms.get((recipient, id))?.is_some() {
                    mine.push(id);
                }
            }
        }
        self.mark_ids(&mine, mark, now_ms)
    }

    /// Marks read every direct message to `recipient` with an id in
    /// `(after, through]`: its cursor passed them.
    pub fn mark_read_through(
        &mut self,
        recipient: &str,
        after: u64,
        through: u64,
        now_ms: i64,
    ) -> Result<usize> {
        if through <= after {
            return Ok(0);
        }
        let ids: Vec<u64> = self
            .txn
            .open_table(DIRECT_MESSAGES)?
            .range((recipient, after + 1)..=(recipient, through))?
            .map(|item| item.map(|(k, _)| k.value().1))
            .collect::<std::result::Result<_, _>>()?;
        self.mark_ids(&ids, Mark::Read, now_ms)
    }

    fn mark_ids(&mut self, ids: &[u64], mark: Mark, now_ms: i64) -> Result<usize> {
        let now = u64::try_from(now_ms).unwrap_or(1).max(1);
        let mut receipts = self.txn.open_table(RECEIPTS)?;
        let mut changed = 0;
        for &id in ids {
            let (pushed, read) = receipts.get(id)?.map_or((0, 0), |v| v.value());
            let next = match mark {
                Mark::Pushed if pushed == 0 => (now, read),
                Mark::Read if read == 0 => (pushed, now),
                _ => continue,
            };
            receipts.insert(id, next)?;
            changed += 1;
        }
        Ok(changed)
    }
}

/// Creates the receipt tables (at open).
pub(super) fn init(txn: &redb::WriteTransaction) -> Result<()> {
    txn.open_table(DIRECT_MESSAGES)?;
    txn.open_table(RECEIPTS)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Durability, NewEvent, Store};

    #[tokio::test]
    async fn receipts_keep_the_first_time_and_only_mark_messages_to_their_recipient() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data.redb")).unwrap();
        let ids = store
            .write(Durability::Durable, |t| {
                let mut ids = Vec::new();
                for channel in ["session:b", "all", "session:b", "session:c"] {
                    let e = t.append_event(NewEvent {
                        channel: channel.to_owned(),
                        ..NewEvent::system("dm", "hi".into(), "a")
                    })?;
                    t.index_direct_message(&e)?;
                    ids.push(e.id);
                }
                Ok(ids)
            })
            .await
            .unwrap();
        let marked = store
            .write(Durability::Lazy, move |t| {
                Ok((
                    t.mark_messages("b", &[1, 2, 3, 4], Mark::Pushed, 10)?,
                    t.mark_messages("b", &[1], Mark::Pushed, 20)?,
                    t.mark_read_through("b", 1, 4, 30)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(ids, [1, 2, 3, 4]);
        assert_eq!(marked, (2, 0, 1), "only b's messages, each once");
        let got = store
            .read(|s| Ok((s.receipt(1)?, s.receipt(3)?, s.receipt(4)?)))
            .await
            .unwrap();
        assert_eq!(
            got.0,
            Receipt {
                pushed_at: Some(10),
                read_at: None
            }
        );
        assert_eq!(
            got.1,
            Receipt {
                pushed_at: Some(10),
                read_at: Some(30)
            }
        );
        assert_eq!(got.2, Receipt::default(), "c's message is c's");
    }
}
