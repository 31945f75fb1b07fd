//! `bench fleet`: one hub carrying a fleet on a store with history, and
//! the largest fleet one hub carries within the bar on this machine.
//!
//! The store is first filled with `BENCH_EVENTS` events (default
//! 1,000,000): filtered reads at that size beside unfiltered ones, the
//! hub's cost per publish of quiet filtered long-polls at 1k events and at
//! the full size, and store bytes per event. Then each fleet of
//! `BENCH_FLEET` (default `100,1000`) runs on a fresh hub process over a
//! copy of that store, as [`load`] plays it; and the limit search
//! ([`limit`]) starts at `BENCH_LIMIT_FROM` sessions (default 10,000; 0
//! skips it) and goes no further than `BENCH_LIMIT_MAX` (default 320,000)
//! nor than the open-file limit leaves room for.
//!
//! # Layout
//! - `history`: filling the store, the read and quiet-poll figures.
//! - `load`: one fleet on one hub, and what it measured.
//! - `wire`: the fleet's connections, one per loop, from many loopback
//!   source addresses; raising the open-file limit.
//! - `limit`: the bar and the search for where a hub leaves it.

mod history;
mod limit;
mod load;
mod wire;

use std::path::Path;
use std::sync::Arc;

use support::{Hub, HubOptions};

use load::Figures;

/// Descriptors a hub keeps back from its connection cap (see README's
/// *Connection limits*), and the connections a fleet needs besides two per
/// session (publishers, `/health`, registrars).
const HUB_RESERVE: u64 = 1024;
const SPARE_CONNECTIONS: u64 = 1000;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace(['_', ','], "").parse().ok())
        .unwrap_or(default)
}

fn quiet() -> HubOptions {
    HubOptions {
        env: vec![("RUST_LOG".into(), "hub=info,warn".into())],
        ..Default::default()
    }
}

pub(crate) fn run(rt: &tokio::runtime::Runtime) {
    let target = env_number("BENCH_EVENTS", 1_000_000);
    let fleets: Vec<usize> = std::env::var("BENCH_FLEET").ok().map_or_else(
        || vec![100, 1000],
        |v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
    );
    let from = usize::try_from(env_number("BENCH_LIMIT_FROM", 10_000)).unwrap_or(usize::MAX);
    let most = usize::try_from(env_number("BENCH_LIMIT_MAX", 320_000)).unwrap_or(usize::MAX);
    // Hubs started from here inherit it, and take their cap from it.
    let files = wire::raise_open_files();
    let cap = files.saturating_sub(HUB_RESERVE.min(files / 4));
    let room = usize::try_from(cap.saturating_sub(SPARE_CONNECTIONS) / 2).unwrap_or(usize::MAX);

    let mut hub = Hub::start_with(quiet());
    println!();
    println!("fleet bench: store filled to {target} events, then N sessions with push loops");
    crate::baselines(rt, &hub);
    println!(
        "machine: open-file limit {files}: a hub's default connection cap {cap}, \
         room for {room} sessions with push (two connections each)"
    );
    let client = Arc::new(hub.client());
    let pid = hub.pid().expect("the hub's pid");
    // At 1k events: the baseline of what a quiet filtered long-poll costs.
    rt.block_on(history::fill(&client, 1000, 1));
    let quiet_1k = rt.block_on(history::quiet_poll_cost(&client, pid));
    rt.block_on(history::fill(&client, target, 1000));
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
    let quiet_full = rt.block_on(history::quiet_poll_cost(&client, pid));
    println!(
        "hub CPU per publish with 4 quiet filtered long-polls: {quiet_1k:.1} µs at 1k events, {quiet_full:.1} µs at {target}"
    );
    history::reads(rt, &client);
    hub.stop();
    let filled = hub.db_path();

    for n in fleets {
        println!();
        load::print(&play(rt, &filled, n));
    }
    if from > 0 {
        let (max, ceiling) = if most > room {
            let why = format!(
                "the open-file limit ({files}) leaves a hub's cap ({cap}) no room for more \
                 at two connections a session (past it, the hub closes idle connections to \
                 make room: README, Connection limits)"
            );
            (room, why)
        } else {
            (most, "the search stops (BENCH_LIMIT_MAX)".to_owned())
        };
        limit::search(from, max, &ceiling, |n| play(rt, &filled, n));
    }
}

/// Plays a fleet of `n` on a fresh hub over a copy of the store `filled`.
fn play(rt: &tokio::runtime::Runtime, filled: &Path, n: usize) -> Figures {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::copy(filled, dir.path().join("data.redb")).expect("a copy of the filled store");
    let hub = Hub::start_on(Arc::new(dir), quiet());
    rt.block_on(load::fleet(&hub, n))
}
