//! Terminal wake files in the state directory ([`crate::state`]), written
//! by the CLI and read by the proxy: a session's turn state
//! (`wake-<key>.state`, one line `busy|idle <unix ms>`, from the client's
//! hooks through `wake-state`) and a pane mapped by hand
//! (`pane-<key>.json`, from `panes set`). Both sides use these types, so the
//! two cannot drift. The wake switch's names live here too.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::state::file_key;

/// Which wake paths the proxy uses: `on` (all, the default), `off`, or a
/// comma-separated list of [`PATHS`].
pub const ENV_WAKE: &str = "AGENT_EVENT_BUS_WAKE";
/// The proxy's least time between two notices typed into a pane (so a
/// chatty peer cannot keep a terminal busy).
pub const PANE_COOLDOWN: std::time::Duration = std::time::Duration::from_secs(10);
/// The wake paths [`ENV_WAKE`] can name.
pub const PATHS: [&str; 2] = ["inbox", "pane"];

/// The wake paths a switch value turns on, or why the value is wrong.
pub fn parse_switch(raw: &str) -> Result<Vec<&'static str>, String> {
    let raw = raw.trim();
    match raw.to_ascii_lowercase().as_str() {
        "" | "on" | "1" | "true" | "yes" | "all" => return Ok(PATHS.to_vec()),
        "off" | "0" | "false" | "no" | "none" => return Ok(Vec::new()),
        _ => {}
    }
    let mut out = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some(path) = PATHS.iter().copied().find(|p| p.eq_ignore_ascii_case(item)) else {
            return Err(format!(
                "{ENV_WAKE} takes on, off, or a list of {} (got '{item}')",
                PATHS.join(", ")
            ));
        };
        if !out.contains(&path) {
            out.push(path);
        }
    }
    Ok(out)
}

/// Whether the agent is in a turn, as its client's hooks last said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    Busy,
    Idle,
}

impl Turn {
    pub fn name(self) -> &'static str {
        match self {
            Self::Busy => "busy",
            Self::Idle => "idle",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "busy" => Some(Self::Busy),
            "idle" => Some(Self::Idle),
            _ => None,
        }
    }
}

/// A session's turn state and when it was written (unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WakeState {
    pub turn: Turn,
    pub at_ms: i64,
}

impl WakeState {
    /// The file's one line.
    pub fn line(self) -> String {
        format!("{} {}\n", self.turn.name(), self.at_ms)
    }

    /// Reads the file's line; `None` for anything else (a torn or foreign
    /// file reads as "no hook state", so the screen decides).
    pub fn parse(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace();
        let turn = Turn::parse(words.next()?)?;
        let at_ms = words.next()?.parse().ok()?;
        words.next().is_none().then_some(Self { turn, at_ms })
    }
}

/// `wake-<key>.state`: the session's turn state.
pub fn state_file(dir: &Path, session_id: &str) -> PathBuf {
    dir.join(format!("wake-{}.state", file_key(session_id)))
}

/// `pane-<key>.json`: a pane mapped to the session by hand.
pub fn pane_file(dir: &Path, session_id: &str) -> PathBuf {
    dir.join(format!("pane-{}.json", file_key(session_id)))
}

/// Reads a session's turn state, if its hooks wrote one.
pub fn read_state(dir: &Path, session_id: &str) -> Option<WakeState> {
    WakeState::parse(&std::fs::read_to_string(state_file(dir, session_id)).ok()?)
}

/// The terminal multiplexers a pane can live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mux {
    Tmux,
    Zellij,
}

/// A terminal pane: which multiplexer, which pane, and how to reach it from
/// outside (tmux: its server socket; zellij: its session name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaneTarget {
    pub mux: Mux,
    /// tmux `%N`; zellij's pane number.
    pub pane: String,
    /// tmux: the server socket (`TMUX`'s first field); absent means the
    /// default server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    /// zellij: the session name (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

/// A value that can go into a command's argv: non-empty, printable.
fn argv_safe(value: &str) -> bool {
    !value.is_empty() && !value.chars().any(char::is_control)
}

impl PaneTarget {
    /// Checks every field can be handed to the multiplexer's command line.
    pub fn check(&self) -> Result<(), String> {
        if !argv_safe(&self.pane) {
            return Err(format!("pane is not a pane id ({:?})", self.pane));
        }
        if self.mux == Mux::Tmux && !self.pane.starts_with('%') {
            return Err(format!(
                "a tmux pane id starts with % (got {:?}; see `tmux display -p '#{{pane_id}}'`)",
                self.pane
            ));
        }
        for (what, value) in [("socket", &self.socket), ("session", &self.session)] {
            if let Some(value) = value
                && !argv_safe(value)
            {
                return Err(format!("{what} is not usable ({value:?})"));
            }
        }
        if self.mux == Mux::Zellij && self.session.is_none() {
            return Err("a zellij pane needs its session name".to_owned());
        }
        Ok(())
    }

