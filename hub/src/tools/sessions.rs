//! Sessions: register/resume, list, channels, unregister, and the liveness
//! rules (leases, local PIDs, idle timeout) the sweeper and lists apply.

use std::collections::HashSet;

use shared::channel::repo_from_cwd;
use shared::tools::Refusal;
use shared::tools::sessions::{
    NoParams, RegisterParams, Registered, UnregisterParams, Unregistered,
};
use shared::wire::ChannelCount;

use super::{EndReason, Outcome, deleted_refusal, end_session};
use crate::state::Bus;
use crate::store::{Durability, NewEvent, SessionRecord, Tx};

/// `register_session(name, machine?, cwd?, client_id?, lease_seconds?, client_pid?, push?)`
pub async fn register(bus: &Bus, p: RegisterParams) -> Outcome<Registered> {
    let name = p.name;
    let machine = p
        .machine
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| bus.hostname.clone());
    let cwd = p
        .cwd
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| bus.cwd.clone());
    let client_id = p.client_id;
    // In range: checked with the params.
    let lease_seconds = p.lease_seconds.map(|l| l as u64);
    let client_pid = p.client_pid.map(|p| p as u32);
    let push = shared::push::merge_routes(&[], &p.push.unwrap_or_default());
    let repo = repo_from_cwd(&cwd);
    let reply = bus
        .store
        .write(Durability::Durable, move |tx| {
            let now = shared::time::now_ms();
            let lease_deadline = lease_seconds.map(|l| now + (l as i64) * 1000);
            if let Some(cid) = &client_id
                && let Some(mut session) = tx.session_by_client(&machine, cid)?
            {
                // A session that had ended (lease lapsed during a hub outage,
                // say) is announced again, so peers who saw it leave see it
                // come back; a live one resumes silently.
                let revived = session.is_deleted();
                if revived {
                    tx.append_system_event(NewEvent::system(
                        "session_registered",
                        format!("{name} started on {machine} in {cwd} (resumed)"),
                        &session.id,
                    ))?;
                }
                session.name = name;
                session.cwd = cwd;
                session.repo = repo;
                session.last_heartbeat = now;
                session.deleted_at = None;
                if lease_seconds.is_some() {
                    session.lease_seconds = lease_seconds;
                    session.lease_deadline = lease_deadline;
                } else if let Some(l) = session.lease_seconds {
                    session.lease_deadline = Some(now + (l as i64) * 1000);
                }
                if client_pid.is_some() {
                    session.client_pid = client_pid;
                }
                // Routes add up while the session lives (its proxy and its
                // hooks each report theirs); a revived session starts afresh.
                let known = if revived { &[][..] } else { &session.push[..] };
                session.push = shared::push::merge_routes(known, &push);
                tx.put_session(&session)?;
                let cursor = match session.last_cursor {
                    Some(c) => c,
                    None => tx.tip()?,
                };
                let tip = format!(
                    "You are '{}' ({}). Resuming from last seen cursor.",
                    session.name, session.display_id
                );
                return register_reply(tx, &session, cursor, true, tip);
            }
            let id = match &client_id {
                Some(cid) if !cid.is_empty() && tx.session(cid)?.is_none() => cid.clone(),
                _ => uuid::Uuid::new_v4().to_string(),
            };
            let display_id = crate::names::pick(|name| tx.display_id_live(name))?;
            let event = tx.append_system_event(NewEvent::system(
                "session_registered",
                format!("{name} started on {machine} in {cwd}"),
                &id,
            ))?;
            let session = SessionRecord {
                id,
                display_id,
                name,
                machine,
                cwd,
                repo,
                registered_at: now,
                last_heartbeat: now,
                client_id,
                last_cursor: Some(event.id),
                deleted_at: None,
                client_pid,
                lease_seconds,
                lease_deadline,
                push,
            };
            tx.put_session(&session)?;
            let tip = format!(
                "You are '{}' ({}). Use cursor to start polling: get_events(cursor=cursor).",
                session.name, session.display_id
            );
            register_reply(tx, &session, event.id, false, tip)
        })
        .await?;
    Ok(reply)
}

