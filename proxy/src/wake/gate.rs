//! When the pane wake may act: a cooldown between typed notices (so a
//! chatty peer cannot keep a terminal busy), one `held` receipt per message
//! and reason (no hammering while a person's draft waits), and giving up
//! after repeated multiplexer failures. Pure: time comes in as an argument.

use std::collections::HashSet;
use std::time::{Duration, Instant};

/// The least time between two typed notices.
pub const COOLDOWN: Duration = shared::wake::PANE_COOLDOWN;
/// Consecutive multiplexer failures before the waiting messages are left
/// to the agent's next read.
pub const FAILURES_MAX: u32 = 5;

/// The pane wake's gate.
#[derive(Debug, Default)]
pub struct Gate {
    last_typed: Option<Instant>,
    /// The reason messages are held for, and which were told so.
    held: Option<(String, HashSet<u64>)>,
    failures: u32,
    /// The agent was seen busy since the last notice (said once).
    busy_told: bool,
}

impl Gate {
    /// Whether the cooldown since the last notice has passed.
    pub fn ready(&self, now: Instant) -> bool {
        self.last_typed.is_none_or(|t| now >= t + COOLDOWN)
    }

    /// A notice was typed and submitted now.
    pub fn typed(&mut self, now: Instant) {
        self.last_typed = Some(now);
        self.clear();
    }

    /// The wake is held for `reason`: the ids of `ids` not yet told so
    /// (all of them when the reason changed).
    pub fn hold(&mut self, reason: &str, ids: &[u64]) -> Vec<u64> {
        let told = match &mut self.held {
            Some((r, told)) if r == reason => told,
            _ => &mut self.held.insert((reason.to_owned(), HashSet::new())).1,
        };
        ids.iter().copied().filter(|id| told.insert(*id)).collect()
    }

    /// The agent is busy: whether this is news (to say once).
    pub fn busy(&mut self) -> bool {
        !std::mem::replace(&mut self.busy_told, true)
    }

    /// The multiplexer failed; whether to give up on the waiting messages.
    pub fn failed(&mut self) -> bool {
        self.failures += 1;
        if self.failures >= FAILURES_MAX {
            self.failures = 0;
            return true;
        }
        false
    }

    /// Nothing waits any more.
    pub fn clear(&mut self) {
        self.held = None;
        self.failures = 0;
        self.busy_told = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_are_spaced_by_the_cooldown() {
        let t0 = Instant::now();
        let mut gate = Gate::default();
        assert!(gate.ready(t0));
        gate.typed(t0);
        assert!(!gate.ready(t0 + COOLDOWN.saturating_sub(Duration::from_millis(1))));
        assert!(gate.ready(t0 + COOLDOWN));
    }

    #[test]
    fn each_message_is_told_once_per_reason() {
        let mut gate = Gate::default();
        assert_eq!(gate.hold("draft", &[1, 2]), [1, 2]);
        assert!(gate.hold("draft", &[1, 2]).is_empty(), "no hammering");
        assert_eq!(gate.hold("draft", &[1, 2, 3]), [3], "a new message is told");
        assert_eq!(
            gate.hold("dialog", &[1, 2, 3]),
            [1, 2, 3],
            "a new reason is told"
        );
        gate.typed(Instant::now());
        assert_eq!(gate.hold("dialog", &[4]), [4]);
    }

    #[test]
    fn busy_is_said_once_per_wait() {
        let mut gate = Gate::default();
        assert!(gate.busy());
        assert!(!gate.busy());
        gate.clear();
        assert!(gate.busy());
    }

    #[test]
    fn repeated_failures_give_up() {
        let mut gate = Gate::default();
        for _ in 1..FAILURES_MAX {
            assert!(!gate.failed());
        }
        assert!(gate.failed());
        assert!(!gate.failed(), "and start counting again");
    }
}
