//! Claims: `claim` (grant, refuse, release) and `list_claims`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ArgError, Params, Tool, check_len, check_non_empty};
use crate::wire::ClaimInfo;

/// The longest resource name or note.
pub const RESOURCE_MAX: usize = 1024;

/// The `claim` tool.
pub struct Claim;

impl Tool for Claim {
    const NAME: &'static str = "claim";
    const DESCRIPTION: &'static str = "Advisory claim on a resource (file:<repo>/<path>, task:<id>; a prefix ending in / covers all under it) until release or your session ends. Conflict: error Claimed, held_by.";
    type Params = ClaimParams;
    type Reply = ClaimReply;
}

/// The arguments (its schema is the catalog's input schema).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimParams {
    pub resource: String,
    pub session_id: String,
    #[serde(default = "super::yes")]
    pub exclusive: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default)]
    pub release: bool,
}

impl Params for ClaimParams {
    fn check(&self) -> Result<(), ArgError> {
        check_non_empty("resource", &self.resource)?;
        check_len("resource", &self.resource, RESOURCE_MAX)?;
        if self.resource.chars().any(char::is_control) {
            return Err(ArgError::ControlCharacters { key: "resource" });
        }
        match self.note.as_deref() {
            Some(n) => check_len("note", n, RESOURCE_MAX),
            None => Ok(()),
        }
    }
}

/// `claim`'s reply: the claim held (`already_held` when nothing changed), or
/// the outcome of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ClaimReply {
    Held {
        #[serde(flatten)]
        claim: ClaimInfo,
        already_held: bool,
    },
    Released {
        released: bool,
        resource: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        claim_id: Option<u64>,
    },
}

/// The `list_claims` tool.
pub struct ListClaims;

impl Tool for ListClaims {
    const NAME: &'static str = "list_claims";
    const DESCRIPTION: &'static str = "List claims under a prefix and those covering it.";
    const LIST: bool = true;
    type Params = ListClaimsParams;
    type Reply = Vec<ClaimInfo>;
}

/// The arguments (its schema is the catalog's input schema).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListClaimsParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

impl Params for ListClaimsParams {
    fn check(&self) -> Result<(), ArgError> {
        super::check_opt_len("prefix", self.prefix.as_ref(), RESOURCE_MAX)
    }
}
