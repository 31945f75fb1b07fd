//! One page of events: the walk over the events (unfiltered) or over the
//! index (filtered) from a cursor, up to the query's limit and its byte
//! limit, and how far the page says it looked.

use redb::ReadableTable;

use super::index::{matching_ids, query_filters};
use super::{EventPage, EventQuery, EventRecord, Result, codec};

/// Events above `q.after` up to `tip`: an unfiltered read walks the events
/// themselves; a filtered one walks the index and decodes only its matches.
pub(super) fn read_events(
    events: &impl ReadableTable<u64, &'static [u8]>,
    keys: &impl ReadableTable<&'static str, u64>,
    index: &impl ReadableTable<(u64, u64), u64>,
    tip: u64,
    q: &EventQuery,
) -> Result<EventPage> {
    let after = q.after.unwrap_or(0);
    let lo = after.saturating_add(1);
    let mut page = EventPage {
        through: after,
        ..EventPage::default()
    };
    if q.limit == 0 {
        return Ok(page);
    }
    if lo > tip {
        return Ok(page);
    }
    let filters = query_filters(keys, q)?;
    let mut bytes = 0;
    if filters.is_empty() {
        let range = events.range(lo..=tip)?;
        let rows: Box<dyn Iterator<Item = _>> = if q.descending {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        for item in rows.take(q.limit) {
            let (k, v) = item?;
            let event = codec::decode_event(k.value(), v.value())?;
            if !take(&mut page, &mut bytes, q.max_bytes, event) {
                break;
            }
        }
    } else if filters.iter().all(|f| !f.is_empty()) {
        let ids = matching_ids(index, &filters, lo, tip, q.descending, q.limit, &mut page)?;
        for id in ids {
            if let Some(v) = events.get(id)? {
                let event = codec::decode_event(id, v.value())?;
                if !take(&mut page, &mut bytes, q.max_bytes, event) {
                    break;
                }
            }
        }
    }
    page.rows_read = page.events.len();
    page.through = if page.events.len() < q.limit && !page.cut {
        tip
    } else if q.descending {
        after
    } else {
        page.events.last().map_or(after, |e| e.id)
    };
    Ok(page)
}

/// Adds `event` to `page` unless it would take the page's JSON (the
/// events, and a comma between each) past `max_bytes`: then the page is
/// cut there and false returned. The first event is always taken, so an
/// event larger than the limit is still read, alone.
fn take(
    page: &mut EventPage,
    bytes: &mut usize,
    max_bytes: Option<usize>,
    event: EventRecord,
) -> bool {
    if let Some(max) = max_bytes {
        let len = event.wire_len() + usize::from(!page.events.is_empty());
        if !page.events.is_empty() && bytes.saturating_add(len) > max {
            page.cut = true;
            return false;
        }
        *bytes += len;
    }
    page.events.push(event);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::*;

    fn sized(bytes: usize) -> NewEvent {
        NewEvent::system("t", "x".repeat(bytes), "s")
    }

    /// Pages cut by bytes, read after each other from their `next_cursor`
    /// (the last id returned), return every event once, in order; a page
    /// always holds at least one event, even one larger than the limit.
    #[tokio::test]
    async fn byte_limited_pages_skip_nothing() {
        let (_dir, store) = store_with(0).await;
        let sizes = [100, 3000, 10, 10, 5000, 10, 10, 10, 2500, 10];
        store
            .write(Durability::Durable, move |t| {
                for n in sizes {
                    t.append_event(sized(n))?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let max = 3000;
        for channels in [vec![], vec!["all".to_owned()]] {
            let mut after = None;
            let mut seen = Vec::new();
            loop {
                let got = page(
                    &store,
                    EventQuery {
                        after,
                        limit: 1000,
                        channels: channels.clone(),
                        max_bytes: Some(max),
                        ..Default::default()
                    },
                )
                .await;
                let json: usize = got.events.iter().map(EventRecord::wire_len).sum::<usize>()
                    + got.events.len().saturating_sub(1);
                assert!(!got.events.is_empty(), "a page always holds one event");
                assert!(
                    json <= max || got.events.len() == 1,
                    "{json} bytes in {} events",
                    got.events.len()
                );
                seen.extend(got.events.iter().map(|e| e.id));
                let last = got.events.last().map(|e| e.id);
                if got.cut {
                    assert_eq!(
                        got.through,
                        last.unwrap(),
                        "a cut page looked up to its last event"
                    );
                    after = last;
                } else {
                    assert_eq!(got.through, 10, "a whole page looked up to the tip");
                    break;
                }
            }
            assert_eq!(seen, (1..=10).collect::<Vec<_>>(), "{channels:?}");
        }
        let newest = page(
            &store,
            EventQuery {
                descending: true,
                limit: 1000,
                max_bytes: Some(max),
                ..Default::default()
            },
        )
        .await;
        assert!(newest.cut);
        assert_eq!(
            newest.events.first().map(|e| e.id),
            Some(10),
            "newest first"
        );
        assert_eq!(
            newest.through, 0,
            "a cut descending page says nothing of what follows"
        );
    }

    #[tokio::test]
    async fn wire_len_is_the_length_of_the_wire_json() {
        let (_dir, store) = store_with(0).await;
        let odd = NewEvent {
            title: Some("T \"q\"".into()),
            tags: Some(vec!["a".into(), "b\\".into()]),
            correlation_id: Some("c\u{1}".into()),
            signal_level: Some("actionable".into()),
            ..NewEvent::system("ty\npe", "é😀\u{7f}\u{1b}\t".into(), "s")
        };
        let events = store
            .write(Durability::Durable, move |t| {
                Ok(vec![t.append_event(odd)?, t.append_event(sized(0))?])
            })
            .await
            .unwrap();
        for e in events {
            let json = serde_json::to_string(&e.to_wire()).unwrap();
            assert_eq!(e.wire_len(), json.len(), "{json}");
        }
    }
}
