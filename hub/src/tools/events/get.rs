//! `get_events`: one pass over the store in named steps (look, check the
//! reader, record the read, shape the page), repeated while a long-poll
//! waits (`Waiting`).

use shared::tools::Refusal;
use shared::tools::events::{GetParams, Page, PageEvent};
use tokio::sync::watch;

use super::DELETED_READ_HINT;
use super::read::Read;
use crate::caller::Caller;
use crate::keys::Presented;
use crate::sessions;
use crate::state::Bus;
use crate::store::{
    ChannelWait, Durability, EventPage, EventQuery, EventRecord, SessionRecord, StoreError, Tx,
    Woken,
};
use crate::tools::{Failure, Outcome, deleted_refusal};

/// What one pass over the store found.
enum Pass {
    /// A finished reply: nothing to wait for.
    Done(Page),
    /// A page; an empty one may wait for more. Every event up to `next`
    /// was examined, so a later pass starts there.
    Page {
        reply: Page,
        empty: bool,
        next: Option<u64>,
    },
}

/// `get_events(...)`: one pass, repeated on each publish while a long-poll
/// waits and the page is empty. A long-poll also returns when the reader's
/// session ends (with the refusal that says so), or a session whose
/// direct messages it waits on ends (with what it has, maybe nothing).
pub async fn get(bus: &Bus, caller: &Caller, p: GetParams) -> Outcome<Page> {
    let mut read = Read::new(p, Presented::of(caller));
    let mut waiting = Waiting::new(bus, &read);
    loop {
        waiting.mark_seen();
        let (reply, empty, next) = match pass(bus, &read).await? {
            Pass::Done(reply) => return Ok(reply),
            Pass::Page { reply, empty, next } => (reply, empty, next),
        };
        if !empty || waiting.is_over() {
            return Ok(reply);
        }
        // The next pass never examines again what this one did.
        if next.is_some() {
            read.cursor = next;
        }
        if !waiting.for_change(bus).await {
            return Ok(reply);
        }
    }
}

/// What a long-poll waits on between its passes.
struct Waiting {
    /// No wait was asked for: one pass answers.
    once: bool,
    deadline: tokio::time::Instant,
    /// The newest committed event id, marked seen before each pass, so a
    /// commit during a pass ends the wait after it.
    tip: watch::Receiver<u64>,
    /// A read narrowed to channels wakes only for events on them (and the
    /// end of its sessions: that event is on another channel); others wake
    /// on every commit that appended events.
    on_channels: Option<ChannelWait>,
    /// A session it waits on has ended: the pass after that is the last.
    ended: bool,
}

impl Waiting {
    fn new(bus: &Bus, read: &Read) -> Self {
        let once = read.wait.is_zero();
        Self {
            once,
            deadline: tokio::time::Instant::now() + read.wait,
            tip: bus.store.tip(),
            on_channels: (!once && !read.channels.is_empty())
                .then(|| bus.store.wait_for(&read.channels, &read.sessions_ending())),
            ended: false,
        }
    }

    /// Marks every commit so far as seen by the pass about to run.
    fn mark_seen(&mut self) {
        self.tip.borrow_and_update();
    }

    /// Whether an empty page is the answer: no wait was asked for, or the
    /// pass after a session's end has run.
    fn is_over(&self) -> bool {
        self.once || self.ended
    }

    /// Waits until another pass may find something; false when the
    /// long-poll is over instead (its deadline, the hub shutting down).
    async fn for_change(&mut self, bus: &Bus) -> bool {
        let woken = async {
            match &self.on_channels {
                Some(wait) => Some(wait.changed().await),
                None => self.tip.changed().await.ok().map(|()| Woken::Events),
            }
        };
        let woken = tokio::select! {
            woken = woken => woken,
            () = tokio::time::sleep_until(self.deadline) => None,
            () = bus.shutdown.cancelled() => None,
        };
        match woken {
            None => false,
            // One more pass says what the end means for this read.
            Some(Woken::Ended) => {
                self.ended = true;
                true
            }
            Some(Woken::Events) => true,
        }
    }
}

