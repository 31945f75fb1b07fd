//! Signal levels: how much an event deserves a reader's attention.
//! Order: lifecycle < info < actionable.

use std::fmt;

/// One of the three levels; `min_level` filters on their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignalLevel {
    Lifecycle,
    Info,
    Actionable,
}

/// Event types that are bookkeeping rather than news.
const LIFECYCLE_TYPES: &[&str] = &[
    "session_registered",
    "session_unregistered",
    "ci_watching",
    "ci_rerun",
    "task_started",
    "parallel_work_started",
];

/// Event types that ask a reader to act.
const ACTIONABLE_TYPES: &[&str] = &[
    "help_needed",
    "blocker_found",
    "ci_failed",
    "error_broadcast",
];

impl SignalLevel {
    pub const NAMES: [&'static str; 3] = ["lifecycle", "info", "actionable"];

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "lifecycle" => Some(Self::Lifecycle),
            "info" => Some(Self::Info),
            "actionable" => Some(Self::Actionable),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lifecycle => "lifecycle",
            Self::Info => "info",
            Self::Actionable => "actionable",
        }
    }

    /// The effective level: a valid explicit level wins; then a direct
    /// message (`session:` channel) is actionable; then the type table;
    /// anything else is info. An unknown explicit level falls through.
    pub fn effective(explicit: Option<&str>, event_type: &str, channel: &str) -> Self {
        if let Some(level) = explicit.and_then(Self::parse) {
            return level;
        }
        if channel.starts_with("session:") {
            return Self::Actionable;
        }
        if LIFECYCLE_TYPES.contains(&event_type) {
            return Self::Lifecycle;
        }
        if ACTIONABLE_TYPES.contains(&event_type) {
            return Self::Actionable;
        }
        Self::Info
    }
}

impl fmt::Display for SignalLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::SignalLevel::{self, *};

    #[test]
    fn derivation_table() {
        let cases: &[(Option<&str>, &str, &str, SignalLevel)] = &[
            (Some("lifecycle"), "help_needed", "session:x", Lifecycle),
            (Some("bogus"), "help_needed", "all", Actionable),
            (None, "anything", "session:abc", Actionable),
            (None, "session_registered", "all", Lifecycle),
            (None, "ci_failed", "repo:x", Actionable),
            (None, "task_completed", "all", Info),
            (Some("info"), "session_registered", "all", Info),
        ];
        for (explicit, ty, ch, want) in cases {
            assert_eq!(
                SignalLevel::effective(*explicit, ty, ch),
                *want,
                "{explicit:?} {ty} {ch}"
            );
        }
        assert!(Lifecycle < Info && Info < Actionable);
    }
}