fn register_reply(
    tx: &Tx<'_>,
    s: &SessionRecord,
    cursor: u64,
    resumed: bool,
    tip: String,
) -> Result<Registered, crate::store::StoreError> {
    Ok(Registered {
        session_id: s.id.clone(),
        display_id: s.display_id.clone(),
        name: s.name.clone(),
        machine: s.machine.clone(),
        cwd: s.cwd.clone(),
        repo: s.repo.clone(),
        active_sessions: tx.live_count()?,
        cursor: cursor.to_string(),
        resumed,
        tip,
        lease_seconds: s.lease_seconds,
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

/// The process a session without a lease is tied to, when it is local:
/// its `client_pid`, else a numeric `client_id` (the original's rule).
fn watched_pid(hostname: &str, s: &SessionRecord) -> Option<u32> {
    if s.lease_seconds.is_some() || s.machine != hostname {
        return None;
    }
    s.client_pid
        .or_else(|| s.client_id.as_deref().and_then(|c| c.parse::<u32>().ok()))
}

/// Whether a live session is tied to a local process that is gone.
pub fn process_gone(bus: &Bus, s: &SessionRecord) -> bool {
    !s.is_deleted() && watched_pid(&bus.hostname, s).is_some_and(|pid| !pid_alive(pid))
}

/// Live sessions, most recently active first. Local sessions whose process
/// is gone are ended on the way (with a `session_unregistered` event).
pub async fn live_sessions(bus: &Bus) -> Result<Vec<SessionRecord>, crate::store::StoreError> {
    live_and(bus, |sessions| sessions).await
}

/// Live sessions as [`live_sessions`] finds them, passed through `then`:
/// the read, the process checks and `then` run on a blocking thread, so
/// work proportional to the number of sessions never holds an async worker.
async fn live_and<R: Send + 'static>(
    bus: &Bus,
    then: impl FnOnce(Vec<SessionRecord>) -> R + Send + 'static,
) -> Result<R, crate::store::StoreError> {
    let hostname = bus.hostname.clone();
    let (out, dead) = bus
        .store
        .read(move |snap| {
            let mut sessions = snap.live_sessions()?;
            sessions.retain(|s| !s.is_deleted());
            let dead: HashSet<String> = sessions
                .iter()
                .filter(|s| watched_pid(&hostname, s).is_some_and(|pid| !pid_alive(pid)))
                .map(|s| s.id.clone())
                .collect();
            sessions.retain(|s| !dead.contains(&s.id));
            sessions.sort_by_key(|s| std::cmp::Reverse(s.last_heartbeat));
            Ok((then(sessions), dead))
        })
        .await?;
    if !dead.is_empty() {
        end_sessions(bus, dead.into_iter().collect(), EndReason::ProcessGone).await?;
    }
    Ok(out)
}

/// Ends the named sessions that are still live, in one durable write.
pub async fn end_sessions(
    bus: &Bus,
    ids: Vec<String>,
    reason: EndReason,
) -> Result<usize, crate::store::StoreError> {
    let idle_ms = bus.idle_timeout_ms;
    bus.store
        .write(Durability::Durable, move |tx| {
            let now = shared::time::now_ms();
            let mut ended = 0;
            for id in ids {
                let Some(s) = tx.session(&id)? else { continue };
                // Re-check inside the transaction: a renewal may have raced us.
                let still_due = !s.is_deleted()
                    && match reason {
                        EndReason::LeaseExpired => s.lease_deadline.is_some_and(|d| d <= now),
                        EndReason::Idle => s.last_heartbeat + idle_ms <= now,
                        _ => true,
                    };
                if still_due {
                    tracing::info!(session_id = %s.id, display_id = %s.display_id, ?reason, "session ended");
                    end_session(tx, s, now, reason)?;
                    ended += 1;
                }
            }
            Ok(ended)
        })
        .await
}

/// `list_sessions()`
pub async fn list(bus: &Bus, _: NoParams) -> Outcome<Box<serde_json::value::RawValue>> {
    // Rendered where it is read: a reply proportional to the number of
    // sessions is never built on an async worker.
    let rendered = live_and(bus, |sessions| {
        let now = shared::time::now_ms();
        let items: Vec<_> = sessions.iter().map(|s| s.to_wire(now)).collect();
        super::render(&items, true)
    })
    .await?;
    Ok(rendered)
}

/// `list_channels()`: the implicit channels of live sessions with counts.
pub async fn channels(bus: &Bus, _: NoParams) -> Outcome<Vec<ChannelCount>> {
    let items = live_and(bus, |sessions| {
        let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
        for s in sessions {
            for c in shared::channel::implicit_channels(&s.id, &s.repo, &s.machine) {
                *counts.entry(c).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .map(|(channel, subscribers)| ChannelCount {
                channel,
                subscribers,
            })
            .collect()
    })
    .await?;
    Ok(items)
}

/// `unregister_session(session_id?, client_id?, machine?)`
pub async fn unregister(bus: &Bus, p: UnregisterParams) -> Outcome<Unregistered> {
    let machine = p.machine.unwrap_or_else(|| bus.hostname.clone());
    let (session_id, client_id) = (p.session_id, p.client_id);
    let reply = bus
        .store
        .write(Durability::Durable, move |tx| {
            let found = if let Some(id) = &session_id {
                match tx.session(id)? {
                    Some(s) => s,
                    None => {
                        return Ok(Err(Refusal::SessionNotFound {
                            session_id: id.clone(),
                        }));
                    }
                }
            } else if let Some(cid) = &client_id {
                match tx.session_by_client(&machine, cid)? {
                    Some(s) => s,
                    None => {
                        return Ok(Err(Refusal::ClientNotFound {
                            client_id: cid.clone(),
                            machine,
                        }));
                    }
                }
            } else {
                return Ok(Err(Refusal::NoSessionGiven));
            };
            if found.is_deleted() {
                return Ok(Err(deleted_refusal(
                    &found,
                    "This session was already unregistered or timed out; there is nothing left to clean up. Call register_session to start a new one.",
                )));
            }
            let ended = end_session(tx, found, shared::time::now_ms(), EndReason::Unregistered)?;
            Ok(Ok(Unregistered {
                success: true,
                session_id: ended.id,
                display_id: ended.display_id,
                active_sessions: tx.live_count()?,
            }))
        })
        .await?;
    Ok(reply?)
}

/// Records activity: refreshes the heartbeat and extends a lease. Skipped
/// when the last one is under a second old, so polling stays cheap.
pub fn touch(
    tx: &mut Tx<'_>,
    id: &str,
    now: i64,
) -> Result<Option<SessionRecord>, crate::store::StoreError> {
    let Some(mut s) = tx.session(id)? else {
        return Ok(None);
    };
    if s.is_deleted() {
        return Ok(Some(s));
    }
    if now - s.last_heartbeat >= 1000 {
        s.last_heartbeat = now;
        if let Some(l) = s.lease_seconds {
            s.lease_deadline = Some(now + (l as i64) * 1000);
        }
        tx.put_session(&s)?;
    }
    Ok(Some(s))
}
