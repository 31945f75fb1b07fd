//! Reading a call's arguments: [`ArgError`], every way an argument can be
//! wrong, each rendered in the words a caller is told; the lax coercion
//! the original applied (walking a `Params` schema); and the value checks
//! `Params::check` implementations share.

use std::fmt;

use serde_json::{Map, Value};

use crate::catalog::is_client_injected;
use crate::cursor::CursorError;

/// Why a call's arguments were refused. Its text says what to send instead;
/// a caller sees it as `Invalid arguments for <tool>: <text>` ([`Invalid`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    #[error("arguments must be an object, got {0}")]
    NotAnObject(&'static str),
    #[error(
        "unknown argument{} {}; this tool takes: {}",
        if names.len() == 1 { "" } else { "s" },
        names.join(", "),
        takes.join(", ")
    )]
    Unknown {
        names: Vec<String>,
        takes: Vec<String>,
    },
    /// `what` says what to send (the schema's `x-required`, else its type).
    #[error("{key} is required ({what})")]
    Required { key: String, what: String },
    /// `got` is the number, the quoted string, or what the value is.
    #[error("{key} must be a whole number, got {got}")]
    NotWhole { key: String, got: String },
    /// `got` is the quoted string, or what the value is.
    #[error("{key} must be true or false, got {got}")]
    NotBoolean { key: String, got: String },
    #[error("{key} must be a string, got {got}")]
    NotString { key: String, got: &'static str },
    #[error("{key} must be a list of strings, got {got}")]
    NotStrings { key: String, got: &'static str },
    #[error("{key} must be a list of strings, but an item is {got}")]
    ItemNotString { key: String, got: &'static str },
    /// `got` is the list as sent.
    #[error("{key} must be event ids (whole numbers), got {got}")]
    NotIds { key: String, got: String },
    /// The arguments fit the schema but not the params (serde's words).
    #[error("{0}")]
    Shape(String),
    #[error("{key} must not be empty")]
    Empty { key: String },
    #[error("{key} is {len} characters; the limit is {max}")]
    TooLong { key: String, len: usize, max: usize },
    #[error("{key} has {count} items; the limit is {max}")]
    TooMany {
        key: &'static str,
        count: usize,
        max: usize,
    },
    /// `then` says what to do instead (empty, or `; …`).
    #[error("{key} must be from {min} to {max} (got {got}){then}")]
    OutOfRange {
        key: String,
        min: i64,
        max: i64,
        got: i64,
        then: &'static str,
    },
    #[error("{key} must not hold control characters")]
    ControlCharacters { key: &'static str },
    #[error("client_pid must be a process id (got {0})")]
    NotAPid(i64),
    #[error("push items must be one of {routes} (got '{0}')", routes = crate::push::ROUTES.join(", "))]
    UnknownRoute(String),
    #[error(
        "path {0} is recorded by the hub itself; report one of {paths}",
        paths = crate::tools::receipts::Path::reportable_names()
    )]
    PathNotReportable(&'static str),
    #[error(
        "step delivered cannot come by path {0}: it cannot prove the model got the text; report step offered"
    )]
    CannotDeliver(&'static str),
    #[error("reason is required with step held (say why the wake waits)")]
    HoldWithoutReason,
    #[error("reason goes only with step held")]
    ReasonWithoutHold,
    #[error("order must be 'asc' or 'desc' (got '{0}')")]
    Order(String),
    #[error(
        "min_level must be one of {names} (got '{0}')",
        names = crate::level::SignalLevel::NAMES.join(", ")
    )]
    Level(String),
    #[error("{text}", text = cursor_text(.0))]
    Cursor(CursorError),
    #[error("webhook_id must be a positive id (got {0})")]
    WebhookId(i64),
    #[error("event_id must be a positive event id (got {0})")]
    EventId(i64),
    /// A payload over the hub's `--max-payload-bytes`.
    #[error("payload is {len} bytes; the limit is {max} (send a summary and a pointer instead)")]
    PayloadTooLarge { len: usize, max: usize },
    #[error("url is not a valid URL ({0}); send e.g. https://example.com/hook")]
    UrlInvalid(url::ParseError),
    #[error("url must be an http:// or https:// URL with a host (got '{0}')")]
    UrlNotHttp(String),
    /// A literal private address the hub refuses (`--webhook-deny-private`).
    #[error(
        "url points at a private address ({0}), which this hub refuses (--webhook-deny-private); use a public address"
    )]
    UrlPrivate(String),
}

/// A bad cursor's text: a malformed one says where a good one comes from.
fn cursor_text(e: &CursorError) -> String {
    match e {
        CursorError::NotANumber(_) => format!(
            "{e}; pass a next_cursor from an earlier reply, or omit cursor to read from the start"
        ),
        CursorError::Negative(_) => e.to_string(),
    }
}

/// Compares the text a caller is told.
impl PartialEq<&str> for ArgError {
    fn eq(&self, other: &&str) -> bool {
        let text = self.to_string();
        text == *other
    }
}

/// A tool's arguments refused, as a caller is told (an `isError` result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub tool: &'static str,
    pub error: ArgError,
}

