//! Session rules: a lease's arithmetic, touching (heartbeat and lease
//! renewal), ending a session with a reason, and liveness (lapsed leases,
//! idle sessions, local processes that are gone). The tools and the sweeper
//! call these; the store only keeps what they decide.

use shared::text::Shown;
use std::collections::HashSet;
use std::sync::Arc;

use shared::tools::Refusal;

use crate::keys::Presented;
use crate::state::Bus;
use crate::store::{Durability, LiveSession, NewEvent, SessionRecord, StoreError, Tx};

/// Activity closer than this to the last heartbeat is not written again,
/// so polling stays cheap.
const TOUCH_EVERY_MS: i64 = 1000;

/// Why a session ended, for its `session_unregistered` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Unregistered,
    LeaseExpired,
    ProcessGone,
    Idle,
}

impl EndReason {
    /// What its `session_unregistered` text ends with.
    fn suffix(self) -> &'static str {
        match self {
            Self::Unregistered => "",
            Self::LeaseExpired => " (lease expired)",
            Self::ProcessGone => " (process gone)",
            Self::Idle => " (idle timeout)",
        }
    }
}

/// When a lease of `lease_seconds` taken at `now_ms` lapses (ms).
pub fn lease_deadline(now_ms: i64, lease_seconds: u64) -> i64 {
    let span_ms = i64::try_from(lease_seconds)
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    now_ms.saturating_add(span_ms)
}

/// Gives a leased session a full term from `now_ms`; a session without a
/// lease is left as it is.
pub fn renew_lease(session: &mut SessionRecord, now_ms: i64) {
    if let Some(seconds) = session.lease_seconds {
        session.lease_deadline = Some(lease_deadline(now_ms, seconds));
    }
}

/// Whether a session is due to end for `reason` at `now_ms`: a lapsed
/// lease, or no lease and no activity for `idle_ms`. Asked again in the
/// transaction that ends it, since a renewal may have raced the sweep.
pub fn due_to_end(session: &SessionRecord, reason: EndReason, now_ms: i64, idle_ms: i64) -> bool {
    !session.is_deleted()
        && match reason {
            EndReason::LeaseExpired => session.lease_deadline.is_some_and(|d| d <= now_ms),
            EndReason::Idle => {
                session.lease_seconds.is_none()
                    && session.last_heartbeat.saturating_add(idle_ms) <= now_ms
            }
            EndReason::Unregistered | EndReason::ProcessGone => true,
        }
}

/// Whether a session runs on this machine without a proxy holding a lease
/// for it: its client process is watched, and it is told of direct
/// messages on the desktop.
pub fn local_without_lease(hostname: &str, session: &SessionRecord) -> bool {
    session.lease_seconds.is_none() && session.machine == hostname
}

/// The process a session without a lease is tied to, when it is local:
/// its `client_pid`, else a numeric `client_id` (the original's rule).
fn watched_pid(hostname: &str, session: &SessionRecord) -> Option<u32> {
    if !local_without_lease(hostname, session) {
        return None;
    }
    session.client_pid.or_else(|| {
        session
            .client_id
            .as_deref()
            .and_then(|c| c.parse::<u32>().ok())
    })
}

/// Whether a local process is still running (`kill(pid, 0)`; a process we
/// may not signal counts as alive).
pub fn pid_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return true;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e != rustix::io::Errno::SRCH,
    }
}

/// Whether a live session is tied to a local process that is gone.
pub fn process_gone(hostname: &str, session: &SessionRecord) -> bool {
    !session.is_deleted() && watched_pid(hostname, session).is_some_and(|pid| !pid_alive(pid))
}

/// What [`touch`] found: the session (`None`: there is no such session),
/// or why the call may not act as it.
pub type Touched = Result<Option<SessionRecord>, Refusal>;

/// Records activity of a call acting as session `id`: refreshes the
/// heartbeat and renews a lease, unless the last heartbeat is under a
/// second old. A keyed session is touched only by a call that presented
/// its key (`key`); any other gets the refusal, and nothing changes, so
/// naming a session never keeps it alive. Returns the session (an ended
/// one untouched), or `None` when there is no such session.
pub fn touch(
    tx: &mut Tx<'_>,
    id: &str,
    key: &Presented,
    now_ms: i64,
) -> Result<Touched, StoreError> {
    let Some(mut session) = tx.session(id)? else {
        return Ok(Ok(None));
    };
    if let Err(refusal) = key.may_act_as(&session) {
        return Ok(Err(refusal));
    }
    if session.is_deleted() {
        return Ok(Ok(Some(session)));
    }
    if now_ms - session.last_heartbeat >= TOUCH_EVERY_MS {
        session.last_heartbeat = now_ms;
        renew_lease(&mut session, now_ms);
        tx.put_session(&session)?;
    }
    Ok(Ok(Some(session)))
}

