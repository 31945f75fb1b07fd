//! Events: `publish`, `events` (one page, `--wait`, `--follow`) and `ack`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::builder::PossibleValuesParser;
use clap::{Args, ValueEnum};
use serde_json::json;
use shared::client::follow::{self, Follow, Position, Step};
use shared::level::SignalLevel;
use shared::tools::events::{
    self, AckEvents, AckParams, GetEvents, GetParams, Page, PageEvent, PublishEvent, PublishParams,
};
use shared::tools::{Answer, Invalid};
use tokio::time::Instant;

use super::split_list;
use crate::hub::Hub;
use crate::output::{self, json_line, json_pretty, line, note};
use crate::session::SessionArg;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Order {
    Asc,
    Desc,
}

#[derive(Debug, Args)]
pub(crate) struct PublishArgs {
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
pub(crate) async fn publish(hub: &Hub, args: PublishArgs) -> Result<ExitCode> {
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
pub(crate) struct EventsArgs {
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

impl From<Order> for events::Order {
    fn from(order: Order) -> Self {
        match order {
            Order::Asc => Self::Asc,
            Order::Desc => Self::Desc,
        }
    }
}

impl EventsArgs {
    /// The `get_events` read of one command (everything but the position
    /// and the wait).
    fn query(&self, session_id: Option<&str>) -> GetParams {
        let mut query = GetParams {
            session_id: session_id.map(str::to_owned),
            order: self.order.into(),
            peek: self.peek,
            event_types: self
                .include
                .as_deref()
                .filter(|i| !i.is_empty())
                .map(split_list),
            correlation_id: self.correlation_id.clone().filter(|c| !c.is_empty()),
            // One of the names: clap took no other.
            min_level: self.min_level.as_deref().and_then(SignalLevel::parse),
            ..GetParams::default()
        };
        if let Some(limit) = self.limit {
            query.limit = usize::try_from(limit).unwrap_or(usize::MAX);
        }
        match self.channel.as_slice() {
            [] => {}
            [one] => query.channel = Some(one.clone()),
            several => query.channels = Some(several.to_vec()),
        }
        query
    }

    /// Whether `event` is shown: not one of the `--exclude` types (a
    /// client-side filter, as the original).
    fn shows(&self, event: &PageEvent) -> bool {
        self.exclude
            .as_deref()
            .filter(|e| !e.is_empty())
            .is_none_or(|exclude| !split_list(exclude).contains(&event.event.event_type))
    }

    /// The events shown.
    fn keep(&self, events: Vec<PageEvent>) -> Vec<PageEvent> {
        events.into_iter().filter(|e| self.shows(e)).collect()
    }
}

/// Where a read starts: `--cursor` (parsed as the hub would), else the
/// session's saved cursor with `--resume`, else the newest (or oldest).
fn start(cursor: Option<&str>, resume: bool) -> Result<Position> {
    Ok(match (cursor, resume) {
        (Some(raw), _) => match GetParams::parse_cursor(raw).map_err(Invalid::of::<GetEvents>)? {
            Some(cursor) => Position::After(cursor),
            None => Position::Unset,
        },
        (None, true) => Position::Resume,
        (None, false) => Position::Unset,
    })
}

/// `events`: one page (optionally waiting for it), or `--follow`.
pub(crate) async fn events(hub: &Hub, args: EventsArgs) -> Result<ExitCode> {
    let session_id = args.session.resolve_id(hub).await?;
    if args.resume && session_id.is_none() {
        note("Error: --resume requires --session-id");
        return Ok(ExitCode::from(1));
    }
    let query = args.query(session_id.as_deref());
    if args.follow {
        return follow(hub, &args, query).await;
    }
    let start = start(args.cursor.as_deref(), args.resume)?;
    let limit = Duration::from_millis(args.timeout);
    let answer = match args.wait {
        None => {
            let mut params = query;
            start.apply(&mut params);
            hub.answer_within::<GetEvents>(&params, limit).await?
        }
        Some(seconds) => wait_for_events(hub, &args, query, start, seconds, limit).await?,
    };
    match answer {
        Ok(page) => print_page(&args, page),
        Err(refusal) => output::error_reply(&refusal.to_value(), args.json),
    }
}

/// Long-polls until a page has events or `seconds` have passed (in rounds
/// of at most the hub's 60 s), and returns the last page. A hub that goes
/// away meanwhile is retried until then, with one note on stderr.
async fn wait_for_events(
    hub: &Hub,
    args: &EventsArgs,
    query: GetParams,
    start: Position,
    seconds: u64,
    limit: Duration,
) -> Result<Answer<Page>> {
    let mut follow = Follow::new(query, start).allowance(limit);
    follow.set_deadline(Some(Instant::now() + Duration::from_secs(seconds)));
    let mut lost = None;
    loop {
        match follow.next(hub.client()).await? {
            Step::Page { page, recovered } => {
                if recovered {
                    note("Hub reachable again; waiting");
                }
                if follow.expired() || page.events.iter().any(|e| args.shows(e)) {
                    return Ok(Ok(page));
                }
            }
            Step::Refused(refusal) => return Ok(Err(refusal)),
            Step::Lost { error, first } => {
                if first {
                    note(&format!("{error:#}; retrying"));
                }
                lost = Some(error);
            }
            Step::Expired => {
                return Err(
                    lost.map_or_else(|| anyhow!("the hub did not answer in time"), Into::into)
                );
            }
        }
    }
}

/// Prints one page: JSON, or the event blocks (`No events` when empty) and
/// the `has_more` hint on stderr.
fn print_page(args: &EventsArgs, page: Page) -> Result<ExitCode> {
    let events = args.keep(page.events);
    if args.json {
        let out =
            json!({"events": events, "next_cursor": page.next_cursor, "has_more": page.has_more});
        line(&json_line(&out))?;
        return Ok(ExitCode::SUCCESS);
    }
    if events.is_empty() {
        line("No events")?;
    }
    for event in &events {
        output::print(&output::event_block(&event.event))?;
    }
    if page.has_more {
        if args.order == Order::Asc {
            let cursor = page.next_cursor.as_deref().unwrap_or("null");
            note(&format!(
                "More events available; re-poll with --cursor {cursor}."
            ));
        } else {
            note("More events available; use --order asc with --cursor to drain the backlog.");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How long each follow round asks the hub to hold the request open.
const FOLLOW_WAIT_SECONDS: u64 = 30;

/// `events --follow`: prints events oldest first as they arrive until
/// Ctrl-C, SIGTERM or a closed stdout (all exit 0). A hub that is down at
/// the start fails the command like any other; one that goes away later is
/// retried, with one note on stderr, and followed on from where it was.
async fn follow(hub: &Hub, args: &EventsArgs, mut query: GetParams) -> Result<ExitCode> {
    query.order = events::Order::Asc;
    // The tip, when it is where the follow starts: the hub has answered.
    let tip = match (&args.cursor, args.resume) {
        (None, false) => Some(follow::tip(hub.client()).await?),
        _ => None,
    };
    let from = match (&args.cursor, tip) {
        (Some(cursor), _) => format!("after event {cursor}"),
        (None, Some(tip)) => format!("after event {tip}"),
        (None, None) => "the session's saved cursor".to_owned(),
    };
    // Stops on Ctrl-C, SIGTERM, or once stdout is a pipe nobody reads.
    let stopped = crate::stop::on_signal_or(stdout_closed())?;
    tokio::pin!(stopped);
    note(&format!("Following events from {from} (Ctrl-C to stop)"));
    let mut follow = match tip {
        Some(tip) => Follow::new(query, Position::After(tip)).answered(),
        // A bad cursor is refused as the hub refuses it, after the note.
        None => Follow::new(query, start(args.cursor.as_deref(), args.resume)?),
    }
    .rounds_of(FOLLOW_WAIT_SECONDS);
    loop {
        let step = tokio::select! {
            () = &mut stopped => return Ok(ExitCode::SUCCESS),
            step = follow.next(hub.client()) => step?,
        };
        match step {
            Step::Page { page, recovered } => {
                if recovered {
                    note("Hub reachable again; following");
                }
                for event in args.keep(page.events) {
                    if args.json {
                        line(&json_line(&json!(event)))?;
                    } else {
                        output::print(&output::event_block(&event.event))?;
                    }
                }
            }
            Step::Lost { error, first } => {
                if first {
                    note(&format!("{error:#}; retrying"));
                }
            }
            Step::Refused(refusal) => return output::error_reply(&refusal.to_value(), args.json),
            // A follow has no deadline.
            Step::Expired => return Ok(ExitCode::SUCCESS),
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
pub(crate) struct AckArgs {
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
pub(crate) async fn ack(hub: &Hub, args: AckArgs) -> Result<ExitCode> {
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
