//! The user's choice about messages from other sessions: Claude Code's
//! `crossSessionInbound` setting (`accept`, `hold`, `refuse`), read from its
//! settings files the way Claude Code ranks them — managed policy, then the
//! user's settings (the first that has it wins); project and local settings
//! may only make it stricter; a value it does not know means `hold`.

use std::path::{Path, PathBuf};

/// What the recipient does with a message from another session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Inbound {
    Accept,
    Hold,
    Refuse,
}

impl Inbound {
    fn parse(value: &serde_json::Value) -> Self {
        match value.as_str() {
            Some("accept") => Self::Accept,
            Some("refuse") => Self::Refuse,
            // Claude Code holds on any value it does not know.
            _ => Self::Hold,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Hold => "hold",
            Self::Refuse => "refuse",
        }
    }
}

/// The setting in force and the file that set it (`None`: nobody did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub inbound: Inbound,
    pub from: Option<PathBuf>,
}

impl Choice {
    /// The reason a held receipt gives, when the setting blocks the inbox.
    pub fn reason(&self) -> Option<String> {
        let from = self.from.as_ref()?;
        (self.inbound != Inbound::Accept).then(|| {
            format!(
                "the recipient's Claude Code crossSessionInbound setting is \"{}\" ({}); it decides about messages from other sessions",
                self.inbound.name(),
                from.display()
            )
        })
    }
}

/// Where Claude Code keeps its settings, for a project at `cwd`.
pub struct Files {
    /// Managed policy (first in rank).
    pub managed: Vec<PathBuf>,
    /// The user's own settings.
    pub user: PathBuf,
    /// Project and local settings (may only tighten).
    pub project: Vec<PathBuf>,
}

impl Files {
    /// The usual places: `/etc/claude-code` (Linux) or `/Library/Application
    /// Support/ClaudeCode` (macOS), `$CLAUDE_CONFIG_DIR` or `~/.claude`, and
    /// the project's `.claude/`.
    pub fn standard(cwd: &Path) -> Self {
        let config = std::env::var_os("CLAUDE_CONFIG_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".claude")))
            .unwrap_or_else(|| PathBuf::from(".claude"));
        Self {
            managed: vec![
                PathBuf::from("/etc/claude-code/managed-settings.json"),
                PathBuf::from("/Library/Application Support/ClaudeCode/managed-settings.json"),
            ],
            user: config.join("settings.json"),
            project: vec![
                cwd.join(".claude/settings.json"),
                cwd.join(".claude/settings.local.json"),
            ],
        }
    }

    /// The setting in force.
    pub fn choice(&self) -> Choice {
        let mut choice = self
            .managed
            .iter()
            .chain(std::iter::once(&self.user))
            .find_map(|path| read(path).map(|inbound| (inbound, path)))
            .map_or(
                Choice {
                    inbound: Inbound::Accept,
                    from: None,
                },
                |(inbound, path)| Choice {
                    inbound,
                    from: Some(path.clone()),
                },
            );
        for path in &self.project {
            if let Some(inbound) = read(path)
                && inbound > choice.inbound
            {
                choice = Choice {
                    inbound,
                    from: Some(path.clone()),
                };
            }
        }
        choice
    }
}

/// `crossSessionInbound` in one settings file, if it sets it.
fn read(path: &Path) -> Option<Inbound> {
    let text = std::fs::read_to_string(path).ok()?;
    let settings: serde_json::Value = serde_json::from_str(&text).ok()?;
    settings.get("crossSessionInbound").map(Inbound::parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Files {
        Files {
            managed: vec![dir.join("managed.json")],
            user: dir.join("user.json"),
            project: vec![dir.join("project.json"), dir.join("local.json")],
        }
    }

    #[test]
    fn ranks_like_claude_code() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        assert_eq!(
            f.choice(),
            Choice {
                inbound: Inbound::Accept,
                from: None
            }
        );
        assert_eq!(f.choice().reason(), None);
        std::fs::write(
            dir.path().join("user.json"),
            r#"{"crossSessionInbound":"hold"}"#,
        )
        .unwrap();
        assert_eq!(f.choice().inbound, Inbound::Hold);
        assert!(f.choice().reason().unwrap().contains("\"hold\""));
        std::fs::write(
            dir.path().join("managed.json"),
            r#"{"crossSessionInbound":"accept"}"#,
        )
        .unwrap();
        assert_eq!(f.choice().inbound, Inbound::Accept, "policy ranks first");
        std::fs::write(
            dir.path().join("local.json"),
            r#"{"crossSessionInbound":"refuse"}"#,
        )
        .unwrap();
        assert_eq!(f.choice().inbound, Inbound::Refuse, "a project may tighten");
        std::fs::write(
            dir.path().join("local.json"),
            r#"{"crossSessionInbound":"accept"}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("managed.json"),
            r#"{"crossSessionInbound":"maybe"}"#,
        )
        .unwrap();
        assert_eq!(
            f.choice().inbound,
            Inbound::Hold,
            "an unknown value holds; a project cannot loosen it"
        );
    }
}
