//! Claims: advisory holds on named resources that end with their session.
//! `claim` grants, refuses (`{"error": "Claimed", "held_by": [...]}`) or
//! releases; `list_claims` lists. Grants and releases are announced as
//! `claim_granted` / `claim_released` on the resource's `repo:` channel when
//! it names one (`file:<repo>/<path>`), at `lifecycle` level.

use shared::tools::Refusal;
use shared::tools::claims::{ClaimParams, ClaimReply, ListClaims, ListClaimsParams};
use shared::wire::ClaimInfo;

use super::{Outcome, deleted_refusal};
use crate::caller::Caller;
use crate::json::Json;
use crate::keys::Presented;
use crate::sessions::{self, EndReason};
use crate::state::Bus;
use crate::store::{ClaimRecord, Durability, NewEvent, SessionRecord, StoreError, Tx};

super::handlers! {
    shared::tools::claims::Claim => claim;
    shared::tools::claims::ListClaims => rendered list;
}

/// The channel a resource's claim events go to: `repo:<repo>` for
/// `file:<repo>/<path>`.
pub fn repo_channel(resource: &str) -> Option<String> {
    let rest = resource.strip_prefix("file:")?;
    let repo = rest.split('/').next().unwrap_or_default();
    (!repo.is_empty()).then(|| format!("repo:{repo}"))
}

/// Why a session's claims ended, as `claim_released` says it.
fn ended_because(reason: EndReason) -> &'static str {
    match reason {
        EndReason::Unregistered => "session ended",
        EndReason::LeaseExpired => "lease lapsed",
        EndReason::ProcessGone => "process gone",
        EndReason::Idle => "idle timeout",
    }
}

/// Announces a grant or release on the resource's `repo:` channel, if any.
fn announce(
    tx: &mut Tx<'_>,
    event_type: &str,
    claim: &ClaimRecord,
    payload: String,
) -> Result<(), StoreError> {
    let Some(channel) = repo_channel(&claim.resource) else {
        return Ok(());
    };
    tx.append_system_event(NewEvent {
        channel,
        signal_level: Some("lifecycle".to_owned()),
        ..NewEvent::system(event_type, payload, &claim.session_id)
    })?;
    Ok(())
}

fn release_text(holder: &str, claim: &ClaimRecord, why: &str) -> String {
    format!("{holder} released {} ({why})", claim.resource)
}

/// Ends every claim `session` holds, announcing each with why; called in
/// the transaction that ends the session.
pub fn end_all(
    tx: &mut Tx<'_>,
    session: &SessionRecord,
    reason: EndReason,
) -> Result<(), StoreError> {
    for claim in tx.remove_session_claims(&session.id)? {
        let text = release_text(&session.name, &claim, ended_because(reason));
        announce(tx, "claim_released", &claim, text)?;
    }
    Ok(())
}

fn claim_info(c: &ClaimRecord) -> ClaimInfo {
    ClaimInfo {
        claim_id: c.claim_id,
        resource: c.resource.clone(),
        exclusive: c.exclusive,
        session_id: c.session_id.clone(),
        since: shared::time::format_ms(c.since),
        note: c.note.clone(),
        name: None,
        display_id: None,
    }
}

/// A claim with its holder's name and display id.
fn held_info(holder: Option<SessionRecord>, c: &ClaimRecord) -> ClaimInfo {
    let mut info = claim_info(c);
    if let Some(s) = holder {
        info.name = Some(s.name);
        info.display_id = Some(s.display_id);
    }
    info
}

/// What one `claim` transaction decided.
enum Decision {
    Reply(Result<ClaimReply, Refusal>),
    /// Refused: these claims (with their holders) stand in the way.
    Claimed(Vec<(ClaimRecord, Option<SessionRecord>)>),
}

/// `claim(resource, session_id, exclusive=true, note?, release=false)`
pub async fn claim(bus: &Bus, caller: &Caller, p: ClaimParams) -> Outcome<ClaimReply> {
    let attempt = Attempt {
        key: Presented::of(caller),
        resource: p.resource,
        session_id: p.session_id,
        exclusive: p.exclusive,
        note: p.note.filter(|n| !n.is_empty()),
        release: p.release,
    };
    // A refusal is decided on a snapshot, without a write; a grant is
    // decided again in the write.
    let mut decision = match refused(bus, attempt.clone()).await? {
        Some(holders) => Decision::Claimed(holders),
        None => decide(bus, attempt.clone()).await?,
    };
    // A holder whose local process is gone is ended (with its claims) and
    // the claim tried once more.
    if let Decision::Claimed(holders) = &decision {
        let gone: Vec<String> = holders
            .iter()
            .filter_map(|(_, s)| s.as_ref())
            .filter(|s| sessions::process_gone(&bus.hostname, s))
            .map(|s| s.id.clone())
            .collect();
        if !gone.is_empty() {
            sessions::end_sessions(bus, gone, EndReason::ProcessGone).await?;
            decision = decide(bus, attempt).await?;
        }
    }
    match decision {
        Decision::Reply(reply) => Ok(reply?),
        Decision::Claimed(holders) => Err(Refusal::Claimed {
            held_by: holders.into_iter().map(|(c, s)| held_info(s, &c)).collect(),
        }
        .into()),
    }
}

