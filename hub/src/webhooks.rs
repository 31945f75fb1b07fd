//! Webhook rules: which events a webhook takes, what a finished attempt
//! does to its delivery and to the webhook's health (a 410, or every
//! attempt failing for the disable window, disables it and ends what is
//! pending), and where a webhook may send (the private-address policy of
//! `--webhook-deny-private`). The store keeps what these decide; the
//! delivery worker and the tools call them.

use std::net::IpAddr;

use crate::egress;
use crate::store::{
    AttemptRecord, AttemptResult, AttemptStatus, DueDelivery, EventRecord, StoreError, Tx, Verdict,
    WebhookRecord, delivery_id,
};

/// Whether a published event goes to this webhook (the original's rule):
/// it is active, its channel filter matches, and its type list (if any)
/// names the event's type.
pub fn takes(hook: &WebhookRecord, event: &EventRecord) -> bool {
    hook.active
        && shared::channel::filter_matches(hook.channel.as_deref(), &event.channel)
        && hook
            .event_types
            .as_ref()
            .is_none_or(|types| types.contains(&event.event_type))
}

/// Whether a session lifecycle event goes to this webhook: only by opt-in
/// (`include_system`).
pub fn takes_system(hook: &WebhookRecord, event: &EventRecord) -> bool {
    hook.include_system && takes(hook, event)
}

/// What one attempt's outcome does to its webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// When the current run of failed attempts began; `None` after a success.
    pub failing_since: Option<i64>,
    /// Why the webhook must be disabled now, when it must.
    pub disable: Option<String>,
}

/// The webhook's health after an attempt: a success ends a failure run; a
/// 410, or a failure `disable_after_ms` or more into a run, disables an
/// active webhook.
pub fn health_after(hook: &WebhookRecord, result: &AttemptResult, disable_after_ms: i64) -> Health {
    let at = result.at_ms;
    if result.verdict == Verdict::Delivered {
        return Health {
            failing_since: None,
            disable: None,
        };
    }
    let disable = if result.verdict == Verdict::Gone {
        Some("the endpoint answered 410 Gone".to_owned())
    } else {
        hook.failing_since
            .filter(|since| at.saturating_sub(*since) >= disable_after_ms)
            .map(|since| {
                format!(
                    "every attempt failed for {} (since {})",
                    crate::config::format_span(disable_after_ms),
                    shared::time::format_ms(since)
                )
            })
    };
    Health {
        failing_since: hook.failing_since.or(Some(at)),
        disable: disable.filter(|_| hook.active),
    }
}

/// Records one finished attempt in the worker's write: the delivery leaves
/// its queue, is queued again when a retry is due and the webhook still
/// takes deliveries, gets its log row, and the webhook's health follows.
/// An attempt whose webhook was deleted meanwhile leaves no trace.
pub fn record_attempt(
    tx: &mut Tx<'_>,
    due: &DueDelivery,
    result: AttemptResult,
    disable_after_ms: i64,
) -> Result<(), StoreError> {
    tx.take_delivery(due)?;
    let Some(mut hook) = tx.cached_webhook(due.webhook_id)? else {
        return Ok(());
    };
    let at = result.at_ms;
    let health = health_after(&hook, &result, disable_after_ms);
    let (status, next_attempt_ms) = match result.verdict {
        Verdict::Delivered => (AttemptStatus::Delivered, None),
        Verdict::RetryAt(when) if hook.active && health.disable.is_none() => {
            tx.queue_retry(due, when)?;
            (AttemptStatus::Retrying, Some(when))
        }
        _ => (AttemptStatus::Failed, None),
    };
    tx.log_attempt(
        hook.id,
        &AttemptRecord {
            event_id: due.event_id,
            delivery_id: delivery_id(due.event_id, due.webhook_id),
            attempt: due.attempt,
            status,
            at_ms: at,
            status_code: result.status_code,
            latency_ms: result.latency_ms,
            error: result.error,
            next_attempt_ms,
        },
    )?;
    let changed = hook.failing_since != health.failing_since;
    hook.failing_since = health.failing_since;
    if let Some(reason) = health.disable {
        tracing::warn!(webhook_id = hook.id, reason = %reason, "webhook disabled");
        hook.active = false;
        hook.disabled_at = Some(at);
        let why = format!("webhook disabled: {reason}");
        hook.disabled_reason = Some(reason);
        tx.put_webhook(&hook)?;
        tx.end_pending_deliveries(hook.id, &why, at)?;
    } else if changed {
        tx.put_webhook(&hook)?;
    }
    Ok(())
}

