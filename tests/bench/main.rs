//! `make bench`: performance figures for the hub, printed, never asserted.
//!
//! Each figure is printed beside what this machine allows — the disk's
//! fsync rate and a no-op HTTP round trip — so it reads as a ratio.

#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap in a test is the test failing, with its line"
)]

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::sink::WebhookSink;
use support::{Hub, HubOptions};

mod fleet;
mod import;
mod proxy;

const RUN: Duration = Duration::from_secs(5);

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // `bench webhooks` runs only the webhook figures.
    if std::env::args().nth(1).as_deref() == Some("webhooks") {
        webhooks(&rt);
        return;
    }
    // `bench import` runs only the import figures.
    if std::env::args().nth(1).as_deref() == Some("import") {
        let dir = tempfile::tempdir().expect("a temp dir");
        import::run(fsync_rate(dir.path()));
        return;
    }
    // `bench fleet` runs only the fleet and history figures.
    if std::env::args().nth(1).as_deref() == Some("fleet") {
        fleet::run(&rt);
        return;
    }
    // `bench claims` runs only the claims and receipts figures.
    if std::env::args().nth(1).as_deref() == Some("claims") {
        claims(&rt);
        return;
    }
    // `bench proxy` runs only the proxy figures.
    if std::env::args().nth(1).as_deref() == Some("proxy") {
        proxy::run(&rt);
        return;
    }
    let hub = Hub::start_with(HubOptions {
        env: vec![("RUST_LOG".into(), "hub=info,warn".into())],
        ..Default::default()
    });
    println!(
        "agent-event-bus bench (release build, {} cores)",
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    );
    println!();
    let (fsyncs, noop) = baselines(&rt, &hub);
    let client = Arc::new(hub.client());
    println!();

    let health = rt.block_on(health_load(&hub, 32));
    println!("machine: no-op GET /health, 32 clients {health:>10.0} /s");
    for clients in [1usize, 32] {
        let (rate, lat) = rt.block_on(publish_load(&hub, clients));
        println!(
            "durable publish, {clients:>2} clients: {rate:>10.0} /s   p50 {:>8.3} ms  p99 {:>8.3} ms   ({:.2} publishes per fsync the disk allows; {:.0}% of GET /health at 32)",
            ms(lat.p(50)),
            ms(lat.p(99)),
            rate / fsyncs.max(1.0),
            100.0 * rate / health.max(1.0)
        );
    }

    let reads = rt.block_on(latencies(2000, || {
        let c = client.clone();
        async move {
            let out = c
                .call_tool("get_events", json!({"limit": 50, "order": "desc"}))
                .await
                .expect("get_events");
            assert!(!out.is_error());
        }
    }));
    println!(
        "get_events (limit 50):       p50 {:>8.3} ms  p99 {:>8.3} ms   ({:.1}x a no-op round trip at p50)",
        ms(reads.p(50)),
        ms(reads.p(99)),
        reads.p(50).as_secs_f64() / noop.p(50).as_secs_f64()
    );

    let wake = rt.block_on(long_poll_latency(&hub, 200));
    println!(
        "publish -> waiting long-poll: p50 {:>8.3} ms  p99 {:>8.3} ms",
        ms(wake.p(50)),
        ms(wake.p(99))
    );
    if let Some(pid) = hub.pid() {
        std::thread::sleep(Duration::from_secs(1));
        println!("hub RSS after the run:        {:>8.1} MB", rss_mb(pid));
    }
    let idle = Hub::start_with(HubOptions {
        env: vec![("RUST_LOG".into(), "hub=info,warn".into())],
        ..Default::default()
    });
    std::thread::sleep(Duration::from_millis(500));
    if let Some(pid) = idle.pid() {
        println!("hub RSS idle:                 {:>8.1} MB", rss_mb(pid));
    }
    drop(idle);
    proxy::run(&rt);
    webhooks(&rt);
    import::run(fsyncs);
    fleet::run(&rt);
    claims(&rt);
}

/// The machine's own figures, printed: the disk's fsync rate and a no-op
/// HTTP round trip to `hub`.
fn baselines(rt: &tokio::runtime::Runtime, hub: &Hub) -> (f64, Lat) {
    let fsyncs = fsync_rate(hub.dir.path());
    println!("machine: fsync                        {fsyncs:>10.0} /s");
    let client = Arc::new(hub.client());
    let noop = rt.block_on(latencies(2000, || {
        let c = client.clone();
        async move {
            c.request("ping", None, Duration::from_secs(5))
                .await
                .expect("ping");
        }
    }));
    println!(
        "machine: no-op HTTP round trip (ping) p50 {:>8.3} ms  p99 {:>8.3} ms",
        ms(noop.p(50)),
        ms(noop.p(99))
    );
    (fsyncs, noop)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Lat(Vec<Duration>);

impl Lat {
    fn p(&self, pct: usize) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.0.len() - 1) * pct) / 100;
        self.0[i]
    }
}

