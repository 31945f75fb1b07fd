//! One interactive client in its own tmux pane, in its own sandbox, talking
//! to its own chatting stand-in and to the test's hub. Dropping it kills the
//! tmux server, then every process left with the sandbox's HOME.

use std::time::Duration;

use serde_json::{Value, json};
use support::{Hub, wait_until};

use crate::client::{self, Client, Connect, Prefs};
use crate::sandbox::Sandbox;
use crate::screen::{self, Screen};
use crate::standin::{CHAT_TEXT, StandIn};
use crate::tmux::Tmux;

/// How long a client may take to show its idle input line at start.
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long a turn of the stand-in's may take to show on screen.
const TURN_LIMIT: Duration = Duration::from_secs(30);

pub(crate) struct Tui {
    pub client: Client,
    // Dropped in this order: the pane's server, the stand-in, the sandbox's
    // leftovers.
    pub tmux: Tmux,
    pub standin: StandIn,
    pub sandbox: Sandbox,
}

impl Tui {
    /// Prepares `client` (see [`client::prepare`]) and starts it in tmux;
    /// returns once its idle, empty input line shows. `None` when the client
    /// is not installed.
    pub(crate) fn start(
        client: Client,
        hub: &Hub,
        connect: Connect,
        prefs: &Prefs,
    ) -> Option<Self> {
        let standin = StandIn::chat(client.api());
        let (exe, sandbox) = client::prepared(client, hub, &standin.url, connect, prefs)?;
        let args = client.tui_args(&sandbox.home);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let tmux = Tmux::start(&sandbox, &exe, &args);
        let tui = Self {
            client,
            tmux,
            standin,
            sandbox,
        };
        tui.wait_state(
            "its idle, empty input line",
            START_LIMIT,
            Screen::idle_and_empty,
        );
        // Ready once its MCP servers are up: the proxy's session is on the bus.
        tui.session(hub);
        tui.wait_state(
            "its idle, empty input line",
            START_LIMIT,
            Screen::idle_and_empty,
        );
        Some(tui)
    }

    /// Waits until the screen shows a state `check` accepts; returns the
    /// screen's text.
    pub(crate) fn wait_state(
        &self,
        what: &str,
        deadline: Duration,
        check: impl Fn(&Screen) -> bool,
    ) -> String {
        let client = self.client;
        self.tmux.wait_screen(what, deadline, |text| {
            screen::read(client, text).is_some_and(|s| check(&s))
        })
    }

    /// Types `text` into the input line and waits until it shows there.
    pub(crate) fn type_draft(&self, text: &str) {
        self.tmux.type_text(text);
        // Codex treats keys that come in a burst as a paste, and an Enter
        // inside one as a newline: the text must have landed first.
        self.wait_state("the typed text on the input line", TURN_LIMIT, |s| {
            s.draft.as_deref().is_some_and(|d| d.contains(text))
        });
    }

    /// Clears the input line (as a person deleting a draft).
    pub(crate) fn clear_draft(&self) {
        let keys: &[&str] = match self.client {
            // Ctrl+C clears a non-empty input in all three; Claude Code
            // and Gemini CLI want Ctrl+U (a second Ctrl+C would quit them).
            Client::Codex => &["C-c"],
            Client::ClaudeCode | Client::Gemini => &["C-u"],
        };
        self.tmux.press(keys);
        self.wait_state("an empty input line", TURN_LIMIT, |s| s.draft.is_none());
    }

    /// Submits `text` as a prompt; returns the stand-in's request count
    /// before it, a mark to look after.
    pub(crate) fn submit(&self, text: &str) -> usize {
        let mark = self.standin.count();
        self.type_draft(text);
        // Gemini CLI at times ignores an Enter that follows typed text
        // closely; a person presses it again while the line still holds it.
        for _ in 0..3 {
            self.tmux.press(&["Enter"]);
            let until = std::time::Instant::now() + Duration::from_secs(2);
            while std::time::Instant::now() < until {
                let (_, now) = self.look();
                if now.is_some_and(|s| s.draft.as_deref().is_none_or(|d| !d.contains(text))) {
                    return mark;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!(
            "{text:?} was never submitted; screen:\n{}",
            self.tmux.screen()
        );
    }

    /// The screen now, and what it shows.
    fn look(&self) -> (String, Option<Screen>) {
        let text = self.tmux.screen();
        let read = screen::read(self.client, &text);
        (text, read)
    }

    /// One whole turn: submits `text`, waits for the stand-in to see it and
    /// for the client to be idle with an empty input line again.
    pub(crate) fn turn(&self, text: &str) {
        let mark = self.submit(text);
        self.standin
            .wait_mention(mark, text, TURN_LIMIT)
            .unwrap_or_else(|| {
                panic!(
                    "the stand-in never saw {text:?}; screen:\n{}",
                    self.tmux.screen()
                )
            });
        self.wait_idle();
    }

    /// Waits until no turn runs and the input line is empty, and the
    /// stand-in's last answer is on screen.
    pub(crate) fn wait_idle(&self) -> String {
        self.wait_state("idle after a turn", TURN_LIMIT, |s| !s.busy)
    }

    /// The bus session of this client's proxy (the live one started in its
    /// project folder), waiting for it to register.
    pub(crate) fn session(&self, hub: &Hub) -> Value {
        let project = self.sandbox.project.display().to_string();
        wait_until(
            "the client's proxy on the bus",
            Duration::from_secs(30),
            || {
                hub.tool("list_sessions", json!({}))
                    .as_array()
                    .and_then(|l| l.iter().find(|s| s["cwd"] == json!(project)).cloned())
            },
        )
    }

    /// The session id of this client's proxy.
    pub(crate) fn session_id(&self, hub: &Hub) -> String {
        self.session(hub)["session_id"]
            .as_str()
            .expect("a session id")
            .to_owned()
    }

    /// Whether the stand-in's last answer shows on screen.
    pub(crate) fn shows_answer(&self) -> bool {
        self.tmux.screen().contains(CHAT_TEXT)
    }
}
