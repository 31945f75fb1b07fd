//! The terminal wake's helpers, run from a client's hooks: `wake-state
//! busy|idle` records whether the agent is in a turn (the proxy types a
//! wake notice only into an idle agent's pane), and `panes set|clear` maps
//! a session to its tmux or zellij pane by hand, for a client whose
//! environment does not show the pane. They print nothing on stdout (a
//! hook's stdout can reach the model); what they did goes to stderr.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use shared::wake::{Mux, PaneTarget, Turn, WakeState};

use crate::hub::Hub;
use crate::output::note;
use crate::session::SessionArg;

#[derive(Debug, Clone, Copy, ValueEnum)]
#[expect(
    clippy::doc_markdown,
    reason = "the doc comments are the --help text, written for a terminal"
)]
pub(crate) enum TurnArg {
    /// A turn started (UserPromptSubmit, BeforeAgent)
    Busy,
    /// The turn ended (Stop, AfterAgent, Codex's notify)
    Idle,
}

#[derive(Debug, Args)]
pub(crate) struct WakeStateArgs {
    /// busy or idle
    #[arg(value_enum)]
    state: TurnArg,
    #[command(flatten)]
    session: SessionArg,
    #[arg(long, value_name = "DIR", env = shared::state::ENV_STATE_DIR, hide = true)]
    state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct PanesArgs {
    #[command(subcommand)]
    action: PanesAction,
}

#[derive(Debug, Subcommand)]
#[expect(
    clippy::doc_markdown,
    reason = "the doc comments are the --help text, written for a terminal"
)]
enum PanesAction {
    /// Map the session to this pane ($TMUX_PANE, else $ZELLIJ_PANE_ID) or the one given
    Set(PaneSetArgs),
    /// Remove the session's mapping (and any on this pane)
    Clear(PaneClearArgs),
}

#[derive(Debug, Args)]
struct PaneSetArgs {
    #[command(flatten)]
    session: SessionArg,
    /// The pane: a tmux pane id (%3) or a zellij pane number [default: this pane]
    #[arg(long)]
    pane: Option<String>,
    /// The tmux server socket [default: from $TMUX, else the default server]
    #[arg(long, value_name = "PATH")]
    socket: Option<String>,
    /// The zellij session the pane is in (makes --pane a zellij pane)
    #[arg(long, value_name = "NAME")]
    zellij_session: Option<String>,
    #[arg(long, value_name = "DIR", env = shared::state::ENV_STATE_DIR, hide = true)]
    state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct PaneClearArgs {
    #[command(flatten)]
    session: SessionArg,
    #[arg(long, value_name = "DIR", env = shared::state::ENV_STATE_DIR, hide = true)]
    state_dir: Option<PathBuf>,
}

/// The session a wake helper acts for, or the exit code of "none".
async fn session_id(hub: &Hub, session: &SessionArg, command: &str) -> Result<Option<String>> {
    let id = session.resolve_id(hub).await?;
    if id.is_none() {
        note(&format!(
            "Error: {command} requires --session-id (or $AGENT_EVENT_BUS_SESSION_ID, else $CLAUDE_CODE_SESSION_ID, else a run from an agent whose proxy is on the bus)"
        ));
    }
    Ok(id)
}

fn write_state(dir: &Path, id: &str, turn: Turn) -> Result<()> {
    let state = WakeState {
        turn,
        at_ms: shared::time::now_ms(),
    };
    let path = shared::wake::state_file(dir, id);
    shared::state::write_private(&path, &state.line())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `wake-state busy|idle`.
pub(crate) async fn wake_state(hub: &Hub, args: WakeStateArgs) -> Result<ExitCode> {
    let Some(id) = session_id(hub, &args.session, "wake-state").await? else {
        return Ok(ExitCode::from(1));
    };
    let dir = shared::state::dir(args.state_dir.as_deref())?;
    let turn = match args.state {
        TurnArg::Busy => Turn::Busy,
        TurnArg::Idle => Turn::Idle,
    };
    write_state(&dir, &id, turn)?;
    Ok(ExitCode::SUCCESS)
}

/// `panes set|clear`.
pub(crate) async fn panes(hub: &Hub, args: PanesArgs) -> Result<ExitCode> {
    match args.action {
        PanesAction::Set(args) => set(hub, args).await,
        PanesAction::Clear(args) => clear(hub, args).await,
    }
}

/// The pane this command runs in, from its environment.
fn this_pane() -> Option<PaneTarget> {
    PaneTarget::from_env(|name| std::env::var(name).ok())
}

async fn set(hub: &Hub, args: PaneSetArgs) -> Result<ExitCode> {
    let target = match (args.pane, args.zellij_session) {
        (Some(pane), Some(session)) => Some(PaneTarget {
            mux: Mux::Zellij,
            pane,
            socket: None,
            session: Some(session),
        }),
        (Some(pane), None) => Some(PaneTarget {
            mux: Mux::Tmux,
            pane,
            socket: args.socket.or_else(|| {
                std::env::var("TMUX")
                    .ok()
                    .and_then(|t| shared::wake::tmux_socket(&t))
            }),
            session: None,
        }),
        (None, _) => this_pane(),
    };
    let Some(target) = target else {
        // Outside a multiplexer there is nothing to map; that is no error.
        note("Not in a tmux or zellij pane (no $TMUX_PANE or $ZELLIJ_PANE_ID); nothing mapped");
        return Ok(ExitCode::SUCCESS);
    };
    if let Err(e) = target.check() {
        note(&format!("Error: {e}"));
        return Ok(ExitCode::from(1));
    }
    let Some(id) = session_id(hub, &args.session, "panes set").await? else {
        return Ok(ExitCode::from(1));
    };
    let dir = shared::state::dir(args.state_dir.as_deref())?;
    let key = shared::state::file_key(&id);
    let evicted = remove_maps(&dir, |other_key, other| {
        other_key != key && other.same_pane(&target)
    });
    let path = shared::wake::pane_file(&dir, &id);
    let text = serde_json::to_string(&target).context("a pane mapping serialises")?;
    shared::state::write_private(&path, &(text + "\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    // A lifecycle boundary: no turn is in flight.
    write_state(&dir, &id, Turn::Idle)?;
    note(&format!("Mapped session {id} to {}", target.describe()));
    for file in evicted {
        note(&format!(
            "Removed the stale mapping {} on the same pane",
            file.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

async fn clear(hub: &Hub, args: PaneClearArgs) -> Result<ExitCode> {
    let Some(id) = session_id(hub, &args.session, "panes clear").await? else {
        return Ok(ExitCode::from(1));
    };
    let dir = shared::state::dir(args.state_dir.as_deref())?;
    let here = this_pane();
    let own = shared::wake::pane_file(&dir, &id);
    let removed = remove_maps(&dir, |_, other| {
        here.as_ref().is_some_and(|h| h.same_pane(other))
    });
    let had = std::fs::remove_file(&own).is_ok();
    write_state(&dir, &id, Turn::Idle)?;
    if had || !removed.is_empty() {
        note(&format!("Cleared the pane mapping of session {id}"));
    } else {
        note(&format!("Session {id} had no pane mapping"));
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes every pane mapping in `dir` that `doomed(session file key,
/// target)` picks;
/// the files removed.
fn remove_maps(dir: &Path, doomed: impl Fn(&str, &PaneTarget) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(key) = name
            .strip_prefix("pane-")
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        // A mapping that does not parse is left for its owner to fix.
        if let Ok(target) = serde_json::from_str::<PaneTarget>(&text)
            && doomed(key, &target)
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed.push(entry.path());
        }
    }
    removed
}
