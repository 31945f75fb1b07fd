//! The tool contract, written once: per tool a [`Tool`] with its name, its
//! catalog description, its `Params` (whose JSON schema is the catalog's
//! input schema and whose fields are the arguments it takes) and its `Reply`;
//! the domain refusals as [`Refusal`]. [`every_tool!`](crate::every_tool)
//! is the one list of tools: the catalog ([`crate::catalog::tools`]) and the
//! hub's dispatcher are built from it. The hub parses with [`parse`], and
//! [`HubClient`](crate::HubClient)'s typed methods send `Params` and decode
//! `Reply`.
//!
//! Arguments are read leniently, as the original read them: [`parse`]
//! walks the `Params` schema and coerces each argument to the type it
//! declares (`"true"` is true, `"50"` and `50.0` are 50, one string is a
//! one-item list, `null` is absent) before serde sees it, so every message a
//! caller gets names the argument and what to send instead ([`ArgError`]).
//! Text a caller writes but that means more is parsed with the params
//! (`get_events`' order, level and cursor: [`events::GetParams`]).
//!
//! - [`args`]: reading arguments; [`ArgError`] and the value checks.
//! - [`call`]: [`HubClient`](crate::HubClient)'s typed calls.
//! - one module per tool group, and [`refusal`].

pub mod args;
pub mod call;
pub mod claims;
pub mod events;
pub mod notify;
pub mod receipts;
pub mod refusal;
pub mod sessions;
pub mod webhooks;

use std::collections::HashMap;
use std::sync::OnceLock;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

#[cfg(test)]
use args::declared_type;
pub use args::{
    ArgError, Invalid, check_count, check_len, check_non_empty, check_opt_len, check_range,
};
pub use call::Answer;
pub use refusal::Refusal;

/// One tool of the contract.
pub trait Tool {
    /// The tool's name on the wire.
    const NAME: &'static str;
    /// The catalog's description: every byte is paid in each agent's context.
    const DESCRIPTION: &'static str;
    /// Whether the reply is a list (wrapped as `{"result": [...]}` in
    /// `structuredContent`, as MCP wants an object there).
    const LIST: bool = false;
    /// The arguments: the schema and the list of accepted names.
    type Params: Params;
    /// A successful reply.
    type Reply: Serialize + DeserializeOwned + JsonSchema;
}

/// A tool's arguments.
pub trait Params: DeserializeOwned + Serialize + JsonSchema {
    /// The rules on the values alone (lengths, ranges, known names), checked
    /// after the types: what the hub and any client that answers the tool
    /// itself (the proxy's `notify`) both apply.
    fn check(&self) -> Result<(), ArgError> {
        Ok(())
    }

    /// Reads arguments already coerced to the schema's types, then checks
    /// them. Params whose wire form is text parse it here instead.
    fn read(arguments: Map<String, Value>) -> Result<Self, ArgError> {
        let params: Self = serde_json::from_value(Value::Object(arguments))
            .map_err(|e| ArgError::Shape(e.to_string()))?;
        params.check()?;
        Ok(params)
    }
}

/// Calls `$then!` with every tool of the contract, in catalog order: those
/// `tools/list` shows, then those only clients call. The one list of
/// tools: the catalog, the hub's dispatcher and the tests are built from it.
#[macro_export]
macro_rules! every_tool {
    ($then:ident) => {
        $then! {
            listed: [
                $crate::tools::sessions::RegisterSession,
                $crate::tools::sessions::ListSessions,
                $crate::tools::sessions::ListChannels,
                $crate::tools::events::PublishEvent,
                $crate::tools::events::GetEvents,
                $crate::tools::events::AckEvents,
                $crate::tools::sessions::UnregisterSession,
                $crate::tools::notify::Notify,
                $crate::tools::claims::Claim,
                $crate::tools::claims::ListClaims,
                $crate::tools::receipts::MessageStatus,
                $crate::tools::webhooks::RegisterWebhook,
                $crate::tools::webhooks::ListWebhooks,
                $crate::tools::webhooks::SetWebhookActive,
                $crate::tools::webhooks::UnregisterWebhook,
                $crate::tools::webhooks::ListWebhookDeliveries,
                $crate::tools::webhooks::RedeliverWebhook,
                $crate::tools::webhooks::TestWebhook,
            ],
            unlisted: [
                $crate::tools::receipts::MessageReceipt,
                $crate::tools::receipts::MessagePushed,
            ],
        }
    };
}

/// A tool's entry in the registry: what the catalog and [`parse`] need
/// without knowing the type.
struct Entry {
    name: &'static str,
    description: &'static str,
    /// Listed in `tools/list` (`message_receipt` is a call for clients).
    listed: bool,
    schema: fn() -> Value,
    /// Reads an arguments object as the params and writes them back: the
    /// names serde knows, for the test that they are the schema's.
    #[cfg(test)]
    echo: fn(Value) -> Result<Value, String>,
    /// The reply's schema, to measure what an `outputSchema` would cost.
    #[cfg(test)]
    output: fn() -> Value,
}

#[cfg(test)]
fn echo<P: Params>(arguments: Value) -> Result<Value, String> {
    let params: P = serde_json::from_value(arguments).map_err(|e| e.to_string())?;
    serde_json::to_value(params).map_err(|e| e.to_string())
}

