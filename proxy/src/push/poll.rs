//! The push long-poll: between renewals the presence loop hands its time
//! here, and the session's push channels (its direct messages and
//! `AGENT_EVENT_BUS_PUSH_CHANNELS`) are long-polled from the registration
//! cursor with a narrowed read, which never consumes the agent's own cursor.
//! The polls go as reader `push`, so the hub never takes what they return
//! for the agent's own read (a receipt's `delivered`). What arrives goes to
//! the [`Pusher`](super::Pusher).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared::client::DEFAULT_TIMEOUT;
use shared::client::follow::{self, Backoff, Follower, Position, round_seconds};
use shared::config::Reader;
use shared::wire::EventsPage;

use super::Batch;
use crate::presence::{Phase, Presence};

/// Events asked for per push poll.
const PUSH_PAGE: u64 = 100;
/// The shortest gap between renewals worth a push poll (polls wait whole
/// seconds, so a short lease's poll may run up to a second past its renewal;
/// the poll renews the lease itself).
pub const POLL_MIN: Duration = Duration::from_millis(250);

/// The push poll's state across renewals: where it reads from next.
#[derive(Debug, Default)]
pub struct Poll {
    /// Starts at the first registration's cursor (else the tip), then
    /// follows each poll's `next_cursor`. Never the agent's own cursor.
    follower: Option<Follower>,
}

impl Poll {
    /// Long-polls session `id`'s push channels for up to `budget` (until the
    /// next renewal is due), handing what arrives to the pusher. Returns
    /// early when the phase changes. The polls name the session, so they
    /// renew its lease on the hub as well.
    pub async fn listen(&mut self, presence: &Presence, id: &str, budget: Duration) {
        let until = Instant::now() + budget;
        let registered = Phase::Registered(id.to_owned());
        let channels = shared::push::watched(id, presence.push_channels());
        let hub = presence.hub().as_reader(Reader::Push);
        let query = json!({
            "session_id": id,
            "channels": channels,
            "order": "asc",
            "limit": PUSH_PAGE,
        });
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left < POLL_MIN || presence.phase() != registered {
                return;
            }
            let Some(follower) = self.follower(presence).await else {
                presence.pause(left.min(Backoff::FOLLOW.first)).await;
                return;
            };
            let wait = round_seconds(left, shared::config::MAX_WAIT_SECONDS);
            let outcome = {
                let round = follower.round(&hub, &query, wait, DEFAULT_TIMEOUT);
                tokio::pin!(round);
                loop {
                    tokio::select! {
                        outcome = &mut round => break Some(outcome),
                        () = presence.woken() => {
                            if presence.phase() != registered {
                                break None;
                            }
                        }
                    }
                }
            };
            let Some(outcome) = outcome else { return };
            let out = match outcome {
                Ok(round) => round.out,
                Err(e) => {
                    tracing::debug!("push poll failed: {e}");
                    let retry = follower.failed();
                    presence.pause(left.min(retry.delay)).await;
                    continue;
                }
            };
            let value = out.value();
            if value.get("session_deleted").and_then(Value::as_bool) == Some(true) {
                // Ended on the hub: nothing to push until the next renewal
                // (or the agent's next call) registers it again.
                presence.pause(left).await;
                return;
            }
            let page = match serde_json::from_value::<EventsPage>(value) {
                Ok(page) if !out.is_error() => page,
                _ => {
                    tracing::warn!(reply = %out.text(), "unexpected push poll reply");
                    let retry = follower.failed();
                    presence.pause(left.min(retry.delay)).await;
                    continue;
                }
            };
            let events: Vec<_> = page
                .events
                .into_iter()
                .filter(|e| shared::push::worth_pushing(e, id))
                .collect();
            if !events.is_empty()
                && let Some(target) = presence.target(id)
            {
                presence.pusher().offer(Batch { target, events }).await;
            }
        }
    }

    /// The follower, started at the registration's cursor, else at the tip
    /// (`None` while the tip cannot be read).
    async fn follower(&mut self, presence: &Presence) -> Option<&mut Follower> {
        if self.follower.is_none() {
            let start = match presence.registration_cursor() {
                Some(cursor) => cursor,
                None => follow::tip(presence.hub()).await.ok()?,
            };
            self.follower = Some(Follower::new(Position::after(start), Backoff::FOLLOW));
        }
        self.follower.as_mut()
    }
}
