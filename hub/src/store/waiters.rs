//! Long-polls waiting on particular channels, and on sessions' ends: a
//! commit wakes only those whose channels it appended to or whose sessions
//! it ended (a bus with thousands of quiet waiters does no work for them on
//! every publish).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// The waiting long-polls, by what wakes them.
#[derive(Default)]
pub(super) struct ChannelWaiters {
    by_key: Mutex<HashMap<Interest, HashMap<u64, Arc<Waiter>>>>,
    next: AtomicU64,
}

/// What a waiter is woken for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Interest {
    /// An event appended on this channel.
    Channel(String),
    /// This session ended.
    End(String),
}

/// One long-poll's wake-up: a permit, and whether a session it cares
/// about has ended since it last woke.
#[derive(Default)]
pub(super) struct Waiter {
    notify: Notify,
    ended: AtomicBool,
}

impl ChannelWaiters {
    /// The waiters by what wakes them.
    pub(super) fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Interest, HashMap<u64, Arc<Waiter>>>> {
        // A poisoned lock only means a panic elsewhere; the map is plain data.
        self.by_key.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers one long-poll's interest in `channels` and in the ends of
    /// `sessions`, until the returned wait is dropped.
    pub(super) fn register(
        this: &Arc<Self>,
        channels: &[String],
        sessions: &[String],
    ) -> ChannelWait {
        let id = this.next.fetch_add(1, Ordering::Relaxed);
        let waiter = Arc::new(Waiter::default());
        let mut keys: Vec<Interest> = channels
            .iter()
            .cloned()
            .map(Interest::Channel)
            .chain(sessions.iter().cloned().map(Interest::End))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        {
            let mut map = this.lock();
            for key in &keys {
                map.entry(key.clone())
                    .or_default()
                    .insert(id, waiter.clone());
            }
        }
        ChannelWait {
            waiters: this.clone(),
            id,
            keys,
            waiter,
        }
    }

    /// Wakes the waiters on `channels`, and those on `ended` sessions
    /// (marked so, before they wake).
    pub(super) fn wake(&self, channels: &[String], ended: &[String]) {
        let map = self.lock();
        if map.is_empty() {
            return;
        }
        for session in ended {
            let key = Interest::End(session.clone());
            for waiter in map.get(&key).into_iter().flat_map(HashMap::values) {
                waiter.ended.store(true, Ordering::Release);
                waiter.notify.notify_one();
            }
        }
        for channel in channels {
            let key = Interest::Channel(channel.clone());
            for waiter in map.get(&key).into_iter().flat_map(HashMap::values) {
                waiter.notify.notify_one();
            }
        }
    }
}

/// Why a [`ChannelWait`] woke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// An event on one of its channels committed.
    Events,
    /// A session it waits on ended.
    Ended,
}

/// One long-poll's interest in some channels and sessions; dropping it
/// ends the interest.
pub struct ChannelWait {
    waiters: Arc<ChannelWaiters>,
    id: u64,
    keys: Vec<Interest>,
    waiter: Arc<Waiter>,
}

impl ChannelWait {
    /// Resolves once an event on one of the channels has committed, or one
    /// of the sessions has ended, since this wait was made or last resolved
    /// (a wake-up is never lost); says which.
    pub async fn changed(&self) -> Woken {
        self.waiter.notify.notified().await;
        if self.waiter.ended.swap(false, Ordering::AcqRel) {
            Woken::Ended
        } else {
            Woken::Events
        }
    }
}

impl Drop for ChannelWait {
    fn drop(&mut self) {
        let mut map = self.waiters.lock();
        for key in &self.keys {
            if let Some(waiting) = map.get_mut(key) {
                waiting.remove(&self.id);
                if waiting.is_empty() {
                    map.remove(key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Woken;
    use crate::store::testing::*;

    #[tokio::test]
    async fn a_wait_wakes_when_a_session_it_waits_on_ends() {
        let (_dir, store) = store_with(0).await;
        store
            .write(Durability::Durable, |t| {
                t.put_session(&session("a"))?;
                t.put_session(&session("b"))
            })
            .await
            .unwrap();
        let wait = store.wait_for(&["session:a".to_owned()], &["a".to_owned()]);
        let end = |id: &'static str| {
            store.write(Durability::Durable, move |t| {
                t.put_session(&SessionRecord {
                    deleted_at: Some(1),
                    ..session(id)
                })
            })
        };
        end("b").await.unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(0), wait.changed()).await;
        assert!(quiet.is_err(), "another session's end does not wake it");
        end("a").await.unwrap();
        let woken = tokio::time::timeout(Duration::from_secs(5), wait.changed())
            .await
            .expect("woken by its session's end");
        assert_eq!(woken, Woken::Ended);
        store
            .write(Durability::Durable, |t| {
                t.append_event(new_event("session:a"))
            })
            .await
            .unwrap();
        assert_eq!(wait.changed().await, Woken::Events, "then events again");
        drop(wait);
        assert!(store.channel_waiters.lock().is_empty());
    }
}
