//! The tools' rules tested without HTTP: each test calls the tool
//! functions on a [`Hub`] — a real [`Bus`] on a store in a temp dir, its
//! clock on tokio's paused time — as [`Caller::internal`], and drives the
//! sweeper's passes itself.
//!
//! - `leases`: renewal, a lapse within a second of the deadline, a fresh
//!   term after a stall, a sleep or a restart.
//! - `idle`: the 24 h rule for sessions without a lease.
//! - `heartbeats`: `--heartbeat-every`, and the most recently active first.
//! - `long_poll`: a wait ends at its deadline, at once on a matching event,
//!   at its session's end.
//! - `claims`: claims end with their session (unregistered, lapsed, idle).
//! - `receipts`: a direct message's receipt only moves forward.
//! - `render`: how replies are framed as `tools/call` results.

mod claims;
mod heartbeats;
mod idle;
mod leases;
mod long_poll;
mod receipts;
mod render;

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use shared::tools::events::{GetParams, Page, PublishParams, Published};
use shared::tools::sessions::{RegisterParams, Registered, UnregisterParams};
use tokio_util::sync::CancellationToken;

use crate::caller::Caller;
use crate::clock::Clock;
use crate::config::{Config, SessionTimes};
use crate::delivery::Delivery;
use crate::state::Bus;
use crate::store::{EventQuery, EventRecord, SessionRecord, Store};
use crate::sweeper::Sweeper;
use crate::tools::{Outcome, events, sessions};

/// Where the hub's clock starts: 2026-01-01T00:00:00Z.
const START_MS: i64 = 1_767_225_600_000;
/// How often the sweeper ticks in the hub.
const TICK: Duration = Duration::from_millis(250);

/// A hub without HTTP. Its tests run under `start_paused = true`: its clock
/// moves only with `tokio::time::advance` (or to a timer's deadline when
/// nothing else can run).
pub(crate) struct Hub {
    pub bus: Arc<Bus>,
    pub caller: Caller,
    dir: tempfile::TempDir,
}

impl Hub {
    /// A hub with the flags' defaults: a day idle, a heartbeat written at
    /// most once a second.
    pub(super) fn start() -> Self {
        Self::start_with(SessionTimes::default())
    }