/// One pass: what the store holds for the read, checked against the
/// reader, recorded for the session it names, shaped as its page.
async fn pass(bus: &Bus, read: &Read) -> Result<Pass, Failure> {
    let found = look(bus, read).await?;
    may_read_as(bus, read, found.session.as_ref())?;
    let Some(page) = found.page else {
        return without_page(bus, read, found).await;
    };
    let newest = page.events.iter().map(|e| e.id).max();
    let (has_more, next) = page_end(read, &page, newest, found.after);
    if let Some(id) = read.session_id.clone().filter(|_| found.session.is_some()) {
        let consumed = newest.filter(|_| read.consumes());
        record_read(bus, read, id, consumed, found.after).await?;
    }
    let events = shown(bus, read, &page.events).await?;
    let empty = events.is_empty();
    Ok(Pass::Page {
        reply: Page {
            events,
            next_cursor: next.map(|c| c.to_string()),
            has_more,
        },
        empty,
        next,
    })
}

/// What one snapshot holds for a read.
struct Found {
    /// The session the read names, when it exists.
    session: Option<SessionRecord>,
    tip: u64,
    /// The page starts after this id.
    after: Option<u64>,
    /// `None` when there is no page to read: the session has ended, or a
    /// resume names a session never seen or one with no saved cursor.
    page: Option<EventPage>,
}

/// Reads, in one snapshot, the session the read names and the page from
/// where it starts: its cursor, or when it resumes without one, the
/// session's saved cursor.
async fn look(bus: &Bus, read: &Read) -> Result<Found, StoreError> {
    let r = read.clone();
    let max_bytes = bus.limits.max_page_bytes;
    bus.store
        .read(move |snap| {
            let session = match &r.session_id {
                Some(id) => snap.session(id)?,
                None => None,
            };
            let tip = snap.tip()?;
            let no_page = |session, after| Found {
                session,
                tip,
                after,
                page: None,
            };
            if session.as_ref().is_some_and(SessionRecord::is_deleted) {
                return Ok(no_page(session, None));
            }
            let resuming = r.resume && r.cursor.is_none() && r.session_id.is_some();
            let after = match &session {
                _ if !resuming => r.cursor,
                None => return Ok(no_page(None, None)),
                Some(s) => match s.last_cursor {
                    Some(c) => Some(c),
                    None if !r.consumes() => Some(tip),
                    None => return Ok(no_page(session, Some(tip))),
                },
            };
            let page = snap.event_page(&EventQuery {
                after,
                descending: r.descending,
                limit: r.limit,
                channels: r.channels.clone(),
                event_types: r.event_types.clone(),
                correlation_id: r.correlation_id.clone(),
                max_bytes: Some(max_bytes),
            })?;
            Ok(Found {
                session,
                tip,
                after,
                page: Some(page),
            })
        })
        .await
}

/// Refuses a read naming a session it may not read as, or one that ended.
///
/// A read naming a session reads as it (its saved cursor, its lease,
/// receipts of its messages, deliveries to it): a keyed one is named only
/// with its key. Its events are not private — a read that names no
/// session sees them — so a refusal costs no one a thing they may see.
fn may_read_as(bus: &Bus, read: &Read, session: Option<&SessionRecord>) -> Result<(), Failure> {
    let Some(s) = session else {
        return Ok(());
    };
    read.key.may_act_as(s)?;
    if s.is_deleted() {
        bus.warn_deleted_once(s, "get_events");
        return Err(deleted_refusal(s, DELETED_READ_HINT).into());
    }
    Ok(())
}

