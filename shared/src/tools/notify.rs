//! `notify`: a desktop notification to the human, on the hub's machine or,
//! through the proxy, on the agent's.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ArgError, Params, Tool, check_len};

/// The `notify` tool.
pub struct Notify;

impl Tool for Notify {
    const NAME: &'static str = "notify";
    const DESCRIPTION: &'static str = "Show a desktop notification to the human.";
    type Params = NotifyParams;
    type Reply = Notified;
}

/// The arguments (its schema is the catalog's input schema).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyParams {
    pub title: String,
    pub message: String,
    #[serde(default)]
    pub sound: bool,
}

impl Params for NotifyParams {
    fn check(&self) -> Result<(), ArgError> {
        check_len("title", &self.title, 256)?;
        check_len("message", &self.message, 4096)
    }
}

/// `notify`'s reply: whether the notification was shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Notified {
    pub success: bool,
    pub title: String,
    pub message: String,
}

/// Shows the notification `p` asks for on this machine: the tool's whole
/// behaviour, the same in the hub and in the proxy.
pub async fn show(p: NotifyParams) -> Notified {
    let success = crate::notify::send(&p.title, &p.message, p.sound).await;
    Notified {
        success,
        title: p.title,
        message: p.message,
    }
}
