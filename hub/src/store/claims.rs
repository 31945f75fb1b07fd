//! Claims: advisory, durable holds on named resources (`file:<repo>/<path>`,
//! `task:<id>`, or a prefix ending in `/` that covers everything under it),
//! tied to their session. Two indexes, so no check ever scans: by
//! (resource, session) for conflicts and listings, by (session, resource)
//! for ending a session's claims with it.

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{Result, Snapshot, Tx, decode, encode};

/// (resource, session id) → [`ClaimRecord`] as JSON.
const CLAIMS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("claims");
/// (session id, resource) → (): a session's claims.
const CLAIMS_BY_SESSION: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("claims_by_session");
/// Above every session id and resource name (all valid UTF-8 sorts below it).
const MAX_KEY: &str = "\u{10ffff}";

/// One session's claim on one resource. Times are epoch milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClaimRecord {
    pub claim_id: u64,
    pub resource: String,
    pub session_id: String,
    pub exclusive: bool,
    pub note: Option<String>,
    pub since: i64,
}

impl ClaimRecord {
    /// Whether this claim stands in the way of `exclusive` claim by another
    /// session on an overlapping resource: shared claims only coexist.
    pub fn conflicts_with(&self, session_id: &str, exclusive: bool) -> bool {
        self.session_id != session_id && (exclusive || self.exclusive)
    }
}

/// The `/`-ending prefixes of `resource` (its covering ancestors), shortest first.
fn ancestors(resource: &str) -> impl Iterator<Item = &str> {
    resource
        .char_indices()
        .filter(|&(i, c)| c == '/' && i + 1 < resource.len())
        .map(move |(i, _)| &resource[..=i])
}

/// Every claim on exactly `resource`.
fn exact(
    table: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    resource: &str,
    out: &mut Vec<ClaimRecord>,
) -> Result<()> {
    for item in table.range((resource, "")..=(resource, MAX_KEY))? {
        out.push(decode(item?.1.value())?);
    }
    Ok(())
}

/// Every claim whose resource starts with `prefix`, in name order, until
/// `out` holds `max`.
fn under(
    table: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    prefix: &str,
    out: &mut Vec<ClaimRecord>,
    max: usize,
) -> Result<()> {
    for item in table.range((prefix, "")..)? {
        if out.len() >= max {
            break;
        }
        let (k, v) = item?;
        if !k.value().0.starts_with(prefix) {
            break;
        }
        out.push(decode(v.value())?);
    }
    Ok(())
}

/// The claims that overlap `resource`: on the same name, on a prefix of it
/// ending in `/`, or (when it ends in `/`) on any name under it.
fn overlapping(
    table: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    resource: &str,
) -> Result<Vec<ClaimRecord>> {
    let mut out = Vec::new();
    for prefix in ancestors(resource) {
        exact(table, prefix, &mut out)?;
    }
    if resource.ends_with('/') {
        under(table, resource, &mut out, usize::MAX)?;
    } else {
        exact(table, resource, &mut out)?;
    }
    Ok(out)
}

/// Claims under `prefix` (all when empty), and those on prefixes covering it.
fn listed(
    table: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    prefix: &str,
    max: usize,
) -> Result<Vec<ClaimRecord>> {
    let mut out = Vec::new();
    for ancestor in ancestors(prefix) {
        if ancestor != prefix {
            exact(table, ancestor, &mut out)?;
        }
    }
    under(table, prefix, &mut out, max)?;
    out.truncate(max);
    Ok(out)
}

impl Snapshot {
    /// Claims under `prefix` (every claim when empty) and those on
    /// `/`-prefixes covering it, in resource order; the first `max` only.
    pub fn claims(&self, prefix: &str, max: usize) -> Result<Vec<ClaimRecord>> {
        match self.table(CLAIMS)? {
            Some(t) => listed(&t, prefix, max),
            None => Ok(Vec::new()),
        }
    }

    /// The claims overlapping `resource`, any session's.
    pub fn overlapping_claims(&self, resource: &str) -> Result<Vec<ClaimRecord>> {
        match self.table(CLAIMS)? {
            Some(t) => overlapping(&t, resource),
            None => Ok(Vec::new()),
        }
    }

    /// How many claims are held.
    pub fn claim_count(&self) -> Result<u64> {
        use redb::ReadableTableMetadata;
        match self.table(CLAIMS)? {
            Some(t) => Ok(t.len()?),
            None => Ok(0),
        }
    }
}

