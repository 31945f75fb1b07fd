//! Sessions: `register_session`, `list_sessions`, `list_channels`,
//! `unregister_session`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ArgError, Params, Tool, check_len, check_non_empty, check_opt_len, check_range};
use crate::wire::{ChannelCount, SessionInfo};

/// The longest lease a session may ask for: one day.
pub const LEASE_MAX: i64 = 86_400;

/// The `register_session` tool.
pub struct RegisterSession;

impl Tool for RegisterSession {
    const NAME: &'static str = "register_session";
    const DESCRIPTION: &'static str = "Register with the event bus (resumes by client_id). Returns session_id and cursor for polling.";
    type Params = RegisterParams;
    type Reply = Registered;
}

/// The arguments (its schema is the catalog's input schema).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterParams {
    pub name: String,
    // Blank means the hub's own machine name / working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Presence lease; renew by calling again
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub lease_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_pid: Option<i64>,
    /// Push routes it has now
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("items" = {"type": "string", "enum": crate::push::ROUTES}))]
    pub push: Option<Vec<String>>,
    // Ask for a session key (`Registered::session_key`): from then on every
    // call acting as the session must present it. Undescribed, to keep the
    // catalog small: agents never need it, their proxy asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<bool>,
}

impl Params for RegisterParams {
    fn check(&self) -> Result<(), ArgError> {
        check_non_empty("name", &self.name)?;
        check_len("name", &self.name, 256)?;
        check_opt_len("machine", self.machine.as_ref(), 256)?;
        check_opt_len("cwd", self.cwd.as_ref(), 4096)?;
        check_opt_len("client_id", self.client_id.as_ref(), 256)?;
        if let Some(l) = self.lease_seconds {
            check_range("lease_seconds", l, 1..=LEASE_MAX, "")?;
        }
        if let Some(p) = self.client_pid
            && !(1..=i64::from(i32::MAX)).contains(&p)
        {
            return Err(ArgError::NotAPid(p));
        }
        if let Some(bad) = self
            .push
            .iter()
            .flatten()
            .find(|r| crate::push::route(r).is_none())
        {
            return Err(ArgError::UnknownRoute(bad.clone()));
        }
        Ok(())
    }
}

/// `register_session`'s reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Registered {
    pub session_id: String,
    pub display_id: String,
    pub name: String,
    pub machine: String,
    pub cwd: String,
    pub repo: String,
    pub active_sessions: u64,
    /// Where to start reading: the newest event at registration, or the
    /// saved cursor of a resumed session.
    pub cursor: String,
    pub resumed: bool,
    pub tip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_seconds: Option<u64>,
    /// The session's key, when the call asked for one (`key: true`): sent
    /// in the [`HEADER_SESSION_KEY`](crate::config::HEADER_SESSION_KEY)
    /// header by every call acting as the session. Minted at the first
    /// keyed registration; a later one that presents it gets it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_key: Option<String>,
}

/// Arguments of a tool that takes none.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

impl Params for NoParams {}

/// The `list_sessions` tool.
pub struct ListSessions;

impl Tool for ListSessions {
    const NAME: &'static str = "list_sessions";
    const DESCRIPTION: &'static str = "List active sessions, ordered by most recently active.";
    const LIST: bool = true;
    type Params = NoParams;
    type Reply = Vec<SessionInfo>;
}

/// The `list_channels` tool.
pub struct ListChannels;

impl Tool for ListChannels {
    const NAME: &'static str = "list_channels";
    const DESCRIPTION: &'static str = "List channels with subscriber counts.";
    const LIST: bool = true;
    type Params = NoParams;
    type Reply = Vec<ChannelCount>;
}

/// The `unregister_session` tool.
pub struct UnregisterSession;

impl Tool for UnregisterSession {
    const NAME: &'static str = "unregister_session";
    const DESCRIPTION: &'static str =
        "Unregister from the event bus. session_id takes precedence over client_id.";
    type Params = UnregisterParams;
    type Reply = Unregistered;
}

/// The arguments (its schema is the catalog's input schema).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnregisterParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    // With client_id; the hub's own machine when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
}

impl Params for UnregisterParams {}

/// `unregister_session`'s reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Unregistered {
    pub success: bool,
    pub session_id: String,
    pub display_id: String,
    pub active_sessions: u64,
}
