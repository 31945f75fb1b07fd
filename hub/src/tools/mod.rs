//! The tools. Each module holds its tools' rules; their params, replies
//! and refusals are the contract's ([`shared::tools`]). [`call`] alone
//! parses arguments and renders replies: a handler takes its `Params` and
//! returns its `Reply`, a [`Refusal`], or a [`Failure`].

pub mod claims;
pub mod events;
pub mod notify;
pub mod receipts;
pub mod sessions;
pub mod webhooks;

use serde_json::Value;
use shared::tools::{self as contract, Refusal, Tool};

use crate::caller::Caller;
use crate::json::Json;
use crate::state::Bus;
use crate::store::{SessionRecord, StoreError};

/// What a tool produced.
#[derive(Debug)]
pub enum Reply {
    /// A reply already rendered as a `tools/call` result by [`render`].
    Rendered(Json),
    /// A domain refusal: a normal result whose `error` says why.
    Refused(Refusal),
}

impl Reply {
    /// The `tools/call` result.
    pub fn render(self) -> Json {
        match self {
            Self::Rendered(json) => json,
            Self::Refused(refusal) => render(&refusal.to_value(), false),
        }
    }

    /// One word for the log: `ok`, or the refusal's `error`.
    pub fn summary(&self) -> &str {
        match self {
            Self::Rendered(_) => "ok",
            Self::Refused(refusal) => refusal.error(),
        }
    }
}

/// Renders a successful `tools/call` result for `value` (a list is wrapped
/// as `{"result": [...]}` in `structuredContent`, as MCP wants an object):
/// the reply serialised once, as the text content and, spliced in
/// unparsed, as `structuredContent`.
pub fn render(value: &impl serde::Serialize, list: bool) -> Json {
    let json = serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned());
    render_parts(&json, &crate::store::escaped(&json), list)
}

/// [`render`] from the reply's JSON and the same JSON escaped as inside a
/// JSON string.
pub fn render_parts(json: &str, escaped: &str, list: bool) -> Json {
    render_with(json.len() + escaped.len(), list, |out, as_text| {
        out.push_str(if as_text { escaped } else { json });
    })
}

/// [`render`] written by `write` straight into the reply: called once with
/// `as_text` (the reply's JSON escaped as inside a JSON string) and once
/// without (the JSON itself). `size` is about how long the two come to,
/// so a reply of megabytes is one allocation and no copies.
pub fn render_with(size: usize, list: bool, write: impl Fn(&mut String, bool)) -> Json {
    let (open, close) = if list {
        ("{\"result\":", "}")
    } else {
        ("", "")
    };
    // Room for the JSON-RPC envelope and the SSE frame put around it in place.
    let mut out = String::with_capacity(size + 256);
    out.push_str("{\"content\":[{\"type\":\"text\",\"text\":\"");
    write(&mut out, true);
    out.push_str("\"}],\"structuredContent\":");
    out.push_str(open);
    write(&mut out, false);
    out.push_str(close);
    out.push_str(",\"isError\":false}");
    Json::spliced(out)
}

/// Why a call produced no reply.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("Invalid arguments for {tool}: {message}")]
    Args { tool: String, message: String },
    #[error("Unknown tool: {0}")]
    Unknown(String),
    #[error("internal error")]
    Internal(#[from] StoreError),
}

pub type ToolResult = Result<Reply, ToolError>;

/// A handler's failure: bad arguments (a rule only the hub can check), a
/// domain refusal, or the store's.
#[derive(Debug)]
pub enum Failure {
    Args(String),
    Refused(Refusal),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Self {
        Self::Refused(r)
    }
}

/// A handler's result.
pub type Outcome<R> = Result<R, Failure>;

/// Parses `arguments` as `T`'s params, runs `handler`, renders its reply.
async fn typed<T: Tool>(
    bus: &Bus,
    caller: &Caller,
    arguments: Option<Value>,
    handler: impl AsyncFnOnce(&Bus, &Caller, T::Params) -> Outcome<T::Reply>,
) -> Outcome<Json> {
    let params = contract::parse::<T>(arguments).map_err(Failure::Args)?;
    let reply = handler(bus, caller, params).await?;
    Ok(render(&reply, T::LIST))
}