/// The answer of a pass with no page: a resume for a session never seen
/// is refused; a resume with no saved cursor starts at the tip (saved as
/// its cursor, consuming nothing yet) and may wait there.
async fn without_page(bus: &Bus, read: &Read, found: Found) -> Result<Pass, Failure> {
    let empty = |next: Option<u64>| Page {
        events: Vec::new(),
        next_cursor: next.map(|c| c.to_string()),
        has_more: false,
    };
    match (&read.session_id, found.session) {
        (Some(id), None) => Err(Refusal::SessionNotFound {
            session_id: id.clone(),
        }
        .into()),
        (Some(id), Some(_)) => {
            let tip = found.tip;
            as_reader(bus, read, id.clone(), move |tx, mut s, _| {
                if s.last_cursor.is_none() {
                    s.last_cursor = Some(tip);
                    tx.put_session(&s)?;
                }
                Ok(())
            })
            .await?;
            Ok(Pass::Page {
                reply: empty(Some(tip)),
                empty: true,
                next: Some(tip),
            })
        }
        (None, _) => Ok(Pass::Done(empty(found.after))),
    }
}

/// Whether more may follow a page whose newest event is `newest`, and
/// where the next page starts.
fn page_end(
    read: &Read,
    page: &EventPage,
    newest: Option<u64>,
    after: Option<u64>,
) -> (bool, Option<u64>) {
    // Full, or stopped at the page byte limit: the next page starts right
    // after the last event returned (its `next_cursor`), so nothing is
    // skipped in ascending order.
    let has_more = page.events.len() == read.limit || page.cut;
    // An empty page says how far it looked: a quiet filtered read moves on
    // to the newest id it examined instead of handing back its own cursor.
    let next = newest
        .or_else(|| (page.through > after.unwrap_or(0)).then_some(page.through))
        .or(after);
    (has_more, next)
}

/// Records a read for the session it names: its activity, and when it
/// consumed through `consumed`, its saved cursor moved there and the
/// direct messages the cursor passes (from where it was, or `after`) read.
async fn record_read(
    bus: &Bus,
    read: &Read,
    id: String,
    consumed: Option<u64>,
    after: Option<u64>,
) -> Result<(), Failure> {
    as_reader(bus, read, id, move |tx, mut s, now| {
        if let Some(c) = consumed
            && s.last_cursor != Some(c)
        {
            let passed = s.last_cursor.or(after).unwrap_or(0);
            tx.mark_read_through(&s.id, passed, c, now)?;
            s.last_cursor = Some(c);
            tx.put_session(&s)?;
        }
        Ok(())
    })
    .await
}

/// Touches session `id` as the read's caller (its heartbeat, its lease)
/// and, while it lives, applies `then` to it (at the write's time), in one
/// lazy write. A call that may not act as it is refused, and changes
/// nothing.
async fn as_reader(
    bus: &Bus,
    read: &Read,
    id: String,
    then: impl FnOnce(&mut Tx<'_>, SessionRecord, i64) -> Result<(), StoreError> + Send + 'static,
) -> Result<(), Failure> {
    let key = read.key.clone();
    let every = bus.heartbeat_every_ms;
    bus.store
        .write(Durability::Lazy, move |tx| {
            let now = tx.now_ms();
            match sessions::touch(tx, &id, &key, now, every)? {
                Ok(Some(s)) if !s.is_deleted() => then(tx, s, now).map(Ok),
                Ok(_) => Ok(Ok(())),
                Err(refusal) => Ok(Err(refusal)),
            }
        })
        .await??;
    Ok(())
}

/// The page's events as the reply shows them: those at or above the
/// read's `min_level`, with receipts on the reader's own direct messages
/// when it asked for them.
async fn shown(
    bus: &Bus,
    read: &Read,
    events: &[EventRecord],
) -> Result<Vec<PageEvent>, StoreError> {
    let mut shown: Vec<PageEvent> = events
        .iter()
        .filter(|e| read.min_level.is_none_or(|min| e.level() >= min))
        .map(|e| PageEvent {
            event: e.to_wire(),
            receipt: None,
        })
        .collect();
    if let Some(reader) = read.session_id.as_deref().filter(|_| read.receipts) {
        crate::tools::receipts::attach(bus, reader, &mut shown).await?;
    }
    Ok(shown)
}
