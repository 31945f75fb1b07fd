//! [`Follower`]: the one long-poll loop state every client shares — where
//! the next `get_events` reads from, how long each round waits, and how
//! long to back off while the hub cannot be reached. Used by the CLI's
//! `events --wait`, `events --follow` and `wait`, and the proxy's push poll.
//!
//! A follower does not loop by itself: each caller decides what a page
//! means (print it, wake an agent, push it) and when to stop.

use std::time::Duration;

use serde_json::{Value, json};

use super::{ClientError, HubClient, ToolOutput};
use crate::config::MAX_WAIT_SECONDS;

/// The tool every follower reads with.
const GET_EVENTS: &str = "get_events";

/// Where the next read starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// No cursor: the newest events (desc) or the oldest (asc).
    Unset,
    /// The session's saved cursor (`resume`).
    Resume,
    /// After this cursor, as the hub reads it (an event id).
    After(String),
}

impl Position {
    /// After event `id`.
    pub fn after(id: u64) -> Self {
        Self::After(id.to_string())
    }

    /// Adds this position to `get_events` arguments.
    pub fn apply(&self, params: &mut Value) {
        match self {
            Self::Unset => {}
            Self::Resume => params["resume"] = json!(true),
            Self::After(cursor) => params["cursor"] = json!(cursor),
        }
    }

    /// The event id read after, when it is one.
    pub fn cursor(&self) -> Option<u64> {
        match self {
            Self::After(cursor) => cursor.parse().ok(),
            Self::Unset | Self::Resume => None,
        }
    }
}

/// Retry delays while the hub is unreachable: `first`, doubling each
/// failure up to `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// What the CLI's followers use: 1 s, 2 s, 4 s, … up to 10 s.
    pub const FOLLOW: Self = Self {
        first: Duration::from_secs(1),
        cap: Duration::from_secs(10),
    };

    /// The delay before retry number `failures` (1-based; 0 is no delay).
    pub fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.first.saturating_mul(factor).min(self.cap)
    }
}

/// What to do after a failed round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// How long to wait before the next round.
    pub delay: Duration,
    /// The first failure since the hub last answered (say so once).
    pub first: bool,
}

/// One round's page, and whether the hub answered after failed rounds.
#[derive(Debug)]
pub struct Round {
    pub out: ToolOutput,
    /// The hub answered again after at least one failed round.
    pub recovered: bool,
}

/// The state one long-poll client keeps between rounds.
#[derive(Debug, Clone)]
pub struct Follower {
    position: Position,
    backoff: Backoff,
    failures: u32,
}

impl Follower {
    /// A follower reading from `position`, backing off as `backoff` says.
    pub fn new(position: Position, backoff: Backoff) -> Self {
        Self {
            position,
            backoff,
            failures: 0,
        }
    }

    /// Where the next round reads from.
    pub fn position(&self) -> &Position {
        &self.position
    }

    /// The event id the next round reads after, when there is one.
    pub fn cursor(&self) -> Option<u64> {
        self.position.cursor()
    }

    /// Consecutive failed rounds.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// One `get_events` round: `query` (the arguments that stay the same)
    /// from the current position, held open up to `wait` seconds, given up
    /// after `wait` plus `allowance`. A page moves the position to its
    /// `next_cursor` (the hub never hands back one behind the cursor read).
    pub async fn round(
        &mut self,
        hub: &HubClient,
        query: &Value,
        wait: u64,
        allowance: Duration,
    ) -> Result<Round, ClientError> {
        let mut params = query.clone();
        self.position.apply(&mut params);
        params["wait_seconds"] = json!(wait);
        let timeout = allowance + Duration::from_secs(wait);
        let out = hub.call_tool_within(GET_EVENTS, params, timeout).await?;
        if let Some(next) = out.value().get("next_cursor").and_then(Value::as_str) {
            self.position = Position::After(next.to_owned());
        }
        let recovered = self.failures > 0;
        self.failures = 0;
        Ok(Round { out, recovered })
    }

    /// Counts a failed round and says how long to wait before the next.
    pub fn failed(&mut self) -> Retry {
        self.failures = self.failures.saturating_add(1);
        Retry {
            delay: self.backoff.delay(self.failures),
            first: self.failures == 1,
        }
    }
}

/// How long the next round may wait: what is `left` until the caller's
/// deadline, in whole seconds rounded up, at most `cap` and the hub's 60 s.
pub fn round_seconds(left: Duration, cap: u64) -> u64 {
    let whole = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    whole.min(cap).min(MAX_WAIT_SECONDS)
}

/// The newest event id (0 on an empty bus), read without naming a session
/// so nothing is consumed: where a follower with no cursor starts.
pub async fn tip(hub: &HubClient) -> Result<u64, ClientError> {
    let out = hub
        .call_tool(GET_EVENTS, json!({"order": "desc", "limit": 1}))
        .await?;
    Ok(out
        .value()
        .get("next_cursor")
        .and_then(Value::as_str)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap() {
        let b = Backoff::FOLLOW;
        assert_eq!(b.delay(0), Duration::ZERO);
        assert_eq!(b.delay(1), Duration::from_secs(1));
        assert_eq!(b.delay(2), Duration::from_secs(2));
        assert_eq!(b.delay(4), Duration::from_secs(8));
        assert_eq!(b.delay(5), Duration::from_secs(10));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn failures_count_until_the_hub_answers() {
        let mut f = Follower::new(Position::Unset, Backoff::FOLLOW);
        assert_eq!(
            f.failed(),
            Retry {
                delay: Duration::from_secs(1),
                first: true
            }
        );
        assert_eq!(
            f.failed(),
            Retry {
                delay: Duration::from_secs(2),
                first: false
            }
        );
        assert_eq!(f.failures(), 2);
    }

    #[test]
    fn rounds_wait_whole_seconds_within_both_caps() {
        assert_eq!(round_seconds(Duration::from_millis(1), 30), 1);
        assert_eq!(round_seconds(Duration::from_secs(5), 30), 5);
        assert_eq!(round_seconds(Duration::from_millis(5001), 30), 6);
        assert_eq!(round_seconds(Duration::from_secs(500), 30), 30);
        assert_eq!(round_seconds(Duration::from_secs(500), 600), 60);
        assert_eq!(round_seconds(Duration::ZERO, 30), 0);
    }

    #[test]
    fn positions_read_as_the_hub_reads_them() {
        let mut params = json!({});
        Position::after(7).apply(&mut params);
        assert_eq!(params, json!({"cursor": "7"}));
        let mut params = json!({});
        Position::Resume.apply(&mut params);
        assert_eq!(params, json!({"resume": true}));
        assert_eq!(Position::after(7).cursor(), Some(7));
        assert_eq!(Position::Resume.cursor(), None);
    }
}
