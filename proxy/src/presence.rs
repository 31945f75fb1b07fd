//! The session's lifetime on the hub: registered lazily (≈1 s after
//! `notifications/initialized`, or at the first tool call), kept alive by a
//! background loop that renews the lease every third of its length, and
//! unregistered when the proxy exits. Between renewals the same loop runs
//! the push long-poll ([`crate::push::poll`]).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use shared::client::follow::Backoff;
use shared::tools::sessions::{Registered, UnregisterParams, UnregisterSession};
use shared::tools::{Answer, Refusal};
use shared::{ClientError, HubClient};
use tokio::sync::Notify;

use crate::Config;
use crate::identity::{self, Identity};
use crate::push::poll::{POLL_MIN, Poll};
use crate::push::{Pusher, Target};

mod agent;

/// How long one register or unregister round trip may take.
const ROUND_TRIP: Duration = Duration::from_secs(5);
/// Registration retries while the hub is unreachable: the first is quick so
/// a hub that comes up is found at once; later ones back off to a cap.
const RETRY: Backoff = Backoff {
    first: Duration::from_millis(500),
    cap: Duration::from_secs(5),
};
/// How long the loop sleeps when nothing is due (it is woken for changes).
const IDLE: Duration = Duration::from_secs(3600);

/// What the loop has to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// The proxy is closing: nothing, ever again.
    Closing,
    /// A register or renewal, now.
    Now,
    /// Nothing for this long.
    After(Duration),
}

impl Due {
    /// `Ok`: do it now. `Err`: nothing now — how long to wait, or `None`
    /// when closing.
    fn now(self) -> Result<(), Option<Duration>> {
        match self {
            Self::Closing => Err(None),
            Self::Now => Ok(()),
            Self::After(wait) => Err(Some(wait)),
        }
    }
}

/// Where the session stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Nothing has asked for a session yet; a client that connects and
    /// leaves (`claude mcp list`) never gets past this.
    Idle,
    /// A session is due; the loop retries until the hub answers.
    Wanted,
    /// Registered under this id; the loop renews it.
    Registered(String),
    /// The agent unregistered its own session: no renewals and no silent
    /// re-register until it calls `register_session` again.
    Released(String),
    /// The proxy is exiting; nothing registers any more.
    Closed,
}

struct State {
    phase: Phase,
    /// The last successful register or renewal.
    renewed_at: Option<Instant>,
    /// Consecutive failed attempts, for the retry backoff.
    failures: u32,
    /// The first registration's cursor: where push starts reading.
    registration_cursor: Option<u64>,
    /// A copy of the identity, for push (the registrar lock may be busy).
    identity: Option<Identity>,
}

/// The proxy's one session, shared by the MCP handlers and the loop.
pub struct Presence {
    hub: Arc<HubClient>,
    config: Config,
    client_pid: u32,
    /// A third of the lease.
    renew_every: Duration,
    /// Serialises every register/unregister round trip and owns the identity
    /// (resolved on first use, so `initialize` never waits for `git`).
    registrar: tokio::sync::Mutex<Option<Identity>>,
    /// The phase, readable without waiting for a round trip in flight.
    state: Mutex<State>,
    wake: Notify,
    pusher: Arc<Pusher>,
}

/// Why a registration did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error(transparent)]
    Hub(#[from] ClientError),
    #[error("the hub refused register_session: {0}")]
    Refused(String),
    #[error("the proxy is shutting down")]
    Closed,
}

