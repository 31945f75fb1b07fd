//! The push long-poll: between renewals the presence loop hands its time
//! here, and the session's push channels (its direct messages and
//! `AGENT_EVENT_BUS_PUSH_CHANNELS`) are followed ([`Follow`]) from the
//! registration cursor with a narrowed read, which never consumes the
//! agent's own cursor. The polls go as reader `push`, so the hub never takes
//! what they return for the agent's own read (a receipt's `delivered`).
//! What arrives goes to the [`Pusher`](super::Pusher).

use std::time::Duration;

use shared::client::follow::{self, Backoff, Follow, Position, Step};
use shared::config::Reader;
use shared::tools::events::{GetParams, Order};
use tokio::time::Instant;

use super::Batch;
use crate::presence::{Phase, Presence};

/// Events asked for per push poll.
const PUSH_PAGE: usize = 100;
/// The shortest gap between renewals worth a push poll (polls wait whole
/// seconds, so a short lease's poll may run up to a second past its renewal;
/// the poll renews the lease itself).
pub const POLL_MIN: Duration = Duration::from_millis(250);

/// The push poll's state across renewals: where it reads from next.
#[derive(Debug, Default)]
pub struct Poll {
    /// Starts at the first registration's cursor (else the tip), then
    /// follows each poll's `next_cursor`. Never the agent's own cursor.
    follow: Option<Follow>,
}

/// The read: session `id`'s push channels, oldest first. It names the
/// session, so it renews its lease on the hub as well, and hears its end.
fn query(id: &str, push_channels: &[String]) -> GetParams {
    GetParams {
        session_id: Some(id.to_owned()),
        channels: Some(shared::push::watched(id, push_channels)),
        order: Order::Asc,
        limit: PUSH_PAGE,
        ..GetParams::default()
    }
}

impl Poll {
    /// Long-polls session `id`'s push channels for up to `budget` (until the
    /// next renewal is due), handing what arrives to the pusher. Returns
    /// early when the phase changes.
    pub async fn listen(&mut self, presence: &Presence, id: &str, budget: Duration) {
        let until = Instant::now() + budget;
        let registered = Phase::Registered(id.to_owned());
        let Some(follow) = self.follow(presence).await else {
            presence.pause(budget.min(Backoff::FOLLOW.first)).await;
            return;
        };
        follow.set_query(query(id, presence.push_channels()));
        follow.set_deadline(Some(until));
        let hub = presence.hub().as_reader(Reader::Push);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left < POLL_MIN || presence.phase() != registered {
                return;
            }
            let step = {
                let next = follow.next(&hub);
                tokio::pin!(next);
                loop {
                    tokio::select! {
                        step = &mut next => break Some(step),
                        () = presence.woken() => {
                            if presence.phase() != registered {
                                break None;
                            }
                        }
                    }
                }
            };
            match step {
                None | Some(Ok(Step::Expired)) => return,
                Some(Ok(Step::Page { page, .. })) => {
                    let events: Vec<_> = page
                        .events
                        .into_iter()
                        .map(|e| e.event)
                        .filter(|e| shared::push::worth_pushing(e, id))
                        .collect();
                    if !events.is_empty()
                        && let Some(target) = presence.target(id)
                    {
                        presence.pusher().offer(Batch { target, events }).await;
                    }
                }
                Some(Ok(Step::Lost { error, .. })) => {
                    tracing::debug!("push poll failed: {error}; retrying");
                }
                Some(Ok(Step::Refused(refusal))) => {
                    if refusal.session_gone() {
                        // Ended on the hub: nothing to push until the next
                        // renewal (or the agent's next call) registers it again.
                        tracing::debug!(session_id = %id, "the session ended on the hub");
                    } else {
                        tracing::warn!(%refusal, "the hub refused the push poll");
                    }
                    presence
                        .pause(until.saturating_duration_since(Instant::now()))
                        .await;
                    return;
                }
                Some(Err(e)) => {
                    // Not a hub that went away: tried again at the next renewal.
                    tracing::warn!("push poll failed: {e}");
                    presence
                        .pause(until.saturating_duration_since(Instant::now()))
                        .await;
                    return;
                }
            }
        }
    }

    /// The follower, started at the registration's cursor, else at the tip
    /// (`None` while the tip cannot be read).
    async fn follow(&mut self, presence: &Presence) -> Option<&mut Follow> {
        if self.follow.is_none() {
            let start = match presence.registration_cursor() {
                Some(cursor) => cursor,
                None => follow::tip(presence.hub()).await.ok()?,
            };
            // Registered: the hub has answered.
            let follow = Follow::new(GetParams::default(), Position::After(start)).answered();
            self.follow = Some(follow);
        }
        self.follow.as_mut()
    }
}
