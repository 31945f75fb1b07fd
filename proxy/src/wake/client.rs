//! Which program is our client, from its `initialize` `clientInfo`, and
//! whether its version is one the wake paths were measured against. An
//! unverified version is tried but not relied on ("try, don't rely").

/// The clients the wake paths know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    ClaudeCode,
    Codex,
    Gemini,
    Other,
}

/// The client versions the wake paths were measured against (the ones
/// `make test-clients` pins).
const VERIFIED: [(Client, &str); 3] = [
    (Client::ClaudeCode, "2.1.332"),
    (Client::Codex, "0.171.0"),
    (Client::Gemini, "0.61.0"),
];

/// Our client, as it introduced itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    pub kind: Client,
    pub name: String,
    pub version: String,
}

impl ClientInfo {
    /// From `clientInfo.name`/`version` (`claude-code`, `codex-mcp-client`,
    /// `gemini-cli-mcp-client`).
    pub fn new(name: &str, version: &str) -> Self {
        let lower = name.to_ascii_lowercase();
        let kind = if shared::push::is_claude_code(name) {
            Client::ClaudeCode
        } else if lower.starts_with("codex") {
            Client::Codex
        } else if lower.starts_with("gemini-cli") {
            Client::Gemini
        } else {
            Client::Other
        };
        Self {
            kind,
            name: name.to_owned(),
            version: version.to_owned(),
        }
    }

    /// Whether this client's version was measured.
    pub fn verified(&self) -> bool {
        VERIFIED
            .iter()
            .any(|(kind, version)| *kind == self.kind && *version == self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_known_by_name_and_versions_checked() {
        let claude = ClientInfo::new("claude-code", "2.1.332");
        assert_eq!(claude.kind, Client::ClaudeCode);
        assert!(claude.verified());
        assert!(!ClientInfo::new("claude-code", "2.2.0").verified());
        assert_eq!(
            ClientInfo::new("codex-mcp-client", "0.171.0").kind,
            Client::Codex
        );
        assert_eq!(
            ClientInfo::new("gemini-cli-mcp-client", "0.61.0").kind,
            Client::Gemini
        );
        assert_eq!(ClientInfo::new("e2e", "0").kind, Client::Other);
    }
}
