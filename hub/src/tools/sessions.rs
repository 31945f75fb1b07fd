//! Sessions: register/resume, list, channels, unregister. The rules they
//! apply (leases, liveness, ending) live in [`crate::sessions`].

use serde_json::{Value, json};
use shared::channel::repo_from_cwd;

use super::args::{ArgError, Args, check_len, check_non_empty};
use super::{Outcome, Reply, deleted_reply};
use crate::sessions::{EndReason, end_session, live_and, renew_lease};
use crate::state::Bus;
use crate::store::{Durability, NewEvent, SessionRecord, Tx};

const NAME_MAX: usize = 256;
const MACHINE_MAX: usize = 256;
const CWD_MAX: usize = 4096;
const CLIENT_ID_MAX: usize = 256;
/// The longest lease a session may ask for: one day.
const LEASE_MAX: i64 = 86_400;

/// `register_session(name, machine?, cwd?, client_id?, lease_seconds?, client_pid?, push?)`
pub async fn register(bus: &Bus, arguments: Option<Value>) -> Outcome {
    let a = Args::new(
        arguments,
        &[
            "name",
            "machine",
            "cwd",
            "client_id",
            "lease_seconds",
            "client_pid",
            "push",
        ],
    )?;
    let name = a.req_str("name")?;
    check_non_empty("name", &name)?;
    check_len("name", &name, NAME_MAX)?;
    let machine = a
        .opt_str("machine")?
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| bus.hostname.clone());
    check_len("machine", &machine, MACHINE_MAX)?;
    let cwd = a
        .opt_str("cwd")?
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| bus.cwd.clone());
    check_len("cwd", &cwd, CWD_MAX)?;
    let client_id = a.opt_str("client_id")?;
    if let Some(c) = &client_id {
        check_len("client_id", c, CLIENT_ID_MAX)?;
    }
    let lease_seconds = match a.opt_i64("lease_seconds")? {
        Some(l) if !(1..=LEASE_MAX).contains(&l) => {
            return Err(ArgError(format!(
                "lease_seconds must be from 1 to {LEASE_MAX} (got {l})"
            ))
            .into());
        }
        other => other.map(|l| l as u64),
    };
    let client_pid = match a.opt_i64("client_pid")? {
        Some(p) if !(1..=i64::from(i32::MAX)).contains(&p) => {
            return Err(ArgError(format!("client_pid must be a process id (got {p})")).into());
        }
        other => other.map(|p| p as u32),
    };
    let push = match a.opt_strings("push")? {
        None => Vec::new(),
        Some(routes) => {
            if let Some(bad) = routes.iter().find(|r| shared::push::route(r).is_none()) {
                return Err(ArgError(format!(
                    "push items must be one of {} (got '{bad}')",
                    shared::push::ROUTES.join(", ")
                ))
                .into());
            }
            shared::push::merge_routes(&[], &routes)
        }
    };
    let repo = repo_from_cwd(&cwd);
    let reply = bus
        .store
        .write(Durability::Durable, move |tx| {
            let now = shared::time::now_ms();
            let lease_deadline = lease_seconds.map(|l| crate::sessions::lease_deadline(now, l));
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
                }
                renew_lease(&mut session, now);
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
    Ok(Reply::Object(reply))
}

fn register_reply(
    tx: &Tx<'_>,
    s: &SessionRecord,
    cursor: u64,
    resumed: bool,
    tip: String,
) -> Result<Value, crate::store::StoreError> {
    let active = tx.live_count()?;
    let mut reply = json!({
        "session_id": s.id,
        "display_id": s.display_id,
        "name": s.name,
        "machine": s.machine,
        "cwd": s.cwd,
        "repo": s.repo,
        "active_sessions": active,
        "cursor": cursor.to_string(),
        "resumed": resumed,
        "tip": tip,
    });
    if let Some(l) = s.lease_seconds {
        reply["lease_seconds"] = json!(l);
    }
    Ok(reply)
}

/// `list_sessions()`
pub async fn list(bus: &Bus, arguments: Option<Value>) -> Outcome {
    Args::new(arguments, &[])?;
    // Rendered where it is read: a reply proportional to the number of
    // sessions is never built on an async worker.
    let rendered = live_and(bus, |sessions| {
        let now = shared::time::now_ms();
        // Each item from its cached rendering: a list of thousands of
        // sessions is a copy, not a serialisation.
        let (mut json, mut text) = (String::from("["), String::from("["));
        for (i, s) in sessions.iter().enumerate() {
            if i > 0 {
                json.push(',');
                text.push(',');
            }
            s.write_item(now, &mut json, &mut text);
        }
        json.push(']');
        text.push(']');
        super::render_parts(&json, &text, true)
    })
    .await?;
    Ok(Reply::Rendered(rendered))
}

/// `list_channels()`: the implicit channels of live sessions with counts.
pub async fn channels(bus: &Bus, arguments: Option<Value>) -> Outcome {
    Args::new(arguments, &[])?;
    let items = live_and(bus, |sessions| {
        let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
        for s in sessions {
            let s = &s.record;
            for c in shared::channel::implicit_channels(&s.id, &s.repo, &s.machine) {
                *counts.entry(c).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .map(|(channel, subscribers)| json!({"channel": channel, "subscribers": subscribers}))
            .collect()
    })
    .await?;
    Ok(Reply::List(items))
}

/// `unregister_session(session_id?, client_id?, machine?)`
pub async fn unregister(bus: &Bus, arguments: Option<Value>) -> Outcome {
    let a = Args::new(arguments, &["session_id", "client_id", "machine"])?;
    let session_id = a.opt_str("session_id")?;
    let client_id = a.opt_str("client_id")?;
    let machine = a
        .opt_str("machine")?
        .unwrap_or_else(|| bus.hostname.clone());
    let reply = bus
        .store
        .write(Durability::Durable, move |tx| {
            let found = if let Some(id) = &session_id {
                match tx.session(id)? {
                    Some(s) => s,
                    None => return Ok(json!({"error": "Session not found", "session_id": id})),
                }
            } else if let Some(cid) = &client_id {
                match tx.session_by_client(&machine, cid)? {
                    Some(s) => s,
                    None => {
                        return Ok(json!({
                            "error": "Session not found",
                            "client_id": cid,
                            "machine": machine,
                        }));
                    }
                }
            } else {
                return Ok(json!({"error": "Must provide either session_id or client_id"}));
            };
            if found.is_deleted() {
                return Ok(deleted_reply(
                    &found,
                    "This session was already unregistered or timed out; there is nothing left to clean up. Call register_session to start a new one.",
                ));
            }
            let ended = end_session(tx, found, shared::time::now_ms(), EndReason::Unregistered)?;
            let active = tx.live_count()?;
            Ok(json!({
                "success": true,
                "session_id": ended.id,
                "display_id": ended.display_id,
                "active_sessions": active,
            }))
        })
        .await?;
    Ok(Reply::Object(reply))
}