async fn latencies<F, Fut>(n: usize, mut f: F) -> Lat
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..50 {
        f().await; // warm up connections
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        out.push(t.elapsed());
    }
    out.sort_unstable();
    Lat(out)
}

async fn publish_load(hub: &Hub, clients: usize) -> (f64, Lat) {
    publish_load_to(hub, clients, "repo:bench").await
}

/// [`publish_load`] on `channel`.
async fn publish_load_to(hub: &Hub, clients: usize, channel: &str) -> (f64, Lat) {
    let deadline = Instant::now() + RUN;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = hub.client();
        let channel = channel.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                let out = client
                    .call_tool(
                        "publish_event",
                        json!({"event_type": "bench", "payload": format!("client {c} event {i}"), "channel": channel}),
                    )
                    .await
                    .expect("publish");
                assert!(!out.is_error(), "{}", out.text());
                lat.push(t.elapsed());
                i += 1;
            }
            lat
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("a publisher"));
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort_unstable();
    (rate, Lat(all))
}

/// No-op `GET /health` requests per second from `clients` connections.
async fn health_load(hub: &Hub, clients: usize) -> f64 {
    let deadline = Instant::now() + RUN;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let client = hub.client();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                client.health().await.expect("health");
                n += 1;
            }
            n
        }));
    }
    let started = Instant::now();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("a client");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

async fn long_poll_latency(hub: &Hub, rounds: usize) -> Lat {
    let waiter = Arc::new(hub.client());
    let publisher = hub.client();
    let mut out = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let tip = publisher
            .call_tool("get_events", json!({"limit": 1}))
            .await
            .expect("tip")
            .value()["next_cursor"]
            .as_str()
            .unwrap_or("0")
            .to_owned();
        let w = waiter.clone();
        let wait = tokio::spawn(async move {
            let out = w
                .call_tool("get_events", json!({"cursor": tip, "order": "asc", "wait_seconds": 10, "channel": "session:bench"}))
                .await
                .expect("long-poll");
            (Instant::now(), out)
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let sent = Instant::now();
        publisher
            .call_tool(
                "publish_event",
                json!({"event_type": "dm", "payload": "wake", "channel": "session:bench"}),
            )
            .await
            .expect("publish");
        let (woke, page) = wait.await.expect("waiter");
        assert_eq!(page.value()["events"].as_array().map(Vec::len), Some(1));
        out.push(woke.saturating_duration_since(sent));
    }
    out.sort_unstable();
    Lat(out)
}

fn fsync_rate(dir: &std::path::Path) -> f64 {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).expect("a probe file");
    let block = [7u8; 4096];
    let started = Instant::now();
    let mut n = 0u32;
    while started.elapsed() < Duration::from_secs(2) {
        file.write_all(&block).expect("write");
        file.sync_data().expect("fsync");
        n += 1;
    }
    let _ = std::fs::remove_file(&path);
    f64::from(n) / started.elapsed().as_secs_f64()
}

fn rss_mb(pid: u32) -> f64 {
    support::proc_status_kib(pid, "VmRSS").map_or(0.0, |kb| kb as f64 / 1024.0)
}

// ---- webhooks ----------------------------------------------------------

/// Publish → receiver latency with 1 and 10 endpoints, and publish
/// throughput with 10 endpoints registered beside the same run with none.
fn webhooks(rt: &tokio::runtime::Runtime) {
    println!();
    for endpoints in [1usize, 10] {
        let hub = quiet_hub();
        let sinks = register_sinks(rt, &hub, endpoints, Duration::ZERO);
        let lat = webhook_latency(rt, &hub, &sinks, 200);
        println!(
            "publish -> webhook receiver, {endpoints:>2} endpoint(s): p50 {:>8.3} ms  p99 {:>8.3} ms",
            ms(lat.p(50)),
            ms(lat.p(99))
        );
    }
    let bare = quiet_hub();
    let (none, none_lat) = rt.block_on(publish_load(&bare, 32));
    drop(bare);
    println!(
        "durable publish, 32 clients, no webhooks:            {none:>8.0} /s   p50 {:>8.3} ms  p99 {:>8.3} ms",
        ms(none_lat.p(50)),
        ms(none_lat.p(99))
    );
    // Receivers that hold every request: the worker sends almost nothing,
    // so this is the publish path's own cost of 10 matching webhooks.
    let hub = quiet_hub();
    let held = register_sinks(rt, &hub, 10, Duration::from_secs(3600));
    let (rate, lat) = rt.block_on(publish_load(&hub, 32));
    println!(
        "durable publish, 32 clients, 10 webhooks, queued:    {rate:>8.0} /s   p50 {:>8.3} ms  p99 {:>8.3} ms   ({:.0}% of none)",
        ms(lat.p(50)),
        ms(lat.p(99)),
        100.0 * rate / none.max(1.0)
    );
    drop(hub);
    drop(held);
    // Receivers that answer at once: deliveries share the machine meanwhile.
    let hub = quiet_hub();
    let sinks = register_sinks(rt, &hub, 10, Duration::ZERO);
    let started = Instant::now();
    let (rate, lat) = rt.block_on(publish_load(&hub, 32));
    let received: usize = sinks.iter().map(|s| s.received().len()).sum();
    println!(
        "durable publish, 32 clients, 10 webhooks, delivered: {rate:>8.0} /s   p50 {:>8.3} ms  p99 {:>8.3} ms   ({:.0}% of none, while {:.0} deliveries/s reached the receivers)",
        ms(lat.p(50)),
        ms(lat.p(99)),
        100.0 * rate / none.max(1.0),
        received as f64 / started.elapsed().as_secs_f64()
    );
}

