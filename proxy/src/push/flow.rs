//! Flow control for push, so a chatty bus cannot flood a session: a rate cap
//! that turns a burst on a channel into one summary, identical repeats
//! dropped, and a loop guard that slows a pair of sessions bouncing messages
//! (and says so). Pure: time comes in as an argument. Nothing here loses an
//! event — what is not pushed one by one is counted in a summary (or is a
//! repeat), and every event stays readable with `get_events`.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use shared::push::is_dm_to;
use shared::wire::Event;

/// Pushes in a row before the rate cap applies.
pub const BURST: f64 = 5.0;
/// One more push is allowed per this much time.
pub const REFILL: Duration = Duration::from_secs(2);
/// An event identical to one pushed this recently (same sender, channel,
/// type and payload) is dropped.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(60);
/// The loop guard counts a pair's messages, both ways, over this window…
pub const LOOP_WINDOW: Duration = Duration::from_secs(60);
/// …and slows the pair when there are more than this many.
pub const LOOP_LIMIT: usize = 30;
/// A slowed pair's messages arrive as one summary at most this often.
pub const SLOW_EVERY: Duration = Duration::from_secs(15);
/// How many recent events the repeat check remembers.
const REPEAT_MEMORY: usize = 1024;
/// How many senders a summary names.
const SENDERS_KEPT: usize = 5;
/// How many event ids a summary keeps (for receipts).
const IDS_KEPT: usize = 1000;

/// What to push into the session.
#[derive(Debug, Clone, PartialEq)]
pub enum Push {
    /// One event, as it is.
    Event(Event),
    /// Several events held back, told as one.
    Summary(Summary),
    /// A pair of sessions went over [`LOOP_LIMIT`]: from now on the peer's
    /// messages arrive as summaries every [`SLOW_EVERY`].
    LoopGuard { peer: String, count: usize },
}

/// Events on one channel that were held back.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub channel: String,
    pub count: usize,
    pub first_id: u64,
    pub last_id: u64,
    /// Their publishers, in order of first appearance (the first few).
    pub senders: Vec<String>,
    /// Their ids (the first thousand).
    pub event_ids: Vec<u64>,
    /// Held by the loop guard (else by the rate cap).
    pub looping: bool,
}

/// Held-back events of one channel (or one looping peer).
#[derive(Debug)]
struct Held {
    first: Event,
    count: usize,
    last_id: u64,
    senders: Vec<String>,
    ids: Vec<u64>,
}

impl Held {
    fn new(event: Event) -> Self {
        Self {
            last_id: event.id,
            senders: vec![event.session_id.clone()],
            ids: vec![event.id],
            count: 1,
            first: event,
        }
    }

    fn add(&mut self, event: &Event) {
        self.count += 1;
        self.last_id = self.last_id.max(event.id);
        if self.ids.len() < IDS_KEPT {
            self.ids.push(event.id);
        }
        if self.senders.len() < SENDERS_KEPT && !self.senders.contains(&event.session_id) {
            self.senders.push(event.session_id.clone());
        }
    }

    /// One held event is pushed as it is; more become a summary.
    fn into_push(self, looping: bool) -> Push {
        if self.count == 1 {
            return Push::Event(self.first);
        }
        Push::Summary(Summary {
            channel: self.first.channel.clone(),
            count: self.count,
            first_id: self.first.id,
            last_id: self.last_id,
            senders: self.senders,
            event_ids: self.ids,
            looping,
        })
    }
}

/// Direct messages between this session and one peer.
#[derive(Debug)]
struct Pair {
    /// When each message (either way) was seen, within [`LOOP_WINDOW`].
    seen: VecDeque<Instant>,
    /// Slowed until then.
    slowed_until: Option<Instant>,
    /// When its held messages may go out next.
    next_flush: Instant,
    held: Option<Held>,
    /// The agent has been told about this slow-down.
    told: bool,
}

impl Pair {
    fn slowed(&self, now: Instant) -> bool {
        self.slowed_until.is_some_and(|until| now < until)
    }
}

/// The flow-control state of one session's push.
#[derive(Debug)]
pub struct Flow {
    tokens: f64,
    refilled: Instant,
    /// (when, fingerprint) of recently admitted events.
    recent: VecDeque<(Instant, u64)>,
    pairs: HashMap<String, Pair>,
    /// Rate-capped events by channel, oldest channel first.
    held: Vec<Held>,
}

