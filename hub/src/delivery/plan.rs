//! Which due deliveries start now, and when to look again: a function of
//! what one outbox scan found, what is in flight and the limit, so the
//! rules are tested without a store or a receiver.

use crate::store::{DueDelivery, Queued};

/// What the outbox holds for one active webhook, as one scan read it.
/// `H` is what an attempt needs of the webhook (the worker passes its
/// record), handed back with each attempt the plan starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Found<H> {
    pub webhook_id: u64,
    pub hook: H,
    /// Attempts to this webhook started and not yet recorded.
    pub in_flight: usize,
    /// Retries due now, the longest due first, at most [`free_slots`] of
    /// them and none in flight: (due ms, event id, attempts made).
    pub retries: Vec<(u64, u64, u32)>,
    /// Events awaiting their first attempt, in event order, at most
    /// [`free_slots`] of them and none in flight.
    pub firsts: Vec<u64>,
    /// When the next retry not yet due falls due (ms). Only consulted when
    /// `retries` and `firsts` together fill fewer than the free slots, so a
    /// reader may leave it out otherwise.
    pub next_retry: Option<u64>,
}

/// What one scan decides.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Plan<H> {
    /// The attempts to start now, each with its webhook's `H`: per webhook
    /// (in the order found), its retries, then its first attempts.
    pub start: Vec<(DueDelivery, H)>,
    /// When the earliest retry not started falls due (ms); `None` when only
    /// a new event or a finished attempt can bring more work.
    pub wake_at: Option<u64>,
}

/// How many more attempts to a webhook may start: at most `concurrency`
/// are in flight at once.
pub(super) fn free_slots(concurrency: usize, in_flight: usize) -> usize {
    concurrency.saturating_sub(in_flight)
}