const fn entry<T: Tool>(listed: bool) -> Entry {
    Entry {
        name: T::NAME,
        description: T::DESCRIPTION,
        listed,
        schema: schema_of::<T::Params>,
        #[cfg(test)]
        echo: echo::<T::Params>,
        #[cfg(test)]
        output: output_schema::<T>,
    }
}

macro_rules! registry {
    (listed: [$($listed:ty),* $(,)?], unlisted: [$($unlisted:ty),* $(,)?] $(,)?) => {
        /// Every tool, in catalog order.
        const ENTRIES: &[Entry] = &[
            $(entry::<$listed>(true),)*
            $(entry::<$unlisted>(false),)*
        ];

        /// The names `tools/list` shows, in catalog order.
        pub const LISTED: &[&str] = &[$(<$listed as Tool>::NAME),*];
    };
}

every_tool!(registry);

/// The full schema of `P`, as generated (extension keys included).
fn schema_of<P: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.meta_schema = None;
            s.inline_subschemas = true;
        })
        .into_generator();
    generator.into_root_schema_for::<P>().to_value()
}

/// The `outputSchema` `T` would declare: its reply's schema as the catalog
/// trims schemas, a list wrapped as `{"result": [...]}`.
#[cfg(test)]
fn output_schema<T: Tool>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.meta_schema = None;
            s.inline_subschemas = true;
            s.contract = schemars::generate::Contract::Serialize;
        })
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T::Reply>().to_value();
    trim(&mut schema);
    if T::LIST {
        schema = serde_json::json!({"type": "object", "properties": {"result": schema}});
    }
    schema
}

/// The full schemas, generated once per process.
fn schemas() -> &'static HashMap<&'static str, Value> {
    static SCHEMAS: OnceLock<HashMap<&'static str, Value>> = OnceLock::new();
    SCHEMAS.get_or_init(|| ENTRIES.iter().map(|e| (e.name, (e.schema)())).collect())
}

/// `(name, description, input schema)` of every listed tool, in catalog
/// order; the schema trimmed to what a model needs (no titles, formats or
/// extension keys).
pub fn catalog() -> Vec<(&'static str, &'static str, Value)> {
    ENTRIES
        .iter()
        .filter(|e| e.listed)
        .map(|e| (e.name, e.description, input_schema(&schemas()[e.name])))
        .collect()
}

/// Whether the listed tool `name` takes a `session_id` (the proxy fills in
/// its own session's when the agent gives none).
pub fn takes_session_id(name: &str) -> bool {
    ENTRIES.iter().any(|e| e.listed && e.name == name)
        && schemas()[name]["properties"].get("session_id").is_some()
}

/// The argument names `T` takes, in declaration order.
pub fn argument_names<T: Tool>() -> Vec<String> {
    schema_of::<T::Params>()["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// The catalog's form of a generated schema.
fn input_schema(full: &Value) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), "object".into());
    let mut properties = full["properties"].as_object().cloned().unwrap_or_default();
    for property in properties.values_mut() {
        trim(property);
    }
    out.insert("properties".into(), Value::Object(properties));
    if let Some(required) = full
        .get("required")
        .filter(|r| r.as_array().is_some_and(|r| !r.is_empty()))
    {
        out.insert("required".into(), required.clone());
    }
    out.insert("additionalProperties".into(), Value::Bool(false));
    Value::Object(out)
}

/// Drops what the catalog does not carry, recursively: titles, formats,
/// extension keys (`x-…`), and the `null` an `Option` adds to a type.
fn trim(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    map.retain(|k, _| k != "title" && k != "format" && !k.starts_with("x-"));
    if let Some(Value::Array(types)) = map.get("type") {
        let types: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        if let [one] = &types[..] {
            map.insert("type".into(), one.clone());
        }
    }
    for value in map.values_mut() {
        trim(value);
    }
}

/// Reads a call's `arguments` as `T`'s params, with the original's lax
/// coercion; the error says what to send instead.
pub fn parse<T: Tool>(arguments: Option<Value>) -> Result<T::Params, ArgError> {
    parse_as::<T::Params>(T::NAME, arguments)
}

fn parse_as<P: Params>(name: &str, arguments: Option<Value>) -> Result<P, ArgError> {
    let generated;
    let schema = if let Some(schema) = schemas().get(name) {
        schema
    } else {
        generated = schema_of::<P>();
        &generated
    };
    P::read(args::coerce(schema, arguments)?)
}

/// The key beside `result` in a list reply's `structuredContent` when the
/// hub cut the list at its limit (present only then: a whole list is
/// `{"result": [...]}` as in the original).
pub const TRUNCATED: &str = "truncated";

/// What a cut list says in a second text block, after the list itself (the
/// first block stays the bare JSON array, as the original's clients read
/// it): how many are shown and why, and for `list_claims` how to narrow.
pub fn truncated_note(tool: &str, shown: usize) -> String {
    let narrow = if tool == claims::ListClaims::NAME {
        " Pass a longer prefix to see the rest."
    } else {
        ""
    };
    format!(
        "{tool} was cut: only the first {shown} items are listed (the hub's --max-list-items).{narrow}"
    )
}

/// `true`, the default of a flag that is on unless turned off.
fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests;
