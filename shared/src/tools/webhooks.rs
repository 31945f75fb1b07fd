//! Webhooks: registration, listing, pause/resume, removal, the delivery
//! log, redelivery and a test ping.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ArgError, Params, Tool, check_len, check_opt_len, check_range};
use crate::wire::{DeliveryInfo, WebhookInfo};

/// The most rows of a delivery log one call returns (all the hub keeps).
pub const DELIVERIES_MAX: i64 = 1000;

/// `test_webhook` runs at most once this often per webhook.
pub const TEST_EVERY_SECONDS: u64 = 10;
/// `test_webhook` runs at most this many times a minute per hub: a ping
/// says how a target answered, so an unbounded rate would make it a probe
/// of the hub's network.
pub const TESTS_PER_MINUTE: u64 = 6;

/// `webhook_id` is an id: not below zero.
fn check_webhook_id(id: i64) -> Result<(), ArgError> {
    if id < 0 {
        return Err(ArgError::WebhookId(id));
    }
    Ok(())
}

/// `event_id` is an event's id: above zero.
fn check_event_id(id: Option<i64>) -> Result<(), ArgError> {
    match id {
        Some(n) if n <= 0 => Err(ArgError::EventId(n)),
        _ => Ok(()),
    }
}

/// The `register_webhook` tool.
pub struct RegisterWebhook;

impl Tool for RegisterWebhook {
    const NAME: &'static str = "register_webhook";
    const DESCRIPTION: &'static str = "POST matching events to an HTTP endpoint (channel: exact or prefix), HMAC-signed when a secret is given.";
    type Params = RegisterWebhookParams;
    type Reply = WebhookRegistered;
}

/// The arguments (its schema is the catalog's input schema).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterWebhookParams {
    // Parsed by the hub, which also knows whether private addresses are refused.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Also session_registered/unregistered
    #[expect(
        clippy::doc_markdown,
        reason = "this comment is the schema description clients read; the wire text stays as it was"
    )]
    #[serde(default)]
    pub include_system: bool,
}

impl Params for RegisterWebhookParams {
    fn check(&self) -> Result<(), ArgError> {
        check_len("url", self.url.trim(), 2048)?;
        check_opt_len("channel", self.channel.as_ref(), 256)?;
        check_opt_len("secret", self.secret.as_ref(), 1024)
    }
}

/// `register_webhook`'s reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookRegistered {
    pub webhook_id: u64,
    pub url: String,
    pub channel: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_system: bool,
}

/// The `list_webhooks` tool.
pub struct ListWebhooks;

impl Tool for ListWebhooks {
    const NAME: &'static str = "list_webhooks";
    const DESCRIPTION: &'static str = "List webhooks (secrets are never shown).";
    const LIST: bool = true;
    type Params = ListWebhooksParams;
    type Reply = Vec<WebhookInfo>;
}

/// The arguments (its schema is the catalog's input schema).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListWebhooksParams {
    #[serde(default = "super::yes")]
    pub active_only: bool,
}

impl Params for ListWebhooksParams {}

/// The `set_webhook_active` tool.
pub struct SetWebhookActive;

impl Tool for SetWebhookActive {
    const NAME: &'static str = "set_webhook_active";
    const DESCRIPTION: &'static str = "Pause or resume a webhook.";
    type Params = SetActiveParams;
    type Reply = WebhookActive;
}

/// The arguments (its schema is the catalog's input schema).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetActiveParams {
    pub webhook_id: i64,
    pub active: bool,
}

impl Params for SetActiveParams {
    fn check(&self) -> Result<(), ArgError> {
        check_webhook_id(self.webhook_id)
    }
}

/// `set_webhook_active`'s reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookActive {
    pub success: bool,
    pub webhook_id: u64,
    pub active: bool,
}

/// Arguments naming one webhook.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookParams {
    pub webhook_id: i64,
}

impl Params for WebhookParams {
    fn check(&self) -> Result<(), ArgError> {
        check_webhook_id(self.webhook_id)
    }
}

/// The `unregister_webhook` tool.
pub struct UnregisterWebhook;

impl Tool for UnregisterWebhook {
    const NAME: &'static str = "unregister_webhook";
    const DESCRIPTION: &'static str = "Delete a webhook.";
    type Params = WebhookParams;
    type Reply = WebhookRemoved;
}

/// `unregister_webhook`'s reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookRemoved {
    pub success: bool,
    pub webhook_id: u64,
}

/// The `list_webhook_deliveries` tool.
pub struct ListWebhookDeliveries;

impl Tool for ListWebhookDeliveries {
    const NAME: &'static str = "list_webhook_deliveries";
    const DESCRIPTION: &'static str =
        "A webhook's delivery log, newest first: attempt, status code, latency, error, next retry.";
    type Params = DeliveriesParams;
    type Reply = Deliveries;
}

fn twenty() -> i64 {
    20
}

/// The arguments (its schema is the catalog's input schema).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesParams {
    pub webhook_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<i64>,
    #[serde(default = "twenty")]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: i64,
}

impl Params for DeliveriesParams {
    fn check(&self) -> Result<(), ArgError> {
        check_webhook_id(self.webhook_id)?;
        check_event_id(self.event_id)?;
        check_range("limit", self.limit, 1..=DELIVERIES_MAX, "")
    }
}

/// `list_webhook_deliveries`' reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Deliveries {
    pub webhook_id: u64,
    /// Deliveries not yet delivered nor given up on.
    pub pending: u64,
    pub deliveries: Vec<DeliveryInfo>,
}

/// The `redeliver_webhook` tool.
pub struct RedeliverWebhook;

impl Tool for RedeliverWebhook {
    const NAME: &'static str = "redeliver_webhook";
    const DESCRIPTION: &'static str = "Send one event to a webhook again.";
    type Params = RedeliverParams;
    type Reply = Redelivered;
}

/// The arguments (its schema is the catalog's input schema).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeliverParams {
    pub webhook_id: i64,
    #[schemars(extend("x-required" = "the id of the event to send again"))]
    pub event_id: i64,
}

impl Params for RedeliverParams {
    fn check(&self) -> Result<(), ArgError> {
        check_webhook_id(self.webhook_id)?;
        check_event_id(Some(self.event_id))
    }
}

/// `redeliver_webhook`'s reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Redelivered {
    pub success: bool,
    pub webhook_id: u64,
    pub event_id: u64,
    /// The `webhook-id` header the receiver sees, the same as before.
    pub delivery_id: String,
}

/// The `test_webhook` tool.
pub struct TestWebhook;

impl Tool for TestWebhook {
    const NAME: &'static str = "test_webhook";
    const DESCRIPTION: &'static str = "POST a ping event to a webhook now; returns the attempt.";
    type Params = WebhookParams;
    type Reply = Tested;
}

/// `test_webhook`'s reply: the attempt, as its delivery log row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Tested {
    pub success: bool,
    pub webhook_id: u64,
    #[serde(flatten)]
    pub attempt: DeliveryInfo,
}
