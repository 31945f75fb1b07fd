//! Session writes: one row per session, kept in step with the client,
//! live-session, display-id and lease indexes.

use redb::{ReadableTable, ReadableTableMetadata, Table};

use super::read::{read_live_sessions, read_session};
use super::tables::{CLIENTS, LEASES, LIVE, LIVE_NAMES, SESSIONS, encode};
use super::{Result, SessionRecord, Tx};

/// Counts one more (or one fewer) live session holding display id `name`.
pub(super) fn count_name(
    names: &mut Table<'_, &'static str, u64>,
    name: &str,
    up: bool,
) -> Result<()> {
    let n = names.get(name)?.map_or(0, |v| v.value());
    let n = if up { n + 1 } else { n.saturating_sub(1) };
    if n == 0 {
        names.remove(name)?;
    } else {
        names.insert(name, n)?;
    }
    Ok(())
}

pub(super) fn client_key(machine: &str, client_id: &str) -> String {
    format!("{machine}\u{1f}{client_id}")
}

impl Tx<'_> {
    pub fn session(&self, id: &str) -> Result<Option<SessionRecord>> {
        read_session(&self.txn.open_table(SESSIONS)?, id)
    }

    /// Every session that has not ended.
    pub fn live_sessions(&self) -> Result<Vec<SessionRecord>> {
        read_live_sessions(&self.txn.open_table(LIVE)?, &self.txn.open_table(SESSIONS)?)
    }

    /// Whether a live session holds display id `name`.
    pub fn display_id_live(&self, name: &str) -> Result<bool> {
        Ok(self.txn.open_table(LIVE_NAMES)?.get(name)?.is_some())
    }

    /// How many sessions have not ended.
    pub fn live_count(&self) -> Result<u64> {
        Ok(self.txn.open_table(LIVE)?.len()?)
    }

    /// The session registered by `client_id` on `machine`, deleted or not.
    pub fn session_by_client(
        &self,
        machine: &str,
        client_id: &str,
    ) -> Result<Option<SessionRecord>> {
        let id = {
            let clients = self.txn.open_table(CLIENTS)?;
            clients
                .get(client_key(machine, client_id).as_str())?
                .map(|v| v.value().to_owned())
        };
        match id {
            Some(id) => self.session(&id),
            None => Ok(None),
        }
    }

    /// Inserts or replaces a session and keeps the client and lease indexes true.
    pub fn put_session(&mut self, record: &SessionRecord) -> Result<()> {
        let old = self.session(&record.id)?;
        {
            let mut leases = self.txn.open_table(LEASES)?;
            if let Some(deadline) = old.as_ref().and_then(|o| o.lease_deadline) {
                leases.remove((u64::try_from(deadline).unwrap_or(0), record.id.as_str()))?;
            }
            if let (Some(deadline), None) = (record.lease_deadline, record.deleted_at) {
                leases.insert(
                    (u64::try_from(deadline).unwrap_or(0), record.id.as_str()),
                    (),
                )?;
            }
        }
        let was = old
            .as_ref()
            .filter(|o| o.deleted_at.is_none())
            .map(|o| o.display_id.as_str());
        if was.is_some() && record.deleted_at.is_some() {
            self.ended_sessions.push(record.id.clone());
        }
        let is = record
            .deleted_at
            .is_none()
            .then_some(record.display_id.as_str());
        if was != is {
            let mut names = self.txn.open_table(LIVE_NAMES)?;
            if let Some(name) = was {
                count_name(&mut names, name, false)?;
            }
            if let Some(name) = is {
                count_name(&mut names, name, true)?;
            }
        }
        {
            let mut live = self.txn.open_table(LIVE)?;
            if record.deleted_at.is_none() {
                live.insert(record.id.as_str(), ())?;
            } else {
                live.remove(record.id.as_str())?;
            }
        }
        if let Some(client_id) = &record.client_id {
            let mut clients = self.txn.open_table(CLIENTS)?;
            clients.insert(
                client_key(&record.machine, client_id).as_str(),
                record.id.as_str(),
            )?;
        }
        let bytes = encode(record)?;
        self.txn
            .open_table(SESSIONS)?
            .insert(record.id.as_str(), bytes.as_slice())?;
        self.sessions_written.push(record.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::*;

    /// A new session's display id is checked against the live ones by
    /// lookup: the counts follow registrations, renames and endings.
    #[tokio::test]
    async fn live_display_ids_are_counted() {
        async fn held(store: &Store) -> Result<(bool, bool)> {
            store
                .write(Durability::Lazy, |t| {
                    Ok((
                        t.display_id_live("calm-troodon")?,
                        t.display_id_live("zany-minmi")?,
                    ))
                })
                .await
        }
        let (_dir, store) = store_with(0).await;
        let session = |id: &str| SessionRecord {
            display_id: "calm-troodon".into(),
            name: "n".into(),
            ..session(id)
        };
        store
            .write(Durability::Lazy, move |t| {
                t.put_session(&session("a"))?;
                t.put_session(&session("b"))?;
                t.put_session(&SessionRecord {
                    deleted_at: Some(1),
                    ..session("a")
                })
            })
            .await
            .unwrap();
        assert_eq!(
            held(&store).await.unwrap(),
            (true, false),
            "b still holds it"
        );
        store
            .write(Durability::Lazy, move |t| {
                t.put_session(&SessionRecord {
                    display_id: "zany-minmi".into(),
                    ..session("b")
                })
            })
            .await
            .unwrap();
        assert_eq!(held(&store).await.unwrap(), (false, true));
    }
}
