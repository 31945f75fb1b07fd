//! The tool contract, written once: per tool a [`Tool`] with its name, its
//! catalog description, its `Params` (whose JSON schema is the catalog's
//! input schema and whose fields are the arguments it takes) and its `Reply`;
//! the domain refusals as [`Refusal`]. The hub parses with [`parse`], the
//! catalog is built from the types ([`crate::catalog::tools`]), and
//! [`HubClient`](crate::HubClient)'s typed methods send `Params` and decode
//! `Reply`.
//!
//! Arguments are read leniently, as the original read them: [`parse`]
//! walks the `Params` schema and coerces each argument to the type it
//! declares (`"true"` is true, `"50"` and `50.0` are 50, one string is a
//! one-item list, `null` is absent) before serde sees it, so every message a
//! caller gets names the argument and what to send instead.

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

pub use call::Answer;
pub use refusal::Refusal;

use crate::catalog::is_client_injected;

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
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
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

/// Every tool, in catalog order.
const ENTRIES: [Entry; 20] = [
    entry::<sessions::RegisterSession>(true),
    entry::<sessions::ListSessions>(true),
    entry::<sessions::ListChannels>(true),
    entry::<events::PublishEvent>(true),
    entry::<events::GetEvents>(true),
    entry::<events::AckEvents>(true),
    entry::<sessions::UnregisterSession>(true),
    entry::<notify::Notify>(true),
    entry::<claims::Claim>(true),
    entry::<claims::ListClaims>(true),
    entry::<receipts::MessageStatus>(true),
    entry::<webhooks::RegisterWebhook>(true),
    entry::<webhooks::ListWebhooks>(true),
    entry::<webhooks::SetWebhookActive>(true),
    entry::<webhooks::UnregisterWebhook>(true),
    entry::<webhooks::ListWebhookDeliveries>(true),
    entry::<webhooks::RedeliverWebhook>(true),
    entry::<webhooks::TestWebhook>(true),
    entry::<receipts::MessageReceipt>(false),
    entry::<receipts::MessagePushed>(false),
];

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
pub fn parse<T: Tool>(arguments: Option<Value>) -> Result<T::Params, String> {
    parse_as::<T::Params>(T::NAME, arguments)
}

fn parse_as<P: Params>(name: &str, arguments: Option<Value>) -> Result<P, String> {
    let generated;
    let schema = if let Some(schema) = schemas().get(name) {
        schema
    } else {
        generated = schema_of::<P>();
        &generated
    };
    let map = coerce(schema, arguments)?;
    let params: P = serde_json::from_value(Value::Object(map)).map_err(|e| e.to_string())?;
    params.check()?;
    Ok(params)
}

/// What a value is, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The declared type of a property (`"string"` for `["string", "null"]`).
fn declared_type(property: &Value) -> &str {
    match property.get("type") {
        Some(Value::String(t)) => t,
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ => "",
    }
}

/// The arguments object coerced to the types `schema` declares: unknown
/// names refused (those a client adds for itself dropped first), `null`
/// taken as absent, required ones checked, in declaration order.
fn coerce(schema: &Value, arguments: Option<Value>) -> Result<Map<String, Value>, String> {
    let mut map = match arguments {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(format!("arguments must be an object, got {}", kind(&other))),
    };
    let empty = Map::new();
    let properties = schema["properties"].as_object().unwrap_or(&empty);
    map.retain(|key, _| properties.contains_key(key) || !is_client_injected(key));
    let unknown: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| !properties.contains_key(*k))
        .collect();
    if !unknown.is_empty() {
        let taken: Vec<&str> = properties.keys().map(String::as_str).collect();
        return Err(format!(
            "unknown argument{} {}; this tool takes: {}",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.join(", "),
            taken.join(", ")
        ));
    }
    let required = |key: &str| {
        schema["required"]
            .as_array()
            .is_some_and(|r| r.iter().any(|k| k == key))
    };
    let mut out = Map::new();
    for (key, property) in properties {
        match map.remove(key).filter(|v| !v.is_null()) {
            Some(value) => {
                out.insert(key.clone(), coerce_value(key, property, value)?);
            }
            None if required(key) => return Err(required_message(key, property)),
            None => {}
        }
    }
    Ok(out)
}