    pub(super) fn start_with(times: SessionTimes) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = open(&dir, Clock::starting_at(START_MS));
        Self {
            bus: bus_on(store, times),
            caller: Caller::internal(),
            dir,
        }
    }

    /// Stops this hub (its store closed, as at shutdown), leaves it down
    /// for `down`, and starts it again on the same file, as `run` does:
    /// every lease gets a fresh term before anything is swept.
    pub(super) async fn restart(self, down: Duration) -> Self {
        let Self { bus, caller, dir } = self;
        let times = SessionTimes {
            idle_timeout_ms: bus.idle_timeout_ms,
            heartbeat_every_ms: bus.heartbeat_every_ms,
        };
        let bus = Arc::into_inner(bus).expect("nothing else holds the hub");
        let (store, clock) = (bus.store.clone(), bus.clock.clone());
        drop(bus);
        store.close();
        store.join_writer();
        tokio::time::advance(down).await;
        let bus = bus_on(open(&dir, clock), times);
        crate::sweeper::grace_after_restart(&bus)
            .await
            .expect("fresh terms");
        Self { bus, caller, dir }
    }

    /// The hub's time, ms since it started.
    pub(super) fn elapsed_ms(&self) -> i64 {
        self.bus.clock.now_ms() - START_MS
    }

    /// Registers `name` by `client_id` (the proxy's way), with a lease when
    /// one is given.
    pub(super) async fn register(&self, name: &str, lease_seconds: Option<i64>) -> Registered {
        let params = RegisterParams {
            name: name.to_owned(),
            client_id: Some(format!("{name}-client")),
            lease_seconds,
            ..RegisterParams::default()
        };
        sessions::register(&self.bus, &self.caller, params)
            .await
            .expect("registered")
    }

    /// Unregisters session `id`.
    pub(super) async fn unregister(&self, id: &str) {
        let params = UnregisterParams {
            session_id: Some(id.to_owned()),
            ..UnregisterParams::default()
        };
        sessions::unregister(&self.bus, &self.caller, params)
            .await
            .expect("unregistered");
    }

    /// Publishes `payload` on `channel` as session `from`.
    pub(super) async fn publish(&self, from: &str, channel: &str, payload: &str) -> Published {
        let params = PublishParams {
            session_id: Some(from.to_owned()),
            ..PublishParams::new("note", payload, channel)
        };
        events::publish(&self.bus, &self.caller, params)
            .await
            .expect("published")
    }

    /// Calls `get_events`.
    pub(super) async fn read(&self, params: GetParams) -> Outcome<Page> {
        events::get(&self.bus, &self.caller, params).await
    }

    /// A plain read as session `id` (it renews its lease).
    pub(super) async fn read_as(&self, id: &str) -> Page {
        self.read(GetParams {
            session_id: Some(id.to_owned()),
            ..GetParams::default()
        })
        .await
        .expect("a page")
    }

    /// The stored session `id`.
    pub(super) async fn session(&self, id: &str) -> SessionRecord {
        let id = id.to_owned();
        self.bus
            .store
            .read(move |s| s.session(&id))
            .await
            .expect("a read")
            .expect("the session is stored")
    }

    /// Whether session `id` has ended.
    pub(super) async fn ended(&self, id: &str) -> bool {
        self.session(id).await.is_deleted()
    }

    /// Every stored event, oldest first.
    pub(super) async fn events(&self) -> Vec<EventRecord> {
        let q = EventQuery {
            limit: 10_000,
            ..EventQuery::default()
        };
        let page = self.bus.store.read(move |s| s.event_page(&q)).await;
        page.expect("a read").events
    }

    /// The payloads of the `event_type` events about session `id`.
    pub(super) async fn said(&self, event_type: &str, id: &str) -> Vec<String> {
        let events = self.events().await;
        events
            .into_iter()
            .filter(|e| e.event_type == event_type && e.session_id == id)
            .map(|e| e.payload)
            .collect()
    }

    /// A sweeper on this hub, as `run` starts it.
    pub(super) fn sweeper(&self) -> Sweeper {
        Sweeper::new(self.bus.clone())
    }

    /// Runs the sweeper as its ticker would for `span`: time moves a tick
    /// at a time, with a pass after each.
    pub(super) async fn sweep_for(&self, sweeper: &mut Sweeper, span: Duration) {
        let mut left = span;
        while !left.is_zero() {
            let step = left.min(TICK);
            tokio::time::advance(step).await;
            sweeper.pass().await;
            left -= step;
        }
    }

    /// Sweeps a tick at a time until session `id` ends; returns the hub's
    /// time then (ms since it started). Panics after `limit`.
    pub(super) async fn sweep_until_ended(
        &self,
        sweeper: &mut Sweeper,
        id: &str,
        limit: Duration,
    ) -> i64 {
        let until = self.elapsed_ms() + i64::try_from(limit.as_millis()).unwrap_or(i64::MAX);
        while !self.ended(id).await {
            assert!(
                self.elapsed_ms() < until,
                "{id} did not end within {limit:?}"
            );
            self.sweep_for(sweeper, TICK).await;
        }
        self.elapsed_ms()
    }
}

/// The store in `dir`, stamped by `clock`.
fn open(dir: &tempfile::TempDir, clock: Clock) -> Store {
    Store::open(&dir.path().join("data.redb"))
        .expect("a store")
        .with_clock(clock)
}

/// A hub's state on `store`, with the flags' defaults but `times`.
fn bus_on(store: Store, times: SessionTimes) -> Arc<Bus> {
    let config = Config::parse_from(["agent-event-bus"]);
    Arc::new(Bus::new(
        store,
        config.limits(),
        times,
        config.retention(),
        Delivery::new(config.delivery()).expect("a delivery client"),
        CancellationToken::new(),
    ))
}
