//! Heartbeats: a call acting as a session writes its heartbeat (and renews
//! its lease) at most once per `--heartbeat-every`, so polling stays
//! cheap; `list_sessions` shows the most recently active first.

use std::time::Duration;

use shared::tools::sessions::NoParams;

use super::{Hub, START_MS};
use crate::config::SessionTimes;

const HALF_SECOND: Duration = Duration::from_millis(500);

/// (heartbeat, lease deadline) of session `id`, in ms since the hub started.
async fn written(hub: &Hub, id: &str) -> (i64, Option<i64>) {
    let s = hub.session(id).await;
    (
        s.last_heartbeat - START_MS,
        s.lease_deadline.map(|d| d - START_MS),
    )
}

#[tokio::test(start_paused = true)]
async fn a_call_within_a_second_of_the_last_heartbeat_writes_nothing() {
    let hub = Hub::start();
    let id = hub.register("a", Some(10)).await.session_id;
    assert_eq!(written(&hub, &id).await, (0, Some(10_000)));
    tokio::time::advance(HALF_SECOND).await;
    hub.read_as(&id).await;
    assert_eq!(written(&hub, &id).await, (0, Some(10_000)), "too soon");
    tokio::time::advance(HALF_SECOND).await;
    hub.publish(&id, "all", "x").await;
    assert_eq!(written(&hub, &id).await, (1_000, Some(11_000)));
}

#[tokio::test(start_paused = true)]
async fn with_no_heartbeat_interval_every_call_writes() {
    let hub = Hub::start_with(SessionTimes {
        heartbeat_every_ms: 0,
        ..SessionTimes::default()
    });
    let id = hub.register("a", Some(10)).await.session_id;
    tokio::time::advance(Duration::from_millis(1)).await;
    hub.read_as(&id).await;
    assert_eq!(written(&hub, &id).await, (1, Some(10_001)));
}

/// The session ids `list_sessions` shows, in its order.
async fn listed(hub: &Hub) -> Vec<String> {
    let json = crate::tools::sessions::list(&hub.bus, &hub.caller, NoParams {})
        .await
        .expect("a list")
        .into_string();
    let reply: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    reply["structuredContent"]["result"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["session_id"].as_str().expect("an id").to_owned())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn list_sessions_shows_the_most_recently_active_first() {
    let hub = Hub::start();
    let one = hub.register("one", None).await.session_id;
    tokio::time::advance(Duration::from_secs(2)).await;
    let two = hub.register("two", None).await.session_id;
    assert_eq!(listed(&hub).await, [two.clone(), one.clone()]);
    tokio::time::advance(Duration::from_secs(2)).await;
    hub.publish(&one, "all", "I am back").await;
    assert_eq!(listed(&hub).await, [one.clone(), two.clone()]);
    tokio::time::advance(Duration::from_secs(2)).await;
    hub.read_as(&two).await;
    assert_eq!(listed(&hub).await, [two, one]);
}
