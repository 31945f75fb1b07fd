//! Proxy figures: start → `initialize` reply and RSS, the extra latency of a
//! tool call through the proxy over a direct `/mcp` call, and how soon a
//! direct message becomes a `notifications/claude/channel`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::proxy::Proxy;
use support::{Hub, HubOptions};

use super::{Lat, ms, rss_mb};

const STARTS: usize = 20;
const CALLS: usize = 500;
/// Proxies × direct messages each (within one proxy's push burst of 5).
const DM_PROXIES: usize = 4;
const DMS_EACH: usize = 5;
const DEADLINE: Duration = Duration::from_secs(30);

pub(crate) fn run(rt: &tokio::runtime::Runtime) {
    let hub = Hub::start_with(HubOptions {
        env: vec![("RUST_LOG".into(), "hub=info,warn".into())],
        ..Default::default()
    });
    println!();

    // Start → initialize reply, and RSS once registered and idle.
    let mut starts = Vec::new();
    let mut rss = Vec::new();
    for i in 0..STARTS {
        let name = format!("start-{i}");
        let started = Instant::now();
        let mut proxy = Proxy::spawn(&hub, &[("AGENT_EVENT_BUS_SESSION_NAME", name.as_str())]);
        proxy.result("initialize", Some(init_params()));
        starts.push(started.elapsed());
        if i < 3 {
            proxy.notify("notifications/initialized");
            wait_registered(&hub, &name);
            std::thread::sleep(Duration::from_millis(500));
            rss.push(rss_mb(proxy.pid));
        }
    }
    starts.sort_unstable();
    let starts = Lat(starts);
    println!(
        "proxy start -> initialize reply: p50 {:>8.3} ms  p99 {:>8.3} ms   ({STARTS} starts)",
        ms(starts.p(50)),
        ms(starts.p(99))
    );
    println!(
        "proxy RSS, registered and idle:  {:>8.1} MB",
        rss.iter().copied().fold(0.0, f64::max)
    );

    // A call through the proxy against the same call straight to /mcp.
    let mut proxy = Proxy::spawn(&hub, &[("AGENT_EVENT_BUS_SESSION_NAME", "calls")]);
    proxy.initialize();
    wait_registered(&hub, "calls");
    let client = hub.client();
    let mut direct = Vec::with_capacity(CALLS);
    let mut through = Vec::with_capacity(CALLS);
    for i in 0..CALLS + 50 {
        let t = Instant::now();
        rt.block_on(client.call_tool("list_channels", json!({})))
            .expect("list_channels");
        let d = t.elapsed();
        let t = Instant::now();
        proxy.call_ok("list_channels", json!({}));
        let p = t.elapsed();
        if i >= 50 {
            direct.push(d);
            through.push(p);
        }
    }
    direct.sort_unstable();
    through.sort_unstable();
    let (direct, through) = (Lat(direct), Lat(through));
    println!(
        "list_channels direct /mcp:       p50 {:>8.3} ms  p99 {:>8.3} ms",
        ms(direct.p(50)),
        ms(direct.p(99))
    );
    println!(
        "list_channels through the proxy: p50 {:>8.3} ms  p99 {:>8.3} ms   (+{:.3} ms at p50)",
        ms(through.p(50)),
        ms(through.p(99)),
        ms(through.p(50)) - ms(direct.p(50))
    );
    drop(proxy);

    // Direct message → channel notification.
    let sender = rt
        .block_on(client.call_tool(
            "register_session",
            json!({"name": "bench-sender", "client_id": "bench-sender"}),
        ))
        .expect("register")
        .value()["session_id"]
        .as_str()
        .unwrap_or("bench-sender")
        .to_owned();
    let mut lat = Vec::new();
    for p in 0..DM_PROXIES {
        let name = format!("dm-{p}");
        let mut proxy = Proxy::spawn(&hub, &[("AGENT_EVENT_BUS_SESSION_NAME", name.as_str())]);
        proxy.initialize();
        let me = wait_registered(&hub, &name);
        // Let the push long-poll settle in.
        std::thread::sleep(Duration::from_millis(300));
        for i in 0..DMS_EACH {
            let sent = Instant::now();
            let out = rt
                .block_on(client.call_tool(
                    "publish_event",
                    json!({"session_id": sender, "event_type": "bench", "payload": format!("dm {p}/{i}"), "channel": format!("session:{me}")}),
                ))
                .expect("publish");
            let id = out.value()["event_id"].to_string();
            let seen = proxy.wait_notifications(DEADLINE, |all| {
                all.iter()
                    .any(|n| {
                        n["method"] == "notifications/claude/channel"
                            && n["params"]["meta"]["event_id"] == Value::String(id.clone())
                    })
                    .then(Instant::now)
            });
            let seen = seen.expect("the channel notification arrives");
            lat.push(seen.saturating_duration_since(sent));
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    lat.sort_unstable();
    let lat = Lat(lat);
    println!(
        "DM publish -> channel notification: p50 {:>8.3} ms  p99 {:>8.3} ms   ({} DMs; includes the durable publish)",
        ms(lat.p(50)),
        ms(lat.p(99)),
        DM_PROXIES * DMS_EACH
    );
}

fn init_params() -> Value {
    json!({
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "0"},
    })
}

/// Waits until a session with this name is live; its id.
fn wait_registered(hub: &Hub, name: &str) -> String {
    support::wait_until(&format!("{name} to register"), DEADLINE, || {
        hub.tool("list_sessions", json!({}))
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["name"] == name)
            .and_then(|s| s["session_id"].as_str().map(str::to_owned))
    })
}
