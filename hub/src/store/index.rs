//! The event index: posting lists per channel, type and correlation id,
//! written with each event, and the leapfrog walk over them that answers a
//! filtered read by its matches, never by the history.
//!
//! A posting list is stored as bitmaps: one row per key and block of 64
//! consecutive ids, `(key, id / 64) → u64` with bit `id % 64` set for each
//! event of the block under the key. A key most events carry (`all`, a busy
//! type) costs a row per 64 events instead of one per event, and an append
//! rewrites the last row of its key in place; a rare key (a direct-message
//! channel, a correlation id) costs one row per event, as a list of ids
//! would. The walk reads a row and steps through its bits. Writing the lists,
//! and numbering their keys, is [`super::postings`]' part.

use redb::ReadableTable;

use super::postings::{BLOCK_BITS, index_name};
use super::{EventPage, EventQuery, Result};

/// One key's posting list walked in one direction within `lo..=hi`, with
/// the id under its head.
struct Postings<'t> {
    key: u64,
    lo: u64,
    hi: u64,
    desc: bool,
    rows: redb::Range<'t, (u64, u64), u64>,
    /// The current row's ids not walked yet, as bits over `base`.
    bits: u64,
    base: u64,
    head: Option<u64>,
}

/// How many rows a seek steps over before it searches the tree again.
const SEEK_STEPS: usize = 8;

/// The bits of a row at `base` whose ids lie within `lo..=hi`.
fn within(bits: u64, base: u64, lo: u64, hi: u64) -> u64 {
    let last = base + (BLOCK_BITS - 1);
    if hi < base || lo > last {
        return 0;
    }
    let from = if lo > base {
        u64::MAX << (lo - base)
    } else {
        u64::MAX
    };
    let to = if hi < last {
        u64::MAX >> (last - hi)
    } else {
        u64::MAX
    };
    bits & from & to
}

impl<'t> Postings<'t> {
    fn open<T: ReadableTable<(u64, u64), u64>>(
        table: &'t T,
        key: u64,
        lo: u64,
        hi: u64,
        desc: bool,
        stats: &mut EventPage,
    ) -> Result<Self> {
        let mut p = Self {
            key,
            lo,
            hi,
            desc,
            rows: table.range((key, lo / BLOCK_BITS)..=(key, hi / BLOCK_BITS))?,
            bits: 0,
            base: 0,
            head: None,
        };
        p.advance(stats)?;
        Ok(p)
    }

    /// Reads the next row in the walk's direction; `false` at the end.
    fn next_row(&mut self) -> Result<bool> {
        let item = if self.desc {
            self.rows.next_back()
        } else {
            self.rows.next()
        };
        let Some((k, v)) = item.transpose()? else {
            self.bits = 0;
            return Ok(false);
        };
        self.base = k.value().1 * BLOCK_BITS;
        self.bits = within(v.value(), self.base, self.lo, self.hi);
        Ok(true)
    }

    /// Takes the next id of the current row into `head`.
    fn pop(&mut self, stats: &mut EventPage) {
        let bit = if self.desc {
            u64::from(self.bits.ilog2())
        } else {
            u64::from(self.bits.trailing_zeros())
        };
        self.bits &= !(1 << bit);
        self.head = Some(self.base + bit);
        stats.postings_read += 1;
    }

    fn advance(&mut self, stats: &mut EventPage) -> Result<()> {
        while self.bits == 0 {
            if !self.next_row()? {
                self.head = None;
                return Ok(());
            }
        }
        self.pop(stats);
        Ok(())
    }

    /// Whether `id` comes before `target` in this walk's direction.
    fn before(&self, id: u64, target: u64) -> bool {
        if self.desc { id > target } else { id < target }
    }

    /// The first id at or past `target` in this walk's direction: the rest
    /// of the current row, a few rows, then a fresh search of the tree (so
    /// a long gap costs O(log n)).
    fn seek<T: ReadableTable<(u64, u64), u64>>(
        &mut self,
        table: &'t T,
        target: u64,
        stats: &mut EventPage,
    ) -> Result<Option<u64>> {
        let Some(id) = self.head else {
            return Ok(None);
        };
        if !self.before(id, target) {
            return Ok(self.head);
        }
        // Nothing before `target` is wanted any more.
        if self.desc {
            self.hi = target;
        } else {
            self.lo = target;
        }
        self.bits = within(self.bits, self.base, self.lo, self.hi);
        for _ in 0..SEEK_STEPS {
            if self.bits != 0 {
                self.pop(stats);
                return Ok(self.head);
            }
            if !self.next_row()? {
                self.head = None;
                return Ok(None);
            }
        }
        if self.bits == 0 {
            self.rows =
                table.range((self.key, self.lo / BLOCK_BITS)..=(self.key, self.hi / BLOCK_BITS))?;
        }
        self.advance(stats)?;
        Ok(self.head)
    }
}

