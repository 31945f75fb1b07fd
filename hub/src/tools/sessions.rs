//! Sessions: register/resume, list, channels, unregister. The rules they
//! apply (leases, liveness, ending) live in [`crate::sessions`].

use shared::channel::repo_from_cwd;
use shared::tools::sessions::{
    ListChannels, ListSessions, NoParams, RegisterParams, Registered, UnregisterParams,
    Unregistered,
};
use shared::tools::{Refusal, sessions};
use shared::wire::{ChannelCount, Reach};

use super::{Outcome, deleted_refusal};
use crate::caller::Caller;
use crate::json::Json;
use crate::keys::{self, Presented};
use crate::sessions::{EndReason, end_session, live_and, renew_lease};
use crate::state::Bus;
use crate::store::{Durability, NewEvent, SessionRecord, Tx};

super::handlers! {
    sessions::RegisterSession => register;
    sessions::ListSessions => rendered list;
    sessions::ListChannels => rendered channels;
    sessions::UnregisterSession => unregister;
}

/// `register_session(name, machine?, cwd?, client_id?, lease_seconds?, client_pid?, push?, key?)`
///
/// Re-registering by `client_id` acts as that session: a keyed one needs
/// its key. `key: true` keys a session that has no key yet (a new key in
/// the reply), and gives a keyed one's key back to the call that presented it.
pub async fn register(bus: &Bus, caller: &Caller, p: RegisterParams) -> Outcome<Registered> {
    let presented = Presented::of(caller);
    let want_key = p.key.unwrap_or(false);
    let given_key = caller.session_key.clone();
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
    let lease_seconds = p
        .lease_seconds
        .map(|l| u64::try_from(l).unwrap_or_default());
    let pid = p.client_pid.map(|p| u32::try_from(p).unwrap_or_default());
    // The routes the client has now; absent: the last list stands.
    let push = p.push.map(|routes| shared::push::ordered_routes(&routes));
    let repo = repo_from_cwd(&cwd);
    let reply = bus
        .store
        .write(Durability::Durable, move |tx| {
            let now = shared::time::now_ms();
            let lease_deadline = lease_seconds.map(|l| crate::sessions::lease_deadline(now, l));
            if let Some(cid) = &client_id
                && let Some(mut session) = tx.session_by_client(&machine, cid)?
            {
                if let Err(refusal) = presented.may_act_as(&session) {
                    return Ok(Err(refusal));
                }
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
                }
                renew_lease(&mut session, now);
                if pid.is_some() {
                    session.client_pid = pid;
                }
                // A proxy reports what it has now on every renewal (a pane
                // that stops being verified drops out); a revived session
                // starts afresh.
                match push {
                    Some(routes) => session.push = routes,
                    None if revived => session.push.clear(),
                    None => {}
                }
                // Keyed already: the key was presented (checked above).
                let key = match (&session.key_hash, want_key) {
                    (_, false) => None,
                    (Some(_), true) => given_key,
                    (None, true) => {
                        let (key, stored) = keys::mint();
                        session.key_hash = Some(stored);
                        Some(key)
                    }
                };
                tx.put_session(&session)?;
                let cursor = match session.last_cursor {
                    Some(c) => c,
                    None => tx.tip()?,
                };
                let tip = format!(
                    "You are '{}' ({}). Resuming from last seen cursor.",
                    session.name, session.display_id
                );
                return register_reply(tx, &session, cursor, true, tip, key).map(Ok);
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
            let (key, key_hash) = match want_key.then(keys::mint) {
                Some((key, stored)) => (Some(key), Some(stored)),
                None => (None, None),
            };
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
                client_pid: pid,
                lease_seconds,
                lease_deadline,
                push: push.unwrap_or_default(),
                key_hash,
            };
            tx.put_session(&session)?;
            let tip = format!(
                "You are '{}' ({}). Use cursor to start polling: get_events(cursor=cursor).",
                session.name, session.display_id
            );
            register_reply(tx, &session, event.id, false, tip, key).map(Ok)
        })
        .await?;
    Ok(reply?)
}

fn register_reply(
    tx: &Tx<'_>,
    s: &SessionRecord,
    cursor: u64,
    resumed: bool,
    tip: String,
    session_key: Option<String>,
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
        session_key,
    })
}

