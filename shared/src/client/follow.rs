//! [`Follow`]: the one long-poll loop every client shares — the CLI's
//! `events --wait`, `events --follow` and `wait`, and the proxy's push
//! poll. Each is a short consumer of [`Follow::next`]: it decides what a
//! page means (print it, wake an agent, push it) and when to stop.
//!
//! One retry policy: once the hub has answered, a hub that cannot be
//! reached ([`ClientError::is_transient`], as during a restart) is retried
//! with [`Backoff`], and the read resumes from the follower's own cursor,
//! which moves only with a page received — so a restart loses nothing and
//! shows nothing twice. A hub down before it ever answered, and any other
//! failure, is the caller's to report.

use std::time::Duration;

use tokio::time::Instant;

use super::{ClientError, DEFAULT_TIMEOUT, HubClient};
use crate::config::MAX_WAIT_SECONDS;
use crate::tools::events::{GetEvents, GetParams, Order, Page};
use crate::tools::{Answer, Refusal};

/// Where the next read starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// No cursor: the newest events (desc) or the oldest (asc).
    Unset,
    /// The session's saved cursor (`resume`).
    Resume,
    /// After this event id.
    After(u64),
}

impl Position {
    /// `query` reading from this position.
    pub fn apply(&self, query: &mut GetParams) {
        match self {
            Self::Unset => {}
            Self::Resume => query.resume = true,
            Self::After(cursor) => query.cursor = Some(*cursor),
        }
    }

    /// The event id read after, when it is one.
    pub fn cursor(&self) -> Option<u64> {
        match self {
            Self::After(cursor) => Some(*cursor),
            Self::Unset | Self::Resume => None,
        }
    }
}

/// Retry delays while the hub cannot be reached: `first`, doubling each
/// failure up to `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// What every follower uses: 1 s, 2 s, 4 s, … up to 10 s.
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

/// What one step of a follow brought.
#[derive(Debug)]
pub enum Step {
    /// A page, possibly empty (a round that ran out, or the hub's answer
    /// to something it ended, such as a watched session); `recovered`
    /// after failed rounds.
    Page { page: Page, recovered: bool },
    /// The hub refused the read (the session named has ended, …).
    Refused(Refusal),
    /// The hub could not be reached; the next step retries after the
    /// backoff. `first` for the first failure since it last answered.
    Lost { error: ClientError, first: bool },
    /// The deadline passed while retrying.
    Expired,
}

/// One follower: the read, where it stands, and its retry state.
#[derive(Debug, Clone)]
pub struct Follow {
    /// The read, less its position and wait.
    query: GetParams,
    position: Position,
    backoff: Backoff,
    /// Consecutive failed rounds.
    failures: u32,
    /// The hub has answered (this follower, or its caller first): only
    /// then is a hub that cannot be reached retried.
    answered: bool,
    deadline: Option<Instant>,
    /// The longest single round, in seconds.
    round_seconds: u64,
    /// How long a round may take beyond its wait.
    allowance: Duration,
}

impl Follow {
    /// A follower of `query` from `position`, in rounds of the hub's
    /// longest wait, with no deadline.
    pub fn new(query: GetParams, position: Position) -> Self {
        Self {
            query,
            position,
            backoff: Backoff::FOLLOW,
            failures: 0,
            answered: false,
            deadline: None,
            round_seconds: MAX_WAIT_SECONDS,
            allowance: DEFAULT_TIMEOUT,
        }
    }

    /// The hub has answered the caller already (it found the start).
    #[must_use]
    pub fn answered(mut self) -> Self {
        self.answered = true;
        self
    }

    /// Rounds held open at most `seconds` each.
    #[must_use]
    pub fn rounds_of(mut self, seconds: u64) -> Self {
        self.round_seconds = seconds;
        self
    }

    /// A round given up after its wait plus `allowance`.
    #[must_use]
    pub fn allowance(mut self, allowance: Duration) -> Self {
        self.allowance = allowance;
        self
    }

    /// Stops at `deadline` (rounds wait no longer than what is left).
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// Reads `query` from now on (a session renamed, channels changed).
    pub fn set_query(&mut self, query: GetParams) {
        self.query = query;
    }

    /// Where the next round reads from.
    pub fn position(&self) -> &Position {
        &self.position
    }

    /// The event id the next round reads after, when there is one.
    pub fn cursor(&self) -> Option<u64> {
        self.position.cursor()
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// The next step: one `get_events` round (after the backoff when the
    /// last one failed). `Err` for a failure not retried.
    pub async fn next(&mut self, hub: &HubClient) -> Result<Step, ClientError> {
        self.step(async |params, timeout| hub.call_within::<GetEvents>(params, timeout).await)
            .await
    }

    /// [`Follow::next`] with `round` doing the call (given the params and
    /// the timeout): the loop itself, which tests drive without a hub.
    pub async fn step(
        &mut self,
        round: impl AsyncFnOnce(&GetParams, Duration) -> Result<Answer<Page>, ClientError>,
    ) -> Result<Step, ClientError> {
        if self.failures > 0 {
            let retry = Instant::now() + self.backoff.delay(self.failures);
            let until = self.deadline.map_or(retry, |deadline| deadline.min(retry));
            tokio::time::sleep_until(until).await;
            if self.expired() {
                return Ok(Step::Expired);
            }
        }
        let wait = match self.deadline {
            Some(deadline) => round_seconds(
                deadline.saturating_duration_since(Instant::now()),
                self.round_seconds,
            ),
            None => self.round_seconds.min(MAX_WAIT_SECONDS),
        };
        let mut params = self.query.clone();
        self.position.apply(&mut params);
        params.wait_seconds = wait;
        let timeout = self.allowance + Duration::from_secs(wait);
        match round(&params, timeout).await {
            Ok(answer) => {
                let recovered = self.failures > 0;
                self.failures = 0;
                self.answered = true;
                Ok(match answer {
                    Ok(page) => {
                        // The hub never hands back a cursor behind the one read.
                        if let Some(next) = page.next_cursor.as_deref().and_then(|c| c.parse().ok())
                        {
                            self.position = Position::After(next);
                        }
                        Step::Page { page, recovered }
                    }
                    Err(refusal) => Step::Refused(refusal),
                })
            }
            Err(error) if self.answered && error.is_transient() => {
                self.failures = self.failures.saturating_add(1);
                Ok(Step::Lost {
                    error,
                    first: self.failures == 1,
                })
            }
            Err(error) => Err(error),
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
    let newest = GetParams {
        order: Order::Desc,
        limit: 1,
        ..GetParams::default()
    };
    let page = match hub.events(&newest).await? {
        Ok(page) => page,
        // A read naming no session is never refused; a newer hub's refusal
        // means no start can be had.
        Err(refusal) => {
            return Err(ClientError::Protocol {
                url: hub.endpoint().to_string(),
                detail: format!("the newest event could not be read: {refusal}"),
            });
        }
    };
    Ok(page
        .next_cursor
        .as_deref()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

#[cfg(test)]
mod tests;
