//! Claude Code's cross-session inbox as its MCP servers see it: the two
//! variables in the proxy's environment, and one JSON line written to the
//! socket (see README, "Claude Code's inbox"). An undocumented interface,
//! so the tests that use it are pinned to the Claude Code version.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use std::time::Duration;

use serde_json::json;
use support::Hub;

use crate::client::{Client, Connect, Prefs};
use crate::run;
use crate::sandbox::Sandbox;
use crate::screens::shot;
use crate::tui::Tui;

/// The variables Claude Code hands to every stdio MCP server it starts.
pub(crate) const SOCKET_VAR: &str = "CLAUDE_CODE_MESSAGING_SOCKET";
pub(crate) const TOKEN_VAR: &str = "CLAUDE_CODE_MESSAGING_TOKEN";

/// The environment of the bus proxy running in `sandbox`, if one runs.
pub(crate) fn proxy_env(sandbox: &Sandbox) -> Option<HashMap<String, String>> {
    let (pid, _) = sandbox
        .processes()
        .into_iter()
        .find(|(_, cmd)| cmd.contains("agent-event-bus-proxy"))?;
    let raw = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter_map(|kv| {
                let kv = String::from_utf8_lossy(kv);
                let (k, v) = kv.split_once('=')?;
                Some((k.to_owned(), v.to_owned()))
            })
            .collect(),
    )
}

/// A Claude Code session's inbox.
pub(crate) struct Inbox {
    pub socket: PathBuf,
    pub token: String,
}

impl Inbox {
    /// The inbox named in the proxy's environment, if both variables are set.
    pub(crate) fn of_proxy(sandbox: &Sandbox) -> Option<Self> {
        let env = proxy_env(sandbox)?;
        Some(Self {
            socket: PathBuf::from(env.get(SOCKET_VAR)?),
            token: env.get(TOKEN_VAR)?.clone(),
        })
    }

    /// Writes the auth line and one user message, as another session would.
    pub(crate) fn send(&self, text: &str) {
        let mut stream = UnixStream::connect(&self.socket)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.socket.display()));
        let lines = format!(
            "{}\n{}\n",
            json!({"type": "auth", "token": self.token}),
            json!({"type": "user", "message": {"role": "user", "content": text}}),
        );
        stream
            .write_all(lines.as_bytes())
            .expect("write to the inbox");
    }
}

/// Pinned to Claude Code 2.1.332: the proxy is handed the inbox, and one
/// line written to it becomes a turn of the idle session (its text in the
/// model's next request). A Claude Code that changes either fails here.
#[test]
fn claude_code_inbox_is_the_pinned_one() {
    let hub = Hub::start();
    let Some(tui) = Tui::start(Client::ClaudeCode, &hub, Connect::Readme, &Prefs::default()) else {
        return;
    };
    let exe = Client::ClaudeCode.executable().expect("installed");
    let version = run(
        "claude --version",
        tui.sandbox.command(&exe).arg("--version"),
    );
    assert!(
        version.starts_with(&format!("{} ", Client::ClaudeCode.version())),
        "the inbox was checked with Claude Code {}; this is {version}",
        Client::ClaudeCode.version()
    );
    tui.session(&hub);
    let env = proxy_env(&tui.sandbox).expect("the proxy runs");
    let inbox = Inbox::of_proxy(&tui.sandbox).unwrap_or_else(|| {
        panic!("Claude Code no longer hands its MCP servers {SOCKET_VAR} and {TOKEN_VAR}: {env:?}")
    });
    let mark = tui.standin.count();
    inbox.send("inbox-pinned-marker");
    tui.standin
        .wait_mention(mark, "inbox-pinned-marker", Duration::from_secs(15))
        .expect("a line written to the inbox reached the model");
    let text = shot(&tui, "inbox");
    assert!(
        text.contains("Another Claude session sent a message"),
        "{text}"
    );
}
