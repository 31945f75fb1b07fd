//! Sessions: `register`, `unregister`, `sessions`, `channels`, `whoami`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::{Value, json};
use shared::config;
use shared::tools::sessions::{
    ListChannels, NoParams, RegisterParams, UnregisterParams, UnregisterSession,
};

use crate::hub::Hub;
use crate::output::{self, json_pretty, line, note};
use crate::session::{Found, SessionArg};

#[derive(Debug, Args)]
pub(crate) struct RegisterArgs {
    /// Session name (default: directory name)
    #[arg(long, env = config::ENV_SESSION_NAME)]
    name: Option<String>,
    /// Client identifier for deduplication (e.g., CC session ID or PID)
    #[arg(long, env = config::ENV_CLIENT_ID)]
    client_id: Option<String>,
    /// PID of the client process this session belongs to (lets hooks it runs find the session)
    #[arg(long)]
    client_pid: Option<u32>,
    /// Output JSON (stdout is always the JSON reply; accepted for scripts that pass it)
    #[arg(long)]
    json: bool,
}

/// `register`: the reply as indented JSON on stdout, `Registered as: X` on
/// stderr (and `Session ID: <id>` when that differs).
pub(crate) async fn register(hub: &Hub, args: RegisterArgs) -> Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let name = args
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| {
            cwd.file_name()
                .map_or_else(|| "/".to_owned(), |n| n.to_string_lossy().into_owned())
        });
    let params = RegisterParams {
        name,
        cwd: Some(cwd.to_string_lossy().into_owned()),
        machine: Some(config::hostname()),
        client_id: args.client_id.filter(|c| !c.is_empty()),
        client_pid: args.client_pid.map(i64::from),
        ..RegisterParams::default()
    };
    // Keyed, like the proxy's: the key goes to the session's key file,
    // where the hooks run for this session find it, and never to stdout.
    let mut reply =
        match shared::keys::register(hub.client(), &params, shared::client::DEFAULT_TIMEOUT).await?
        {
            Ok(reply) => reply,
            Err(refusal) => return output::refusal_pretty(&refusal),
        };
    reply.session_key = None;
    line(&json_pretty(&json!(reply)))?;
    let session_id = &reply.session_id;
    let display = Some(&reply.display_id)
        .filter(|d| !d.is_empty())
        .unwrap_or(session_id);
    note(&format!("\nRegistered as: {display}"));
    if session_id != display {
        note(&format!("Session ID: {session_id}"));
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
#[expect(
    clippy::doc_markdown,
    reason = "the doc comments are the --help text, written for a terminal"
)]
pub(crate) struct UnregisterArgs {
    /// Session ID (never taken from the environment: unregistering is explicit)
    #[arg(long)]
    session_id: Option<String>,
    /// Client ID (alternative to --session-id, looks up by machine + client_id)
    #[arg(long)]
    client_id: Option<String>,
}

/// `unregister`: the reply as indented JSON; a domain error and its hint on
/// stderr with exit 1.
pub(crate) async fn unregister(hub: &Hub, args: UnregisterArgs) -> Result<ExitCode> {
    let client_id = args.client_id.filter(|c| !c.is_empty());
    let params = UnregisterParams {
        session_id: args.session_id.filter(|s| !s.is_empty()),
        // The session is looked up on this machine, not the hub's.
        machine: client_id.as_ref().map(|_| config::hostname()),
        client_id,
    };
    if params.session_id.is_none() && params.client_id.is_none() {
        note("Error: Must provide --session-id or --client-id");
        return Ok(ExitCode::from(1));
    }
    if let Some(id) = &params.session_id {
        hub.act_as(id);
    }
    // By client id, the session's key file is found once the hub names it.
    let answer = shared::keys::with_saved_key::<UnregisterSession>(
        hub.client(),
        &params,
        shared::client::DEFAULT_TIMEOUT,
    )
    .await?;
    match answer {
        Ok(reply) => {
            shared::keys::remove(&reply.session_id);
            line(&json_pretty(&json!(reply)))?;
        }
        Err(refusal) => return output::error_reply(&refusal.to_value(), false),
    }
    Ok(ExitCode::SUCCESS)
}

/// `sessions`: a block per live session, or `No active sessions`.
pub(crate) async fn list(hub: &Hub) -> Result<ExitCode> {
    let sessions = hub.sessions().await?;
    output::print(&output::sessions_text(&sessions))?;
    Ok(ExitCode::SUCCESS)
}

/// `channels`: a line per channel with its subscriber count.
pub(crate) async fn channels(hub: &Hub) -> Result<ExitCode> {
    let channels = hub.list::<ListChannels, _>(&NoParams {}).await?;
    output::print(&output::channels_text(&channels))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
#[expect(
    clippy::doc_markdown,
    reason = "the doc comments are the --help text, written for a terminal"
)]
pub(crate) struct WhoamiArgs {
    #[command(flatten)]
    session: SessionArg,
    /// Output JSON: session_id, registered, display_id, name, client_pid
    #[arg(long)]
    json: bool,
}

/// `whoami`: the session id other commands would act for, on stdout (exit 1
/// when there is none). Hooks use it to find their agent's proxy session.
pub(crate) async fn whoami(hub: &Hub, args: WhoamiArgs) -> Result<ExitCode> {
    let Some(found) = args.session.resolve(hub).await? else {
        note(
            "Error: no session: pass --session-id, set AGENT_EVENT_BUS_SESSION_ID, \
             or run this under an agent whose proxy is registered on this machine",
        );
        return Ok(ExitCode::from(1));
    };
    let session = match &found {
        Found::Ancestor(session) => Some((**session).clone()),
        Found::Given(id) => hub
            .sessions()
            .await?
            .into_iter()
            .find(|s| &s.session_id == id),
    };
    if args.json {
        let reply = json!({
            "session_id": found.id(),
            "registered": session.is_some(),
            "display_id": session.as_ref().map(|s| &s.display_id),
            "name": session.as_ref().map(|s| &s.name),
            "client_pid": match &found {
                Found::Ancestor(s) => json!(s.client_pid),
                Found::Given(_) => Value::Null,
            },
        });
        line(&output::json_line(&reply))?;
    } else {
        line(found.id())?;
        match (&found, &session) {
            (Found::Ancestor(s), _) => note(&format!(
                "{} ({}), the session of ancestor process {}",
                s.display_id,
                s.name,
                s.client_pid.unwrap_or_default()
            )),
            (Found::Given(_), Some(s)) => note(&format!("{} ({})", s.display_id, s.name)),
            (Found::Given(_), None) => note("not a live session on the hub"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
