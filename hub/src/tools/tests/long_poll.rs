//! Long-polls (`get_events` with `wait_seconds`): an empty wait returns at
//! its deadline with an empty page, and at once when a matching event is
//! published, its reader's session ends, or the hub shuts down.

use std::future::Future;
use std::time::Duration;

use shared::tools::Refusal;
use shared::tools::events::{GetParams, Page};
use tokio::time::{Instant, sleep};

use super::Hub;
use crate::tools::{Failure, Outcome};

const SECOND: Duration = Duration::from_secs(1);

/// A 30 s long-poll with `params`, beside `meanwhile`: what it returned,
/// and after how long.
async fn long_poll(
    hub: &Hub,
    params: GetParams,
    meanwhile: impl Future<Output = ()>,
) -> (Outcome<Page>, Duration) {
    let started = Instant::now();
    let read = async {
        let page = hub
            .read(GetParams {
                wait_seconds: 30,
                ..params
            })
            .await;
        (page, started.elapsed())
    };
    tokio::join!(read, meanwhile).0
}

/// The newest event id.
fn tip(hub: &Hub) -> u64 {
    *hub.bus.store.tip().borrow()
}

fn payloads(page: &Page) -> Vec<&str> {
    page.events
        .iter()
        .map(|e| e.event.payload.as_str())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_empty_long_poll_returns_at_its_deadline_with_an_empty_page() {
    let hub = Hub::start();
    let me = hub.register("me", None).await.session_id;
    for params in [
        GetParams {
            cursor: Some(tip(&hub)),
            ..GetParams::default()
        },
        GetParams {
            channel: Some("repo:quiet".into()),
            ..GetParams::default()
        },
        GetParams {
            session_id: Some(me.clone()),
            resume: true,
            ..GetParams::default()
        },
    ] {
        let (page, waited) = long_poll(&hub, params.clone(), async {}).await;
        let page = page.expect("a page");
        assert!(page.events.is_empty(), "{params:?}: {page:?}");
        assert_eq!(waited.as_secs(), 30, "{params:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_long_poll_returns_at_once_when_a_matching_event_is_published() {
    let hub = Hub::start();
    let any = GetParams {
        cursor: Some(tip(&hub)),
        ..GetParams::default()
    };
    let (page, waited) = long_poll(&hub, any, async {
        sleep(5 * SECOND).await;
        hub.publish("anonymous", "all", "first").await;
    })
    .await;
    assert_eq!(payloads(&page.expect("a page")), ["first"]);
    assert_eq!(waited.as_secs(), 5);

    // Narrowed to a channel: an event elsewhere does not end the wait.
    let narrowed = GetParams {
        channel: Some("repo:x".into()),
        ..GetParams::default()
    };
    let (page, waited) = long_poll(&hub, narrowed, async {
        sleep(5 * SECOND).await;
        hub.publish("anonymous", "all", "elsewhere").await;
        sleep(5 * SECOND).await;
        hub.publish("anonymous", "repo:x", "here").await;
    })
    .await;
    assert_eq!(payloads(&page.expect("a page")), ["here"]);
    assert_eq!(waited.as_secs(), 10);
}

/// A reader's long-poll narrowed to channels still hears its own session
/// end (an event on another channel): it is refused at once, as any read
/// of an ended session is.
#[tokio::test(start_paused = true)]
async fn a_long_poll_hears_its_own_session_end() {
    let hub = Hub::start();
    let me = hub.register("me", None).await.session_id;
    let mine = GetParams {
        session_id: Some(me.clone()),
        channel: Some("repo:x".into()),
        ..GetParams::default()
    };
    let (page, waited) = long_poll(&hub, mine, async {
        sleep(3 * SECOND).await;
        hub.unregister(&me).await;
    })
    .await;
    match page {
        Err(Failure::Refused(Refusal::SessionDeleted(d))) => assert_eq!(d.session_id, me),
        other => panic!("not refused as ended: {other:?}"),
    }
    assert_eq!(waited.as_secs(), 3);
}

/// A wait on a session's direct messages returns, with what it has, when
/// that session ends.
#[tokio::test(start_paused = true)]
async fn a_wait_on_a_sessions_messages_returns_when_it_ends() {
    let hub = Hub::start();
    let them = hub.register("them", None).await.session_id;
    let theirs = GetParams {
        channel: Some(format!("session:{them}")),
        ..GetParams::default()
    };
    let (page, waited) = long_poll(&hub, theirs, async {
        sleep(3 * SECOND).await;
        hub.unregister(&them).await;
    })
    .await;
    assert!(page.expect("a page").events.is_empty());
    assert_eq!(waited.as_secs(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_long_poll_returns_at_once_when_the_hub_shuts_down() {
    let hub = Hub::start();
    let (page, waited) = long_poll(&hub, GetParams::default(), async {
        sleep(SECOND).await;
        hub.bus.shutdown.cancel();
    })
    .await;
    assert!(page.expect("a page").events.is_empty());
    assert_eq!(waited.as_secs(), 1);
}