    /// The pane this process runs in, from `lookup` (the environment):
    /// tmux's `TMUX`/`TMUX_PANE`, else zellij's
    /// `ZELLIJ_SESSION_NAME`/`ZELLIJ_PANE_ID`; `None` outside both.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let get = |name: &str| lookup(name).filter(|v| argv_safe(v));
        if let Some(pane) = get("TMUX_PANE") {
            let socket = get("TMUX").and_then(|t| tmux_socket(&t));
            return Some(Self {
                mux: Mux::Tmux,
                pane,
                socket,
                session: None,
            });
        }
        let (Some(pane), Some(session)) = (get("ZELLIJ_PANE_ID"), get("ZELLIJ_SESSION_NAME"))
        else {
            return None;
        };
        Some(Self {
            mux: Mux::Zellij,
            pane,
            socket: None,
            session: Some(session),
        })
    }

    /// Whether `other` is the same pane.
    pub fn same_pane(&self, other: &Self) -> bool {
        self.mux == other.mux
            && self.pane == other.pane
            && self.socket == other.socket
            && self.session == other.session
    }

    /// For logs: `tmux pane %3 (socket /tmp/tmux-1000/default)`.
    pub fn describe(&self) -> String {
        match (self.mux, &self.socket, &self.session) {
            (Mux::Tmux, Some(socket), _) => format!("tmux pane {} (socket {socket})", self.pane),
            (Mux::Tmux, None, _) => format!("tmux pane {}", self.pane),
            (Mux::Zellij, _, session) => format!(
                "zellij pane {} in session {}",
                self.pane,
                session.as_deref().unwrap_or("?")
            ),
        }
    }
}

/// The server socket in a `TMUX` value (`socket,server pid,session`).
pub fn tmux_socket(tmux: &str) -> Option<String> {
    let socket = tmux.split(',').next()?.trim();
    (socket.starts_with('/') && argv_safe(socket)).then(|| socket.to_owned())
}

/// Reads a session's hand-made pane mapping; `Err` says why one that is
/// there cannot be used.
pub fn read_pane(dir: &Path, session_id: &str) -> Option<Result<PaneTarget, String>> {
    let path = pane_file(dir, session_id);
    let text = std::fs::read_to_string(&path).ok()?;
    Some(
        serde_json::from_str::<PaneTarget>(&text)
            .map_err(|e| format!("{} is not a pane mapping: {e}", path.display()))
            .and_then(|t| t.check().map(|()| t)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_reads_on_off_and_lists() {
        assert_eq!(parse_switch("").unwrap(), PATHS);
        assert_eq!(parse_switch("ON").unwrap(), PATHS);
        assert!(parse_switch("off").unwrap().is_empty());
        assert_eq!(parse_switch(" pane , pane").unwrap(), ["pane"]);
        assert_eq!(parse_switch("inbox,pane").unwrap(), ["inbox", "pane"]);
        let err = parse_switch("screen").unwrap_err();
        assert!(err.contains("inbox, pane"), "{err}");
    }

    #[test]
    fn wake_state_lines_round_trip_and_junk_is_none() {
        let s = WakeState {
            turn: Turn::Busy,
            at_ms: 1_700_000_000_123,
        };
        assert_eq!(s.line(), "busy 1700000000123\n");
        assert_eq!(WakeState::parse(&s.line()), Some(s));
        assert_eq!(WakeState::parse("idle"), None);
        assert_eq!(WakeState::parse("asleep 1"), None);
        assert_eq!(WakeState::parse("idle 1 2"), None);
    }

    #[test]
    fn panes_come_from_the_environment() {
        let env = |pairs: &'static [(&str, &str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let tmux = PaneTarget::from_env(env(&[
            ("TMUX", "/tmp/tmux-1000/default,123,0"),
            ("TMUX_PANE", "%7"),
        ]))
        .unwrap();
        assert_eq!(tmux.mux, Mux::Tmux);
        assert_eq!(tmux.socket.as_deref(), Some("/tmp/tmux-1000/default"));
        assert!(tmux.check().is_ok());
        let zellij = PaneTarget::from_env(env(&[
            ("ZELLIJ_PANE_ID", "2"),
            ("ZELLIJ_SESSION_NAME", "calm-lake"),
        ]))
        .unwrap();
        assert_eq!(zellij.describe(), "zellij pane 2 in session calm-lake");
        assert!(PaneTarget::from_env(env(&[("TMUX_PANE", "")])).is_none());
        assert!(PaneTarget::from_env(env(&[("ZELLIJ_PANE_ID", "2")])).is_none());
    }

    #[test]
    fn unusable_targets_are_refused() {
        let mut t = PaneTarget {
            mux: Mux::Tmux,
            pane: "%1".into(),
            socket: None,
            session: None,
        };
        assert!(t.check().is_ok());
        t.pane = "1\0".into();
        assert!(t.check().is_err());
        t.pane = "1".into();
        assert!(t.check().unwrap_err().contains("starts with %"));
        t.mux = Mux::Zellij;
        assert!(t.check().unwrap_err().contains("session"));
        let json = r#"{"mux":"tmux","pane":"%3","socket":"/tmp/s"}"#;
        let parsed: PaneTarget = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), json);
    }
}