impl Flow {
    pub fn new(now: Instant) -> Self {
        Self {
            tokens: BURST,
            refilled: now,
            recent: VecDeque::new(),
            pairs: HashMap::new(),
            held: Vec::new(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled);
        self.tokens = (self.tokens + elapsed.as_secs_f64() / REFILL.as_secs_f64()).min(BURST);
        self.refilled = now;
    }

    /// Whether an identical event was admitted within [`REPEAT_WINDOW`];
    /// remembers this one otherwise.
    fn repeat(&mut self, now: Instant, event: &Event) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > REPEAT_WINDOW)
        {
            self.recent.pop_front();
        }
        let mut hasher = DefaultHasher::new();
        (
            &event.session_id,
            &event.channel,
            &event.event_type,
            &event.payload,
        )
            .hash(&mut hasher);
        let print = hasher.finish();
        if self.recent.iter().any(|(_, p)| *p == print) {
            return true;
        }
        if self.recent.len() == REPEAT_MEMORY {
            self.recent.pop_front();
        }
        self.recent.push_back((now, print));
        false
    }

    /// Counts one message between us and `peer`; returns the pair and how
    /// many messages it has had within [`LOOP_WINDOW`].
    fn note_pair(&mut self, now: Instant, peer: &str) -> (&mut Pair, usize) {
        let pair = self.pairs.entry(peer.to_owned()).or_insert_with(|| Pair {
            seen: VecDeque::new(),
            slowed_until: None,
            next_flush: now,
            held: None,
            told: false,
        });
        while pair
            .seen
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > LOOP_WINDOW)
        {
            pair.seen.pop_front();
        }
        pair.seen.push_back(now);
        let count = pair.seen.len();
        (pair, count)
    }

    /// The agent sent a direct message to `peer` (it counts for the loop guard).
    pub fn sent(&mut self, now: Instant, peer: &str) {
        let (pair, count) = self.note_pair(now, peer);
        if count > LOOP_LIMIT {
            pair.slowed_until = Some(now + LOOP_WINDOW);
        }
    }

    /// Takes one event the long-poll found for session `own_id`; returns what
    /// to push now (possibly nothing: held back, or a repeat).
    pub fn admit(&mut self, now: Instant, own_id: &str, event: Event) -> Vec<Push> {
        let mut out = Vec::new();
        if self.repeat(now, &event) {
            return out;
        }
        if is_dm_to(&event, own_id) && event.session_id != "anonymous" {
            let peer = event.session_id.clone();
            let (pair, count) = self.note_pair(now, &peer);
            if count > LOOP_LIMIT {
                pair.slowed_until = Some(now + LOOP_WINDOW);
            }
            if pair.slowed(now) && !pair.told {
                out.push(Push::LoopGuard {
                    peer: peer.clone(),
                    count,
                });
                pair.told = true;
                pair.next_flush = now + SLOW_EVERY;
            }
            if pair.slowed(now) || pair.held.is_some() {
                match &mut pair.held {
                    Some(held) => held.add(&event),
                    None => pair.held = Some(Held::new(event)),
                }
                return out;
            }
        }
        self.refill(now);
        if let Some(held) = self
            .held
            .iter_mut()
            .find(|h| h.first.channel == event.channel)
        {
            held.add(&event);
        } else if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            out.push(Push::Event(event));
        } else {
            self.held.push(Held::new(event));
        }
        out
    }

    /// What held-back events may go out now: one push per channel as the
    /// rate cap allows, and a looping peer's batch every [`SLOW_EVERY`].
    pub fn flush(&mut self, now: Instant) -> Vec<Push> {
        self.refill(now);
        let mut out = Vec::new();
        while self.tokens >= 1.0 && !self.held.is_empty() {
            self.tokens -= 1.0;
            out.push(self.held.remove(0).into_push(false));
        }
        for pair in self.pairs.values_mut() {
            if now >= pair.next_flush
                && let Some(held) = pair.held.take()
            {
                out.push(held.into_push(true));
                pair.next_flush = now + SLOW_EVERY;
            }
            if !pair.slowed(now) && pair.held.is_none() {
                pair.told = false;
            }
        }
        self.pairs.retain(|_, p| {
            p.held.is_some()
                || p.slowed(now)
                || p.seen
                    .back()
                    .is_some_and(|t| now.saturating_duration_since(*t) <= LOOP_WINDOW)
        });
        out
    }

    /// When [`Flow::flush`] will next have something to push.
    pub fn next_flush(&self) -> Option<Instant> {
        let capped = (!self.held.is_empty()).then(|| {
            let missing = (1.0 - self.tokens).max(0.0);
            self.refilled + REFILL.mul_f64(missing)
        });
        self.pairs
            .values()
            .filter(|p| p.held.is_some())
            .map(|p| p.next_flush)
            .chain(capped)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u64, from: &str, channel: &str, payload: &str) -> Event {
        Event {
            id,
            event_type: "note".into(),
            payload: payload.into(),
            session_id: from.into(),
            timestamp: String::new(),
            channel: channel.into(),
            correlation_id: None,
            signal_level: "info".into(),
            title: None,
            tags: None,
        }
    }

    /// How many events a list of pushes stands for.
    fn count(pushes: &[Push]) -> usize {
        pushes
            .iter()
            .map(|p| match p {
                Push::Event(_) => 1,
                Push::Summary(s) => s.count,
                Push::LoopGuard { .. } => 0,
            })
            .sum()
    }

    #[test]
    fn a_burst_becomes_a_few_events_and_one_summary() {
        let t0 = Instant::now();
        let mut flow = Flow::new(t0);
        let mut pushed = Vec::new();
        for i in 1..=12 {
            pushed.extend(flow.admit(t0, "me", event(i, "other", "repo:x", &format!("e{i}"))));
        }
        assert_eq!(pushed.len(), 5, "the burst allowance");
        assert!(flow.flush(t0).is_empty(), "nothing more until a refill");
        let due = flow.next_flush().expect("a summary is due");
        assert_eq!(due, t0 + REFILL);
        let later = flow.flush(due);
        assert_eq!(
            later,
            [Push::Summary(Summary {
                channel: "repo:x".into(),
                count: 7,
                first_id: 6,
                last_id: 12,
                senders: vec!["other".into()],
                event_ids: (6..=12).collect(),
                looping: false,
            })]
        );
        pushed.extend(later);
        assert_eq!(count(&pushed), 12, "every event accounted for");
        assert_eq!(flow.next_flush(), None);
    }

    #[test]
    fn one_held_event_goes_out_as_itself_and_order_is_kept() {
        let t0 = Instant::now();
        let mut flow = Flow::new(t0);
        for i in 1..=5 {
            flow.admit(t0, "me", event(i, "o", "repo:x", &i.to_string()));
        }
        assert!(
            flow.admit(t0, "me", event(6, "o", "repo:x", "6"))
                .is_empty()
        );
        // A token is back, but the held event on repo:x goes first.
        let t1 = t0 + REFILL;
        assert!(
            flow.admit(t1, "me", event(7, "o", "repo:x", "7"))
                .is_empty()
        );
        let out = flow.flush(t1);
        assert!(matches!(&out[..], [Push::Summary(s)] if s.count == 2 && s.first_id == 6));
        let out = {
            let mut f = Flow::new(t0);
            for i in 1..=6 {
                f.admit(t0, "me", event(i, "o", "repo:y", &i.to_string()));
            }
            f.flush(t0 + REFILL)
        };
        assert!(matches!(&out[..], [Push::Event(e)] if e.id == 6));
    }

    #[test]
    fn identical_repeats_within_the_window_are_dropped() {
        let t0 = Instant::now();
        let mut flow = Flow::new(t0);
        assert_eq!(
            flow.admit(t0, "me", event(1, "a", "session:me", "ping"))
                .len(),
            1
        );
        assert!(
            flow.admit(t0, "me", event(2, "a", "session:me", "ping"))
                .is_empty()
        );
        assert_eq!(
            flow.admit(t0, "me", event(3, "b", "session:me", "ping"))
                .len(),
            1,
            "another sender is not a repeat"
        );
        let later = t0 + REPEAT_WINDOW + Duration::from_secs(1);
        assert_eq!(
            flow.admit(later, "me", event(4, "a", "session:me", "ping"))
                .len(),
            1
        );
    }

    #[test]
    fn a_bouncing_pair_is_slowed_and_told() {
        let t0 = Instant::now();
        let mut flow = Flow::new(t0);
        let mut pushed = Vec::new();
        let mut t = t0;
        let mut id = 0;
        // Our agent and peer answer each other twice a second.
        for _ in 0..20 {
            t += Duration::from_millis(500);
            flow.sent(t, "peer");
            id += 1;
            pushed.extend(flow.admit(t, "me", event(id, "peer", "session:me", &format!("m{id}"))));
            pushed.extend(flow.flush(t));
        }
        let guard = pushed
            .iter()
            .position(|p| matches!(p, Push::LoopGuard { peer, count } if peer == "peer" && *count > LOOP_LIMIT))
            .expect("the pair is told it is slowed");
        assert_eq!(
            pushed
                .iter()
                .filter(|p| matches!(p, Push::LoopGuard { .. }))
                .count(),
            1,
            "told once"
        );
        assert!(
            pushed[guard + 1..]
                .iter()
                .all(|p| !matches!(p, Push::Event(_))),
            "no message one by one after that"
        );
        // The held messages come as one looping summary after SLOW_EVERY.
        let out = flow.flush(t + SLOW_EVERY);
        assert!(matches!(&out[..], [Push::Summary(s)] if s.looping && s.channel == "session:me"));
        pushed.extend(out);
        assert_eq!(count(&pushed), 20);
        // Other senders are not slowed.
        let other = flow.admit(
            t + SLOW_EVERY,
            "me",
            event(100, "friend", "session:me", "hi"),
        );
        assert!(matches!(&other[..], [Push::Event(e)] if e.id == 100));
    }

    #[test]
    fn anonymous_and_broadcast_events_never_trip_the_loop_guard() {
        let t0 = Instant::now();
        let mut flow = Flow::new(t0);
        let mut pushed = Vec::new();
        for i in 0..100u32 {
            let t = t0 + REFILL * i;
            let e = event(u64::from(i), "anonymous", "session:me", &i.to_string());
            pushed.extend(flow.admit(t, "me", e));
        }
        assert!(
            pushed.iter().all(|p| matches!(p, Push::Event(_))),
            "one per refill passes the rate cap"
        );
        assert_eq!(pushed.len(), 100);
    }
}
