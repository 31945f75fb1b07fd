//! The fleet bench's history figures: filling the store, filtered reads
//! at its full size beside unfiltered ones, and what quiet filtered
//! long-polls cost the hub per publish at 1k events and at the full size.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use serde_json::{Value, json};
use shared::HubClient;

use crate::{latencies, ms};

/// A 60-byte payload, as the store-size bar's typical event.
const PAYLOAD: &str = "build finished on agent-event-bus, 312 tests passed, 0 fail.";

/// Publishes until the store holds `target` events: mostly broadcasts, some
/// on repo channels, one in `dm_every` a direct message to a past session.
pub(super) async fn fill(client: &Arc<HubClient>, target: u64, dm_every: u64) {
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

pub(super) async fn publish(client: &HubClient, channel: &str, event_type: &str) -> u64 {
    let out = client
        .call_tool(
            "publish_event",
            json!({"event_type": event_type, "payload": PAYLOAD, "channel": channel}),
        )
        .await
        .expect("publish");
    out.value()["event_id"].as_u64().unwrap_or(0)
}

pub(super) async fn tip(client: &HubClient) -> u64 {
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
pub(super) fn cpu_seconds(pid: u32) -> f64 {
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
pub(super) async fn quiet_poll_cost(client: &Arc<HubClient>, pid: u32) -> f64 {
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
    super::load::settle(client, 4).await;
    let with = per_publish(client.clone()).await;
    stop.store(true, Ordering::Relaxed);
    for w in waiters {
        let _ = w.await;
    }
    (with - alone).max(0.0)
}

/// Filtered reads with one match at the full size, beside unfiltered ones.
pub(super) fn reads(rt: &tokio::runtime::Runtime, client: &Arc<HubClient>) {
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
