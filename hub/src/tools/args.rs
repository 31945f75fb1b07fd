//! Tool arguments: typed getters over the JSON object a client sent, with
//! the original's lax coercion (`"5"` is 5, `"true"` is true) and errors
//! that say what to send instead.

use serde_json::{Map, Value};
use shared::catalog::is_client_injected;

/// A bad argument; becomes an `isError: true` result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError(pub String);

pub type ArgResult<T> = Result<T, ArgError>;

/// The arguments of one call.
pub struct Args {
    map: Map<String, Value>,
}

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

impl Args {
    /// Takes the `arguments` value; refuses anything but an object (or none)
    /// and names unknown keys. Arguments a client adds for itself
    /// ([`CLIENT_INJECTED_ARGS`](shared::catalog::CLIENT_INJECTED_ARGS)) are
    /// dropped first.
    pub fn new(value: Option<Value>, allowed: &[&str]) -> ArgResult<Self> {
        let mut map = match value {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map,
            Some(other) => {
                return Err(ArgError(format!(
                    "arguments must be an object, got {}",
                    kind(&other)
                )));
            }
        };
        map.retain(|key, _| allowed.contains(&key.as_str()) || !is_client_injected(key));
        let unknown: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !allowed.contains(k))
            .collect();
        if !unknown.is_empty() {
            return Err(ArgError(format!(
                "unknown argument{} {}; this tool takes: {}",
                if unknown.len() == 1 { "" } else { "s" },
                unknown.join(", "),
                allowed.join(", ")
            )));
        }
        Ok(Self { map })
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub fn opt_str(&self, key: &str) -> ArgResult<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(ArgError(format!(
                "{key} must be a string, got {}",
                kind(other)
            ))),
        }
    }

    /// A cursor-like value: a string, or a whole number taken as its text.
    pub fn opt_str_or_int(&self, key: &str) -> ArgResult<Option<String>> {
        match self.get(key) {
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
            _ => self.opt_str(key),
        }
    }

    pub fn req_str(&self, key: &str) -> ArgResult<String> {
        self.opt_str(key)?
            .ok_or_else(|| ArgError(format!("{key} is required (a string)")))
    }

    pub fn opt_i64(&self, key: &str) -> ArgResult<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => shared::coerce::whole_number(v).map(Some).ok_or_else(|| {
                let got = match v {
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => format!("\"{s}\""),
                    other => kind(other).to_owned(),
                };
                ArgError(format!("{key} must be a whole number, got {got}"))
            }),
        }
    }

    pub fn req_i64(&self, key: &str) -> ArgResult<i64> {
        self.opt_i64(key)?
            .ok_or_else(|| ArgError(format!("{key} is required (a whole number)")))
    }

    pub fn opt_bool(&self, key: &str) -> ArgResult<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(Some(true)),
                "false" | "0" | "no" | "off" => Ok(Some(false)),
                _ => Err(ArgError(format!(
                    "{key} must be true or false, got \"{s}\""
                ))),
            },
            Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(Some(false)),
            Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(Some(true)),
            Some(other) => Err(ArgError(format!(
                "{key} must be true or false, got {}",
                kind(other)
            ))),
        }
    }

    pub fn bool_or(&self, key: &str, default: bool) -> ArgResult<bool> {
        Ok(self.opt_bool(key)?.unwrap_or(default))
    }

    pub fn req_bool(&self, key: &str) -> ArgResult<bool> {
        self.opt_bool(key)?
            .ok_or_else(|| ArgError(format!("{key} is required (true or false)")))
    }

    /// A list of strings; a single string is taken as a one-item list.
    pub fn opt_strings(&self, key: &str) -> ArgResult<Option<Vec<String>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(ArgError(format!(
                        "{key} must be a list of strings, but an item is {}",
                        kind(other)
                    ))),
                })
                .collect::<ArgResult<Vec<_>>>()
                .map(Some),
            Some(other) => Err(ArgError(format!(
                "{key} must be a list of strings, got {}",
                kind(other)
            ))),
        }
    }
}

/// Checks a string's length in characters.
pub fn check_len(key: &str, value: &str, max: usize) -> ArgResult<()> {
    let n = value.chars().count();
    if n > max {
        Err(ArgError(format!(
            "{key} is {n} characters; the limit is {max}"
        )))
    } else {
        Ok(())
    }
}

/// Checks a required string is not blank.
pub fn check_non_empty(key: &str, value: &str) -> ArgResult<()> {
    if value.trim().is_empty() {
        Err(ArgError(format!("{key} must not be empty")))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn coercion_and_errors() {
        let a = Args::new(
            Some(json!({"n": "5", "b": "true", "s": "x", "l": "one"})),
            &["n", "b", "s", "l"],
        )
        .unwrap();
        assert_eq!(a.opt_i64("n").unwrap(), Some(5));
        assert_eq!(a.opt_bool("b").unwrap(), Some(true));
        assert_eq!(a.opt_strings("l").unwrap(), Some(vec!["one".to_owned()]));
        assert!(a.opt_i64("s").is_err());
        assert!(a.req_str("missing").unwrap_err().0.contains("required"));
        let err = Args::new(Some(json!({"sesion_id": "x"})), &["session_id"])
            .err()
            .unwrap();
        assert!(
            err.0.contains("sesion_id") && err.0.contains("session_id"),
            "{}",
            err.0
        );
        assert!(Args::new(Some(json!([1])), &[]).is_err());
    }

    #[test]
    fn client_injected_arguments_are_dropped_before_the_check() {
        let a = Args::new(
            Some(json!({"s": "x", "wait_for_previous": true, "random_string": "r"})),
            &["s"],
        )
        .unwrap();
        assert!(a.get("wait_for_previous").is_none());
        let err = Args::new(
            Some(json!({"chanel": "x", "wait_for_previous": 1})),
            &["channel"],
        )
        .err()
        .unwrap();
        assert_eq!(err.0, "unknown argument chanel; this tool takes: channel");
    }
}
