//! One hub's limit on this machine: the fleet size at which it leaves the
//! bar (DM wake p99 over 50 ms, RSS over 1 GB, a lapsed renewal, or a
//! failed push poll or publish). Each size is played on a fresh hub process
//! over a copy of the filled store: the search doubles from a start size
//! while the hub stays within the bar, then halves the gap between the last
//! size within it and the first past it until that gap is an eighth of the
//! size. A size past the bar is played once more, and counts as past only
//! when it is past again: on a shared machine the disk stalls now and then
//! (a publish waits for its fsync, and so does the wake it causes), and a
//! stall passes where a hub past its limit stays past it.

use std::time::{Duration, Instant};

use super::load::{self, Figures};
use crate::ms;

/// DM publish → woken poll, p99.
const WAKE_P99: Duration = Duration::from_millis(50);
const RSS_MB: f64 = 1024.0;
/// The search stops halving once the gap is this share of the size.
const RESOLUTION: usize = 8;

/// Why a fleet left the bar; empty when it stayed within it.
pub(super) fn breaches(f: &Figures) -> Vec<String> {
    let mut out = Vec::new();
    if f.wake.p(99) > WAKE_P99 {
        out.push(format!("DM wake p99 {:.1} ms > 50 ms", ms(f.wake.p(99))));
    }
    if f.rss_mb > RSS_MB {
        out.push(format!("RSS {:.0} MB > 1 GB", f.rss_mb));
    }
    if f.lapses > 0 {
        out.push(format!("{} lapsed renewals", f.lapses));
    }
    if f.failed_polls > 0 {
        out.push(format!("{} failed push polls", f.failed_polls));
    }
    if f.failed_publishes > 0 {
        out.push(format!("{} failed publishes", f.failed_publishes));
    }
    out
}

/// The machine's load average (1, 5, 15 minutes), as `/proc/loadavg` says.
pub(super) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

/// Finds the limit from `start`, never past `max` (`ceiling` says what sets
/// it); `play` runs one size on a fresh hub. Prints each step and the
/// figure.
pub(super) fn search(
    start: usize,
    max: usize,
    ceiling: &str,
    mut play: impl FnMut(usize) -> Figures,
) {
    let began = Instant::now();
    println!();
    println!(
        "limit search: from {start} sessions, doubling, then halving the gap to 1/{RESOLUTION}; \
         the bar: DM wake p99 <= 50 ms, RSS <= 1 GB, no lapsed renewal, no failed push poll or publish \
         (machine load {})",
        load_average()
    );
    let mut within: Option<(usize, Figures)> = None;
    let mut past: Option<(usize, Vec<String>)> = None;
    let mut steps = Vec::new();
    let mut n = start.min(max);
    loop {
        println!();
        println!(
            "step {}: {n} sessions ({:.0} s in, machine load {})",
            steps.len() + 1,
            began.elapsed().as_secs_f64(),
            load_average()
        );
        let mut figures = play(n);
        load::print(&figures);
        let mut why = breaches(&figures);
        if !why.is_empty() {
            println!("  past the bar: {}; once more to be sure", why.join(", "));
            figures = play(n);
            load::print(&figures);
            why = breaches(&figures);
        }
        if why.is_empty() {
            println!("  within the bar");
            steps.push(format!("{n} ok"));
            within = Some((n, figures));
        } else {
            println!("  past the bar: {}", why.join(", "));
            steps.push(format!("{n} past"));
            past = Some((n, why));
        }
        let low = within.as_ref().map_or(0, |(n, _)| *n);
        n = match &past {
            None if n >= max => break,
            None => (n * 2).min(max),
            Some((high, _)) if within.is_none() && *high <= start / RESOLUTION => break,
            Some((high, _)) if high - low <= (low / RESOLUTION).max(1) => break,
            Some((high, _)) => low + (high - low) / 2,
        };
    }
    println!();
    match (&within, &past) {
        (Some((n, f)), Some((high, why))) => println!(
            "one hub's limit on this machine: {n} sessions with push within the bar \
             (DM wake p99 {:.1} ms, RSS {:.0} MB, no lapses); at {high}: {}",
            ms(f.wake.p(99)),
            f.rss_mb,
            why.join(", ")
        ),
        (Some((n, f)), None) => println!(
            "one hub's limit on this machine: {n} sessions with push, where {ceiling}; \
             within the bar there (DM wake p99 {:.1} ms, RSS {:.0} MB, no lapses)",
            ms(f.wake.p(99)),
            f.rss_mb
        ),
        (None, _) => println!(
            "one hub's limit on this machine: fewer than {} sessions with push \
             (start lower with BENCH_LIMIT_FROM)",
            past.as_ref().map_or(start, |(n, _)| *n)
        ),
    }
    println!(
        "  steps: {}; {:.0} s; machine load at the end {}",
        steps.join(", "),
        began.elapsed().as_secs_f64(),
        load_average()
    );
}
