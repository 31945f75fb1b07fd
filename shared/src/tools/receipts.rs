//! Receipts of direct messages: `message_status` (in the catalog), and the
//! reports clients make — `message_receipt`, and the older `message_pushed`
//! (read as `offered` by `channel`) — which are not.
//!
//! A receipt's [`Status`] moves forward only: `stored` < `offered` <
//! `delivered` < `read`. Each step records when and by which [`Path`]; a
//! [`Held`] note says why a wake is waiting, while the status is below
//! `delivered`, and never moves the status.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ArgError, Params, Tool, check_count, check_len, check_non_empty};

/// The most ids one call may ask about.
pub const IDS_MAX: usize = 1000;
/// The longest reason a hold may give.
pub const REASON_MAX: usize = 200;

/// How far a direct message got. Ordered: a receipt's status never goes back.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The hub has it.
    Stored,
    /// It went out on a path that cannot prove the model saw it.
    Offered,
    /// Its text entered the model's input.
    Delivered,
    /// The recipient consumed it or answered it.
    Read,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Offered => "offered",
            Self::Delivered => "delivered",
            Self::Read => "read",
        }
    }
}

/// What made a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Path {
    /// A Claude Code channel notification (offered: Claude Code never
    /// acknowledges one).
    Channel,
    /// Claude Code's cross-session inbox socket.
    Inbox,
    /// A wake typed into the client's tmux/zellij pane.
    Pane,
    /// A desktop notification (offered).
    Notice,
    /// The CLI's `wait` printed it for a `Stop`/`asyncRewake` hook.
    Hook,
    /// A `UserPromptSubmit` hook added it to the prompt's context.
    Prompt,
    /// The agent's own `get_events` returned it (recorded by the hub).
    Tool,
    /// A consuming read of the agent's returned it (recorded by the hub).
    Resume,
    /// The agent's `ack_events` moved its cursor past it (recorded by the hub).
    Ack,
    /// The recipient published an event whose `correlation_id` is its id
    /// (recorded by the hub).
    Reply,
}

impl Path {
    pub const ALL: [Self; 10] = [
        Self::Channel,
        Self::Inbox,
        Self::Pane,
        Self::Notice,
        Self::Hook,
        Self::Prompt,
        Self::Tool,
        Self::Resume,
        Self::Ack,
        Self::Reply,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Channel => "channel",
            Self::Inbox => "inbox",
            Self::Pane => "pane",
            Self::Notice => "notice",
            Self::Hook => "hook",
            Self::Prompt => "prompt",
            Self::Tool => "tool",
            Self::Resume => "resume",
            Self::Ack => "ack",
            Self::Reply => "reply",
        }
    }

    /// A client may report it with `message_receipt`; the hub records the
    /// others itself.
    pub fn reportable(self) -> bool {
        !matches!(self, Self::Tool | Self::Resume | Self::Ack | Self::Reply)
    }

    /// It can prove the text entered the model's input. A channel
    /// notification and a desktop notice cannot: they are only offered.
    pub fn can_deliver(self) -> bool {
        !matches!(self, Self::Channel | Self::Notice)
    }

    /// The names of the paths a client may report, for messages.
    pub fn reportable_names() -> String {
        let names: Vec<&str> = Self::ALL
            .iter()
            .filter(|p| p.reportable())
            .map(|p| p.name())
            .collect();
        names.join(", ")
    }
}

/// The `message_status` tool.
pub struct MessageStatus;

impl Tool for MessageStatus {
    const NAME: &'static str = "message_status";
    const DESCRIPTION: &'static str = "Direct-message receipts: stored, offered, delivered (in the recipient's input) or read; recipient live or ended. get_events(receipts=true) adds them to yours.";
    const LIST: bool = true;
    type Params = StatusParams;
    type Reply = Vec<Receipt>;
}

/// The arguments (its schema is the catalog's input schema).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusParams {
    #[schemars(with = "Vec<i64>", extend("x-required" = "a list of event ids"))]
    pub event_ids: Vec<u64>,
}

fn check_ids(ids: &[u64]) -> Result<(), ArgError> {
    check_count("event_ids", ids, IDS_MAX)
}

impl Params for StatusParams {
    fn check(&self) -> Result<(), ArgError> {
        check_ids(&self.event_ids)
    }
}

/// Why a wake is waiting (a person's draft in the pane, the client's
/// inbox holding it): shown while the status is below `delivered`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Held {
    pub reason: String,
    pub path: Path,
    /// Since when (the first report of this hold).
    pub at: String,
}