/// Gives every live leased session a full term from `now_ms` (after the
/// hub did not run, its proxies get the time to renew before anything is
/// swept). Returns how many deadlines moved.
pub fn fresh_terms(tx: &mut Tx<'_>, now_ms: i64) -> Result<usize, StoreError> {
    let mut moved = 0;
    for mut session in tx.live_sessions()? {
        let (Some(seconds), Some(deadline), None) = (
            session.lease_seconds,
            session.lease_deadline,
            session.deleted_at,
        ) else {
            continue;
        };
        let fresh = lease_deadline(now_ms, seconds);
        if deadline < fresh {
            session.lease_deadline = Some(fresh);
            tx.put_session(&session)?;
            moved += 1;
        }
    }
    Ok(moved)
}

/// Ends a session: marks it deleted, publishes `session_unregistered` with
/// why, and ends its claims in the same transaction. A session its owner
/// unregistered is over, and its key goes with it: registering by its
/// `client_id` later starts afresh. One that lapsed or idled out keeps its
/// key, so only its owner can bring it back.
pub fn end_session(
    tx: &mut Tx<'_>,
    mut session: SessionRecord,
    now_ms: i64,
    reason: EndReason,
) -> Result<SessionRecord, StoreError> {
    session.deleted_at = Some(now_ms);
    if reason == EndReason::Unregistered {
        session.key_hash = None;
    }
    tx.put_session(&session)?;
    tx.append_system_event(NewEvent::system(
        "session_unregistered",
        format!(
            "{} ended on {}{}",
            session.name,
            session.machine,
            reason.suffix()
        ),
        &session.id,
    ))?;
    crate::tools::claims::end_all(tx, &session, reason)?;
    Ok(session)
}

/// Ends those of `ids` still due to end for `reason` at `now_ms`; returns
/// how many ended.
pub fn end_due(
    tx: &mut Tx<'_>,
    ids: Vec<String>,
    reason: EndReason,
    now_ms: i64,
    idle_ms: i64,
) -> Result<usize, StoreError> {
    let mut ended = 0;
    for id in ids {
        let Some(session) = tx.session(&id)? else {
            continue;
        };
        if due_to_end(&session, reason, now_ms, idle_ms) {
            tracing::info!(
                session_id = %Shown(&session.id),
                display_id = %Shown(&session.display_id),
                ?reason,
                "session ended"
            );
            end_session(tx, session, now_ms, reason)?;
            ended += 1;
        }
    }
    Ok(ended)
}

/// Ends the named sessions that are still due to, in one durable write.
pub async fn end_sessions(
    bus: &Bus,
    ids: Vec<String>,
    reason: EndReason,
) -> Result<usize, StoreError> {
    let idle_ms = bus.idle_timeout_ms;
    bus.store
        .write(Durability::Durable, move |tx| {
            end_due(tx, ids, reason, shared::time::now_ms(), idle_ms)
        })
        .await
}

/// Live sessions, most recently active first, passed through `then`. Local
/// sessions whose process is gone are left out and ended on the way (with a
/// `session_unregistered` event). The sessions come from the store's
/// in-memory mirror; the process checks and `then` run on a blocking
/// thread, so work proportional to the number of sessions never holds an
/// async worker.
pub async fn live_and<R: Send + 'static>(
    bus: &Bus,
    then: impl FnOnce(Vec<Arc<LiveSession>>) -> R + Send + 'static,
) -> Result<R, StoreError> {
    let hostname = bus.hostname.clone();
    let store = bus.store.clone();
    let (out, dead) = tokio::task::spawn_blocking(move || {
        let mut sessions = store.live_sessions();
        let dead: HashSet<String> = sessions
            .iter()
            .filter(|s| process_gone(&hostname, &s.record))
            .map(|s| s.record.id.clone())
            .collect();
        sessions.retain(|s| !dead.contains(&s.record.id));
        sessions.sort_by_key(|s| std::cmp::Reverse(s.record.last_heartbeat));
        (then(sessions), dead)
    })
    .await
    .map_err(|e| StoreError::task("listing sessions", e))?;
    if !dead.is_empty() {
        end_sessions(bus, dead.into_iter().collect(), EndReason::ProcessGone).await?;
    }
    Ok(out)
}

/// Ids of the live sessions without a lease idle for `idle_ms` at `now_ms`.
pub async fn idle_sessions(
    bus: &Bus,
    now_ms: i64,
    idle_ms: i64,
) -> Result<Vec<String>, StoreError> {
    bus.store
        .read(move |snap| {
            Ok(snap
                .live_sessions()?
                .into_iter()
                .filter(|s| due_to_end(s, EndReason::Idle, now_ms, idle_ms))
                .map(|s| s.id)
                .collect())
        })
        .await
}

#[cfg(test)]
mod tests;
