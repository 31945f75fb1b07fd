//! Events: `publish`, `events` (one page, `--wait`, `--follow`) and `ack`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::builder::PossibleValuesParser;
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use shared::client::DEFAULT_TIMEOUT;
use shared::client::follow::{self, Backoff, Follower, Position, round_seconds};
use shared::config::MAX_WAIT_SECONDS;
use shared::level::SignalLevel;
use shared::tools::events::{AckEvents, AckParams, PublishEvent, PublishParams};
use shared::wire::Event;

use super::split_list;
use crate::hub::{Hub, domain_error, reply};
use crate::output::{self, json_line, json_pretty, line, note};
use crate::session::SessionArg;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Order {
    Asc,
    Desc,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Event type
    #[arg(long = "type")]
    event_type: String,
    /// Event payload
    #[arg(long)]
    payload: String,
    /// Target channel
    #[arg(long, default_value = "all")]
    channel: String,
    #[command(flatten)]
    session: SessionArg,
    /// Optional short headline for the payload
    #[arg(long)]
    title: Option<String>,
    /// Comma-separated tags for downstream filtering
    #[arg(long)]
    tags: Option<String>,
    /// Thread ID linking a request to its response
    #[arg(long)]
    correlation_id: Option<String>,
    /// Signal level override (default: derived from event type)
    #[arg(long, value_parser = PossibleValuesParser::new(SignalLevel::NAMES))]
    signal_level: Option<String>,
}

/// `publish`: the reply as indented JSON; a warning on stderr (exit 0) when
/// the publisher's session was deleted, since the event is stored anyway.
pub async fn publish(hub: &Hub, args: PublishArgs) -> Result<ExitCode> {
    let session_id = args.session.resolve_id(hub).await?;
    let params = PublishParams {
        session_id: session_id.clone(),
        title: args.title.filter(|t| !t.is_empty()),
        tags: args.tags.filter(|t| !t.is_empty()).map(|t| split_list(&t)),
        correlation_id: args.correlation_id.filter(|c| !c.is_empty()),
        signal_level: args.signal_level,
        // An empty --channel means the default, as in the original.
        ..PublishParams::new(
            &args.event_type,
            &args.payload,
            Some(args.channel.as_str())
                .filter(|c| !c.is_empty())
                .unwrap_or("all"),
        )
    };
    let reply = match hub.answer::<PublishEvent>(&params).await? {
        Ok(reply) => reply,
        Err(refusal) => return output::refusal_pretty(&refusal),
    };
    line(&json_pretty(&json!(reply)))?;
    if let Some(deleted) = reply.deleted {
        let name = Some(deleted.display_id.as_str())
            .or(session_id.as_deref())
            .unwrap_or("anonymous");
        let at = deleted.deleted_at.as_deref().unwrap_or("an unknown time");
        let mut warning = format!("Warning: session {name} was deleted at {at}.");
        if !deleted.hint.is_empty() {
            warning.push(' ');
            warning.push_str(&deleted.hint);
        }
        note(&warning);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each bool is an independent command-line switch"
)]
#[expect(
    clippy::doc_markdown,
    reason = "the doc comments are the --help text, written for a terminal"
)]
pub struct EventsArgs {
    /// Cursor from previous call (for pagination)
    #[arg(long)]
    cursor: Option<String>,
    #[command(flatten)]
    session: SessionArg,
    /// Maximum number of events to return (1-1000; default 50)
    #[arg(long)]
    limit: Option<u32>,
    /// Comma-separated event types to include (non-consuming: does not advance the session cursor)
    #[arg(long)]
    include: Option<String>,
    /// Comma-separated event types to exclude (e.g., session_registered,session_unregistered)
    #[arg(long)]
    exclude: Option<String>,
    /// Request timeout in milliseconds
    #[arg(long, default_value_t = 10_000)]
    timeout: u64,
    /// Output as JSON with events array and next_cursor (one event per line with --follow)
    #[arg(long)]
    json: bool,
    /// Ordering: 'desc' for newest first (default), 'asc' for oldest first
    #[arg(long, value_enum, default_value = "desc")]
    order: Order,
    /// Filter to a channel (repeat for several; non-consuming: does not advance the session cursor)
    #[arg(long)]
    channel: Vec<String>,
    /// Resume from saved cursor position (requires a session id, ignored if --cursor provided)
    #[arg(long)]
    resume: bool,
    /// Read without advancing the session cursor (non-consuming; events stay unseen for the next poll)
    #[arg(long)]
    peek: bool,
    /// Filter to one correlation thread (non-consuming: does not advance the session cursor)
    #[arg(long)]
    correlation_id: Option<String>,
    /// Drop events below this signal level (server-side)
    #[arg(long, value_parser = PossibleValuesParser::new(SignalLevel::NAMES))]
    min_level: Option<String>,
    /// Wait up to SECONDS for an event when there is none yet
    #[arg(long, value_name = "SECONDS", conflicts_with = "follow")]
    wait: Option<u64>,
    /// Keep printing events as they arrive, oldest first, until interrupted
    /// (starts at the newest event, or at --cursor, or at the session's saved cursor with --resume)
    #[arg(long)]
    follow: bool,
}

