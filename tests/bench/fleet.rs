//! `bench fleet`: one hub carrying a fleet on a store with history.
//!
//! One load process plays N sessions as their proxies would: each renews a
//! presence lease (`register_session` every third of 60 s, staggered) and
//! keeps a push long-poll open on its direct-message channel plus one push
//! channel (`repo:fleet-<i mod 100>`), while M publishes/s go out: 10%
//! direct messages to random sessions, 1% to a push channel, the rest
//! broadcasts on `all`. The store is first filled with `BENCH_EVENTS`
//! events (default 1,000,000). Also: filtered reads at that size beside
//! unfiltered ones, the hub's cost per publish of quiet filtered long-polls
//! at 1k events and at the full size, `list_sessions` at N sessions, and
//! store bytes per event.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared::HubClient;
use support::{Hub, HubOptions};

use crate::{Lat, latencies, ms, rss_mb};

const LEASE_SECONDS: u64 = 60;
const PUSH_GROUPS: usize = 100;
const PUBLISHES_PER_SECOND: u64 = 1000;
const WINDOW: Duration = Duration::from_secs(20);
/// A 60-byte payload, as the store-size bar's typical event.
const PAYLOAD: &str = "build finished on agent-event-bus, 312 tests passed, 0 fail.";

pub fn run(rt: &tokio::runtime::Runtime) {
    let target: u64 = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let fleets: Vec<usize> = std::env::var("BENCH_FLEET").ok().map_or_else(
        || vec![100, 1000, 10_000],
        |v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
    );
    // Every session holds a long-poll connection and renews on another:
    // the default cap (4096) is for a laptop, a fleet hub sets its own.
    let cap = fleets.iter().max().copied().unwrap_or(0) * 3 / 2 + 1000;
    let mut hub = Hub::start_with(HubOptions {
        args: vec!["--max-connections".into(), cap.to_string()],
        env: vec![("RUST_LOG".into(), "hub=info,warn".into())],
    });
    let pid = hub.pid().expect("the hub's pid");
    let client = Arc::new(hub.client());
    println!();
    println!("fleet bench: store filled to {target} events, then N sessions with push loops");

    // At 1k events: the baseline of what a quiet filtered long-poll costs.
    rt.block_on(fill(&client, 1000, 1));
    let quiet_1k = rt.block_on(quiet_poll_cost(&client, pid));
    rt.block_on(fill(&client, target, 1000));
    let serving = std::fs::metadata(hub.db_path()).map_or(0, |m| m.len());
    // A restart compacts the free space copy-on-write left in the file.
    hub.restart_same_port();
    let pid = hub.pid().expect("the hub's pid");
    let size = std::fs::metadata(hub.db_path()).map_or(0, |m| m.len());
    println!(
        "store: {:.0} bytes per event ({:.1} MB file at {target} events) after a restart; \
         {:.0} bytes per event in the file as filled ({:.1} MB)",
        size as f64 / target as f64,
        size as f64 / 1e6,
        serving as f64 / target as f64,
        serving as f64 / 1e6,
    );
    let quiet_full = rt.block_on(quiet_poll_cost(&client, pid));
    println!(
        "hub CPU per publish with 4 quiet filtered long-polls: {quiet_1k:.1} µs at 1k events, {quiet_full:.1} µs at {target}"
    );
    reads(rt, &client);

    for n in fleets {
        rt.block_on(fleet(&hub, pid, n));
    }
}

