//! Channels are metadata on events (every reader sees every event unless it
//! narrows). Four are implicit for each session; `session:<id>` is a direct
//! message.

/// The four channels a session is implicitly part of, in the original's order.
pub fn implicit_channels(session_id: &str, repo: &str, machine: &str) -> [String; 4] {
    [
        "all".to_owned(),
        format!("session:{session_id}"),
        format!("repo:{repo}"),
        format!("machine:{machine}"),
    ]
}

/// The session a direct-message channel is addressed to.
pub fn dm_target(channel: &str) -> Option<&str> {
    channel.strip_prefix("session:").filter(|id| !id.is_empty())
}

/// A warning for a typed channel with an empty value (`repo:`), which the
/// original logs but still accepts.
pub fn format_warning(channel: &str) -> Option<String> {
    let (kind, value) = channel.split_once(':')?;
    if matches!(kind, "session" | "repo" | "machine") && value.is_empty() {
        Some(format!(
            "Invalid {kind} channel format: '{channel}'. Expected '{kind}:<value>'"
        ))
    } else {
        None
    }
}

/// Whether a webhook's channel filter takes an event: no filter takes all;
/// otherwise the channel is the filter or starts with it (`session:` takes
/// every direct message).
pub fn filter_matches(filter: Option<&str>, channel: &str) -> bool {
    filter.is_none_or(|f| channel.starts_with(f))
}

/// The repository name for a working directory: the directory before a
/// `.worktrees` component, else the last component; `unknown` when empty.
pub fn repo_from_cwd(cwd: &str) -> String {
    let cleaned: String = cwd
        .chars()
        .map(|c| {
            if matches!(c, '\n' | '\t' | '\r') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim_end_matches('/');
    let parts: Vec<&str> = trimmed.split('/').collect();
    if let Some(pos) = parts.iter().position(|p| *p == ".worktrees")
        && pos > 0
    {
        return parts[pos - 1].to_owned();
    }
    match parts.last() {
        Some(last) if !last.is_empty() => (*last).to_owned(),
        _ => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_rules() {
        assert_eq!(repo_from_cwd("/home/u/src/bus"), "bus");
        assert_eq!(repo_from_cwd("/home/u/src/bus/"), "bus");
        assert_eq!(repo_from_cwd("/home/u/bus/.worktrees/feature"), "bus");
        assert_eq!(repo_from_cwd(""), "unknown");
        assert_eq!(repo_from_cwd("/"), "unknown");
        assert_eq!(repo_from_cwd("/a/b\tc"), "b c");
    }

    #[test]
    fn filters() {
        assert!(filter_matches(None, "all"));
        assert!(filter_matches(Some("session:"), "session:abc"));
        assert!(filter_matches(Some("repo:x"), "repo:x"));
        assert!(!filter_matches(Some("repo:x"), "all"));
        assert!(filter_matches(Some(""), "all"));
    }

    #[test]
    fn warnings_and_dms() {
        assert!(format_warning("repo:").is_some());
        assert!(format_warning("repo:x").is_none());
        assert!(format_warning("custom:").is_none());
        assert!(format_warning("all").is_none());
        assert_eq!(dm_target("session:abc"), Some("abc"));
        assert_eq!(dm_target("session:"), None);
        assert_eq!(dm_target("all"), None);
    }
}
