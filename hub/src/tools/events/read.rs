//! A `get_events` call as read: its switches, and the rule of which reads
//! consume the session's cursor.

use std::time::Duration;

use shared::level::SignalLevel;
use shared::tools::events::GetParams;

use crate::caller::Reader;
use crate::keys::Presented;

/// A parsed `get_events` call.
#[derive(Debug, Clone)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "the call's own independent switches, as the contract names them"
)]
pub(super) struct Read {
    pub(super) cursor: Option<u64>,
    pub(super) limit: usize,
    pub(super) session_id: Option<String>,
    pub(super) descending: bool,
    pub(super) channels: Vec<String>,
    pub(super) resume: bool,
    pub(super) event_types: Vec<String>,
    pub(super) peek: bool,
    pub(super) correlation_id: Option<String>,
    pub(super) min_level: Option<SignalLevel>,
    pub(super) wait: Duration,
    /// Add receipts to the reader's own direct messages.
    pub(super) receipts: bool,
    /// The session key the call presented: a read naming a keyed session
    /// needs it.
    pub(super) key: Presented,
}

impl Read {
    pub(super) fn new(p: GetParams, key: Presented) -> Self {
        let descending = p.descending();
        let mut channels = p.channels.unwrap_or_default();
        if let Some(c) = p.channel {
            channels.push(c);
        }
        channels.retain(|c| !c.is_empty());
        Self {
            cursor: p.cursor,
            limit: p.limit,
            descending,
            min_level: p.min_level,
            wait: Duration::from_secs(p.wait_seconds),
            session_id: p.session_id.filter(|s| s != "anonymous" && !s.is_empty()),
            channels,
            resume: p.resume,
            event_types: p.event_types.unwrap_or_default(),
            peek: p.peek,
            correlation_id: p.correlation_id.filter(|c| !c.is_empty()),
            receipts: p.receipts.unwrap_or(false),
            key,
        }
    }

    /// Filters that narrow the read; a narrowed read never consumes.
    pub(super) fn narrowed(&self) -> bool {
        !self.channels.is_empty() || !self.event_types.is_empty() || self.correlation_id.is_some()
    }

    /// Whether the read moves the named session's saved cursor: it names a
    /// session, is neither a peek nor narrowed, and comes from the agent
    /// itself — or from a helper (a hook, the CLI) that asked `resume=true`,
    /// as a watcher hook that keeps the agent's cursor for it does. A push
    /// poll and a `wait` never consume.
    pub(super) fn consumes(&self, reader: Reader) -> bool {
        if self.session_id.is_none() || self.peek || self.narrowed() {
            return false;
        }
        match reader {
            Reader::Agent => true,
            Reader::Helper => self.resume,
            Reader::Push | Reader::Wait => false,
        }
    }

    /// The sessions whose end a long-poll returns for: the reader's own,
    /// and those whose direct messages it waits on.
    pub(super) fn sessions_ending(&self) -> Vec<String> {
        self.session_id
            .iter()
            .map(String::as_str)
            .chain(
                self.channels
                    .iter()
                    .filter_map(|c| shared::channel::dm_target(c)),
            )
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caller::Caller;

    fn read(args: impl FnOnce(&mut GetParams)) -> Read {
        let mut p = GetParams {
            session_id: Some("s".into()),
            ..GetParams::default()
        };
        args(&mut p);
        Read::new(p, Presented::of(&Caller::internal()))
    }

    #[test]
    fn only_the_agent_consumes_unless_a_helper_asks_resume() {
        use Reader::{Agent, Helper, Push, Wait};
        let (plain, resume) = (read(|_| {}), read(|p| p.resume = true));
        let by = |r: &Read| [Agent, Helper, Push, Wait].map(|reader| r.consumes(reader));
        assert_eq!(by(&plain), [true, false, false, false]);
        assert_eq!(by(&resume), [true, true, false, false]);
        for narrowed in [
            read(|p| p.peek = true),
            read(|p| p.channel = Some("all".into())),
            read(|p| p.event_types = Some(vec!["x".into()])),
            read(|p| p.session_id = None),
        ] {
            assert_eq!(by(&narrowed), [false; 4]);
        }
    }
}
