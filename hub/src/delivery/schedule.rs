//! When a failed attempt is tried again: the backoff schedule, its jitter,
//! and the `Retry-After` a receiver may ask for.

use std::time::{Duration, SystemTime};

/// Each retry waits its nominal delay times a factor in `1 ± JITTER`.
pub const JITTER: f64 = 0.2;
/// The longest `Retry-After` honoured; a longer one is cut to this.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);

/// The wait before the next attempt after `attempts_made` failed ones, or
/// `None` when the schedule is spent (the delivery has failed). `unit` is a
/// random number in `[0, 1)` that picks the jitter; a `Retry-After` (cut to
/// [`RETRY_AFTER_MAX`]) is a floor.
pub fn retry_delay(
    attempts_made: u32,
    delays: &[Duration],
    unit: f64,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let index = usize::try_from(attempts_made).ok()?.checked_sub(1)?;
    let base = *delays.get(index)?;
    let factor = 1.0 - JITTER + 2.0 * JITTER * unit.clamp(0.0, 1.0);
    let wait = base.mul_f64(factor);
    Some(match retry_after {
        Some(floor) => wait.max(floor.min(RETRY_AFTER_MAX)),
        None => wait,
    })
}

/// A `Retry-After` value: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at: SystemTime = time::PrimitiveDateTime::parse(value, &format)
        .ok()?
        .assume_utc()
        .into();
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn secs(list: &[u64]) -> Vec<Duration> {
        list.iter().map(|s| Duration::from_secs(*s)).collect()
    }

    #[test]
    fn the_schedule_is_about_5s_30s_2m_10m_30m_1h_then_failed() {
        let delays = secs(&[5, 30, 120, 600, 1800, 3600]);
        let nominal: Vec<Option<Duration>> = (1..=7)
            .map(|n| retry_delay(n, &delays, 0.5, None))
            .collect();
        assert_eq!(
            nominal,
            [
                Some(Duration::from_secs(5)),
                Some(Duration::from_secs(30)),
                Some(Duration::from_secs(120)),
                Some(Duration::from_secs(600)),
                Some(Duration::from_secs(1800)),
                Some(Duration::from_secs(3600)),
                None,
            ],
            "seven attempts in all, then failed"
        );
        assert_eq!(retry_delay(0, &delays, 0.5, None), None);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let delays = secs(&[30]);
        for i in 0..=100 {
            let unit = f64::from(i) / 100.0;
            let d = retry_delay(1, &delays, unit, None).unwrap();
            assert!(
                d >= Duration::from_secs(24) && d <= Duration::from_secs(36),
                "{d:?}"
            );
        }
        assert_eq!(
            retry_delay(1, &delays, 0.0, None),
            Some(Duration::from_secs(24))
        );
        assert_eq!(
            retry_delay(1, &delays, 1.0, None),
            Some(Duration::from_secs(36))
        );
        // Out-of-range randomness is clamped, never a negative wait.
        assert_eq!(
            retry_delay(1, &delays, -3.0, None),
            Some(Duration::from_secs(24))
        );
    }

    #[test]
    fn retry_after_is_a_floor_with_a_cap() {
        let delays = secs(&[5, 30]);
        let ra = |s| Some(Duration::from_secs(s));
        assert_eq!(retry_delay(1, &delays, 0.5, ra(60)), ra(60));
        assert_eq!(
            retry_delay(1, &delays, 0.5, ra(1)),
            ra(5),
            "never sooner than the schedule"
        );
        assert_eq!(
            retry_delay(1, &delays, 0.5, ra(86_400)),
            Some(RETRY_AFTER_MAX)
        );
        assert_eq!(
            retry_delay(3, &delays, 0.5, ra(10)),
            None,
            "the schedule still ends"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