// ---- claims and receipts -------------------------------------------------

/// Publish throughput at 32 clients with 1,000 live claims (100 sessions, 10
/// each, on the repo published to) beside the same run without, and with
/// every publish a direct message (indexed for receipts).
fn claims(rt: &tokio::runtime::Runtime) {
    println!();
    let bare = quiet_hub();
    let (none, none_lat) = rt.block_on(publish_load(&bare, 32));
    drop(bare);
    println!(
        "durable publish, 32 clients, no claims:              {none:>8.0} /s   p50 {:>8.3} ms  p99 {:>8.3} ms",
        ms(none_lat.p(50)),
        ms(none_lat.p(99))
    );
    let hub = quiet_hub();
    let sessions = rt.block_on(claim_many(&hub, 100, 10));
    let (rate, lat) = rt.block_on(publish_load(&hub, 32));
    println!(
        "durable publish, 32 clients, 1,000 live claims:      {rate:>8.0} /s   p50 {:>8.3} ms  p99 {:>8.3} ms   ({:.0}% of none)",
        ms(lat.p(50)),
        ms(lat.p(99)),
        100.0 * rate / none.max(1.0)
    );
    let (rate, lat) = rt.block_on(publish_load_to(
        &hub,
        32,
        &format!("session:{}", sessions[0]),
    ));
    println!(
        "durable publish, 32 clients, direct messages:        {rate:>8.0} /s   p50 {:>8.3} ms  p99 {:>8.3} ms   ({:.0}% of none)",
        ms(lat.p(50)),
        ms(lat.p(99)),
        100.0 * rate / none.max(1.0)
    );
}

/// Registers `sessions` leased sessions (so a direct message to one shows no
/// desktop notice on the hub's machine) that claim `each` files of repo
/// `bench`; returns their ids.
async fn claim_many(hub: &Hub, sessions: usize, each: usize) -> Vec<String> {
    let mut tasks = Vec::new();
    for s in 0..sessions {
        let client = hub.client();
        tasks.push(tokio::spawn(async move {
            let reply = support::call(
                &client,
                "register_session",
                json!({"name": format!("claimer-{s}"), "cwd": "/src/bench", "lease_seconds": 3600}),
            )
            .await;
            let id = reply["session_id"].as_str().expect("a session").to_owned();
            for i in 0..each {
                let claim =
                    json!({"session_id": id, "resource": format!("file:bench/src/{s}/{i}.rs")});
                let granted = support::call(&client, "claim", claim).await;
                assert!(granted["claim_id"].is_u64(), "{granted}");
            }
            id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.expect("a claimer"));
    }
    ids
}

fn quiet_hub() -> Hub {
    Hub::start_with(HubOptions {
        env: vec![("RUST_LOG".into(), "hub=info,warn".into())],
        ..Default::default()
    })
}

/// `n` local receivers that answer 200 after `hold`, each registered for
/// every event (with a secret, so each delivery is signed).
fn register_sinks(
    rt: &tokio::runtime::Runtime,
    hub: &Hub,
    n: usize,
    hold: Duration,
) -> Vec<WebhookSink> {
    let client = hub.client();
    (0..n)
        .map(|_| {
            let sink = WebhookSink::with(move |_| (200, hold));
            rt.block_on(support::call(
                &client,
                "register_webhook",
                json!({"url": sink.url, "secret": "bench"}),
            ));
            sink
        })
        .collect()
}

/// For each of `rounds` publishes, the time until each receiver got it.
fn webhook_latency(
    rt: &tokio::runtime::Runtime,
    hub: &Hub,
    sinks: &[WebhookSink],
    rounds: usize,
) -> Lat {
    let client = hub.client();
    let mut out = Vec::with_capacity(rounds * sinks.len());
    for round in 0..rounds + 20 {
        let seen: Vec<usize> = sinks.iter().map(|s| s.received().len()).collect();
        let sent = Instant::now();
        rt.block_on(support::call(
            &client,
            "publish_event",
            json!({"event_type": "bench", "payload": "hook", "channel": "repo:bench"}),
        ));
        for (sink, before) in sinks.iter().zip(seen) {
            let got = support::wait_until("a webhook delivery", Duration::from_secs(30), || {
                sink.received().get(before).cloned()
            });
            if round >= 20 {
                out.push(got.at.saturating_duration_since(sent));
            }
        }
    }
    out.sort_unstable();
    Lat(out)
}