/// The ids matching every filter (each a union of keys), walked by leapfrog
/// over the posting lists: each step seeks the next id all lists share, so
/// the work follows the smallest list in range, never the history.
pub(super) fn matching_ids<T: ReadableTable<(u64, u64), u64>>(
    index: &T,
    filters: &[Vec<u64>],
    lo: u64,
    hi: u64,
    desc: bool,
    limit: usize,
    stats: &mut EventPage,
) -> Result<Vec<u64>> {
    let mut lists = Vec::with_capacity(filters.len());
    for keys in filters {
        let mut union = Vec::with_capacity(keys.len());
        for &key in keys {
            union.push(Postings::open(index, key, lo, hi, desc, stats)?);
        }
        lists.push(union);
    }
    let mut out = Vec::new();
    let mut candidate = if desc { hi } else { lo };
    'search: loop {
        for union in &mut lists {
            let mut found: Option<u64> = None;
            for p in union.iter_mut() {
                if let Some(id) = p.seek(index, candidate, stats)? {
                    found = Some(match found {
                        Some(f) if desc => f.max(id),
                        Some(f) => f.min(id),
                        None => id,
                    });
                }
            }
            match found {
                None => break 'search,
                Some(id) if id != candidate => {
                    candidate = id;
                    continue 'search;
                }
                Some(_) => {}
            }
        }
        out.push(candidate);
        if out.len() >= limit {
            break;
        }
        candidate = match (desc, candidate) {
            (true, c) if c <= lo => break,
            (true, c) => c - 1,
            (false, c) if c >= hi => break,
            (false, c) => c + 1,
        };
    }
    Ok(out)
}

/// The key numbers of each filter in `q`; an unknown name matches nothing,
/// so a filter left with no key makes the answer empty.
pub(super) fn query_filters(
    keys: &impl ReadableTable<&'static str, u64>,
    q: &EventQuery,
) -> Result<Vec<Vec<u64>>> {
    let mut filters = Vec::new();
    let groups: [(char, Vec<&str>); 3] = [
        ('c', q.channels.iter().map(String::as_str).collect()),
        ('t', q.event_types.iter().map(String::as_str).collect()),
        ('r', q.correlation_id.iter().map(String::as_str).collect()),
    ];
    for (kind, names) in groups {
        if names.is_empty() {
            continue;
        }
        let mut found = Vec::new();
        for name in names {
            if let Some(k) = keys.get(index_name(kind, name).as_str())? {
                found.push(k.value());
            }
        }
        found.sort_unstable();
        found.dedup();
        filters.push(found);
    }
    Ok(filters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::*;

    /// Every combination of filters, orders, cursors and limits answers
    /// what a scan of every event would.
    #[tokio::test]
    async fn the_index_answers_what_a_scan_would() {
        let (_dir, store) = store_with(400).await;
        let all = page(
            &store,
            EventQuery {
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .events;
        assert_eq!(all.len(), 400);
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let channel_sets = [
            vec![],
            strings(&["session:a"]),
            strings(&["all", "session:b"]),
            strings(&["nowhere"]),
            strings(&["nowhere", "repo:x"]),
        ];
        let type_sets = [
            vec![],
            strings(&["help_needed"]),
            strings(&["note", "help_needed"]),
        ];
        let correlations = [None, Some("req-1".to_owned()), Some("none".to_owned())];
        for channels in &channel_sets {
            for event_types in &type_sets {
                for correlation_id in &correlations {
                    for (after, descending, limit) in [
                        (None, false, 1000),
                        (Some(97), false, 7),
                        (Some(13), true, 5),
                        (None, true, 1000),
                    ] {
                        let q = EventQuery {
                            after,
                            descending,
                            limit,
                            channels: channels.clone(),
                            event_types: event_types.clone(),
                            correlation_id: correlation_id.clone(),
                            max_bytes: None,
                        };
                        let mut want: Vec<u64> = all
                            .iter()
                            .filter(|e| e.id > after.unwrap_or(0) && q.accepts(e))
                            .map(|e| e.id)
                            .collect();
                        want.sort_unstable();
                        if descending {
                            want.reverse();
                        }
                        want.truncate(limit);
                        let got = page(&store, q.clone()).await;
                        let ids: Vec<u64> = got.events.iter().map(|e| e.id).collect();
                        assert_eq!(ids, want, "{q:?}");
                        assert_eq!(got.rows_read, want.len(), "only matches are decoded: {q:?}");
                    }
                }
            }
        }
    }

    /// The regression guard for "a filtered read scans history": at many
    /// events, one match costs one row and a handful of index entries, and
    /// an empty page says it looked up to the newest id.
    #[tokio::test]
    async fn a_filtered_read_examines_only_its_matches() {
        let (_dir, store) = store_with(0).await;
        store
            .write(Durability::Durable, |t| {
                for i in 0..20_000u64 {
                    let channel = if i == 10 { "session:quiet" } else { "all" };
                    t.append_event(new_event(channel))?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let dm = |after: Option<u64>, descending: bool| EventQuery {
            after,
            descending,
            limit: 50,
            channels: vec!["session:quiet".into()],
            event_types: vec!["t".into()],
            ..Default::default()
        };
        for descending in [false, true] {
            let got = page(&store, dm(None, descending)).await;
            assert_eq!(got.events.iter().map(|e| e.id).collect::<Vec<_>>(), [11]);
            assert_eq!(got.rows_read, 1);
            // The type list holds all 20,000: a seek steps a few, then searches.
            assert!(
                got.postings_read <= 2 * SEEK_STEPS + 4,
                "{}",
                got.postings_read
            );
            assert_eq!(got.through, 20_000);
        }
        let quiet = page(&store, dm(Some(11), false)).await;
        assert!(quiet.events.is_empty());
        assert_eq!((quiet.rows_read, quiet.through), (0, 20_000));
        assert!(quiet.postings_read <= 2, "{}", quiet.postings_read);
    }
}