/// `list_sessions()`: the most recently active first, the first
/// `--max-list-items` only.
pub async fn list(bus: &Bus, _caller: &Caller, _: NoParams) -> Outcome<Json> {
    let max = bus.limits.max_list_items;
    // Rendered where it is read: a reply proportional to the number of
    // sessions is never built on an async worker.
    let hooked = bus.store.hooked();
    let rendered = live_and(bus, move |mut sessions| {
        let shape = super::list_shape::<ListSessions>(sessions.len(), max);
        sessions.truncate(max);
        let now = shared::time::now_ms();
        // Each item from its cached rendering: a list of thousands of
        // sessions is a copy, not a serialisation.
        let size = sessions.iter().fold(4, |n, s| {
            let (json, text) = s.item_len();
            n + json + text + 2
        });
        super::render_shaped(size, &shape, |out, as_text| {
            out.push('[');
            for (i, s) in sessions.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let hook = !hooked.is_empty() && hooked.contains(&s.record.id);
                s.write_item(now, hook, out, as_text);
            }
            out.push(']');
        })
    })
    .await?;
    Ok(rendered)
}

/// `list_channels()`: the implicit channels of live sessions with counts,
/// in name order, the first `--max-list-items` only.
pub async fn channels(bus: &Bus, _caller: &Caller, _: NoParams) -> Outcome<Json> {
    let max = bus.limits.max_list_items;
    let rendered = live_and(bus, move |sessions| {
        let mut counts = std::collections::BTreeMap::<String, u64>::new();
        for s in sessions {
            let s = &s.record;
            for c in shared::channel::implicit_channels(&s.id, &s.repo, &s.machine) {
                *counts.entry(c).or_default() += 1;
            }
        }
        let items: Vec<ChannelCount> = counts
            .into_iter()
            .take(max.saturating_add(1))
            .map(|(channel, subscribers)| ChannelCount {
                channel,
                subscribers,
            })
            .collect();
        super::render_list::<ListChannels, _>(items, max)
    })
    .await?;
    Ok(rendered)
}

/// `unregister_session(session_id?, client_id?, machine?)`: of a keyed
/// session, only with its key.
pub async fn unregister(bus: &Bus, caller: &Caller, p: UnregisterParams) -> Outcome<Unregistered> {
    let presented = Presented::of(caller);
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
            if let Err(refusal) = presented.may_act_as(&found) {
                return Ok(Err(refusal));
            }
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

/// How the recipient of a direct message to session `to` (its live record,
/// if any) can be reached now, and the same in words for the sender.
pub fn reach_of(bus: &Bus, to: &str, recipient: Option<&SessionRecord>) -> (Vec<Reach>, String) {
    let Some(s) = recipient else {
        return (
            Vec::new(),
            format!(
                "No live session {to}: the message is stored, and a session with that id sees it when it reads."
            ),
        );
    };
    let reach = crate::store::reach(&s.push, bus.store.is_hooked(&s.id));
    let note = reach_note(&format!("Session \"{}\" ({})", s.name, s.id), &reach);
    (reach, note)
}

/// The sentence for [`reach_of`].
fn reach_note(who: &str, reach: &[Reach]) -> String {
    if reach.is_empty() {
        return format!("{who} cannot be woken now: it will see the message at its next read.");
    }
    let list = reach
        .iter()
        .map(Reach::label)
        .collect::<Vec<_>>()
        .join(", ");
    if reach.iter().any(|r| r.confirmed) {
        format!("{who} can be woken now by {list}; message_status shows when it is delivered.")
    } else {
        format!(
            "{who} may be reached by {list}, none confirmed to reach its model: if not, it will see the message at its next read."
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(routes: &[&str], hook: bool) -> Vec<Reach> {
        let routes: Vec<String> = routes.iter().map(|r| (*r).to_owned()).collect();
        crate::store::reach(&routes, hook)
    }

    #[test]
    fn the_reach_sentence_says_how_the_message_will_be_seen() {
        let who = "Session \"b\" (b1)";
        assert_eq!(
            reach_note(who, &[]),
            "Session \"b\" (b1) cannot be woken now: it will see the message at its next read."
        );
        assert_eq!(
            reach_note(who, &reach(&["channel"], true)),
            "Session \"b\" (b1) can be woken now by channel (unconfirmed), hook; message_status shows when it is delivered."
        );
        let unsure = reach_note(who, &reach(&["inbox", "notify"], false));
        assert!(
            unsure.contains("by inbox (unconfirmed), notify (unconfirmed), none confirmed")
                && unsure.ends_with("it will see the message at its next read."),
            "{unsure}"
        );
    }
}
