//! Receipts of direct messages: `message_status`, and `message_pushed`
//! (a call for clients, not in the catalog).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ArgError, Params, Tool, check_count};

/// The most ids one call may ask about.
pub const IDS_MAX: usize = 1000;

/// The `message_status` tool.
pub struct MessageStatus;

impl Tool for MessageStatus {
    const NAME: &'static str = "message_status";
    const DESCRIPTION: &'static str = "Receipts of direct messages: stored, pushed or read; recipient live or ended. get_events(receipts=true) adds them to yours.";
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

/// Where a direct message got to; for an id that is no direct message,
/// `error` says why and the rest is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Receipt {
    pub event_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_name: Option<Option<String>>,
    /// `live`, `ended` or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_state: Option<String>,
    /// `stored`, `pushed` or `read`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_at: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The `message_pushed` tool.
pub struct MessagePushed;

impl Tool for MessagePushed {
    const NAME: &'static str = "message_pushed";
    const DESCRIPTION: &'static str = "";
    type Params = PushedParams;
    type Reply = Pushed;
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

/// `message_pushed`'s reply: how many receipts it marked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Pushed {
    pub success: bool,
    pub marked: u64,
}

/// The `message_receipt` tool: a client reports a step a direct message
/// took on one of its paths (not in the catalog).
pub struct MessageReceipt;

impl Tool for MessageReceipt {
    const NAME: &'static str = "message_receipt";
    const DESCRIPTION: &'static str = "";
    type Params = ReceiptParams;
    type Reply = Pushed;
}

/// How far a message got. Status only moves forward; a hold never moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Sent on a path that cannot prove the model saw it.
    Offered,
    /// Proof that the text entered the model's input.
    Delivered,
    /// Kept back, with a reason (a person's draft, the recipient's setting).
    Held,
}

/// The paths a client can report a step on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptPath {
    /// A Claude Code channel notification (offered only).
    Channel,
    /// Claude Code's cross-session inbox socket.
    Inbox,
    /// A notice typed into the agent's terminal pane.
    Pane,
    /// A desktop notification (offered only).
    Notice,
    /// A wake-up hook printed it (`wait`).
    Hook,
    /// A `UserPromptSubmit` hook's context.
    Prompt,
}

/// The arguments (its schema is the catalog's input schema).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptParams {
    pub session_id: String,
    #[schemars(with = "Vec<i64>", extend("x-required" = "a list of event ids"))]
    pub event_ids: Vec<u64>,
    pub step: Step,
    pub path: ReceiptPath,
    /// Why a message is held (only with `held`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Params for ReceiptParams {
    fn check(&self) -> Result<(), ArgError> {
        check_ids(&self.event_ids)
    }
}