/// The private address `url` names literally, when this hub refuses those
/// (`--webhook-deny-private`): checked at registration and before a send.
pub fn refused_literal(url: &str, deny_private: bool) -> Option<String> {
    if deny_private {
        egress::private_literal(url)
    } else {
        None
    }
}

/// Whether a resolved address may be connected to under
/// `--webhook-deny-private`: the check at connect time, so a name cannot be
/// re-pointed at a private address after the literal check.
pub fn public_address(ip: IpAddr) -> bool {
    !egress::is_private(ip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::*;

    fn event(channel: &str, event_type: &str) -> EventRecord {
        EventRecord {
            id: 1,
            event_type: event_type.into(),
            payload: String::new(),
            session_id: "s".into(),
            timestamp: 0,
            channel: channel.into(),
            correlation_id: None,
            signal_level: None,
            title: None,
            tags: None,
        }
    }

    #[test]
    fn a_webhook_takes_what_its_filters_name() {
        let any = hook(1);
        let repo = WebhookRecord {
            channel: Some("repo:x".into()),
            event_types: Some(vec!["task_completed".into()]),
            ..hook(2)
        };
        let paused = WebhookRecord {
            active: false,
            ..hook(3)
        };
        let done = event("repo:x", "task_completed");
        assert!(takes(&any, &done) && takes(&repo, &done));
        assert!(!takes(&repo, &event("repo:y", "task_completed")));
        assert!(!takes(&repo, &event("repo:x", "note")));
        assert!(!takes(&paused, &done));
        let started = event("all", "session_registered");
        assert!(
            !takes_system(&any, &started),
            "lifecycle events only by opt-in"
        );
        let opted = WebhookRecord {
            include_system: true,
            ..hook(4)
        };
        assert!(takes_system(&opted, &started));
    }

    #[test]
    fn health_follows_the_attempts() {
        let limit = DAY;
        let fresh = hook(1);
        let failing = WebhookRecord {
            failing_since: Some(1_000),
            ..hook(1)
        };
        let delivered = failed_at(5_000, Verdict::Delivered);
        assert_eq!(
            health_after(&failing, &delivered, limit),
            Health {
                failing_since: None,
                disable: None
            }
        );
        let retry = failed_at(5_000, Verdict::RetryAt(6_000));
        assert_eq!(
            health_after(&fresh, &retry, limit),
            Health {
                failing_since: Some(5_000),
                disable: None
            },
            "a first failure starts the run"
        );
        let late = failed_at(1_000 + DAY, Verdict::RetryAt(2 * DAY));
        let health = health_after(&failing, &late, limit);
        assert_eq!(health.failing_since, Some(1_000));
        assert!(
            health
                .disable
                .as_deref()
                .is_some_and(|why| why.starts_with("every attempt failed for 1d (since ")),
            "{health:?}"
        );
        let gone = failed_at(5_000, Verdict::Gone);
        assert_eq!(
            health_after(&fresh, &gone, limit).disable.as_deref(),
            Some("the endpoint answered 410 Gone")
        );
        let paused = WebhookRecord {
            active: false,
            ..failing
        };
        assert_eq!(
            health_after(&paused, &gone, limit).disable,
            None,
            "already off"
        );
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
}
