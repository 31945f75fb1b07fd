//! The tools. Each module holds its tools' rules and implements
//! [`Handler`] for its tools; their params, replies and refusals are the
//! contract's ([`shared::tools`]). [`call`] alone dispatches (on the
//! contract's one list of tools), parses arguments and renders replies: a
//! handler takes its `Params` and returns its `Reply`, a [`Refusal`], or a
//! [`Failure`].

pub mod claims;
pub mod events;
pub mod notify;
pub mod receipts;
pub mod sessions;
pub mod webhooks;

use serde_json::Value;
use shared::tools::{self as contract, ArgError, Invalid, Refusal, Tool};

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
    let shape = if list { Shape::List } else { Shape::Object };
    render_shaped(size, &shape, write)
}

/// How a reply sits in its `tools/call` result.
pub enum Shape {
    /// `structuredContent` is the reply.
    Object,
    /// `structuredContent` is `{"result": <the list>}`.
    List,
    /// A list cut at the hub's limit: `{"result": <the list>, "truncated":
    /// true}`, and a second text block that says so (the first stays the
    /// bare list, as the original's clients read it).
    Cut(String),
}

/// [`render_with`] for any [`Shape`].
pub fn render_shaped(size: usize, shape: &Shape, write: impl Fn(&mut String, bool)) -> Json {
    let (open, close) = match shape {
        Shape::Object => ("", ""),
        Shape::List => ("{\"result\":", "}"),
        Shape::Cut(_) => ("{\"result\":", ",\"truncated\":true}"),
    };
    // Room for the JSON-RPC envelope and the SSE frame put around it in place.
    let mut out = String::with_capacity(size + 256);
    out.push_str("{\"content\":[{\"type\":\"text\",\"text\":\"");
    write(&mut out, true);
    out.push_str("\"}");
    if let Shape::Cut(note) = shape {
        out.push_str(",{\"type\":\"text\",\"text\":\"");
        out.push_str(&crate::store::escaped(note));
        out.push_str("\"}");
    }
    out.push_str("],\"structuredContent\":");
    out.push_str(open);
    write(&mut out, false);
    out.push_str(close);
    out.push_str(",\"isError\":false}");
    Json::spliced(out)
}

/// The shape of a list reply of `T` that had `total` items before it was
/// cut to `max` (or was not).
pub fn list_shape<T: Tool>(total: usize, max: usize) -> Shape {
    if total > max {
        Shape::Cut(contract::truncated_note(T::NAME, max))
    } else {
        Shape::List
    }
}

/// A list reply of `T`: the first `max` of `items`, marked cut when there
/// were more (see [`Shape::Cut`]).
pub fn render_list<T: Tool, I: serde::Serialize>(mut items: Vec<I>, max: usize) -> Json {
    let shape = list_shape::<T>(items.len(), max);
    items.truncate(max);
    let json = serde_json::to_string(&items).unwrap_or_else(|_| "[]".to_owned());
    let escaped = crate::store::escaped(&json);
    render_shaped(json.len() + escaped.len(), &shape, |out, as_text| {
        out.push_str(if as_text { &escaped } else { &json });
    })
}

/// Why a call produced no reply.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(transparent)]
    Args(#[from] Invalid),
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
    Args(ArgError),
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

impl From<ArgError> for Failure {
    fn from(e: ArgError) -> Self {
        Self::Args(e)
    }
}

/// A handler's result.
pub type Outcome<R> = Result<R, Failure>;

/// How the hub runs a tool of the contract: its handler, given the parsed
/// params, with the reply rendered. Each tool module implements it for its
/// tools with `handlers!`; [`call`] dispatches on the contract's one list
/// of tools, so a tool without a handler does not compile.
pub trait Handler: Tool {
    fn run(
        bus: &Bus,
        caller: &Caller,
        params: Self::Params,
    ) -> impl Future<Output = Outcome<Json>> + Send;
}

/// Implements [`Handler`] for tools: `Tool => handler;` for a handler that
/// returns the tool's `Reply`, `Tool => rendered handler;` for one that
/// renders its own (off the async workers, when it is large).
macro_rules! handlers {
    () => {};
    (@run $tool:ty, $bus:ident, $caller:ident, $params:ident, $body:expr) => {
        impl $crate::tools::Handler for $tool {
            async fn run(
                $bus: &$crate::state::Bus,
                $caller: &$crate::caller::Caller,
                $params: Self::Params,
            ) -> $crate::tools::Outcome<$crate::json::Json> {
                $body
            }
        }
    };
    ($tool:ty => rendered $handler:path; $($rest:tt)*) => {
        $crate::tools::handlers!(@run $tool, bus, caller, params, $handler(bus, caller, params).await);
        $crate::tools::handlers! { $($rest)* }
    };
    ($tool:ty => $handler:path; $($rest:tt)*) => {
        $crate::tools::handlers!(@run $tool, bus, caller, params, {
            let reply = $handler(bus, caller, params).await?;
            Ok($crate::tools::render(&reply, <$tool as shared::tools::Tool>::LIST))
        });
        $crate::tools::handlers! { $($rest)* }
    };
}
pub(crate) use handlers;

/// Parses `arguments` as `T`'s params and runs its handler.
async fn run<T: Handler>(bus: &Bus, caller: &Caller, arguments: Option<Value>) -> ToolResult {
    let outcome = match contract::parse::<T>(arguments) {
        Ok(params) => T::run(bus, caller, params).await,
        Err(e) => Err(Failure::Args(e)),
    };
    match outcome {
        Ok(raw) => Ok(Reply::Rendered(raw)),
        Err(Failure::Refused(refusal)) => Ok(Reply::Refused(refusal)),
        Err(Failure::Args(error)) => Err(Invalid::of::<T>(error).into()),
        Err(Failure::Store(e)) => Err(ToolError::Internal(e)),
    }
}

/// Runs tool `name` for `caller`: the contract's list of tools
/// ([`shared::every_tool`]) is the dispatch table.
pub async fn call(bus: &Bus, caller: &Caller, name: &str, arguments: Option<Value>) -> ToolResult {
    macro_rules! dispatch {
        (listed: [$($listed:ty),* $(,)?], unlisted: [$($unlisted:ty),* $(,)?] $(,)?) => {
            $(
                if name == <$listed as Tool>::NAME {
                    return run::<$listed>(bus, caller, arguments).await;
                }
            )*
            $(
                if name == <$unlisted as Tool>::NAME {
                    return run::<$unlisted>(bus, caller, arguments).await;
                }
            )*
        };
    }
    shared::every_tool!(dispatch);
    Err(ToolError::Unknown(name.to_owned()))
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::render;

    /// The in-place writer frames a reply as the contract's one wrapper does.
    #[test]
    fn replies_are_framed_as_the_contract_frames_them() {
        for (reply, list) in [
            (json!({"text": "é \"quoted\"\n", "n": 1}), false),
            (json!([1, {"b": null}]), true),
        ] {
            let written: Value = serde_json::from_str(&render(&reply, list).into_string()).unwrap();
            assert_eq!(written, shared::mcp::tool_result(&reply, list));
        }
    }
}