impl Tx<'_> {
    /// The claims overlapping `resource`, any session's.
    pub fn overlapping_claims(&self, resource: &str) -> Result<Vec<ClaimRecord>> {
        overlapping(&self.txn.open_table(CLAIMS)?, resource)
    }

    /// Inserts or replaces `session_id`'s claim on `claim.resource`.
    pub fn put_claim(&mut self, claim: &ClaimRecord) -> Result<()> {
        let key = (claim.resource.as_str(), claim.session_id.as_str());
        self.txn
            .open_table(CLAIMS)?
            .insert(key, encode(claim)?.as_slice())?;
        self.txn
            .open_table(CLAIMS_BY_SESSION)?
            .insert((claim.session_id.as_str(), claim.resource.as_str()), ())?;
        Ok(())
    }

    /// Assigns the next claim id.
    pub fn next_claim_id(&mut self) -> Result<u64> {
        let mut meta = self.meta()?;
        let id = meta.get("next_claim_id")?.map_or(1, |v| v.value());
        meta.insert("next_claim_id", id + 1)?;
        Ok(id)
    }

    /// Removes `session_id`'s claim on `resource`; returns it when it was held.
    pub fn remove_claim(
        &mut self,
        session_id: &str,
        resource: &str,
    ) -> Result<Option<ClaimRecord>> {
        let removed = self
            .txn
            .open_table(CLAIMS)?
            .remove((resource, session_id))?
            .map(|v| decode::<ClaimRecord>(v.value()))
            .transpose()?;
        self.txn
            .open_table(CLAIMS_BY_SESSION)?
            .remove((session_id, resource))?;
        Ok(removed)
    }

    /// Removes every claim `session_id` holds; returns them in resource order.
    pub fn remove_session_claims(&mut self, session_id: &str) -> Result<Vec<ClaimRecord>> {
        let resources: Vec<String> = self
            .txn
            .open_table(CLAIMS_BY_SESSION)?
            .range((session_id, "")..=(session_id, MAX_KEY))?
            .map(|item| item.map(|(k, _)| k.value().1.to_owned()))
            .collect::<std::result::Result<_, _>>()?;
        let mut out = Vec::with_capacity(resources.len());
        for resource in resources {
            if let Some(claim) = self.remove_claim(session_id, &resource)? {
                out.push(claim);
            }
        }
        Ok(out)
    }
}

/// Creates the claim tables (at open).
pub(super) fn init(txn: &redb::WriteTransaction) -> Result<()> {
    txn.open_table(CLAIMS)?;
    txn.open_table(CLAIMS_BY_SESSION)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Durability, Store};

    fn claim(id: u64, resource: &str, session: &str, exclusive: bool) -> ClaimRecord {
        ClaimRecord {
            claim_id: id,
            resource: resource.to_owned(),
            session_id: session.to_owned(),
            exclusive,
            note: None,
            since: 0,
        }
    }

    fn names(claims: &[ClaimRecord]) -> Vec<&str> {
        claims.iter().map(|c| c.resource.as_str()).collect()
    }

    #[test]
    fn ancestors_are_the_slash_prefixes() {
        let got: Vec<&str> = ancestors("file:r/src/x.rs").collect();
        assert_eq!(got, ["file:r/", "file:r/src/"]);
        let got: Vec<&str> = ancestors("file:r/src/").collect();
        assert_eq!(got, ["file:r/"], "a prefix is not its own ancestor");
    }

    #[tokio::test]
    async fn overlap_is_found_by_lookups_both_ways_and_ends_with_the_session() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data.redb")).unwrap();
        store
            .write(Durability::Durable, |t| {
                t.put_claim(&claim(1, "file:r/src/x.rs", "a", true))?;
                t.put_claim(&claim(2, "file:r/src/xy.rs", "b", true))?;
                t.put_claim(&claim(3, "file:r/doc/", "b", false))?;
                t.put_claim(&claim(4, "file:q/src/x.rs", "c", true))?;
                Ok(())
            })
            .await
            .unwrap();
        let (exact, dir_claim, up, all, under) = store
            .write(Durability::Lazy, |t| {
                Ok((
                    t.overlapping_claims("file:r/src/x.rs")?,
                    t.overlapping_claims("file:r/src/")?,
                    t.overlapping_claims("file:r/doc/a/b.md")?,
                    t.overlapping_claims("file:r/")?,
                    t.overlapping_claims("file:r/src")?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(names(&exact), ["file:r/src/x.rs"]);
        assert_eq!(names(&dir_claim), ["file:r/src/x.rs", "file:r/src/xy.rs"]);
        assert_eq!(names(&up), ["file:r/doc/"]);
        assert_eq!(
            names(&all),
            ["file:r/doc/", "file:r/src/x.rs", "file:r/src/xy.rs"]
        );
        assert!(
            under.is_empty(),
            "a name without a trailing / covers nothing"
        );

        let listed = store
            .read(|s| s.claims("file:r/doc/a", usize::MAX))
            .await
            .unwrap();
        assert_eq!(
            names(&listed),
            ["file:r/doc/"],
            "covering prefixes are listed"
        );
        let ended = store
            .write(Durability::Durable, |t| t.remove_session_claims("b"))
            .await
            .unwrap();
        assert_eq!(names(&ended), ["file:r/doc/", "file:r/src/xy.rs"]);
        let left = store.read(|s| s.claims("", usize::MAX)).await.unwrap();
        assert_eq!(names(&left), ["file:q/src/x.rs", "file:r/src/x.rs"]);
        let first = store.read(|s| s.claims("", 1)).await.unwrap();
        assert_eq!(
            names(&first),
            ["file:q/src/x.rs"],
            "a listing stops at its max"
        );
    }
}
