//! [`Json`]: a JSON text the hub made itself, carried to the wire as is.
//!
//! Replies are serialised once. A large one (`list_sessions` at thousands of
//! sessions is megabytes) is spliced from parts that `serde_json` produced, and
//! parsing it again only to prove it valid would cost more than building it;
//! this type is that proof instead.

use serde::Serialize;

/// A valid JSON text: made by `serde_json`, or spliced from such texts.
#[derive(Debug, Clone)]
pub struct Json(String);

impl Json {
    /// `value` serialised (`null` if it cannot be, which no hub type does).
    pub fn of(value: &impl Serialize) -> Self {
        Self(serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned()))
    }

    /// Wraps `text`, which the caller built only from JSON texts `serde_json`
    /// produced, joined by JSON punctuation.
    pub fn spliced(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, for framing on the wire.
    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn of_is_serde_json() {
        let v = serde_json::json!({"a": [1, "two\"", null]});
        assert_eq!(Json::of(&v).as_str(), serde_json::to_string(&v).unwrap());
    }
}