/// [`typed`] for a handler that renders its own reply (off the async
/// workers, when it is large).
async fn rendered<T: Tool>(
    bus: &Bus,
    caller: &Caller,
    arguments: Option<Value>,
    handler: impl AsyncFnOnce(&Bus, &Caller, T::Params) -> Outcome<Json>,
) -> Outcome<Json> {
    let params = contract::parse::<T>(arguments).map_err(Failure::Args)?;
    handler(bus, caller, params).await
}

/// Runs one tool for `caller`.
pub async fn call(bus: &Bus, caller: &Caller, name: &str, arguments: Option<Value>) -> ToolResult {
    use contract::{
        claims as c, events as e, notify as n, receipts as r, sessions as s, webhooks as w,
    };
    let a = arguments;
    let result = match name {
        s::RegisterSession::NAME => {
            typed::<s::RegisterSession>(bus, caller, a, sessions::register).await
        }
        s::ListSessions::NAME => rendered::<s::ListSessions>(bus, caller, a, sessions::list).await,
        s::ListChannels::NAME => typed::<s::ListChannels>(bus, caller, a, sessions::channels).await,
        s::UnregisterSession::NAME => {
            typed::<s::UnregisterSession>(bus, caller, a, sessions::unregister).await
        }
        e::PublishEvent::NAME => typed::<e::PublishEvent>(bus, caller, a, events::publish).await,
        e::GetEvents::NAME => typed::<e::GetEvents>(bus, caller, a, events::get).await,
        e::AckEvents::NAME => typed::<e::AckEvents>(bus, caller, a, events::ack).await,
        n::Notify::NAME => typed::<n::Notify>(bus, caller, a, notify::tool).await,
        c::Claim::NAME => typed::<c::Claim>(bus, caller, a, claims::claim).await,
        c::ListClaims::NAME => typed::<c::ListClaims>(bus, caller, a, claims::list).await,
        r::MessageStatus::NAME => {
            typed::<r::MessageStatus>(bus, caller, a, receipts::message_status).await
        }
        r::MessageReceipt::NAME => {
            typed::<r::MessageReceipt>(bus, caller, a, receipts::message_receipt).await
        }
        r::MessagePushed::NAME => {
            typed::<r::MessagePushed>(bus, caller, a, receipts::message_pushed).await
        }
        w::RegisterWebhook::NAME => {
            typed::<w::RegisterWebhook>(bus, caller, a, webhooks::register).await
        }
        w::ListWebhooks::NAME => typed::<w::ListWebhooks>(bus, caller, a, webhooks::list).await,
        w::SetWebhookActive::NAME => {
            typed::<w::SetWebhookActive>(bus, caller, a, webhooks::set_active).await
        }
        w::UnregisterWebhook::NAME => {
            typed::<w::UnregisterWebhook>(bus, caller, a, webhooks::unregister).await
        }
        w::ListWebhookDeliveries::NAME => {
            typed::<w::ListWebhookDeliveries>(bus, caller, a, webhooks::deliveries).await
        }
        w::RedeliverWebhook::NAME => {
            typed::<w::RedeliverWebhook>(bus, caller, a, webhooks::redeliver).await
        }
        w::TestWebhook::NAME => typed::<w::TestWebhook>(bus, caller, a, webhooks::test).await,
        other => return Err(ToolError::Unknown(other.to_owned())),
    };
    match result {
        Ok(raw) => Ok(Reply::Rendered(raw)),
        Err(Failure::Refused(refusal)) => Ok(Reply::Refused(refusal)),
        Err(Failure::Args(message)) => Err(ToolError::Args {
            tool: name.to_owned(),
            message,
        }),
        Err(Failure::Store(e)) => Err(ToolError::Internal(e)),
    }
}

/// How a deleted session shows in a refusal (or a publish's reply).
pub fn deleted(session: &SessionRecord, hint: &str) -> contract::refusal::Deleted {
    contract::refusal::Deleted {
        session_id: session.id.clone(),
        display_id: session.display_id.clone(),
        deleted_at: session.deleted_at.map(shared::time::format_ms),
        hint: hint.to_owned(),
    }
}

/// The refusal for a call that names a deleted session.
pub fn deleted_refusal(session: &SessionRecord, hint: &str) -> Refusal {
    Refusal::SessionDeleted(deleted(session, hint))
}