impl Presence {
    pub fn new(hub: Arc<HubClient>, config: Config, client_pid: u32, pusher: Arc<Pusher>) -> Self {
        Self {
            hub,
            renew_every: identity::renew_every(config.lease_seconds),
            config,
            client_pid,
            registrar: tokio::sync::Mutex::new(None),
            state: Mutex::new(State {
                phase: Phase::Idle,
                renewed_at: None,
                failures: 0,
                registration_cursor: None,
                identity: None,
            }),
            wake: Notify::new(),
            pusher,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the state is plain data.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.state().phase.clone()
    }

    fn set_phase(&self, phase: Phase) {
        let mut state = self.state();
        if let Phase::Registered(_) = phase {
            state.renewed_at = Some(Instant::now());
            state.failures = 0;
        }
        // A session replaced by another (the hub had lost it) leaves no key
        // file behind.
        let replaced = match (&state.phase, &phase) {
            (Phase::Registered(old) | Phase::Released(old), Phase::Registered(new))
                if old != new =>
            {
                Some(old.clone())
            }
            _ => None,
        };
        state.phase = phase;
        drop(state);
        if let Some(old) = replaced {
            shared::keys::remove(&old);
        }
        self.wake.notify_one();
    }

    /// Asks for a session (the client has settled in). Idempotent.
    pub fn want(&self) {
        let mut state = self.state();
        if state.phase == Phase::Idle {
            state.phase = Phase::Wanted;
            drop(state);
            self.wake.notify_one();
        }
    }

    /// The identity, resolved on first use. Needs the registrar lock.
    async fn identity<'a>(&self, slot: &'a mut Option<Identity>) -> &'a mut Identity {
        if slot.is_none() {
            let identity = Identity::resolve(&self.config, self.client_pid).await;
            self.state().identity = Some(identity.clone());
            *slot = Some(identity);
        }
        // Filled just above.
        slot.as_mut().expect("the identity was just resolved")
    }

    /// A snapshot of the identity (resolving it if needed).
    pub async fn identity_snapshot(&self) -> Identity {
        let mut slot = self.registrar.lock().await;
        self.identity(&mut slot).await.clone()
    }

    /// The session id for a tool call. The first call registers at once
    /// (without waiting for the loop); `None` when no session can be had now.
    pub async fn session_id(&self) -> Option<String> {
        match self.phase() {
            Phase::Registered(id) | Phase::Released(id) => return Some(id),
            Phase::Closed => return None,
            Phase::Idle | Phase::Wanted => {}
        }
        let mut slot = self.registrar.lock().await;
        match self.phase() {
            Phase::Registered(id) | Phase::Released(id) => return Some(id),
            Phase::Closed => return None,
            Phase::Idle | Phase::Wanted => {}
        }
        self.want();
        let identity = self.identity(&mut slot).await.clone();
        match self.register(&identity).await {
            Ok(id) => {
                tracing::info!(session_id = %id, name = %shared::text::Shown(&identity.name), "registered");
                self.set_phase(Phase::Registered(id.clone()));
                Some(id)
            }
            Err(e) => {
                tracing::warn!("cannot register the session yet: {e}");
                None
            }
        }
    }

    /// The hub said our session is gone (a reply carried `session_deleted`
    /// or "Session not found" for it): register again with the same
    /// `client_id` and return the id to use from now on.
    pub async fn session_lost(&self, id: &str) -> Option<String> {
        let mut slot = self.registrar.lock().await;
        if self.phase() != Phase::Registered(id.to_owned()) {
            // Released by the agent, closing, or already replaced.
            return match self.phase() {
                Phase::Registered(current) => Some(current),
                _ => None,
            };
        }
        let identity = self.identity(&mut slot).await.clone();
        match self.register(&identity).await {
            Ok(new_id) => {
                tracing::info!(session_id = %new_id, "the hub had lost the session; registered again");
                self.set_phase(Phase::Registered(new_id.clone()));
                Some(new_id)
            }
            Err(e) => {
                tracing::warn!("cannot register the session again: {e}");
                None
            }
        }
    }

    /// Called once on exit: stops registering and unregisters a live session.
    /// Waits for a registration in flight, so none is left behind.
    pub async fn close(&self) {
        let _slot = self.registrar.lock().await;
        let previous = std::mem::replace(&mut self.state().phase, Phase::Closed);
        self.wake.notify_one();
        let Phase::Registered(id) = previous else {
            tracing::debug!(phase = ?previous, "nothing to unregister");
            return;
        };
        let params = UnregisterParams {
            session_id: Some(id.clone()),
            ..UnregisterParams::default()
        };
        match self
            .hub
            .call_within::<UnregisterSession>(&params, ROUND_TRIP)
            .await
        {
            Ok(Ok(_)) => {
                tracing::info!(session_id = %id, "unregistered");
                shared::keys::remove(&id);
            }
            Ok(Err(Refusal::SessionDeleted(_))) => {
                tracing::info!(session_id = %id, "the session had already ended");
                shared::keys::remove(&id);
            }
            Ok(Err(refusal)) => tracing::warn!(session_id = %id, %refusal, "unregister refused"),
            Err(e) => tracing::warn!(session_id = %id, "cannot unregister: {e}"),
        }
    }

    /// One `register_session` with this identity (it also renews the
    /// lease), keyed: the hub client sends the session's key from then on,
    /// and its key file holds it for hooks.
    async fn register(&self, identity: &Identity) -> Result<String, RegisterError> {
        if self.phase() == Phase::Closed {
            return Err(RegisterError::Closed);
        }
        // The session id once known, else the client id the hub adopts.
        let id = match self.phase() {
            Phase::Registered(id) => id,
            _ => identity.client_id.clone(),
        };
        let push = self.pusher.routes(&id).await;
        let registered = registered(
            shared::keys::register(&self.hub, &identity.register_params(&push), ROUND_TRIP).await,
        )?;
        self.note_cursor(&registered);
        Ok(registered.session_id)
    }

    /// Push starts at the first registration's cursor (later ones, which
    /// resume at the agent's saved cursor, do not move it).
    fn note_cursor(&self, registered: &Registered) {
        let cursor = registered.cursor.parse::<u64>().ok();
        let mut state = self.state();
        if state.registration_cursor.is_none() {
            state.registration_cursor = cursor;
        }
    }

    /// The background loop: registers when a session is wanted, renews it
    /// every third of the lease, re-registers after the hub comes back.
    /// Returns once the proxy is closing.
    pub async fn run(self: Arc<Self>) {
        let mut poll = Poll::default();
        loop {
            let Some(wait) = self.step().await else {
                return;
            };
            match self.phase() {
                Phase::Registered(id) if wait >= POLL_MIN => {
                    poll.listen(&self, &id, wait).await;
                }
                phase => {
                    if wait == IDLE {
                        tracing::debug!(?phase, "idle until woken");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = self.wake.notified() => {}
                    }
                }
            }
        }
    }

    /// The hub this session lives on.
    pub(crate) fn hub(&self) -> &HubClient {
        &self.hub
    }

    /// The pusher the push poll hands events to.
    pub(crate) fn pusher(&self) -> &Pusher {
        &self.pusher
    }

    /// Channels pushed besides the session's direct messages.
    pub(crate) fn push_channels(&self) -> &[String] {
        &self.config.push_channels
    }

    /// The first registration's cursor, where push starts reading.
    pub(crate) fn registration_cursor(&self) -> Option<u64> {
        self.state().registration_cursor
    }

    /// Resolves when the phase (or anything the loop waits on) changes.
    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }

    /// The session push delivers into.
    pub(crate) fn target(&self, id: &str) -> Option<Target> {
        let state = self.state();
        let identity = state.identity.as_ref()?;
        let repo = shared::channel::repo_from_cwd(&identity.cwd);
        Some(Target {
            id: id.to_owned(),
            name: identity.name.clone(),
            project: shared::notify::project(&repo, &identity.cwd),
        })
    }

    /// Sleeps for `wait`, or until woken.
    pub(crate) async fn pause(&self, wait: Duration) {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = self.wake.notified() => {}
        }
    }

    /// Does what is due now; returns how long to wait before the next step
    /// (`None`: the proxy is closing).
    async fn step(&self) -> Option<Duration> {
        if let Err(wait) = self.due().now() {
            return wait;
        }
        let mut slot = self.registrar.lock().await;
        // Re-check: the phase may have changed while waiting for the lock.
        if let Err(wait) = self.due().now() {
            return wait;
        }
        let identity = self.identity(&mut slot).await.clone();
        let renewing = matches!(self.phase(), Phase::Registered(_));
        match self.register(&identity).await {
            Ok(id) => {
                let recovered = self.state().failures > 0;
                if recovered || !renewing {
                    tracing::info!(session_id = %id, name = %shared::text::Shown(&identity.name), "registered");
                } else {
                    tracing::debug!(session_id = %id, "lease renewed");
                }
                self.set_phase(Phase::Registered(id));
                Some(self.renew_every)
            }
            Err(RegisterError::Closed) => None,
            Err(e) => {
                let failures = {
                    let mut state = self.state();
                    state.failures += 1;
                    state.failures
                };
                if failures == 1 {
                    tracing::warn!("cannot register the session: {e}; retrying");
                } else {
                    tracing::debug!(failures, "cannot register the session: {e}");
                }
                Some(RETRY.delay(failures))
            }
        }
    }

    /// What the loop has to do next, in this phase.
    fn due(&self) -> Due {
        let state = self.state();
        match &state.phase {
            Phase::Closed => Due::Closing,
            Phase::Idle | Phase::Released(_) => Due::After(IDLE),
            Phase::Wanted => Due::Now,
            Phase::Registered(_) => {
                let elapsed = state.renewed_at.map_or(Duration::MAX, |t| t.elapsed());
                self.renew_every
                    .checked_sub(elapsed)
                    .filter(|w| !w.is_zero())
                    .map_or(Due::Now, Due::After)
            }
        }
    }
}

/// A `register_session` answer as a session, or why the hub gave none.
fn registered(
    answer: Result<Answer<Registered>, ClientError>,
) -> Result<Registered, RegisterError> {
    match answer {
        Ok(Ok(registered)) => Ok(registered),
        Ok(Err(Refusal::SessionKeyed { hint, .. })) => Err(RegisterError::Refused(hint)),
        Ok(Err(refusal)) => Err(RegisterError::Refused(refusal.to_string())),
        Err(ClientError::Tool(text)) => Err(RegisterError::Refused(text)),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests;
