//! The real MCP clients against a real hub and proxy, offline: Claude Code,
//! Gemini CLI and Codex driven by scripted stand-ins of their model APIs,
//! and the official TypeScript SDK. `make test-clients` installs the pinned
//! clients into `.cache/clients` first; a client that is not installed is
//! skipped with a line saying so, except under `CI=true`, where that fails.
//!
//! # Layout
//! - [`oneshot`]: each client run once non-interactively (`claude -p`,
//!   `gemini -p`, `codex exec`) and the SDK over both transports.
//! - [`tui`]: an interactive client in its own tmux pane ([`tmux`]) and
//!   sandbox ([`sandbox`]), prepared by [`client`]; [`screen`] reads its
//!   screen.
//! - [`screens`]: each client's screens in every state, pinned as fixtures
//!   under `tests/clients/screens/`.
//! - [`inbox`]: Claude Code's inbox as its MCP servers get it, pinned to
//!   the Claude Code version.
//! - [`wake`]: direct messages waking each idle client (inbox, hook, pane),
//!   drafts kept, receipts that say what happened, latencies printed.
//! - [`setup`]: `agent-event-bus-cli setup` and the Claude Code plugin,
//!   checked by the real clients.
//! - [`standin`]: the scripted model APIs.

#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap in a test is the test failing, with its line"
)]

mod client;
mod inbox;
mod oneshot;
mod sandbox;
mod screen;
mod screens;
mod setup;
mod standin;
mod tmux;
mod tui;
mod wake;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use support::repo_root;

/// The folder `make test-clients` installs the clients into.
pub fn clients_dir() -> PathBuf {
    std::env::var_os("AGENT_EVENT_BUS_CLIENTS_DIR")
        .map_or_else(|| repo_root().join(".cache/clients"), PathBuf::from)
}

/// The path of an installed client's executable, or `None` (with a line
/// saying so) when it is not installed; under `CI=true` a missing client fails.
pub fn installed(what: &str, relative: &str) -> Option<PathBuf> {
    let path = clients_dir().join(relative);
    if path.exists() {
        return Some(path);
    }
    let line = format!(
        "skipping {what}: {} is not installed (run `make test-clients`)",
        path.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{line}");
    eprintln!("{line}");
    None
}

/// Runs a command to its end; panics (with its output) when it fails.
pub fn run(what: &str, cmd: &mut Command) -> String {
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not start: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    text
}

/// Asserts a client's `mcp list` shows the server named `prefix` connected.
pub fn assert_connected(listed: &str, prefix: &str) {
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(prefix) && l.contains("Connected")),
        "{listed}"
    );
}
