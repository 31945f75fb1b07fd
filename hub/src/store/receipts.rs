//! Receipts for direct messages (events on a `session:<id>` channel): how
//! far each got — offered, delivered, read — when and by which path, and
//! why a wake is held. Written lazily, like cursor moves: they ride the
//! next commit's fsync.
//!
//! The rules (a status moves forward only, holds) are in `rules`; rows live
//! in `message_receipts` in the form of `codec`. Rows of the
//! older `receipts` table (pushed at, read at) are read as they stand —
//! pushed is `offered` by `channel`, read has no known path — and are moved
//! to the new table the first time they change; nothing rewrites them at
//! open.

mod codec;
mod rules;

use redb::{ReadableTable, TableDefinition};

pub use rules::{Change, Hold, Receipt, StepMark};

use super::{EventRecord, Result, Snapshot, StoreError, Tx};
use shared::tools::receipts::Path;

/// (recipient session id, event id) → (): the direct messages to a session.
const DIRECT_MESSAGES: TableDefinition<(&str, u64), ()> = TableDefinition::new("direct_messages");
/// Event id → its receipt in the form of [`codec`].
const RECEIPTS: TableDefinition<u64, &[u8]> = TableDefinition::new("message_receipts");
/// The older rows: event id → (pushed at ms, read at ms), 0 for not yet.
const RECEIPTS_OLD: TableDefinition<u64, (u64, u64)> = TableDefinition::new("receipts");

/// A receipt row as stored, either form.
fn decode(id: u64, new: Option<&[u8]>, old: Option<(u64, u64)>) -> Result<Receipt> {
    match (new, old) {
        (Some(bytes), _) => codec::decode(bytes).ok_or_else(|| {
            tracing::error!(event_id = id, "a receipt row cannot be decoded");
            StoreError::Damaged
        }),
        (None, Some((pushed, read))) => Ok(Receipt::from_old(pushed, read)),
        (None, None) => Ok(Receipt::default()),
    }
}

impl Snapshot {
    /// The receipt of event `id` (empty when nothing was recorded).
    pub fn receipt(&self, id: u64) -> Result<Receipt> {
        let new = match self.table(RECEIPTS)? {
            Some(t) => t.get(id)?.map(|v| v.value().to_vec()),
            None => None,
        };
        let old = match (&new, self.table(RECEIPTS_OLD)?) {
            (None, Some(t)) => t.get(id)?.map(|v| v.value()),
            _ => None,
        };
        decode(id, new.as_deref(), old)
    }
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
        self.txn.open_table(RECEIPTS_OLD)?.remove(id)?;
        Ok(())
    }

    /// Applies `change` to those of `ids` that are direct messages to
    /// `recipient`; returns how many receipts changed.
    pub fn mark_messages(
        &mut self,
        recipient: &str,
        ids: &[u64],
        change: &Change,
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
        self.apply(&mine, change, now_ms)
    }

    /// Marks read (by `path`) every direct message to `recipient` with an id
    /// in `(after, through]`: its cursor was moved past them.
    pub fn mark_read_through(
        &mut self,
        recipient: &str,
        after: u64,
        through: u64,
        path: Path,
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
        self.apply(&ids, &Change::Read(path), now_ms)
    }

    fn apply(&mut self, ids: &[u64], change: &Change, now_ms: i64) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut new = self.txn.open_table(RECEIPTS)?;
        let mut old = self.txn.open_table(RECEIPTS_OLD)?;
        let mut changed = 0;
        for &id in ids {
            let stored = new.get(id)?.map(|v| v.value().to_vec());
            let was_old = match &stored {
                None => old.get(id)?.map(|v| v.value()),
                Some(_) => None,
            };
            let mut receipt = decode(id, stored.as_deref(), was_old)?;
            if !receipt.apply(change, now_ms) {
                continue;
            }
            new.insert(id, codec::encode(&receipt).as_slice())?;
            if was_old.is_some() {
                old.remove(id)?;
            }
            changed += 1;
        }
        Ok(changed)
    }
}

/// Creates the receipt tables (at open).
pub(super) fn init(txn: &redb::WriteTransaction) -> Result<()> {
    txn.open_table(DIRECT_MESSAGES)?;
    txn.open_table(RECEIPTS)?;
    txn.open_table(RECEIPTS_OLD)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Durability, NewEvent, Store};
    use shared::tools::receipts::Status;

    async fn store_with(channels: &[&str]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data.redb")).unwrap();
        let channels: Vec<String> = channels.iter().map(|c| (*c).to_owned()).collect();
        store
            .write(Durability::Durable, move |t| {
                for channel in channels {
                    let e = t.append_event(NewEvent {
                        channel,
                        ..NewEvent::system("dm", "hi".into(), "a")
                    })?;
                    t.index_direct_message(&e)?;
                }
                Ok(())
            })
            .await
            .unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn marks_touch_only_messages_to_their_recipient_and_never_go_back() {
        let (_dir, store) = store_with(&["session:b", "all", "session:b", "session:c"]).await;
        let offered = Change::Offered(Path::Channel);
        let marked = store
            .write(Durability::Lazy, move |t| {
                Ok((
                    t.mark_messages("b", &[1, 2, 3, 4], &offered, 10)?,
                    t.mark_messages("b", &[1], &Change::Offered(Path::Notice), 20)?,
                    t.mark_read_through("b", 1, 4, Path::Ack, 30)?,
                    t.mark_messages("b", &[3], &Change::Delivered(Path::Hook), 40)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(marked, (2, 0, 1, 0), "only b's messages, each step once");
        let got = store
            .read(|s| Ok((s.receipt(1)?, s.receipt(3)?, s.receipt(4)?)))
            .await
            .unwrap();
        assert_eq!(got.0.status(), Status::Offered);
        assert_eq!(
            got.0.offered,
            Some(StepMark {
                at: 10,
                path: Some(Path::Channel)
            })
        );
        assert_eq!(got.1.status(), Status::Read);
        assert_eq!(got.1.delivered, None, "read passed delivered by");
        assert_eq!(got.2, Receipt::default(), "c's message is c's");
    }

    #[tokio::test]
    async fn old_rows_read_as_offered_by_channel_and_move_on_change() {
        let (_dir, store) = store_with(&["session:b", "session:b"]).await;
        store
            .write(Durability::Durable, |t| {
                let mut old = t.txn.open_table(RECEIPTS_OLD)?;
                old.insert(1, (10, 0))?;
                old.insert(2, (10, 20))?;
                Ok(())
            })
            .await
            .unwrap();
        let (one, two) = store
            .read(|s| Ok((s.receipt(1)?, s.receipt(2)?)))
            .await
            .unwrap();
        assert_eq!(one.status(), Status::Offered);
        assert_eq!(one.offered.unwrap().path, Some(Path::Channel));
        assert_eq!(two.status(), Status::Read);
        assert_eq!(two.read, Some(StepMark { at: 20, path: None }));

        store
            .write(Durability::Lazy, |t| {
                t.mark_messages("b", &[1], &Change::Delivered(Path::Tool), 30)
            })
            .await
            .unwrap();
        let (moved, left) = store
            .read(|s| {
                let old = s.table(RECEIPTS_OLD)?.expect("the old table");
                Ok((s.receipt(1)?, old.get(1)?.is_none()))
            })
            .await
            .unwrap();
        assert!(left, "the old row is gone once rewritten");
        assert_eq!(moved.status(), Status::Delivered);
        assert_eq!(moved.offered.unwrap().at, 10, "the old step is kept");
    }
}