/// Publishes until the store holds `target` events: mostly broadcasts, some
/// on repo channels, one in `dm_every` a direct message to a past session.
async fn fill(client: &Arc<HubClient>, target: u64, dm_every: u64) {
    let next = Arc::new(AtomicU64::new(tip(client).await + 1));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..48 {
        let (client, next) = (client.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i > target {
                    return;
                }
                let channel = match i % 10 {
                    _ if i % dm_every == 0 && dm_every > 1 => format!("session:past-{}", i % 5000),
                    0..=6 => "all".to_owned(),
                    k => format!("repo:r{k}"),
                };
                publish(&client, &channel, "fill").await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("a filler");
    }
    if target > 10_000 {
        println!(
            "filled to {target} events in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
}

async fn publish(client: &HubClient, channel: &str, event_type: &str) -> u64 {
    let out = client
        .call_tool(
            "publish_event",
            json!({"event_type": event_type, "payload": PAYLOAD, "channel": channel}),
        )
        .await
        .expect("publish");
    out.value()["event_id"].as_u64().unwrap_or(0)
}

async fn tip(client: &HubClient) -> u64 {
    let out = client
        .call_tool("get_events", json!({"limit": 1}))
        .await
        .expect("tip");
    out.value()["next_cursor"]
        .as_str()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Hub CPU time (user + system) in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command: state is 0, utime 11, stime 12, in USER_HZ ticks
    // (100 on Linux).
    (ticks(11) + ticks(12)) / 100.0
}

/// Hub CPU per publish (µs) while four long-polls wait from cursor 0 — the
/// old push loop's worst case — two on quiet channels (woken only by their
/// channels) and two on a quiet event type (woken by every publish, each
/// wake an index lookup from where the call got to), minus the same
/// publishes with none waiting.
async fn quiet_poll_cost(client: &Arc<HubClient>, pid: u32) -> f64 {
    let per_publish = |client: Arc<HubClient>| async move {
        let before = cpu_seconds(pid);
        for _ in 0..500 {
            publish(&client, "all", "noise").await;
        }
        (cpu_seconds(pid) - before) / 500.0 * 1e6
    };
    let alone = per_publish(client.clone()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut waiters = Vec::new();
    for w in 0..4 {
        let (client, stop) = (client.clone(), stop.clone());
        waiters.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let filter = if w % 2 == 0 {
                    json!({"channels": [format!("session:quiet-{w}")]})
                } else {
                    json!({"event_types": [format!("quiet-{w}")]})
                };
                let mut args = json!({"cursor": "0", "order": "asc", "wait_seconds": 2});
                for (k, v) in filter.as_object().into_iter().flatten() {
                    args[k] = v.clone();
                }
                let _ = client.call_tool("get_events", args).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let with = per_publish(client.clone()).await;
    stop.store(true, Ordering::Relaxed);
    for w in waiters {
        let _ = w.await;
    }
    (with - alone).max(0.0)
}

/// Filtered reads with one match at the full size, beside unfiltered ones.
fn reads(rt: &tokio::runtime::Runtime, client: &Arc<HubClient>) {
    let needle = rt.block_on(publish(client, "session:needle", "dm"));
    rt.block_on(fill_after(client, 1000));
    let read = |args: Value| {
        let c = client.clone();
        rt.block_on(latencies(500, move || {
            let (c, args) = (c.clone(), args.clone());
            async move {
                let out = c.call_tool("get_events", args).await.expect("get_events");
                assert!(!out.is_error());
            }
        }))
    };
    let unfiltered = read(json!({"limit": 50}));
    let filtered = read(json!({"channel": "session:needle", "limit": 50}));
    let typed = read(json!({"channel": "session:needle", "event_types": ["dm"], "limit": 50}));
    let from_start = read(json!({"channel": "session:needle", "cursor": "0", "order": "asc"}));
    let _ = needle;
    for (what, lat) in [
        ("get_events(limit=50), unfiltered", &unfiltered),
        ("get_events(channel=session:X), one match", &filtered),
        ("... with event_types, one match", &typed),
        ("... asc from cursor 0, one match", &from_start),
    ] {
        println!(
            "{what:<44} p50 {:>8.3} ms  p99 {:>8.3} ms",
            ms(lat.p(50)),
            ms(lat.p(99))
        );
    }
}

async fn fill_after(client: &Arc<HubClient>, n: u64) {
    let target = tip(client).await + n;
    fill(client, target, 1000).await;
}

/// What the fleet's tasks count.
#[derive(Default)]
struct Counters {
    renewals: AtomicU64,
    lapses: AtomicU64,
    polls: AtomicU64,
}

async fn fleet(hub: &Hub, pid: u32, n: usize) {
    let client = Arc::new(hub.client());
    let started = Instant::now();
    // Register N sessions (as their proxies would), 64 at a time.
    let ids: Vec<String> = {
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let (client, next) = (client.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return mine;
                    }
                    let reply = register(&client, n, i).await;
                    mine.push((
                        i,
                        reply["session_id"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("a registrar"));
        }
        all.sort_unstable();
        all.into_iter().map(|(_, id)| id).collect()
    };
    let registered_in = started.elapsed();
    let (list, health, list_parsed, list_bytes) = list_cost(hub, &client).await;
    let counters = Arc::new(Counters::default());
    let wakes = Arc::new(std::sync::Mutex::new(Vec::<Duration>::new()));
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let cursor = tip(&client).await;
    for (i, id) in ids.iter().enumerate() {
        let (client, counters, wakes, stop, id) = (
            client.clone(),
            counters.clone(),
            wakes.clone(),
            stop.clone(),
            id.clone(),
        );
        // The renewal: staggered over a third of the lease.
        let renew_every = Duration::from_secs(LEASE_SECONDS / 3);
        let offset = renew_every.mul_f64(i as f64 / n as f64);
        let (rc, rcounters, rstop) = (client.clone(), counters.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(offset).await;
            while !rstop.load(Ordering::Relaxed) {
                let reply = register(&rc, n, i).await;
                if reply.get("session_id").and_then(Value::as_str).is_none() {
                    rcounters.lapses.fetch_add(1, Ordering::Relaxed);
                }
                rcounters.renewals.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(renew_every).await;
            }
        }));
        tasks.push(tokio::spawn(async move {
            let mut cursor = cursor;
            let channels = [
                format!("session:{id}"),
                format!("repo:fleet-{}", i % PUSH_GROUPS),
            ];
            while !stop.load(Ordering::Relaxed) {
                let out = client
                    .call_tool(
                        "get_events",
                        json!({"session_id": id, "channels": channels, "cursor": cursor.to_string(),
                               "order": "asc", "limit": 20, "wait_seconds": 30}),
                    )
                    .await;
                let Ok(out) = out else { continue };
                let page = out.value();
                if page.get("session_deleted").is_some() {
                    counters.lapses.fetch_add(1, Ordering::Relaxed);
                }
                counters.polls.fetch_add(1, Ordering::Relaxed);
                let now = epoch.elapsed();
                for e in page["events"].as_array().into_iter().flatten() {
                    let dm = e["channel"]
                        .as_str()
                        .is_some_and(|c| c.starts_with("session:"));
                    let sent = e["event_type"]
                        .as_str()
                        .and_then(|t| t.strip_prefix("dm@"))
                        .and_then(|t| t.parse::<u64>().ok());
                    if let (true, Some(sent)) = (dm, sent) {
                        let lat = now.saturating_sub(Duration::from_micros(sent));
                        wakes
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(lat);
                    }
                }
                if let Some(next) = page["next_cursor"].as_str().and_then(|c| c.parse().ok()) {
                    cursor = cursor.max(next);
                }
            }
        }));
    }
    // Let every poll open, then measure a window of publishes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    wakes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
    let renewals_before = counters.renewals.load(Ordering::Relaxed);
    let cpu_before = cpu_seconds(pid);
    let window_start = Instant::now();
    let publish_lat = Arc::new(std::sync::Mutex::new(Vec::<Duration>::new()));
    let mut publishes = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / PUBLISHES_PER_SECOND));
    let mut k: usize = 0;
    while window_start.elapsed() < WINDOW {
        tick.tick().await;
        k += 1;
        let channel = match k % 100 {
            0..=9 => format!("session:{}", ids[(k * 7919) % ids.len()]),
            10 => format!("repo:fleet-{}", k % PUSH_GROUPS),
            _ => "all".to_owned(),
        };
        let (c, lat) = (client.clone(), publish_lat.clone());
        publishes.push(tokio::spawn(async move {
            let t = Instant::now();
            let event_type = format!("dm@{}", epoch.elapsed().as_micros());
            publish(&c, &channel, &event_type).await;
            lat.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(t.elapsed());
        }));
    }
    for p in publishes {
        let _ = p.await;
    }
    let wall = window_start.elapsed().as_secs_f64();
    let cores = (cpu_seconds(pid) - cpu_before) / wall;
    let renewals = (counters.renewals.load(Ordering::Relaxed) - renewals_before) as f64 / wall;
    // Give the last wakes a moment to land, then stop the fleet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = rss_mb(pid);
    let open = client
        .health()
        .await
        .ok()
        .and_then(|h| h["connections"]["open"].as_u64())
        .unwrap_or(0);
    stop.store(true, Ordering::Relaxed);
    let mut wake = std::mem::take(
        &mut *wakes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    wake.sort_unstable();
    let wake = Lat(wake);
    let mut pubs = std::mem::take(
        &mut *publish_lat
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    pubs.sort_unstable();
    let pubs = Lat(pubs);
    println!();
    println!(
        "fleet N={n}: registered in {:.1} s; {} publishes/s for {:.0} s (10% DMs)",
        registered_in.as_secs_f64(),
        (k as f64 / wall).round(),
        wall
    );
    println!(
        "  hub CPU {cores:.2} cores   RSS {rss:.0} MB ({open} connections open)   lease renewals {renewals:.0}/s   lapses {}",
        counters.lapses.load(Ordering::Relaxed)
    );
    println!(
        "  DM publish -> woken poll p50 {:>8.3} ms  p99 {:>8.3} ms  ({} DMs)   publish p99 {:>8.3} ms",
        ms(wake.p(50)),
        ms(wake.p(99)),
        wake.0.len(),
        ms(pubs.p(99))
    );
    println!(
        "  list_sessions with {n} live sessions ({:.1} MB reply): p50 {:>8.3} ms  p99 {:>8.3} ms \
         (no-op GET /health p50 {:.3} ms; with the client's JSON parse p50 {:.3} ms)",
        list_bytes as f64 / 1e6,
        ms(list.p(50)),
        ms(list.p(99)),
        ms(health.p(50)),
        ms(list_parsed.p(50)),
    );
    // End the fleet: the polls return within their wait, and every session
    // is unregistered so the next fleet starts alone.
    for t in tasks {
        t.abort();
    }
    let next = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(ids);
    let mut enders = Vec::new();
    for _ in 0..64 {
        let (client, next, ids) = (client.clone(), next.clone(), ids.clone());
        enders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else { return };
                let _ = client
                    .call_tool("unregister_session", json!({"session_id": id}))
                    .await;
            }
        }));
    }
    for e in enders {
        let _ = e.await;
    }
}

async fn register(client: &HubClient, fleet: usize, i: usize) -> Value {
    let out = client
        .call_tool(
            "register_session",
            json!({"name": format!("fleet{fleet}/s{i}"), "machine": "bench-host",
                   "cwd": format!("/src/fleet-{}", i % PUSH_GROUPS),
                   "client_id": format!("fleet{fleet}-{i}"),
                   "lease_seconds": LEASE_SECONDS, "push": ["channel"]}),
        )
        .await
        .expect("register_session");
    out.value()
}

/// What `list_sessions` costs at the fleet's size: the hub's time (the
/// request sent to the last byte of the reply read, not parsed) beside a
/// no-op `GET /health` on the same connection, and the same call through
/// `HubClient`, whose JSON parse of the reply is the client's cost.
async fn list_cost(hub: &Hub, client: &Arc<HubClient>) -> (Lat, Lat, Lat, usize) {
    let http = reqwest::Client::new();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "list_sessions", "arguments": {}}})
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
                .call_tool("list_sessions", json!({}))
                .await
                .expect("list_sessions");
            assert!(!out.is_error());
        }
    })
    .await;
    let bytes = usize::try_from(size.load(Ordering::Relaxed)).unwrap_or(0);
    (list, health, parsed, bytes)
}
