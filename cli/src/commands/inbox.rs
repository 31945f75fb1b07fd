//! `inbox`: the direct messages to the session that no path has delivered
//! yet (a `wait` hook, the agent's own read), framed for the model as `wait`
//! frames them, and reported delivered by `prompt` — what a
//! `UserPromptSubmit` hook adds to the prompt's context.
//!
//! It keeps its own cursor (in `--cursor-file`, else `inbox-<session>.cursor`
//! in the state directory) and its reads name no session, so it never
//! consumes the agent's cursor or keeps its session alive. Made for hooks: it prints nothing when there
//! is nothing new, and exits 0 without a word when the hub is down or the
//! command runs outside an agent session.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde_json::json;
use shared::ClientError;
use shared::tools::Tool;
use shared::tools::events::{GetEvents, GetParams, Order};
use shared::tools::receipts::Path;
use shared::wire::Event;

use super::wait::{handed_over, report_delivered, wake_text};
use crate::hub::Hub;
use crate::output::line;
use crate::session::SessionArg;

/// Direct messages read per run; more wait for the next prompt.
const PAGE: usize = 50;

#[derive(Debug, Args)]
pub(crate) struct InboxArgs {
    #[command(flatten)]
    session: SessionArg,
    /// Print Claude Code hook output for this hook event (its additionalContext) instead of plain text
    #[arg(long, value_name = "EVENT")]
    hook_event: Option<String>,
    /// Keep the inbox's cursor in FILE [default: a file in the state directory `wait` uses]
    #[arg(long, value_name = "FILE")]
    cursor_file: Option<PathBuf>,
    #[arg(long, value_name = "DIR", env = shared::state::ENV_STATE_DIR, hide = true)]
    state_dir: Option<PathBuf>,
}

/// `inbox`: prints what is new (or nothing) and exits 0; 1 only on an
/// error other than an unreachable hub.
pub(crate) async fn inbox(hub: &Hub, args: InboxArgs) -> Result<ExitCode> {
    match run(hub, &args).await {
        Err(e) if unreachable(&e) => Ok(ExitCode::SUCCESS),
        other => other.map(|()| ExitCode::SUCCESS),
    }
}

fn unreachable(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<ClientError>()
            .is_some_and(ClientError::is_unreachable)
    })
}

async fn run(hub: &Hub, args: &InboxArgs) -> Result<()> {
    let Some(found) = args.session.resolve(hub).await? else {
        return Ok(());
    };
    let id = found.id().to_owned();
    let cursor_file = match &args.cursor_file {
        Some(file) => file.clone(),
        None => shared::state::dir(args.state_dir.as_deref())?
            .join(format!("inbox-{}.cursor", shared::state::file_key(&id))),
    };
    let cursor: Option<u64> = std::fs::read_to_string(&cursor_file)
        .ok()
        .and_then(|c| c.trim().parse().ok());

    let channel = format!("session:{id}");
    let query = GetParams {
        cursor,
        limit: PAGE,
        order: Order::Asc,
        channel: Some(channel.clone()),
        ..GetParams::default()
    };
    let page = hub
        .answer::<GetEvents>(&query)
        .await?
        .map_err(|refusal| anyhow::anyhow!("{} refused: {refusal}", GetEvents::NAME))?;
    let events = page.events.into_iter().map(|e| e.event).collect();
    let news = undelivered(hub, &id, events).await?;
    let next = page
        .next_cursor
        .as_deref()
        .and_then(|c| c.parse::<u64>().ok());
    if news.is_empty() {
        save(&cursor_file, next);
        return Ok(());
    }
    let sessions = hub.sessions().await?;
    let Some(me) = sessions.iter().find(|s| s.session_id == id) else {
        // Not on the bus: nobody to deliver to.
        return Ok(());
    };
    let (text, shown) = wake_text(me, &sessions, &news, &[channel]);
    match &args.hook_event {
        Some(event) => line(&serde_json::to_string(&json!({
            "hookSpecificOutput": {"hookEventName": event, "additionalContext": text}
        }))?)?,
        None => line(&text)?,
    }
    save(&cursor_file, next);
    report_delivered(hub, &id, &news[..shown], Path::Prompt).await;
    Ok(())
}

/// The direct messages to `id` among `events` from another session the
/// agent has not been handed yet.
async fn undelivered(hub: &Hub, id: &str, events: Vec<Event>) -> Result<Vec<Event>> {
    let mut mine: Vec<Event> = events
        .into_iter()
        .filter(|e| shared::push::worth_pushing(e, id) && shared::push::is_dm_to(e, id))
        .collect();
    let handed = handed_over(hub, id, &mine).await?;
    mine.retain(|e| !handed.contains(&e.id));
    Ok(mine)
}

/// Best effort: a lost cursor only means looking at older messages again
/// (those delivered meanwhile are left out).
fn save(file: &std::path::Path, cursor: Option<u64>) {
    if let Some(cursor) = cursor {
        let _ = shared::state::write_private(file, &cursor.to_string());
    }
}
