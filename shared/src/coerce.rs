//! The lax argument coercion the hub applies (the original's): one rule,
//! shared so that whoever predicts how the hub reads an argument (the
//! proxy's long-poll timeout) reads it the same way.

use serde_json::Value;

/// A whole number as the hub takes it: a JSON integer, a number with no
/// fraction (`15.0`), or a string holding an integer (`"15"`, `" 15 "`).
#[expect(
    clippy::cast_possible_truncation,
    reason = "the float is whole and below 9e15 in magnitude, so it is exact in i64"
)]
pub fn whole_number(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

/// A boolean as the hub takes it: a JSON boolean, `0` or `1`, or a word
/// (`"true"`, `"yes"`, `"on"`, `"1"` and their opposites, any case).
pub fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => None,
        },
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_whole_floats_and_integer_strings() {
        for (value, want) in [
            (json!(15), Some(15)),
            (json!(15.0), Some(15)),
            (json!("15"), Some(15)),
            (json!(" -3 "), Some(-3)),
            (json!(1.5), None),
            (json!("15.0"), None),
            (json!("x"), None),
            (json!(true), None),
            (json!(null), None),
            (json!(1e300), None),
        ] {
            assert_eq!(whole_number(&value), want, "{value}");
        }
    }
}
