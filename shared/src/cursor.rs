//! Cursors are event ids written as decimal strings. Parsing follows the
//! original's `int()`: surrounding white space and a leading `+` are fine.

use std::fmt;

/// Why a cursor string is not an event id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CursorError {
    /// Not an integer at all.
    NotANumber(String),
    /// An integer below zero.
    Negative(String),
}

impl fmt::Display for CursorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotANumber(raw) => write!(f, "Invalid cursor '{raw}': expected an event id"),
            Self::Negative(raw) => write!(f, "Invalid cursor '{raw}': must not be negative"),
        }
    }
}

impl std::error::Error for CursorError {}

/// Parses a cursor into an event id.
pub fn parse(raw: &str) -> Result<u64, CursorError> {
    let text = raw.trim();
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return Err(CursorError::NotANumber(raw.to_owned()));
    }
    let digits: String = digits.chars().filter(|c| *c != '_').collect();
    if digits.is_empty() {
        return Err(CursorError::NotANumber(raw.to_owned()));
    }
    if negative {
        return if digits.bytes().all(|b| b == b'0') {
            Ok(0)
        } else {
            Err(CursorError::Negative(raw.to_owned()))
        };
    }
    digits
        .parse::<u64>()
        .map_err(|_| CursorError::NotANumber(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_int() {
        assert_eq!(parse("42"), Ok(42));
        assert_eq!(parse(" +42 "), Ok(42));
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("-0"), Ok(0));
        assert_eq!(parse("-1"), Err(CursorError::Negative("-1".into())));
        assert_eq!(parse("abc"), Err(CursorError::NotANumber("abc".into())));
        assert_eq!(parse(""), Err(CursorError::NotANumber(String::new())));
        assert_eq!(parse("1.5"), Err(CursorError::NotANumber("1.5".into())));
        assert!(parse("99999999999999999999999").is_err());
    }
}
