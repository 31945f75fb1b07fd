//! `bench import`: builds original-format databases of 100,000 and
//! 1,000,000 events and times `agent-event-bus import` on each, with the
//! importer's peak RSS (flat memory shows as the same peak for both sizes).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::original::{Original, SCHEMA_V5, local_iso};

/// 2026-11-29T16:04:28Z, the first event's time.
const T0: i64 = 1_795_968_268_000_000;

pub(crate) fn run(fsyncs: f64) {
    println!();
    println!("import (machine: fsync {fsyncs:.0} /s)");
    for events in [100_000i64, 1_000_000] {
        let dir = tempfile::tempdir().expect("a temp dir");
        let source = dir.path().join("data.db");
        let built = Instant::now();
        build(&source, events);
        let size = std::fs::metadata(&source).map_or(0, |m| m.len());
        let target = dir.path().join("data.redb");
        let (took, peak_kb, ok) = time_import(&source, &target);
        assert!(ok, "the import failed");
        println!(
            "import {events:>9} events ({:>5.0} MB SQLite, built in {:.1}s): {:>6.1}s  {:>9.0} events/s  peak RSS {:>6.1} MB  store {:>5.0} MB",
            size as f64 / 1e6,
            built.elapsed().as_secs_f64() - took.as_secs_f64(),
            took.as_secs_f64(),
            events as f64 / took.as_secs_f64(),
            peak_kb as f64 / 1024.0,
            std::fs::metadata(&target).map_or(0, |m| m.len()) as f64 / 1e6,
        );
    }
}

/// An original database with `events` events of ~150 bytes of payload, a
/// tenth with structured fields, and a few sessions and webhooks.
fn build(path: &Path, events: i64) {
    let mut db = Original::create(path, SCHEMA_V5);
    let txn = db.conn.transaction().expect("a transaction");
    {
        let mut insert = txn
            .prepare(
                "INSERT INTO events (event_type, payload, session_id, timestamp, channel, correlation_id, payload_meta) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .expect("prepare");
        for i in 0..events {
            let meta = (i % 10 == 0).then_some(
                r#"{"title": "Build finished", "tags": ["ci"], "signal_level": "info"}"#,
            );
            insert
                .execute(rusqlite::params![
                    if i % 7 == 0 { "help_needed" } else { "task_completed" },
                    format!("step {i}: finished the migration of module {} and pushed the branch for review; tests pass", i % 97),
                    format!("session-{}", i % 20),
                    local_iso(T0 + i * 250_000, 0),
                    if i % 3 == 0 { "all".to_owned() } else { format!("repo:r{}", i % 5) },
                    (i % 50 == 0).then(|| format!("thread-{}", i / 50)),
                    meta,
                ])
                .expect("insert");
        }
    }
    txn.commit().expect("commit");
    db.conn
        .execute_batch(
            "INSERT INTO sessions VALUES ('s-1', 'brave-trex', 'one', 'm', '/src/a', 'a', '2026-11-29T16:00:00', '2026-11-29T16:05:00', 's-1', '5', NULL);
             INSERT INTO webhooks (url, channel_filter, event_types, created_at, active, secret) VALUES ('http://127.0.0.1:9/h', NULL, NULL, '2026-11-29T16:00:00', 1, 'x');",
        )
        .expect("sessions and webhooks");
    db.close();
}

/// Runs the release importer; returns its wall time, peak RSS in kB (read
/// from /proc while it runs) and whether it succeeded.
fn time_import(source: &Path, target: &Path) -> (Duration, u64, bool) {
    let started = Instant::now();
    let mut child = support::command("agent-event-bus")
        .arg("import")
        .arg(source)
        .arg("--db")
        .arg(target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the importer starts");
    let mut peak = 0u64;
    loop {
        peak = peak.max(support::proc_status_kib(child.id(), "VmHWM").unwrap_or(0));
        if let Ok(Some(status)) = child.try_wait() {
            return (started.elapsed(), peak, status.success());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
