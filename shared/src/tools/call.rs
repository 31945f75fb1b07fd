//! [`HubClient`]'s typed tool calls: `Params` in, the tool's `Reply` or a
//! [`Refusal`] out.

use serde_json::Value;

use super::{Refusal, Tool, claims, events, notify, receipts, sessions, webhooks};
use crate::client::{ClientError, HubClient, ToolOutput};

/// A tool's answer: its reply, or why the hub refused.
pub type Answer<R> = Result<R, Refusal>;

impl ToolOutput {
    /// The reply decoded as `T`'s: `Err` for a call the hub rejected
    /// (`isError`, bad arguments) or a reply of the wrong shape.
    pub fn answer<T: Tool>(&self) -> Result<Answer<T::Reply>, ClientError> {
        if self.is_error() {
            return Err(ClientError::Tool(self.text().trim().to_owned()));
        }
        let value = self.value();
        // A known refusal first (a webhook's refusal would read as a
        // `success: false` reply); an `error` in a reply that is no refusal
        // (a failed test ping's) is the reply's own.
        let refusal = Refusal::from_value(&value);
        if let Some(known) = refusal.clone().filter(|r| !matches!(r, Refusal::Other(_))) {
            return Ok(Err(known));
        }
        match serde_json::from_value(value) {
            Ok(reply) => Ok(Ok(reply)),
            Err(e) => refusal.map(Err).ok_or_else(|| ClientError::Protocol {
                url: String::new(),
                detail: format!("{} sent an unexpected reply: {e}", T::NAME),
            }),
        }
    }
}

impl HubClient {
    /// Calls `T` with `params` and decodes its answer.
    pub async fn call<T: Tool>(&self, params: &T::Params) -> Result<Answer<T::Reply>, ClientError> {
        let arguments = serde_json::to_value(params).unwrap_or(Value::Null);
        let out = self.call_tool(T::NAME, arguments).await?;
        self.answer_of::<T>(&out)
    }

    /// [`HubClient::call`], giving up after `timeout`.
    pub async fn call_within<T: Tool>(
        &self,
        params: &T::Params,
        timeout: std::time::Duration,
    ) -> Result<Answer<T::Reply>, ClientError> {
        let arguments = serde_json::to_value(params).unwrap_or(Value::Null);
        let out = self.call_tool_within(T::NAME, arguments, timeout).await?;
        self.answer_of::<T>(&out)
    }

    /// `out` decoded as `T`'s answer; a reply of the wrong shape
    /// names this hub.
    fn answer_of<T: Tool>(&self, out: &ToolOutput) -> Result<Answer<T::Reply>, ClientError> {
        out.answer::<T>().map_err(|e| match e {
            ClientError::Protocol { detail, .. } => ClientError::Protocol {
                url: self.endpoint().to_string(),
                detail,
            },
            other => other,
        })
    }
}

/// Declares a typed method per tool.
macro_rules! typed {
    ($($(#[$doc:meta])* $method:ident => $tool:ty;)*) => {
        impl HubClient {
            $(
                $(#[$doc])*
                pub async fn $method(
                    &self,
                    params: &<$tool as Tool>::Params,
                ) -> Result<Answer<<$tool as Tool>::Reply>, ClientError> {
                    self.call::<$tool>(params).await
                }
            )*
        }
    };
}

typed! {
    /// `register_session`.
    register => sessions::RegisterSession;
    /// `list_sessions`.
    sessions => sessions::ListSessions;
    /// `list_channels`.
    channels => sessions::ListChannels;
    /// `unregister_session`.
    unregister => sessions::UnregisterSession;
    /// `publish_event`.
    publish => events::PublishEvent;
    /// `get_events`.
    events => events::GetEvents;
    /// `ack_events`.
    ack => events::AckEvents;
    /// `notify` (on the hub's machine).
    notify => notify::Notify;
    /// `claim`.
    claim => claims::Claim;
    /// `list_claims`.
    claims => claims::ListClaims;
    /// `message_status`.
    message_status => receipts::MessageStatus;
    /// `message_receipt` (a client's report).
    message_receipt => receipts::MessageReceipt;
    /// `message_pushed` (the older report: offered by channel).
    message_pushed => receipts::MessagePushed;
    /// `register_webhook`.
    register_webhook => webhooks::RegisterWebhook;
    /// `list_webhooks`.
    webhooks => webhooks::ListWebhooks;
    /// `set_webhook_active`.
    set_webhook_active => webhooks::SetWebhookActive;
    /// `unregister_webhook`.
    unregister_webhook => webhooks::UnregisterWebhook;
    /// `list_webhook_deliveries`.
    webhook_deliveries => webhooks::ListWebhookDeliveries;
    /// `redeliver_webhook`.
    redeliver_webhook => webhooks::RedeliverWebhook;
    /// `test_webhook`.
    test_webhook => webhooks::TestWebhook;
}