/// Decides which of the `found` deliveries start now. Per webhook, its free
/// slots are shared between retries and first attempts, half each; an odd
/// slot goes to retries on an `odd_turn` and to first attempts otherwise
/// (the caller alternates turns), and a queue that cannot use its share
/// leaves it to the other. So a failing receiver's retries never hold back
/// new events, nor new events the retries.
pub(super) fn plan<H: Clone>(found: &[Found<H>], concurrency: usize, odd_turn: bool) -> Plan<H> {
    let mut plan = Plan {
        start: Vec::new(),
        wake_at: None,
    };
    for hook in found {
        let free = free_slots(concurrency, hook.in_flight);
        if free == 0 {
            // A finished attempt frees a slot, and rescans.
            continue;
        }
        let retry_share = if odd_turn { free.div_ceil(2) } else { free / 2 };
        let firsts = &hook.firsts[..hook
            .firsts
            .len()
            .min(free - hook.retries.len().min(retry_share))];
        let retries = &hook.retries[..hook.retries.len().min(free - firsts.len())];
        if retries.len() + firsts.len() < free
            && let Some(due) = hook.next_retry
        {
            plan.wake_at = Some(plan.wake_at.map_or(due, |at| at.min(due)));
        }
        let retries = retries
            .iter()
            .map(|&(due_ms, event_id, attempts)| DueDelivery {
                webhook_id: hook.webhook_id,
                event_id,
                queued: Queued::Retry { due_ms },
                attempt: attempts.saturating_add(1),
            });
        let firsts = firsts.iter().map(|&event_id| DueDelivery {
            webhook_id: hook.webhook_id,
            event_id,
            queued: Queued::First,
            attempt: 1,
        });
        plan.start
            .extend(retries.chain(firsts).map(|due| (due, hook.hook.clone())));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A webhook with `retries` due (event ids, each with one attempt made)
    /// and `firsts` waiting.
    fn found(webhook_id: u64, retries: &[u64], firsts: &[u64]) -> Found<()> {
        Found {
            webhook_id,
            retries: retries.iter().map(|&e| (e * 10, e, 1)).collect(),
            firsts: firsts.to_vec(),
            ..Found::default()
        }
    }

    /// The started attempts as (webhook, event, attempt number).
    fn started(plan: &Plan<()>) -> Vec<(u64, u64, u32)> {
        plan.start
            .iter()
            .map(|(d, ())| (d.webhook_id, d.event_id, d.attempt))
            .collect()
    }

    #[test]
    fn free_slots_are_shared_half_and_half_retries_first() {
        let plan = plan(&[found(7, &[1, 2, 3, 4], &[5, 6, 7, 8])], 4, true);
        assert_eq!(
            started(&plan),
            [(7, 1, 2), (7, 2, 2), (7, 5, 1), (7, 6, 1)],
            "two retries, then two first attempts in event order"
        );
        assert_eq!(
            plan.start[0].0.queued,
            Queued::Retry { due_ms: 10 },
            "a retry names the queue key it came from"
        );
        assert_eq!(plan.start[2].0.queued, Queued::First);
        assert_eq!(plan.wake_at, None);
    }

    #[test]
    fn an_odd_slot_alternates_between_the_queues() {
        let hooks = [found(1, &[1, 2, 3], &[4, 5, 6])];
        assert_eq!(
            started(&plan(&hooks, 3, true)),
            [(1, 1, 2), (1, 2, 2), (1, 4, 1)]
        );
        assert_eq!(
            started(&plan(&hooks, 3, false)),
            [(1, 1, 2), (1, 4, 1), (1, 5, 1)]
        );
        // One slot: a retry on odd turns, a first attempt on even ones.
        assert_eq!(started(&plan(&hooks, 1, true)), [(1, 1, 2)]);
        assert_eq!(started(&plan(&hooks, 1, false)), [(1, 4, 1)]);
    }

    #[test]
    fn a_short_queue_leaves_its_share_to_the_other() {
        assert_eq!(
            started(&plan(&[found(1, &[1], &[2, 3, 4, 5, 6])], 4, true)),
            [(1, 1, 2), (1, 2, 1), (1, 3, 1), (1, 4, 1)]
        );
        assert_eq!(
            started(&plan(&[found(1, &[1, 2, 3, 4, 5], &[])], 4, false)),
            [(1, 1, 2), (1, 2, 2), (1, 3, 2), (1, 4, 2)]
        );
    }

    #[test]
    fn attempts_in_flight_count_against_the_limit() {
        let mut hook = found(1, &[1, 2], &[3, 4]);
        hook.next_retry = Some(500);
        hook.in_flight = 3;
        let one = plan(std::slice::from_ref(&hook), 4, false);
        assert_eq!(started(&one), [(1, 3, 1)]);
        assert_eq!(one.wake_at, None, "every slot is taken: no wake time");
        hook.in_flight = 4;
        assert_eq!(
            plan(&[hook], 4, true),
            Plan::default(),
            "a webhook at its limit starts nothing and waits for a finished attempt"
        );
        assert_eq!(free_slots(4, 6), 0);
    }

    #[test]
    fn the_wake_time_is_the_earliest_retry_of_a_webhook_with_room() {
        let mut idle = found(1, &[], &[]);
        idle.next_retry = Some(9_000);
        let mut busy = found(2, &[], &[5]);
        busy.next_retry = Some(4_000);
        let mut full = found(3, &[1, 2], &[]);
        full.next_retry = Some(1_000);
        let plan = plan(&[idle, busy, full], 2, true);
        assert_eq!(started(&plan), [(2, 5, 1), (3, 1, 2), (3, 2, 2)]);
        assert_eq!(
            plan.wake_at,
            Some(4_000),
            "the full webhook's retry waits for its finished attempts instead"
        );
    }

    #[test]
    fn the_attempt_number_never_overflows() {
        let hook = Found {
            webhook_id: 1,
            hook: (),
            retries: vec![(0, 9, u32::MAX)],
            ..Found::default()
        };
        assert_eq!(started(&plan(&[hook], 1, true)), [(1, 9, u32::MAX)]);
    }
}
