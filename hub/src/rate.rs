//! Rate limits for calls that reach outside the hub (a webhook test ping):
//! at most one per key every `every`, and at most `burst` in any window of
//! `burst × overall` across keys, as a generic cell rate (each allowed call
//! moves a theoretical arrival time on by its interval; a call is allowed
//! while that time is no more than the burst ahead of now).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Keys remembered before the ones whose limit has lapsed are forgotten.
const KEYS_KEEP: usize = 1024;

/// A limit per key and one over all keys.
pub struct Limiter<K> {
    every: Duration,
    overall: Duration,
    burst: u32,
    state: Mutex<State<K>>,
}

struct State<K> {
    /// Per key: when its next call is allowed.
    keys: HashMap<K, Instant>,
    /// Over all keys: the theoretical arrival time of the next call.
    all: Option<Instant>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// One call per key every `every`; over all keys, one every `overall`
    /// with bursts of up to `burst`.
    pub fn new(every: Duration, overall: Duration, burst: u32) -> Self {
        Self {
            every,
            overall,
            burst: burst.max(1),
            state: Mutex::new(State {
                keys: HashMap::new(),
                all: None,
            }),
        }
    }

    /// Counts a call for `key` when both limits allow it now; else how long
    /// until they would (nothing is counted then).
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let key_wait = state
            .keys
            .get(key)
            .map_or(Duration::ZERO, |next| next.saturating_duration_since(now));
        let tat = state.all.map_or(now, |t| t.max(now));
        let ahead = self.overall * (self.burst - 1);
        let all_wait = tat.saturating_duration_since(now).saturating_sub(ahead);
        let wait = key_wait.max(all_wait);
        if !wait.is_zero() {
            return Err(wait);
        }
        if state.keys.len() >= KEYS_KEEP {
            state.keys.retain(|_, next| *next > now);
        }
        state.keys.insert(key.clone(), now + self.every);
        state.all = Some(tat + self.overall);
        Ok(())
    }
}

/// Whole seconds to wait, rounded up (a caller told 0 s would retry at once).
pub fn retry_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn one_per_key_every_interval() {
        let limit = Limiter::new(10 * S, S, 100);
        assert_eq!(limit.check(&1), Ok(()));
        assert_eq!(limit.check(&1), Err(10 * S));
        assert_eq!(limit.check(&2), Ok(()), "another key has its own limit");
        tokio::time::advance(9 * S).await;
        assert_eq!(limit.check(&1), Err(S));
        tokio::time::advance(S).await;
        assert_eq!(limit.check(&1), Ok(()), "allowed again at the edge");
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_over_all_keys_then_one_per_interval() {
        let limit = Limiter::new(Duration::ZERO, 10 * S, 6);
        for key in 0..6 {
            assert_eq!(limit.check(&key), Ok(()), "call {key} is in the burst");
        }
        assert_eq!(limit.check(&6), Err(10 * S), "the seventh waits");
        tokio::time::advance(9 * S).await;
        assert_eq!(limit.check(&6), Err(S));
        tokio::time::advance(S).await;
        assert_eq!(limit.check(&6), Ok(()));
        assert_eq!(
            limit.check(&7),
            Err(10 * S),
            "one per interval after the burst"
        );
        tokio::time::advance(60 * S).await;
        for key in 10..16 {
            assert_eq!(
                limit.check(&key),
                Ok(()),
                "a quiet minute refills the burst"
            );
        }
        assert!(limit.check(&16).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_call_counts_for_nothing() {
        let limit = Limiter::new(10 * S, 10 * S, 2);
        assert_eq!(limit.check(&1), Ok(()));
        for _ in 0..5 {
            assert!(limit.check(&1).is_err());
        }
        assert_eq!(limit.check(&2), Ok(()), "refusals used none of the burst");
    }

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(retry_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_seconds(Duration::from_secs(7)), 7);
        assert_eq!(retry_seconds(Duration::from_millis(7001)), 8);
    }
}