/// `<key> is required (<what to send>)`; `x-required` says what to send
/// when the type alone does not.
fn required_message(key: &str, property: &Value) -> String {
    let what = match property.get("x-required").and_then(Value::as_str) {
        Some(what) => what,
        None => match declared_type(property) {
            "integer" => "a whole number",
            "boolean" => "true or false",
            "array" => "a list",
            _ => "a string",
        },
    };
    format!("{key} is required ({what})")
}

/// One argument coerced to its declared type.
fn coerce_value(key: &str, property: &Value, value: Value) -> Result<Value, String> {
    match declared_type(property) {
        "integer" => crate::coerce::whole_number(&value)
            .map(Value::from)
            .ok_or_else(|| {
                let got = match &value {
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => format!("\"{s}\""),
                    other => kind(other).to_owned(),
                };
                format!("{key} must be a whole number, got {got}")
            }),
        "boolean" => crate::coerce::boolean(&value)
            .map(Value::Bool)
            .ok_or_else(|| match &value {
                Value::String(s) => format!("{key} must be true or false, got \"{s}\""),
                other => format!("{key} must be true or false, got {}", kind(other)),
            }),
        "array" if declared_type(&property["items"]) == "integer" => ids(key, value),
        "array" => strings(key, value),
        _ => match value {
            Value::String(_) => Ok(value),
            // A cursor-like argument (`x-text`) takes a whole number as its text.
            Value::Number(n) if property.get("x-text").is_some() && (n.is_i64() || n.is_u64()) => {
                Ok(Value::String(n.to_string()))
            }
            other => Err(format!("{key} must be a string, got {}", kind(&other))),
        },
    }
}

/// A list of strings; one string is a one-item list.
fn strings(key: &str, value: Value) -> Result<Value, String> {
    match value {
        Value::String(s) => Ok(Value::Array(vec![Value::String(s)])),
        Value::Array(items) => {
            if let Some(bad) = items.iter().find(|v| !v.is_string()) {
                return Err(format!(
                    "{key} must be a list of strings, but an item is {}",
                    kind(bad)
                ));
            }
            Ok(Value::Array(items))
        }
        other => Err(format!(
            "{key} must be a list of strings, got {}",
            kind(&other)
        )),
    }
}

/// A list of event ids: whole numbers or their text, one or a list.
fn ids(key: &str, value: Value) -> Result<Value, String> {
    let items = match value {
        Value::Array(items) => items,
        one => vec![one],
    };
    let parsed: Option<Vec<Value>> = items
        .iter()
        .map(|v| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
        .map(|id| id.map(Value::from))
        .collect();
    parsed.map(Value::Array).ok_or_else(|| {
        format!(
            "{key} must be event ids (whole numbers), got {}",
            Value::Array(items)
        )
    })
}

/// `true`, the default of a flag that is on unless turned off.
fn yes() -> bool {
    true
}

/// Checks a string's length in characters.
pub fn check_len(key: &str, value: &str, max: usize) -> Result<(), String> {
    let n = value.chars().count();
    if n > max {
        Err(format!("{key} is {n} characters; the limit is {max}"))
    } else {
        Ok(())
    }
}

/// Checks an optional string's length in characters.
pub fn check_opt_len(key: &str, value: Option<&String>, max: usize) -> Result<(), String> {
    value.map_or(Ok(()), |v| check_len(key, v, max))
}

/// Checks a required string is not blank.
pub fn check_non_empty(key: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        Err(format!("{key} must not be empty"))
    } else {
        Ok(())
    }
}

/// Checks a whole number is within `range`; `then` follows the range in the
/// message (what to do instead), when given.
pub fn check_range(
    key: &str,
    value: i64,
    range: std::ops::RangeInclusive<i64>,
    then: &str,
) -> Result<(), String> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{key} must be from {} to {} (got {value}){then}",
            range.start(),
            range.end()
        ))
    }
}

#[cfg(test)]
mod tests;
