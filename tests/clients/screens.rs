//! Each interactive client's screen in every state a wake must tell apart —
//! idle with an empty input line, idle with a half-typed draft, busy, busy
//! with a draft, after a turn; for Claude Code also after a line came in
//! through its inbox, accepted and held — read live and checked against the
//! markers in `tests/clients/screens/NOTES.md`. `UPDATE_SCREENS=1` writes
//! each screen to `tests/clients/screens/<client>@<version>/<state>.txt`
//! (sandbox paths replaced by `<sandbox>`); the fixture test reads every
//! recorded screen back through the same reader, without the clients.

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{Hub, repo_root};

use crate::client::{Client, Connect, Prefs};
use crate::inbox::Inbox;
use crate::screen::{self, Screen};
use crate::standin::HOLD;
use crate::tui::Tui;

/// The draft every screen test types.
pub(crate) const DRAFT: &str = "half typed draft";
const LIMIT: Duration = Duration::from_secs(30);

fn folder(client: Client) -> PathBuf {
    repo_root().join("tests/clients/screens").join(format!(
        "{}@{}",
        client.name(),
        client.version()
    ))
}

/// What a recorded state must read as.
fn expected(state: &str) -> Option<Screen> {
    let draft = Some(DRAFT.to_owned());
    Some(match state {
        "idle" | "after-turn" | "inbox" | "inbox-held" => Screen {
            draft: None,
            busy: false,
        },
        "draft" => Screen { draft, busy: false },
        "busy" => Screen {
            draft: None,
            busy: true,
        },
        "busy-draft" => Screen { draft, busy: true },
        _ => return None,
    })
}

/// Checks the live screen reads as `state` and records it when asked.
pub(crate) fn shot(tui: &Tui, state: &str) -> String {
    let want = expected(state).expect("a known state");
    let text = tui.wait_state(state, LIMIT, |s| *s == want);
    if std::env::var_os("UPDATE_SCREENS").is_some() {
        let root = tui.sandbox.project.parent().expect("the sandbox root");
        let text = text.replace(&root.display().to_string(), "<sandbox>");
        let dir = folder(tui.client);
        std::fs::create_dir_all(&dir).expect("the screens folder");
        std::fs::write(dir.join(format!("{state}.txt")), text).expect("a screen fixture");
    }
    text
}

/// The states every client shares, in one session.
fn record(client: Client) -> Option<Tui> {
    let hub = Hub::start();
    let tui = Tui::start(client, &hub, Connect::Readme, &Prefs::default())?;
    shot(&tui, "idle");
    tui.turn("say hi");
    assert!(tui.shows_answer(), "{}", tui.tmux.screen());
    shot(&tui, "after-turn");
    tui.type_draft(DRAFT);
    shot(&tui, "draft");
    tui.clear_draft();
    tui.submit(&format!("{HOLD} please"));
    tui.tmux
        .wait_screen("the turn held by the stand-in", LIMIT, |_| {
            tui.standin.holding() > 0
        });
    shot(&tui, "busy");
    tui.type_draft(DRAFT);
    shot(&tui, "busy-draft");
    tui.standin.release();
    let text = tui.wait_state("the turn's end with the draft kept", LIMIT, |s| {
        !s.busy && s.draft.as_deref() == Some(DRAFT)
    });
    assert!(
        !tui.standin.mentioned_since(0, DRAFT),
        "a draft typed during a turn was submitted:\n{text}"
    );
    tui.clear_draft();
    Some(tui)
}

#[test]
fn claude_code_screens() {
    record(Client::ClaudeCode);
}

#[test]
fn claude_code_screen_with_a_held_inbox_line() {
    let hub = Hub::start();
    let Some(tui) = Tui::start(Client::ClaudeCode, &hub, Connect::Readme, &Prefs::holding()) else {
        return;
    };
    tui.session(&hub);
    let inbox = Inbox::of_proxy(&tui.sandbox).expect("the proxy was given Claude Code's inbox");
    let mark = tui.standin.count();
    inbox.send("held-screen-marker");
    let text = tui.tmux.wait_screen("the held notice", LIMIT, |s| {
        s.contains("Held peer message")
    });
    shot(&tui, "inbox-held");
    assert!(
        !tui.standin.mentioned_since(mark, "held-screen-marker"),
        "a held line reached the model:\n{text}"
    );
}

#[test]
fn codex_screens() {
    record(Client::Codex);
}

#[test]
fn gemini_screens() {
    record(Client::Gemini);
}

/// Every recorded screen reads as the state it is named after.
#[test]
fn recorded_screens_read_as_their_state() {
    let root = repo_root().join("tests/clients/screens");
    let mut seen = 0;
    for client in [Client::ClaudeCode, Client::Codex, Client::Gemini] {
        let dir = folder(client);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(state) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let want = expected(state)
                .unwrap_or_else(|| panic!("{}: not a known state", shown(&root, &path)));
            let text = std::fs::read_to_string(&path).expect("a fixture");
            assert_eq!(
                screen::read(client, &text),
                Some(want),
                "{}:\n{text}",
                shown(&root, &path)
            );
            seen += 1;
        }
    }
    assert!(seen > 0, "no recorded screens under {}", root.display());
}

fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}
