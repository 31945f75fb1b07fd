//! Claude Code's cross-session inbox as its MCP servers see it: the two
//! variables in the proxy's environment, and one JSON line written to the
//! socket (see README, "Claude Code's inbox"). An undocumented interface,
//! so the tests that use it are pinned to the Claude Code version.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use serde_json::json;

use crate::sandbox::Sandbox;

/// The variables Claude Code hands to every stdio MCP server it starts.
pub const SOCKET_VAR: &str = "CLAUDE_CODE_MESSAGING_SOCKET";
pub const TOKEN_VAR: &str = "CLAUDE_CODE_MESSAGING_TOKEN";

/// The environment of the bus proxy running in `sandbox`, if one runs.
pub fn proxy_env(sandbox: &Sandbox) -> Option<HashMap<String, String>> {
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
pub struct Inbox {
    pub socket: PathBuf,
    pub token: String,
}

impl Inbox {
    /// The inbox named in the proxy's environment, if both variables are set.
    pub fn of_proxy(sandbox: &Sandbox) -> Option<Self> {
        let env = proxy_env(sandbox)?;
        Some(Self {
            socket: PathBuf::from(env.get(SOCKET_VAR)?),
            token: env.get(TOKEN_VAR)?.clone(),
        })
    }

    /// Writes the auth line and one user message, as another session would.
    pub fn send(&self, text: &str) {
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