/// Where a direct message got to; for an id that is no direct message,
/// `error` says why and the rest is absent. Each `*_at`/`*_path` pair is
/// the step's time and path, `null` until the step is made (or when the
/// status passed it without it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Receipt {
    pub event_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_name: Option<Option<String>>,
    /// `live`, `ended` or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_at: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_path: Option<Option<Path>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_path: Option<Option<Path>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_path: Option<Option<Path>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Receipt {
    /// Whether the message is before the agent, or on its way there by a
    /// path that needs no hook: delivered or read, or offered through
    /// Claude Code's inbox and not held (the inbox queues a line while the
    /// agent works and runs it as a turn). The hooks show only messages
    /// that are not, so none reaches the model twice.
    pub fn handed_over(&self) -> bool {
        self.status >= Some(Status::Delivered)
            || (self.status == Some(Status::Offered)
                && self.offered_path.flatten() == Some(Path::Inbox)
                && self.held.is_none())
    }
}

/// A step a client reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Offered,
    Delivered,
    /// The wake is waiting (see [`Held`]); the status does not move.
    Held,
}

/// The `message_receipt` tool: a recipient's client reports how far its
/// direct messages got. Not in the catalog.
pub struct MessageReceipt;

impl Tool for MessageReceipt {
    const NAME: &'static str = "message_receipt";
    const DESCRIPTION: &'static str = "";
    type Params = ReceiptParams;
    type Reply = Marked;
}

/// The arguments. Ids that are not direct messages to `session_id` are
/// passed over; a step below the receipt's status changes nothing.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptParams {
    /// The recipient: the session the messages were sent to.
    pub session_id: String,
    #[schemars(with = "Vec<i64>", extend("x-required" = "a list of event ids"))]
    pub event_ids: Vec<u64>,
    pub step: Step,
    pub path: Path,
    /// Why it is held (only with `step: held`, and required there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Params for ReceiptParams {
    fn check(&self) -> Result<(), ArgError> {
        check_non_empty("session_id", &self.session_id)?;
        check_ids(&self.event_ids)?;
        if !self.path.reportable() {
            return Err(ArgError::PathNotReportable(self.path.name()));
        }
        match (self.step, &self.reason) {
            (Step::Delivered, _) if !self.path.can_deliver() => {
                Err(ArgError::CannotDeliver(self.path.name()))
            }
            (Step::Held, None) => Err(ArgError::HoldWithoutReason),
            (Step::Held, Some(reason)) => {
                check_non_empty("reason", reason)?;
                check_len("reason", reason, REASON_MAX)
            }
            (_, Some(_)) => Err(ArgError::ReasonWithoutHold),
            (_, None) => Ok(()),
        }
    }
}

/// A report's reply: how many receipts it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Marked {
    pub success: bool,
    pub marked: u64,
}

/// The `message_pushed` tool: the older report, still accepted and recorded
/// as `offered` by `channel`. Not in the catalog.
pub struct MessagePushed;

impl Tool for MessagePushed {
    const NAME: &'static str = "message_pushed";
    const DESCRIPTION: &'static str = "";
    type Params = PushedParams;
    type Reply = Marked;
}

/// The arguments (its schema is the catalog's input schema).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PushedParams {
    pub session_id: String,
    #[schemars(with = "Vec<i64>", extend("x-required" = "a list of event ids"))]
    pub event_ids: Vec<u64>,
}

impl Params for PushedParams {
    fn check(&self) -> Result<(), ArgError> {
        check_ids(&self.event_ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(step: Step, path: Path, reason: Option<&str>) -> Result<(), String> {
        ReceiptParams {
            session_id: "s".into(),
            event_ids: vec![1],
            step,
            path,
            reason: reason.map(str::to_owned),
        }
        .check()
        .map_err(|e| e.to_string())
    }

    #[test]
    fn statuses_are_ordered_and_named_as_on_the_wire() {
        use Status::{Delivered, Offered, Read, Stored};
        assert!(Stored < Offered && Offered < Delivered && Delivered < Read);
        for s in [Stored, Offered, Delivered, Read] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.name());
        }
        for p in Path::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), p.name());
        }
    }

    #[test]
    fn reports_are_checked() {
        assert!(report(Step::Offered, Path::Channel, None).is_ok());
        assert!(report(Step::Delivered, Path::Hook, None).is_ok());
        assert!(report(Step::Delivered, Path::Pane, None).is_ok());
        assert!(report(Step::Held, Path::Pane, Some("draft in the input line")).is_ok());
        let e = report(Step::Delivered, Path::Channel, None).unwrap_err();
        assert!(e.contains("report step offered"), "{e}");
        assert!(report(Step::Delivered, Path::Notice, None).is_err());
        let e = report(Step::Offered, Path::Tool, None).unwrap_err();
        assert!(e.contains("recorded by the hub"), "{e}");
        assert!(report(Step::Held, Path::Inbox, None).is_err());
        assert!(report(Step::Held, Path::Inbox, Some(" ")).is_err());
        assert!(report(Step::Offered, Path::Inbox, Some("why")).is_err());
    }
}