impl Invalid {
    /// `error` in the arguments of tool `T`.
    pub fn of<T: super::Tool>(error: ArgError) -> Self {
        Self {
            tool: T::NAME,
            error,
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Invalid arguments for {}: {}", self.tool, self.error)
    }
}

impl std::error::Error for Invalid {}

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
pub(super) fn declared_type(property: &Value) -> &str {
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
pub(super) fn coerce(
    schema: &Value,
    arguments: Option<Value>,
) -> Result<Map<String, Value>, ArgError> {
    let mut map = match arguments {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(ArgError::NotAnObject(kind(&other))),
    };
    let empty = Map::new();
    let properties = schema["properties"].as_object().unwrap_or(&empty);
    map.retain(|key, _| properties.contains_key(key) || !is_client_injected(key));
    let unknown: Vec<String> = map
        .keys()
        .filter(|k| !properties.contains_key(*k))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(ArgError::Unknown {
            names: unknown,
            takes: properties.keys().cloned().collect(),
        });
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
            None if required(key) => return Err(required_error(key, property)),
            None => {}
        }
    }
    Ok(out)
}

/// `<key> is required (<what to send>)`; `x-required` says what to send
/// when the type alone does not.
fn required_error(key: &str, property: &Value) -> ArgError {
    let what = match property.get("x-required").and_then(Value::as_str) {
        Some(what) => what,
        None => match declared_type(property) {
            "integer" => "a whole number",
            "boolean" => "true or false",
            "array" => "a list",
            _ => "a string",
        },
    };
    ArgError::Required {
        key: key.to_owned(),
        what: what.to_owned(),
    }
}

/// One argument coerced to its declared type.
fn coerce_value(key: &str, property: &Value, value: Value) -> Result<Value, ArgError> {
    let key_owned = || key.to_owned();
    match declared_type(property) {
        "integer" => crate::coerce::whole_number(&value)
            .map(Value::from)
            .ok_or_else(|| ArgError::NotWhole {
                key: key_owned(),
                got: match &value {
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => format!("\"{s}\""),
                    other => kind(other).to_owned(),
                },
            }),
        "boolean" => crate::coerce::boolean(&value)
            .map(Value::Bool)
            .ok_or_else(|| ArgError::NotBoolean {
                key: key_owned(),
                got: match &value {
                    Value::String(s) => format!("\"{s}\""),
                    other => kind(other).to_owned(),
                },
            }),
        "array" if declared_type(&property["items"]) == "integer" => ids(key, value),
        "array" => strings(key, value),
        _ => match value {
            Value::String(_) => Ok(value),
            // A cursor-like argument (`x-text`) takes a whole number as its text.
            Value::Number(n) if property.get("x-text").is_some() && (n.is_i64() || n.is_u64()) => {
                Ok(Value::String(n.to_string()))
            }
            other => Err(ArgError::NotString {
                key: key_owned(),
                got: kind(&other),
            }),
        },
    }
}

/// A list of strings; one string is a one-item list.
fn strings(key: &str, value: Value) -> Result<Value, ArgError> {
    match value {
        Value::String(s) => Ok(Value::Array(vec![Value::String(s)])),
        Value::Array(items) => {
            if let Some(bad) = items.iter().find(|v| !v.is_string()) {
                return Err(ArgError::ItemNotString {
                    key: key.to_owned(),
                    got: kind(bad),
                });
            }
            Ok(Value::Array(items))
        }
        other => Err(ArgError::NotStrings {
            key: key.to_owned(),
            got: kind(&other),
        }),
    }
}

/// A list of event ids: whole numbers or their text, one or a list.
fn ids(key: &str, value: Value) -> Result<Value, ArgError> {
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
    parsed.map(Value::Array).ok_or_else(|| ArgError::NotIds {
        key: key.to_owned(),
        got: Value::Array(items).to_string(),
    })
}

/// Checks a string's length in characters.
pub fn check_len(key: &str, value: &str, max: usize) -> Result<(), ArgError> {
    let len = value.chars().count();
    if len > max {
        Err(ArgError::TooLong {
            key: key.to_owned(),
            len,
            max,
        })
    } else {
        Ok(())
    }
}

/// Checks an optional string's length in characters.
pub fn check_opt_len(key: &str, value: Option<&String>, max: usize) -> Result<(), ArgError> {
    value.map_or(Ok(()), |v| check_len(key, v, max))
}

/// Checks a required string is not blank.
pub fn check_non_empty(key: &str, value: &str) -> Result<(), ArgError> {
    if value.trim().is_empty() {
        Err(ArgError::Empty {
            key: key.to_owned(),
        })
    } else {
        Ok(())
    }
}

/// Checks a list holds at most `max` items.
pub fn check_count<T>(key: &'static str, items: &[T], max: usize) -> Result<(), ArgError> {
    if items.len() > max {
        Err(ArgError::TooMany {
            key,
            count: items.len(),
            max,
        })
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
    then: &'static str,
) -> Result<(), ArgError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(ArgError::OutOfRange {
            key: key.to_owned(),
            min: *range.start(),
            max: *range.end(),
            got: value,
            then,
        })
    }
}