impl EventsArgs {
    /// The `get_events` arguments that stay the same across the calls of one
    /// command (everything but the position and the wait).
    fn query(&self, session_id: Option<&str>) -> Value {
        let mut params = json!({"order": if self.order == Order::Asc { "asc" } else { "desc" }});
        if let Some(limit) = self.limit {
            params["limit"] = json!(limit);
        }
        if let Some(id) = session_id {
            params["session_id"] = json!(id);
        }
        match self.channel.as_slice() {
            [] => {}
            [one] => params["channel"] = json!(one),
            several => params["channels"] = json!(several),
        }
        if self.peek {
            params["peek"] = json!(true);
        }
        if let Some(include) = self.include.as_deref().filter(|i| !i.is_empty()) {
            params["event_types"] = json!(split_list(include));
        }
        if let Some(corr) = self.correlation_id.as_deref().filter(|c| !c.is_empty()) {
            params["correlation_id"] = json!(corr);
        }
        if let Some(level) = &self.min_level {
            params["min_level"] = json!(level);
        }
        params
    }

    /// Drops the `--exclude` types (a client-side filter, as the original).
    fn keep(&self, events: Vec<Value>) -> Vec<Value> {
        let Some(exclude) = self.exclude.as_deref().filter(|e| !e.is_empty()) else {
            return events;
        };
        let exclude = split_list(exclude);
        events
            .into_iter()
            .filter(|e| {
                let ty = e
                    .get("event_type")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                !exclude.iter().any(|x| x == ty)
            })
            .collect()
    }
}

/// `events`: one page (optionally waiting for it), or `--follow`.
pub async fn events(hub: &Hub, args: EventsArgs) -> Result<ExitCode> {
    let session_id = args.session.resolve_id(hub).await?;
    if args.resume && session_id.is_none() {
        note("Error: --resume requires --session-id");
        return Ok(ExitCode::from(1));
    }
    let query = args.query(session_id.as_deref());
    let start = match (&args.cursor, args.resume) {
        (Some(cursor), _) => Position::After(cursor.clone()),
        (None, true) => Position::Resume,
        (None, false) => Position::Unset,
    };
    if args.follow {
        return follow(hub, &args, query, start).await;
    }
    let limit = Duration::from_millis(args.timeout);
    let page = match args.wait {
        None => {
            hub.call_within("get_events", with_position(&query, &start), Some(limit))
                .await?
        }
        Some(seconds) => wait_for_events(hub, &args, &query, start, seconds, limit).await?,
    };
    if domain_error(&page).is_some() {
        return output::error_reply(&page, args.json);
    }
    print_page(&args, &page)
}

fn with_position(query: &Value, position: &Position) -> Value {
    let mut params = query.clone();
    position.apply(&mut params);
    params
}

/// Long-polls until a page has events or `seconds` have passed (in rounds
/// of at most the hub's 60 s), and returns the last page.
async fn wait_for_events(
    hub: &Hub,
    args: &EventsArgs,
    query: &Value,
    start: Position,
    seconds: u64,
    limit: Duration,
) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut follower = Follower::new(start, Backoff::FOLLOW);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let wait = round_seconds(left, MAX_WAIT_SECONDS);
        let round = follower.round(hub.client(), query, wait, limit).await?;
        let page = reply(&round.out)?;
        let done = domain_error(&page).is_some()
            || !args.keep(events_of(&page)).is_empty()
            || Instant::now() >= deadline;
        if done {
            return Ok(page);
        }
    }
}

