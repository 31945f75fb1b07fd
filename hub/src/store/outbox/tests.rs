use std::collections::HashSet;
use std::time::Duration;

use super::*;
use crate::store::testing::*;

/// A store with webhook 1 and `n` events queued for it.
async fn outbox_with(n: usize) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data.redb")).unwrap();
    store
        .write(Durability::Durable, move |t| {
            t.put_webhook(&hook(1))?;
            for _ in 0..n {
                let e = t.append_event(new_event("all"))?;
                t.enqueue_deliveries(&e)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    (dir, store)
}

fn first(event_id: u64) -> DueDelivery {
    DueDelivery {
        webhook_id: 1,
        event_id,
        queued: Queued::First,
        attempt: 1,
    }
}

fn failed_at(at_ms: i64, verdict: Verdict) -> AttemptResult {
    AttemptResult {
        at_ms,
        status_code: Some(500),
        latency_ms: Some(3),
        error: Some("answered 500".into()),
        verdict,
    }
}

async fn record(store: &Store, due: DueDelivery, result: AttemptResult, limit_ms: i64) {
    store
        .write(Durability::Lazy, move |t| {
            t.record_attempt(&due, result, limit_ms)
        })
        .await
        .unwrap();
}

const DAY: i64 = 86_400_000;

#[tokio::test]
async fn first_attempts_go_in_event_order_and_a_retry_waits_on_its_own() {
    let (_dir, store) = outbox_with(5).await;
    // The enqueueing commit woke the worker's signal.
    tokio::time::timeout(Duration::from_secs(5), store.outbox_signal().notified())
        .await
        .expect("the outbox signal fired");
    let none = HashSet::new();
    let (firsts, from) = store
        .read(move |s| s.first_deliveries(1, 0, 3, &HashSet::from([1])))
        .await
        .unwrap();
    assert_eq!(firsts, [2, 3, 4], "in flight ones are passed over");
    assert_eq!(from, 1, "the next scan starts at the oldest still waiting");

    let t0 = 1_000_000;
    record(
        &store,
        first(2),
        failed_at(t0, Verdict::RetryAt(t0 + 5000)),
        DAY,
    )
    .await;
    let (firsts, due_now, next, due_later, pending) = store
        .read(move |s| {
            Ok((
                s.first_deliveries(1, 0, 10, &none)?.0,
                s.due_retries(1, t0 as u64, 10, &none)?,
                s.next_retry(1, t0 as u64)?,
                s.due_retries(1, t0 as u64 + 5000, 10, &none)?,
                s.pending_deliveries(1)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(
        firsts,
        [1, 3, 4, 5],
        "the failed one no longer holds a place"
    );
    assert!(due_now.is_empty());
    assert_eq!(next, Some(t0 as u64 + 5000));
    assert_eq!(due_later, [(t0 as u64 + 5000, 2, 1)]);
    assert_eq!(pending, 5);

    let retry = DueDelivery {
        webhook_id: 1,
        event_id: 2,
        queued: Queued::Retry {
            due_ms: t0 as u64 + 5000,
        },
        attempt: 2,
    };
    let ok = AttemptResult {
        at_ms: t0 + 5001,
        status_code: Some(200),
        latency_ms: Some(1),
        error: None,
        verdict: Verdict::Delivered,
    };
    record(&store, retry, ok, DAY).await;
    let (log, hook, pending) = store
        .read(|s| {
            Ok((
                s.delivery_log(1, 10, Some(2))?,
                s.webhook(1)?,
                s.pending_deliveries(1)?,
            ))
        })
        .await
        .unwrap();
    let states: Vec<(u32, AttemptStatus)> = log.iter().map(|r| (r.attempt, r.status)).collect();
    assert_eq!(
        states,
        [(2, AttemptStatus::Delivered), (1, AttemptStatus::Retrying)],
        "newest first"
    );
    assert_eq!(log[1].next_attempt_ms, Some(t0 + 5000));
    assert_eq!(log[0].delivery_id, "evt_2_wh_1");
    assert_eq!(
        hook.unwrap().failing_since,
        None,
        "a success ends the streak"
    );
    assert_eq!(pending, 4);
}

#[tokio::test]
async fn each_webhook_scans_from_its_own_oldest_waiting_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data.redb")).unwrap();
    store
        .write(Durability::Durable, |t| {
            t.put_webhook(&hook(1))?;
            t.put_webhook(&WebhookRecord {
                channel: Some("repo:".into()),
                ..hook(2)
            })?;
            for channel in ["all", "all", "repo:x", "all", "repo:y"] {
                let e = t.append_event(new_event(channel))?;
                t.enqueue_deliveries(&e)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let none = HashSet::new();
    let (firsts, from) = store
        .read(move |s| s.first_deliveries(2, 0, 10, &none))
        .await
        .unwrap();
    assert_eq!((firsts, from), (vec![3, 5], 3));
    // Once webhook 2 has both, its next scan starts past every row.
    for event_id in [3, 5] {
        let due = DueDelivery {
            webhook_id: 2,
            ..first(event_id)
        };
        let ok = AttemptResult {
            at_ms: 1,
            status_code: Some(204),
            latency_ms: Some(1),
            error: None,
            verdict: Verdict::Delivered,
        };
        record(&store, due, ok, DAY).await;
    }
    let none = HashSet::new();
    let (again, from, one) = store
        .read(move |s| {
            let (again, from) = s.first_deliveries(2, 3, 10, &none)?;
            Ok((again, from, s.first_deliveries(1, 0, 10, &none)?.0))
        })
        .await
        .unwrap();
    assert!(again.is_empty());
    assert_eq!(from, 6);
    assert_eq!(one, [1, 2, 3, 4, 5], "webhook 1 still has all five");
    // A redelivery is a retry due at once with no attempts made.
    store
        .write(Durability::Durable, |t| t.redeliver(2, 3, 50))
        .await
        .unwrap();
    let none = HashSet::new();
    let due = store
        .read(move |s| s.due_retries(2, 50, 10, &none))
        .await
        .unwrap();
    assert_eq!(due, [(50, 3, 0)]);
}

#[tokio::test]
async fn failing_for_the_limit_disables_and_ends_what_is_pending() {
    let (_dir, store) = outbox_with(3).await;
    let t0 = 1_000_000;
    record(
        &store,
        first(1),
        failed_at(t0, Verdict::RetryAt(t0 + 1000)),
        DAY,
    )
    .await;
    record(
        &store,
        first(2),
        failed_at(t0 + DAY - 1, Verdict::RetryAt(t0 + DAY)),
        DAY,
    )
    .await;
    let hook1 = store.read(|s| s.webhook(1)).await.unwrap().unwrap();
    assert!(hook1.active, "23:59:59.999 of failures is not yet a day");
    assert_eq!(hook1.failing_since, Some(t0));

    record(
        &store,
        first(3),
        failed_at(t0 + DAY, Verdict::RetryAt(t0 + DAY + 5000)),
        DAY,
    )
    .await;
    let (hook1, pending, log) = store
        .read(|s| {
            Ok((
                s.webhook(1)?.unwrap(),
                s.pending_deliveries(1)?,
                s.delivery_log(1, 10, None)?,
            ))
        })
        .await
        .unwrap();
    assert!(!hook1.active);
    assert_eq!(hook1.disabled_at, Some(t0 + DAY));
    let reason = hook1.disabled_reason.clone().unwrap();
    assert!(reason.contains("1d"), "{reason}");
    let wire = hook1.to_wire();
    assert!(wire.disabled_at.is_some() && wire.failing_since.is_some());
    assert_eq!(pending, 0, "nothing waits for a disabled webhook");
    // Event 3's attempt failed for good; 1 and 2 were ended, with why.
    assert_eq!(log[0].status, AttemptStatus::Failed);
    let ended: Vec<u64> = log
        .iter()
        .filter(|r| {
            r.error
                .as_deref()
                .is_some_and(|e| e.starts_with("webhook disabled"))
        })
        .map(|r| r.event_id)
        .collect();
    assert_eq!(ended, [2, 1]);
    assert!(log[0].next_attempt_ms.is_none());
}

#[tokio::test]
async fn gone_disables_at_once_and_delete_purges() {
    let (_dir, store) = outbox_with(2).await;
    record(&store, first(1), failed_at(5, Verdict::Gone), DAY).await;
    let hook1 = store.read(|s| s.webhook(1)).await.unwrap().unwrap();
    assert!(!hook1.active);
    assert!(hook1.disabled_reason.unwrap().contains("410"));

    store
        .write(Durability::Durable, |t| {
            t.redeliver(1, 1, 7)?;
            t.delete_webhook(1)
        })
        .await
        .unwrap();
    let (log, pending) = store
        .read(|s| Ok((s.delivery_log(1, 10, None)?, s.pending_deliveries(1)?)))
        .await
        .unwrap();
    assert!(log.is_empty() && pending == 0);
    // An attempt that finishes after its webhook was deleted leaves no trace.
    record(&store, first(2), failed_at(6, Verdict::Failed), DAY).await;
    assert!(
        store
            .read(|s| s.delivery_log(1, 10, None))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_log_keeps_the_newest_rows() {
    let (_dir, store) = outbox_with(0).await;
    store
        .write(Durability::Lazy, |t| {
            for i in 0..(DELIVERY_LOG_KEEP + 5) {
                t.log_attempt(
                    1,
                    &AttemptRecord {
                        event_id: i + 1,
                        delivery_id: delivery_id(i + 1, 1),
                        attempt: 1,
                        status: AttemptStatus::Delivered,
                        at_ms: 0,
                        status_code: Some(200),
                        latency_ms: Some(1),
                        error: None,
                        next_attempt_ms: None,
                    },
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let log = store.read(|s| s.delivery_log(1, 5000, None)).await.unwrap();
    assert_eq!(log.len() as u64, DELIVERY_LOG_KEEP);
    assert_eq!(log[0].event_id, DELIVERY_LOG_KEEP + 5);
    assert_eq!(log.last().unwrap().event_id, 6);
}
