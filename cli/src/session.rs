//! Which session a command acts for: `--session-id` (its env form is
//! `AGENT_EVENT_BUS_SESSION_ID`), else `CLAUDE_CODE_SESSION_ID`, else the
//! session on this machine whose client process is one of our ancestors —
//! so a hook run by an agent acts as that agent's proxy session and one
//! agent never becomes two sessions. The session's key comes from its key
//! file ([`shared::keys`]), which only this user can read.

use anyhow::Result;
use clap::Args;
use shared::config;
use shared::wire::SessionInfo;

use crate::hub::Hub;

/// The `--session-id` flag, shared by every command that acts for a session.
#[derive(Debug, Clone, Args)]
#[expect(
    clippy::doc_markdown,
    reason = "the doc comments are the --help text, written for a terminal"
)]
pub(crate) struct SessionArg {
    /// Your session ID (default: $AGENT_EVENT_BUS_SESSION_ID, else $CLAUDE_CODE_SESSION_ID, else this agent's session)
    #[arg(long = "session-id", env = config::ENV_SESSION_ID)]
    pub session_id: Option<String>,
}

/// A session id and how it was found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Found {
    /// From `--session-id`, `AGENT_EVENT_BUS_SESSION_ID` or `CLAUDE_CODE_SESSION_ID`.
    Given(String),
    /// The local session whose `client_pid` is this ancestor of ours.
    Ancestor(Box<SessionInfo>),
}

impl Found {
    pub(crate) fn id(&self) -> &str {
        match self {
            Self::Given(id) => id,
            Self::Ancestor(session) => &session.session_id,
        }
    }
}

impl SessionArg {
    /// The session id to act for, if any; asks the hub only when neither
    /// the flag nor the environment names one. The session's key, when this
    /// user has its key file, goes with every later call of `hub`.
    pub(crate) async fn resolve(&self, hub: &Hub) -> Result<Option<Found>> {
        let given = self
            .session_id
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .or_else(|| config::non_empty_env(config::ENV_CLAUDE_SESSION_ID));
        let found = if let Some(id) = given {
            Some(Found::Given(id))
        } else {
            let sessions = hub.sessions().await?;
            nearest_ancestor(sessions, &config::hostname(), &shared::procs::ancestors())
                .map(|s| Found::Ancestor(Box::new(s)))
        };
        match &found {
            Some(Found::Ancestor(session)) if session.keyed => {
                hub.act_as_agent(&session.session_id).await;
            }
            Some(found) => hub.act_as(found.id()),
            None => {}
        }
        Ok(found)
    }

    /// [`SessionArg::resolve`], as a plain id.
    pub(crate) async fn resolve_id(&self, hub: &Hub) -> Result<Option<String>> {
        Ok(self.resolve(hub).await?.map(|found| found.id().to_owned()))
    }
}

/// The session on `machine` whose client is the nearest of `ancestors`; among
/// several, the most recently active (the hub lists those first).
fn nearest_ancestor(
    sessions: Vec<SessionInfo>,
    machine: &str,
    ancestors: &[u32],
) -> Option<SessionInfo> {
    sessions
        .into_iter()
        .filter(|s| s.machine == machine)
        .filter_map(|s| {
            let depth = ancestors
                .iter()
                .position(|pid| Some(*pid) == s.client_pid)?;
            Some((depth, s))
        })
        // min_by_key keeps the first of equal keys: the most recent session.
        .min_by_key(|(depth, _)| *depth)
        .map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, machine: &str, pid: Option<u32>) -> SessionInfo {
        SessionInfo {
            session_id: id.into(),
            display_id: format!("{id}-dino"),
            name: id.into(),
            machine: machine.into(),
            repo: "r".into(),
            cwd: "/r".into(),
            client_id: None,
            registered_at: String::new(),
            last_heartbeat: String::new(),
            age_seconds: 0.0,
            subscribed_channels: Vec::new(),
            client_pid: pid,
            lease_seconds: None,
            push: Vec::new(),
            keyed: false,
            reach: Vec::new(),
        }
    }

    #[test]
    fn picks_the_nearest_local_ancestor() {
        let sessions = vec![
            session("remote", "other", Some(10)),
            session("far", "here", Some(30)),
            session("near-new", "here", Some(20)),
            session("near-old", "here", Some(20)),
            session("none", "here", None),
        ];
        let found = nearest_ancestor(sessions.clone(), "here", &[10, 20, 30]).unwrap();
        assert_eq!(found.session_id, "near-new");
        assert!(nearest_ancestor(sessions, "here", &[99]).is_none());
    }
}