#[derive(Debug, Clone)]
struct Attempt {
    /// The session key the call presented: claiming for a keyed session,
    /// or releasing its claim, needs it.
    key: Presented,
    resource: String,
    session_id: String,
    exclusive: bool,
    note: Option<String>,
    release: bool,
}

/// The claims standing in the way of `a`, with their holders.
fn in_the_way(
    overlapping: &[ClaimRecord],
    a: &Attempt,
    holder: impl Fn(&str) -> Result<Option<SessionRecord>, StoreError>,
) -> Result<Vec<(ClaimRecord, Option<SessionRecord>)>, StoreError> {
    overlapping
        .iter()
        .filter(|c| c.conflicts_with(&a.session_id, a.exclusive))
        .map(|c| Ok((c.clone(), holder(&c.session_id)?)))
        .collect()
}

/// The holders that refuse `a` as of a snapshot, if any (a live session's
/// claim only; everything else is for the write to answer).
async fn refused(
    bus: &Bus,
    a: Attempt,
) -> Result<Option<Vec<(ClaimRecord, Option<SessionRecord>)>>, StoreError> {
    bus.store
        .read(move |snap| {
            // Only a call that may claim for a live session is told who
            // stands in its way; the write answers the rest.
            let live = snap
                .session(&a.session_id)?
                .is_some_and(|s| !s.is_deleted() && a.key.may_act_as(&s).is_ok());
            if a.release || !live {
                return Ok(None);
            }
            let holders = in_the_way(&snap.overlapping_claims(&a.resource)?, &a, |id| {
                snap.session(id)
            })?;
            Ok((!holders.is_empty()).then_some(holders))
        })
        .await
}

async fn decide(bus: &Bus, a: Attempt) -> Result<Decision, StoreError> {
    bus.store
        .write(Durability::Durable, move |tx| {
            let now = shared::time::now_ms();
            let session = match sessions::touch(tx, &a.session_id, &a.key, now)? {
                Ok(Some(session)) => session,
                Ok(None) => {
                    return Ok(Decision::Reply(Err(Refusal::SessionNotFound {
                        session_id: a.session_id,
                    })));
                }
                Err(refusal) => return Ok(Decision::Reply(Err(refusal))),
            };
            if session.is_deleted() {
                return Ok(Decision::Reply(Err(deleted_refusal(
                    &session,
                    "This session has ended, and its claims with it. Call register_session to get a live session.",
                ))));
            }
            if a.release {
                let reply = match tx.remove_claim(&session.id, &a.resource)? {
                    Some(c) => {
                        announce(tx, "claim_released", &c, release_text(&session.name, &c, "released"))?;
                        ClaimReply::Released { released: true, resource: a.resource, claim_id: Some(c.claim_id) }
                    }
                    None => ClaimReply::Released { released: false, resource: a.resource, claim_id: None },
                };
                return Ok(Decision::Reply(Ok(reply)));
            }
            let overlapping = tx.overlapping_claims(&a.resource)?;
            let holders = in_the_way(&overlapping, &a, |id| tx.session(id))?;
            if !holders.is_empty() {
                return Ok(Decision::Claimed(holders));
            }
            let held = overlapping
                .into_iter()
                .find(|c| c.session_id == session.id && c.resource == a.resource);
            let claim = match held {
                Some(c) if c.exclusive == a.exclusive && (a.note.is_none() || a.note == c.note) => {
                    return Ok(Decision::Reply(Ok(ClaimReply::Held {
                        claim: claim_info(&c),
                        already_held: true,
                    })));
                }
                Some(c) => ClaimRecord {
                    exclusive: a.exclusive,
                    note: a.note.or(c.note),
                    ..c
                },
                None => ClaimRecord {
                    claim_id: tx.next_claim_id()?,
                    resource: a.resource,
                    session_id: session.id.clone(),
                    exclusive: a.exclusive,
                    note: a.note,
                    since: now,
                },
            };
            tx.put_claim(&claim)?;
            let kind = if claim.exclusive { "exclusive" } else { "shared" };
            let mut text = format!("{} claimed {} ({kind})", session.name, claim.resource);
            if let Some(n) = &claim.note {
                text.push_str(": ");
                text.push_str(n);
            }
            announce(tx, "claim_granted", &claim, text)?;
            Ok(Decision::Reply(Ok(ClaimReply::Held {
                claim: claim_info(&claim),
                already_held: false,
            })))
        })
        .await
}

/// `list_claims(prefix?)`: claims under `prefix` and those covering it,
/// with their holders' names; the first `--max-list-items` only.
pub async fn list(bus: &Bus, _caller: &Caller, p: ListClaimsParams) -> Outcome<Json> {
    let prefix = p.prefix.unwrap_or_default();
    let max = bus.limits.max_list_items;
    let rendered = bus
        .store
        .read(move |s| {
            // One past the limit, to tell a cut list from a whole one.
            let mut out = Vec::new();
            for c in s.claims(&prefix, max.saturating_add(1))? {
                let holder = s.session(&c.session_id)?;
                out.push(held_info(holder, &c));
            }
            Ok(super::render_list::<ListClaims, _>(out, max))
        })
        .await?;
    Ok(rendered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_claims_announce_on_their_repo() {
        assert_eq!(repo_channel("file:r/src/x.rs").as_deref(), Some("repo:r"));
        assert_eq!(repo_channel("file:r/").as_deref(), Some("repo:r"));
        assert_eq!(repo_channel("task:42"), None);
        assert_eq!(repo_channel("file:/abs"), None);
    }
}
