//! Unit tests of the session rules, on a real store in a temp dir.

use super::*;
use crate::store::testing::oldest_events;
use crate::store::{ClaimRecord, Store};

fn session(id: &str, lease_seconds: Option<u64>, last_heartbeat: i64) -> SessionRecord {
    SessionRecord {
        name: format!("n-{id}"),
        display_id: format!("d-{id}"),
        last_heartbeat,
        lease_seconds,
        lease_deadline: lease_seconds.map(|l| lease_deadline(last_heartbeat, l)),
        ..crate::store::testing::session(id)
    }
}

/// A store holding `sessions`.
async fn store_with(sessions: Vec<SessionRecord>) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data.redb")).unwrap();
    store
        .write(Durability::Durable, move |tx| {
            sessions.iter().try_for_each(|s| tx.put_session(s))
        })
        .await
        .unwrap();
    (dir, store)
}

async fn get(store: &Store, id: &str) -> SessionRecord {
    let id = id.to_owned();
    store.read(move |s| s.session(&id)).await.unwrap().unwrap()
}

#[test]
fn a_lease_runs_its_seconds_from_now() {
    assert_eq!(lease_deadline(1_000, 30), 31_000);
    assert_eq!(lease_deadline(i64::MAX - 5, 86_400), i64::MAX);
    let mut leased = session("a", Some(60), 0);
    renew_lease(&mut leased, 10_000);
    assert_eq!(leased.lease_deadline, Some(70_000));
    let mut plain = session("b", None, 0);
    renew_lease(&mut plain, 10_000);
    assert_eq!(plain.lease_deadline, None);
}

#[tokio::test]
async fn touching_renews_heartbeat_and_lease_at_most_once_a_second() {
    let mut ended = session("gone", Some(30), 0);
    ended.deleted_at = Some(1);
    let (_dir, store) = store_with(vec![session("a", Some(30), 0), ended]).await;
    let seen = store
        .write(Durability::Lazy, |tx| {
            let open = Presented::default();
            Ok((
                touch(tx, "a", &open, 500)?
                    .unwrap()
                    .map(|s| s.last_heartbeat),
                touch(tx, "gone", &open, 9_000)?
                    .unwrap()
                    .map(|s| s.last_heartbeat),
                touch(tx, "nobody", &open, 9_000)?.unwrap().is_none(),
            ))
        })
        .await
        .unwrap();
    assert_eq!(seen, (Some(0), Some(0), true));
    store
        .write(Durability::Lazy, |tx| {
            touch(tx, "a", &Presented::default(), 5_000)
        })
        .await
        .unwrap()
        .unwrap();
    let a = get(&store, "a").await;
    assert_eq!((a.last_heartbeat, a.lease_deadline), (5_000, Some(35_000)));
    assert_eq!(
        get(&store, "gone").await.last_heartbeat,
        0,
        "an ended session stays as it ended"
    );
}

