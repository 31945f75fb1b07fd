//! One fleet on one hub: N sessions played as their proxies would play
//! them, each on connections of its own (see [`super::wire`]): a presence
//! lease (`register_session` every third of 60 s, staggered) and a push
//! long-poll on its direct-message channel plus one push channel
//! (`repo:fleet-<i mod 100>`), while 1,000 publishes/s go out (10% direct
//! messages to random sessions, 1% to a push channel, the rest broadcasts
//! on `all`). What it measured comes back as [`Figures`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared::HubClient;
use shared::tools::Tool;
use shared::tools::events::{GetEvents, PublishEvent};
use shared::tools::sessions::{ListSessions, RegisterSession};
use support::Hub;

use super::history::{cpu_seconds, tip};
use super::wire::{Conn, Sources};
use crate::{Lat, latencies, rss_mb};

const LEASE_SECONDS: u64 = 60;
const PUSH_GROUPS: usize = 100;
/// Publishes per second in the window (`BENCH_PUBLISH_RATE` changes it,
/// say for a debug build).
fn publishes_per_second() -> u64 {
    std::env::var("BENCH_PUBLISH_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(1000)
}
/// The measured window: every session renews once in it.
const WINDOW: Duration = Duration::from_secs(20);
/// Registrations in flight at once, as proxies starting together would.
const REGISTRARS: usize = 64;
/// How long the fleet's long-polls get to reach the hub before the window.
const SETTLE: Duration = Duration::from_secs(120);
/// Publishes in flight at once (so at most this many publisher
/// connections); one that waits for its turn counts the wait in its time.
const PUBLISHERS: usize = 128;

/// What one fleet measured.
pub(super) struct Figures {
    pub n: usize,
    pub registered_in: Duration,
    pub publishes_per_s: f64,
    pub window_s: f64,
    pub cores: f64,
    pub rss_mb: f64,
    pub open: u64,
    pub renewals_per_s: f64,
    /// Renewals that failed or found their session ended, and polls that
    /// found it ended.
    pub lapses: u64,
    /// Push polls that failed (an error, a refused connection, a timeout).
    pub failed_polls: u64,
    /// Publishes that failed or went unanswered for 10 s.
    pub failed_publishes: u64,
    pub wake: Lat,
    pub publish: Lat,
    /// `list_sessions` to its last byte, `GET /health`, `list_sessions`
    /// parsed by the client, and the reply's size.
    pub list: (Lat, Lat, Lat, usize),
}

/// What the fleet's tasks count.
#[derive(Default)]
struct Counters {
    renewals: AtomicU64,
    lapses: AtomicU64,
    failed_polls: AtomicU64,
}

fn register_args(fleet: usize, i: usize) -> Value {
    json!({"name": format!("fleet{fleet}/s{i}"), "machine": "bench-host",
           "cwd": format!("/src/fleet-{}", i % PUSH_GROUPS),
           "client_id": format!("fleet{fleet}-{i}"),
           "lease_seconds": LEASE_SECONDS, "push": ["channel"]})
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Registers `n` sessions, [`REGISTRARS`] at a time; their ids in order.
async fn register_all(
    addr: SocketAddr,
    token: &Arc<str>,
    sources: Sources,
    n: usize,
) -> Vec<String> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for r in 0..REGISTRARS {
        let (next, token) = (next.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(addr, sources.of(r), token);
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return mine;
                }
                let reply = conn
                    .call::<RegisterSession>(&register_args(n, i))
                    .await
                    .unwrap_or_else(|e| panic!("registering session {i}: {e}"));
                let id = reply["session_id"].as_str().unwrap_or_default().to_owned();
                mine.push((i, id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("a registrar"));
    }
    all.sort_unstable();
    all.into_iter().map(|(_, id)| id).collect()
}

/// Session `i`'s renewals, staggered over a third of the lease.
async fn renew(mut conn: Conn, n: usize, i: usize, id: String, counters: Arc<Counters>) {
    let every = Duration::from_secs(LEASE_SECONDS / 3);
    tokio::time::sleep(every.mul_f64(i as f64 / n as f64)).await;
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let renewed = conn.call::<RegisterSession>(&register_args(n, i)).await;
        let same = renewed
            .as_ref()
            .is_ok_and(|r| r["session_id"].as_str() == Some(id.as_str()));
        if !same {
            counters.lapses.fetch_add(1, Ordering::Relaxed);
        }
        counters.renewals.fetch_add(1, Ordering::Relaxed);
    }
}

/// Session `i`'s push long-poll; the wake-up time of every direct message
/// it gets (the publisher put its send time in the payload).
async fn poll(
    mut conn: Conn,
    i: usize,
    id: String,
    cursor: u64,
    epoch: Instant,
    counters: Arc<Counters>,
    wakes: Arc<Mutex<Vec<Duration>>>,
) {
    let mut cursor = cursor;
    let channels = [
        format!("session:{id}"),
        format!("repo:fleet-{}", i % PUSH_GROUPS),
    ];
    loop {
        let args = json!({"session_id": id, "channels": channels, "cursor": cursor.to_string(),
                          "order": "asc", "limit": 20, "wait_seconds": 30});
        let Ok(page) = conn.call::<GetEvents>(&args).await else {
            counters.failed_polls.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        if page.get("session_deleted").is_some() {
            counters.lapses.fetch_add(1, Ordering::Relaxed);
        }
        let now = epoch.elapsed();
        for e in page["events"].as_array().into_iter().flatten() {
            let sent = e["payload"]
                .as_str()
                .and_then(|p| p.strip_prefix("sent@"))
                .and_then(|t| t.parse::<u64>().ok());
            let dm = e["channel"]
                .as_str()
                .is_some_and(|c| c.starts_with("session:"));
            if let (true, Some(sent)) = (dm, sent) {
                lock(&wakes).push(now.saturating_sub(Duration::from_micros(sent)));
            }
        }
        if let Some(next) = page["next_cursor"].as_str().and_then(|c| c.parse().ok()) {
            cursor = cursor.max(next);
        }
    }
}

/// Waits until the hub counts `n` long-polls in progress (or [`SETTLE`]
/// has passed), saying how far it got now and then.
pub(super) async fn settle(client: &HubClient, n: usize) {
    let started = Instant::now();
    let mut said = Instant::now();
    loop {
        let polls = client
            .health()
            .await
            .ok()
            .and_then(|h| h["long_polls"].as_u64())
            .unwrap_or(0);
        if polls >= n as u64 || started.elapsed() > SETTLE {
            return;
        }
        if said.elapsed() > Duration::from_secs(10) {
            println!("  ... {polls} of {n} long-polls in progress");
            said = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Plays a fleet of `n` sessions on `hub` (a fresh one, its sessions left
/// to it) and measures a window of publishes.
pub(super) async fn fleet(hub: &Hub, n: usize) -> Figures {
    let pid = hub.pid().expect("the hub's pid");
    let addr = SocketAddr::from(([127, 0, 0, 1], hub.port));
    let client = Arc::new(hub.client());
    let started = Instant::now();
    let token: Arc<str> = Arc::from(hub.token());
    let sources = Sources::for_fleet(n);
    let ids = register_all(addr, &token, sources, n).await;
    let registered_in = started.elapsed();
    let list = list_cost(hub, &client).await;
    let counters = Arc::new(Counters::default());
    let wakes = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let epoch = Instant::now();
    let cursor = tip(&client).await;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let conn = || Conn::new(addr, sources.of(i), token.clone());
        tasks.spawn(renew(conn(), n, i, id.clone(), counters.clone()));
        tasks.spawn(poll(
            conn(),
            i,
            id.clone(),
            cursor,
            epoch,
            counters.clone(),
            wakes.clone(),
        ));
    }
    settle(&client, n).await;
    lock(&wakes).clear();
    let renewals_before = counters.renewals.load(Ordering::Relaxed);
    let lapses_before = counters.lapses.load(Ordering::Relaxed);
    let failed_before = counters.failed_polls.load(Ordering::Relaxed);
    let cpu_before = cpu_seconds(pid);
    let window_start = Instant::now();
    let publish_lat = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let failed_publishes = Arc::new(AtomicU64::new(0));
    let turns = Arc::new(tokio::sync::Semaphore::new(PUBLISHERS));
    let mut publishes = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / publishes_per_second()));
    let mut k: usize = 0;
    while window_start.elapsed() < WINDOW {
        tick.tick().await;
        k += 1;
        let channel = match k % 100 {
            0..=9 => format!("session:{}", ids[(k * 7919) % ids.len()]),
            10 => format!("repo:fleet-{}", k % PUSH_GROUPS),
            _ => "all".to_owned(),
        };
        let (c, lat, failed, turns) = (
            client.clone(),
            publish_lat.clone(),
            failed_publishes.clone(),
            turns.clone(),
        );
        publishes.spawn(async move {
            let t = Instant::now();
            let _turn = turns.acquire_owned().await;
            let payload = format!("sent@{}", epoch.elapsed().as_micros());
            let args = json!({"event_type": "fleet", "payload": payload, "channel": channel});
            match c.call_tool(PublishEvent::NAME, args).await {
                Ok(out) if !out.is_error() => lock(&lat).push(t.elapsed()),
                _ => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    publishes.join_all().await;
    let wall = window_start.elapsed().as_secs_f64();
    let cores = (cpu_seconds(pid) - cpu_before) / wall;
    let renewals = (counters.renewals.load(Ordering::Relaxed) - renewals_before) as f64 / wall;
    // Give the last wakes a moment to land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = rss_mb(pid);
    let open = client
        .health()
        .await
        .ok()
        .and_then(|h| h["connections"]["open"].as_u64())
        .unwrap_or(0);
    let lapses = counters.lapses.load(Ordering::Relaxed) - lapses_before;
    let failed_polls = counters.failed_polls.load(Ordering::Relaxed) - failed_before;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let sorted = |m: &Mutex<Vec<Duration>>| {
        let mut v = std::mem::take(&mut *lock(m));
        v.sort_unstable();
        Lat(v)
    };
    Figures {
        n,
        registered_in,
        publishes_per_s: (k as f64 / wall).round(),
        window_s: wall,
        cores,
        rss_mb: rss,
        open,
        renewals_per_s: renewals,
        lapses,
        failed_polls,
        failed_publishes: failed_publishes.load(Ordering::Relaxed),
        wake: sorted(&wakes),
        publish: sorted(&publish_lat),
        list,
    }
}

/// What `list_sessions` costs at the fleet's size: the hub's time (the
/// request sent to the last byte of the reply read, not parsed) beside a
/// no-op `GET /health` on the same connection, and the same call through
/// `HubClient`, whose JSON parse of the reply is the client's cost.
async fn list_cost(hub: &Hub, client: &Arc<HubClient>) -> (Lat, Lat, Lat, usize) {
    let http = reqwest::Client::new();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": ListSessions::NAME, "arguments": {}}})
    .to_string();
    let size = Arc::new(AtomicU64::new(0));
    let list = latencies(20, || {
        let (http, body, url, size) = (http.clone(), body.clone(), hub.url.clone(), size.clone());
        let token = hub.token().to_owned();
        async move {
            let reply = http
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .header("accept", "application/json")
                .body(body)
                .send()
                .await
                .expect("list_sessions");
            assert!(reply.status().is_success());
            let bytes = reply.bytes().await.expect("the reply");
            size.store(bytes.len() as u64, Ordering::Relaxed);
        }
    })
    .await;
    let health = latencies(20, || {
        let (http, url) = (http.clone(), format!("{}/health", hub.base()));
        async move {
            let reply = http.get(url).send().await.expect("health");
            reply.bytes().await.expect("the reply");
        }
    })
    .await;
    let parsed = latencies(5, || {
        let c = client.clone();
        async move {
            let out = c
                .call_tool(ListSessions::NAME, json!({}))
                .await
                .expect("list_sessions");
            assert!(!out.is_error());
        }
    })
    .await;
    let bytes = usize::try_from(size.load(Ordering::Relaxed)).unwrap_or(0);
    (list, health, parsed, bytes)
}

/// Prints what one fleet measured.
pub(super) fn print(f: &Figures) {
    use crate::ms;
    println!(
        "fleet N={}: registered in {:.1} s; {} publishes/s for {:.0} s (10% DMs)",
        f.n,
        f.registered_in.as_secs_f64(),
        f.publishes_per_s,
        f.window_s
    );
    println!(
        "  hub CPU {:.2} cores   RSS {:.0} MB ({} connections open)   lease renewals {:.0}/s   lapses {}   failed polls {}, publishes {}",
        f.cores, f.rss_mb, f.open, f.renewals_per_s, f.lapses, f.failed_polls, f.failed_publishes
    );
    println!(
        "  DM publish -> woken poll p50 {:>8.3} ms  p99 {:>8.3} ms  ({} DMs)   publish p99 {:>8.3} ms",
        ms(f.wake.p(50)),
        ms(f.wake.p(99)),
        f.wake.0.len(),
        ms(f.publish.p(99))
    );
    let (list, health, parsed, bytes) = &f.list;
    println!(
        "  list_sessions with {} live sessions ({:.1} MB reply): p50 {:>8.3} ms  p99 {:>8.3} ms \
         (no-op GET /health p50 {:.3} ms; with the client's JSON parse p50 {:.3} ms)",
        f.n,
        *bytes as f64 / 1e6,
        ms(list.p(50)),
        ms(list.p(99)),
        ms(health.p(50)),
        ms(parsed.p(50)),
    );
}
