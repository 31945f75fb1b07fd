//! Reading a client's screen (`tmux capture-pane -p`, no colours): what its
//! input line holds and whether a turn is running. The markers are the
//! pinned clients' own, recorded in `tests/clients/screens/NOTES.md` with a
//! fixture per state; a new client version that moves them fails the
//! fixture tests here and the live screen tests.

use crate::client::Client;

/// What a screen shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Screen {
    /// The text on the input line; `None` when it is empty (or shows only
    /// the client's placeholder).
    pub draft: Option<String>,
    /// A turn is running (the client shows its interrupt hint).
    pub busy: bool,
}

impl Screen {
    /// Idle, with an empty input line: the only state a wake may type into.
    pub(crate) fn idle_and_empty(&self) -> bool {
        !self.busy && self.draft.is_none()
    }
}

/// Codex's placeholders for an empty input line.
const CODEX_PLACEHOLDERS: [&str; 2] = ["Ask Codex to do anything", "Ask a follow-up question"];
/// Gemini CLI's placeholder for an empty input line.
const GEMINI_PLACEHOLDER: &str = "Type your message or @path/to/file";

/// Reads `text` (one screen) as `client` draws it; `None` when no input
/// line is on it (a dialog, the client still starting).
pub(crate) fn read(client: Client, text: &str) -> Option<Screen> {
    let lines: Vec<&str> = text.lines().collect();
    match client {
        Client::ClaudeCode => claude(&lines),
        Client::Codex => codex(&lines),
        Client::Gemini => gemini(&lines),
    }
}

fn draft(text: &str, placeholders: &[&str]) -> Option<String> {
    let text = text.trim();
    (!text.is_empty() && !placeholders.contains(&text)).then(|| text.to_owned())
}

fn is_rule(line: &str) -> bool {
    line.starts_with('─')
}

/// Claude Code's spinner glyphs.
const CLAUDE_SPINNER: [char; 6] = ['·', '✢', '✳', '✶', '✻', '✽'];

/// Claude Code: the input line is `❯ …` between two rules (`────`); earlier
/// prompts also show as `❯ …`, but never between rules. While a turn runs,
/// a spinner line (`✢ Cultivating… (30s)`: a glyph, a word, an ellipsis)
/// stands above the box, and the footer under an empty input line says
/// `esc to interrupt`. A finished turn's line (`✻ Worked for 3s · done`)
/// has no ellipsis.
fn claude(lines: &[&str]) -> Option<Screen> {
    let at = (1..lines.len().saturating_sub(1))
        .rev()
        .find(|&i| lines[i].starts_with('❯') && is_rule(lines[i - 1]) && is_rule(lines[i + 1]))?;
    let spinning = lines[..at - 1].iter().any(|l| {
        let mut chars = l.chars();
        chars.next().is_some_and(|c| CLAUDE_SPINNER.contains(&c))
            && chars.next() == Some(' ')
            && l.contains('…')
    });
    let footer = lines[at + 2..].join("\n");
    Some(Screen {
        draft: draft(lines[at].trim_start_matches('❯'), &[]),
        busy: spinning || footer.contains("esc to interrupt"),
    })
}

/// Codex: the input line is the last `› …` line (earlier prompts show the
/// same way, above it); empty, it shows a placeholder. Under it, once
/// Codex has loaded, a status line names the model and the folder
/// (`stand-in default · /path`). While a turn runs, a
/// `• Working (… esc to interrupt)` line stands above it.
fn codex(lines: &[&str]) -> Option<Screen> {
    let at = lines.iter().rposition(|l| l.starts_with('›'))?;
    if !lines[at + 1..].iter().any(|l| l.contains(" · ")) {
        return None;
    }
    let busy = lines[..at]
        .iter()
        .any(|l| l.starts_with("• Working (") && l.contains("esc to interrupt"));
    Some(Screen {
        draft: draft(lines[at].trim_start_matches('›'), &CODEX_PLACEHOLDERS),
        busy,
    })
}

/// Gemini CLI: the input line is the last ` > …` line (earlier prompts show
/// the same way, above it), with the `workspace` status under it; empty, it
/// shows a placeholder. While a turn runs, a spinner line above it ends in
/// `(esc to cancel, Ns)`.
fn gemini(lines: &[&str]) -> Option<Screen> {
    let at = lines.iter().rposition(|l| l.starts_with(" > "))?;
    if !lines[at + 1..]
        .iter()
        .any(|l| l.trim_start().starts_with("workspace"))
    {
        return None;
    }
    let busy = lines[..at].iter().any(|l| l.contains("(esc to cancel, "));
    Some(Screen {
        draft: draft(
            lines[at].trim_start().trim_start_matches('>'),
            &[GEMINI_PLACEHOLDER],
        ),
        busy,
    })
}