/// A keyed session is renewed only by a call with its key; one that
/// names it without the key changes nothing, so it still lapses.
#[tokio::test]
async fn only_its_key_renews_a_keyed_session() {
    let (key, stored) = crate::keys::mint();
    let keyed = SessionRecord {
        key_hash: Some(stored),
        ..session("k", Some(30), 0)
    };
    let (_dir, store) = store_with(vec![keyed]).await;
    let with = |key: Option<&str>| {
        Presented::of(&crate::caller::Caller {
            session_key: key.map(str::to_owned),
            ..crate::caller::Caller::internal()
        })
    };
    let (none, wrong, right) = (with(None), with(Some("wrong")), with(Some(&key)));
    let refused = store
        .write(Durability::Lazy, move |tx| {
            Ok((
                touch(tx, "k", &none, 5_000)?.is_err(),
                touch(tx, "k", &wrong, 5_000)?.is_err(),
            ))
        })
        .await
        .unwrap();
    assert_eq!(refused, (true, true));
    let k = get(&store, "k").await;
    assert_eq!((k.last_heartbeat, k.lease_deadline), (0, Some(30_000)));
    store
        .write(Durability::Lazy, move |tx| touch(tx, "k", &right, 5_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(get(&store, "k").await.lease_deadline, Some(35_000));
}

/// Unregistering ends a session and its key; a lapse keeps the key, so
/// only its owner can bring the session back.
#[tokio::test]
async fn an_unregistered_session_loses_its_key_and_a_lapsed_one_keeps_it() {
    let keyed = |id: &str| SessionRecord {
        key_hash: Some("h".into()),
        ..session(id, Some(30), 0)
    };
    let (_dir, store) = store_with(vec![keyed("u"), keyed("l")]).await;
    store
        .write(Durability::Durable, |tx| {
            let u = tx.session("u")?.unwrap();
            end_session(tx, u, 1, EndReason::Unregistered)?;
            let l = tx.session("l")?.unwrap();
            end_session(tx, l, 1, EndReason::LeaseExpired)
        })
        .await
        .unwrap();
    assert_eq!(get(&store, "u").await.key_hash, None);
    assert_eq!(get(&store, "l").await.key_hash.as_deref(), Some("h"));
}

#[tokio::test]
async fn ending_a_session_says_why_and_releases_its_claims() {
    let (_dir, store) = store_with(vec![session("a", Some(30), 0)]).await;
    store
        .write(Durability::Durable, |tx| {
            tx.put_claim(&ClaimRecord {
                claim_id: 1,
                resource: "file:r/x.rs".into(),
                session_id: "a".into(),
                exclusive: true,
                note: None,
                since: 0,
            })?;
            let a = tx.session("a")?.unwrap();
            end_session(tx, a, 42_000, EndReason::LeaseExpired)
        })
        .await
        .unwrap();
    assert_eq!(get(&store, "a").await.deleted_at, Some(42_000));
    let events = oldest_events(&store, 10).await;
    let said: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e.event_type.as_str(),
                e.channel.as_str(),
                e.payload.as_str(),
            )
        })
        .collect();
    assert_eq!(
        said,
        [
            (
                "session_unregistered",
                "all",
                "n-a ended on m (lease expired)"
            ),
            (
                "claim_released",
                "repo:r",
                "n-a released file:r/x.rs (lease lapsed)"
            ),
        ]
    );
    let left = store.read(|s| s.claims("", usize::MAX)).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
}

/// The sweep's candidates are checked again where they are ended: a
/// lease renewed meanwhile, or a lease taken, keeps a session alive.
#[tokio::test]
async fn only_sessions_still_due_are_ended() {
    let (_dir, store) = store_with(vec![
        session("lapsed", Some(10), 0),
        session("renewed", Some(10), 55_000),
        session("idle", None, 0),
        session("busy", None, 55_000),
    ])
    .await;
    let ended = store
        .write(Durability::Durable, |tx| {
            let all = || {
                ["lapsed", "renewed", "idle", "busy"]
                    .map(String::from)
                    .to_vec()
            };
            Ok((
                end_due(tx, all(), EndReason::LeaseExpired, 60_000, 30_000)?,
                end_due(tx, all(), EndReason::Idle, 60_000, 30_000)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(ended, (1, 1));
    for (id, gone) in [
        ("lapsed", true),
        ("renewed", false),
        ("idle", true),
        ("busy", false),
    ] {
        assert_eq!(get(&store, id).await.is_deleted(), gone, "{id}");
    }
}

#[tokio::test]
async fn fresh_terms_only_move_deadlines_later() {
    let (_dir, store) = store_with(vec![
        session("short", Some(10), 0),
        session("long", Some(3_600), 200_000),
        session("plain", None, 0),
    ])
    .await;
    let moved = store
        .write(Durability::Durable, |tx| fresh_terms(tx, 100_000))
        .await
        .unwrap();
    assert_eq!(moved, 1);
    assert_eq!(get(&store, "short").await.lease_deadline, Some(110_000));
    assert_eq!(get(&store, "long").await.lease_deadline, Some(3_800_000));
    assert_eq!(get(&store, "plain").await.lease_deadline, None);
}

#[test]
fn a_local_session_without_a_lease_is_watched_through_its_process() {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let with_pid = |pid: u32, lease: Option<u64>, machine: &str| SessionRecord {
        client_pid: Some(pid),
        machine: machine.into(),
        ..session("a", lease, 0)
    };
    assert!(process_gone("m", &with_pid(dead, None, "m")));
    assert!(!process_gone("m", &with_pid(std::process::id(), None, "m")));
    assert!(
        !process_gone("m", &with_pid(dead, Some(30), "m")),
        "a lease rules"
    );
    assert!(
        !process_gone("m", &with_pid(dead, None, "elsewhere")),
        "not ours to check"
    );
    let numeric_client = SessionRecord {
        client_id: Some(dead.to_string()),
        ..session("b", None, 0)
    };
    assert!(
        process_gone("m", &numeric_client),
        "a numeric client id is a pid"
    );
}
