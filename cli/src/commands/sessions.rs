//! Sessions: `register`, `unregister`, `sessions`, `channels`, `whoami`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::{Map, Value, json};
use shared::config;
use shared::wire::ChannelCount;

use crate::hub::{Hub, domain_error};
use crate::output::{self, json_pretty, line, note};
use crate::session::{Found, SessionArg};

#[derive(Debug, Args)]
pub struct RegisterArgs {
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
pub async fn register(hub: &Hub, args: RegisterArgs) -> Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let name = args
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| {
            cwd.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "/".to_owned())
        });
    let mut params = json!({
        "name": name,
        "cwd": cwd.to_string_lossy(),
        "machine": config::hostname(),
    });
    if let Some(client_id) = args.client_id.filter(|c| !c.is_empty()) {
        params["client_id"] = json!(client_id);
    }
    if let Some(pid) = args.client_pid {
        params["client_pid"] = json!(pid);
    }
    let reply = hub.call("register_session", params).await?;
    line(&json_pretty(&reply))?;
    if domain_error(&reply).is_some() {
        note(&output::error_text(&reply));
        return Ok(ExitCode::from(1));
    }
    if let Some(session_id) = reply.get("session_id").and_then(Value::as_str) {
        let display = reply
            .get("display_id")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
            .unwrap_or(session_id);
        note(&format!("\nRegistered as: {display}"));
        if session_id != display {
            note(&format!("Session ID: {session_id}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct UnregisterArgs {
    /// Session ID (never taken from the environment: unregistering is explicit)
    #[arg(long)]
    session_id: Option<String>,
    /// Client ID (alternative to --session-id, looks up by machine + client_id)
    #[arg(long)]
    client_id: Option<String>,
}

/// `unregister`: the reply as indented JSON; a domain error and its hint on
/// stderr with exit 1.
pub async fn unregister(hub: &Hub, args: UnregisterArgs) -> Result<ExitCode> {
    let mut params = Map::new();
    if let Some(id) = args.session_id.filter(|s| !s.is_empty()) {
        params.insert("session_id".into(), json!(id));
    }
    if let Some(id) = args.client_id.filter(|c| !c.is_empty()) {
        params.insert("client_id".into(), json!(id));
        // The session is looked up on this machine, not the hub's.
        params.insert("machine".into(), json!(config::hostname()));
    }
    if params.is_empty() {
        note("Error: Must provide --session-id or --client-id");
        return Ok(ExitCode::from(1));
    }
    let reply = hub
        .call("unregister_session", Value::Object(params))
        .await?;
    if domain_error(&reply).is_some() {
        return output::error_reply(&reply, false);
    }
    line(&json_pretty(&reply))?;
    Ok(ExitCode::SUCCESS)
}

/// `sessions`: a block per live session, or `No active sessions`.
pub async fn list(hub: &Hub) -> Result<ExitCode> {
    let sessions = hub.sessions().await?;
    output::print(&output::sessions_text(&sessions))?;
    Ok(ExitCode::SUCCESS)
}

/// `channels`: a line per channel with its subscriber count.
pub async fn channels(hub: &Hub) -> Result<ExitCode> {
    let reply = hub.call("list_channels", json!({})).await?;
    let channels: Vec<ChannelCount> =
        serde_json::from_value(reply).context("list_channels sent an unexpected reply")?;
    output::print(&output::channels_text(&channels))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    session: SessionArg,
    /// Output JSON: session_id, registered, display_id, name, client_pid
    #[arg(long)]
    json: bool,
}

/// `whoami`: the session id other commands would act for, on stdout (exit 1
/// when there is none). Hooks use it to find their agent's proxy session.
pub async fn whoami(hub: &Hub, args: WhoamiArgs) -> Result<ExitCode> {
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
