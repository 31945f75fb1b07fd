//! Timestamps on the wire: RFC 3339 in UTC with microseconds, e.g.
//! `2026-11-29T16:04:28.051614Z`.

use ::time::format_description::well_known::Rfc3339;
use ::time::{OffsetDateTime, UtcOffset, macros::format_description};

/// Milliseconds since the Unix epoch, the unit the hub stores.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the current time in milliseconds is near 2e12, far inside i64"
)]
pub fn now_ms() -> i64 {
    let now = OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Microseconds since the Unix epoch, the unit of event timestamps.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the current time in microseconds is near 2e15, far inside i64"
)]
pub fn now_micros() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000) as i64
}

/// Formats epoch microseconds as RFC 3339 UTC.
pub fn format_micros(micros: i64) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(UtcOffset::UTC)
        .format(&fmt)
        // The format has only numeric components, which always format.
        .unwrap_or_default()
}

/// Formats epoch milliseconds as RFC 3339 UTC.
pub fn format_ms(ms: i64) -> String {
    format_micros(ms.saturating_mul(1000))
}

/// Parses an RFC 3339 timestamp back to epoch milliseconds.
#[expect(
    clippy::cast_possible_truncation,
    reason = "an RFC 3339 year has four digits: at most about 2.5e14 ms, inside i64"
)]
pub fn parse_ms(text: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_utc() {
        let s = format_ms(1_764_432_268_051);
        assert_eq!(s, "2025-11-29T16:04:28.051000Z");
        assert_eq!(parse_ms(&s), Some(1_764_432_268_051));
    }
}