fn events_of(page: &Value) -> Vec<Value> {
    page.get("events")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Prints one page: JSON, or the event blocks (`No events` when empty) and
/// the `has_more` hint on stderr.
fn print_page(args: &EventsArgs, page: &Value) -> Result<ExitCode> {
    let events = args.keep(events_of(page));
    let next_cursor = page.get("next_cursor").cloned().unwrap_or(Value::Null);
    let has_more = page
        .get("has_more")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if args.json {
        let out = json!({"events": events, "next_cursor": next_cursor, "has_more": has_more});
        line(&json_line(&out))?;
        return Ok(ExitCode::SUCCESS);
    }
    if events.is_empty() {
        line("No events")?;
    }
    for event in events {
        output::print(&output::event_block(&typed(event)?))?;
    }
    if has_more {
        if args.order == Order::Asc {
            let cursor = next_cursor
                .as_str()
                .map_or_else(|| next_cursor.to_string(), str::to_owned);
            note(&format!(
                "More events available; re-poll with --cursor {cursor}."
            ));
        } else {
            note("More events available; use --order asc with --cursor to drain the backlog.");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn typed(event: Value) -> Result<Event> {
    serde_json::from_value(event).context("get_events sent an event of an unexpected shape")
}

/// How long each follow round asks the hub to hold the request open.
const FOLLOW_WAIT_SECONDS: u64 = 30;

/// `events --follow`: prints events oldest first as they arrive until
/// Ctrl-C, SIGTERM or a closed stdout (all exit 0). A hub that is down at
/// the start fails the command like any other; one that goes away later is
/// retried, with one note on stderr.
async fn follow(
    hub: &Hub,
    args: &EventsArgs,
    mut query: Value,
    start: Position,
) -> Result<ExitCode> {
    query["order"] = json!("asc");
    // Whether the hub has answered once: only then is "unreachable" retried.
    let mut answered = start == Position::Unset;
    let start = match start {
        Position::Unset => Position::after(follow::tip(hub.client()).await?),
        other => other,
    };
    let from = match &start {
        Position::After(cursor) => format!("after event {cursor}"),
        _ => "the session's saved cursor".to_owned(),
    };
    let mut follower = Follower::new(start, Backoff::FOLLOW);
    // Stops on Ctrl-C, SIGTERM, or once stdout is a pipe nobody reads.
    let stop = crate::stop::on_signal_or(stdout_closed())?;
    tokio::pin!(stop);
    note(&format!("Following events from {from} (Ctrl-C to stop)"));
    loop {
        let round = tokio::select! {
            () = &mut stop => return Ok(ExitCode::SUCCESS),
            round = follower.round(hub.client(), &query, FOLLOW_WAIT_SECONDS, DEFAULT_TIMEOUT) => round,
        };
        let round = match round {
            Ok(round) => round,
            Err(e) if answered && e.is_unreachable() => {
                let retry = follower.failed();
                if retry.first {
                    note(&format!("{e:#}; retrying"));
                }
                tokio::select! {
                    () = &mut stop => return Ok(ExitCode::SUCCESS),
                    () = tokio::time::sleep(retry.delay) => {}
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if round.recovered {
            note("Hub reachable again; following");
        }
        answered = true;
        let page = reply(&round.out)?;
        if domain_error(&page).is_some() {
            return output::error_reply(&page, args.json);
        }
        for event in args.keep(events_of(&page)) {
            if args.json {
                line(&json_line(&event))?;
            } else {
                output::print(&output::event_block(&typed(event)?))?;
            }
        }
    }
}

/// Polls stdout once a second for a hung-up reader (`POLLERR`/`POLLHUP` on
/// a pipe whose read end is closed), so an idle follower does not outlive it.
async fn stdout_closed() {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let stdout = std::io::stdout();
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut fds = [PollFd::new(&stdout, PollFlags::empty())];
        if poll(&mut fds, Some(&zero)).is_ok()
            && fds[0].revents().intersects(PollFlags::ERR | PollFlags::HUP)
        {
            return;
        }
    }
}

#[derive(Debug, Args)]
#[expect(
    clippy::doc_markdown,
    reason = "the doc comments are the --help text, written for a terminal"
)]
pub struct AckArgs {
    /// Event id to mark as seen: the next_cursor from an --order asc peek
    #[arg(long)]
    cursor: String,
    #[command(flatten)]
    session: SessionArg,
    /// Permit moving the cursor backwards to replay (refused by default)
    #[arg(long)]
    allow_rewind: bool,
    /// Output the raw JSON result
    #[arg(long)]
    json: bool,
}

/// `ack`: `Cursor acked: <previous or start> → <cursor>`.
pub async fn ack(hub: &Hub, args: AckArgs) -> Result<ExitCode> {
    let Some(session_id) = args.session.resolve_id(hub).await? else {
        note(
            "Error: ack requires --session-id (or $AGENT_EVENT_BUS_SESSION_ID, else $CLAUDE_CODE_SESSION_ID)",
        );
        return Ok(ExitCode::from(1));
    };
    let params = AckParams {
        session_id,
        cursor: args.cursor,
        allow_rewind: args.allow_rewind,
    };
    let reply = match hub.answer::<AckEvents>(&params).await? {
        Ok(reply) => reply,
        Err(refusal) => return output::error_reply(&refusal.to_value(), args.json),
    };
    if args.json {
        line(&json_line(&json!(reply)))?;
    } else {
        let previous = reply
            .previous_cursor
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or("start");
        line(&format!("Cursor acked: {previous} → {}", reply.cursor))?;
    }
    Ok(ExitCode::SUCCESS)
}
