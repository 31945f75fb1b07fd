//! End-to-end tests: `agent-event-bus import` brings an original-format
//! `SQLite` database (the current schema and the first one) into a new store,
//! and the hub started on it answers `get_events`, `resume`,
//! `list_sessions` and `list_webhooks` as the original did, continues the
//! ids and signs deliveries with the imported secret. A missing, corrupt,
//! foreign or busy file and a non-empty target are refused with both files
//! left byte for byte as they were.
//!
//! # Layout
//! - `schemas`: the current schema and the first, imported and answered
//!   from.
//! - `refusals`: what is refused, with both files left as they were, and
//!   `--force`.
//! - `default_path`: a hub on the default path pointing at the import.

mod default_path;
mod refusals;
mod schemas;

use std::path::Path;
use std::process::Stdio;

use support::Output;
use support::original::{Original, SCHEMA_V5, local_iso};
use support::sink::WebhookSink;

/// The original wrote naive local times; the import reads them in this
/// zone (POSIX `EST5`: five hours west of UTC).
const TZ: &str = "EST5";
const OFFSET_HOURS: i64 = -5;
/// 2026-11-29T16:04:28.051614Z: the first event's time.
const T0: i64 = 1_795_968_268_051_614;
const SECRET: &str = "whsec-from-the-original";

/// Now, in whole seconds (session times are stored in milliseconds).
fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Runs `agent-event-bus import` with `args` in the test time zone.
fn import(args: &[&Path], extra: &[&str]) -> Output {
    let mut cmd = support::command("agent-event-bus");
    cmd.arg("import")
        .args(args)
        .args(extra)
        .env("TZ", TZ)
        .stdin(Stdio::null());
    let out = cmd.output().expect("the hub binary runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The current-schema original: 120 events over three channels, with
/// threads, titles, tags, levels and one corrupt meta; sessions alpha
/// (saved cursor 100), beta (no cursor) and gamma (unregistered); webhook 1
/// (signed, `repo:` prefix), webhook 2 deleted, webhook 3 paused. Session
/// times are seconds before `now` (epoch seconds).
fn current_original(path: &Path, sink: &WebhookSink, now: i64) {
    let ago = |secs: i64| local_iso((now - secs) * 1_000_000, OFFSET_HOURS);
    let db = Original::create(path, SCHEMA_V5);
    for i in 1..=120i64 {
        let channel = match i % 3 {
            0 => "all",
            1 => "repo:alpha",
            _ => "session:beta-0001",
        };
        let correlation = (i % 10 == 0).then_some("thread-1");
        let meta = match i {
            7 => Some(
                r#"{"title": "Build broke", "tags": ["ci", "urgent"], "signal_level": "actionable"}"#,
            ),
            8 => Some("{not json"),
            _ => None,
        };
        let id = db.event(
            "task_completed",
            &format!("step {i}"),
            "cli-alpha",
            &local_iso(T0 + (i - 1) * 1_000_000, OFFSET_HOURS),
            channel,
            correlation,
            meta,
        );
        assert_eq!(id, i);
    }
    let machine = shared::config::hostname();
    let session = |id: &str,
                   display: &str,
                   name: &str,
                   client: Option<&str>,
                   cursor: Option<&str>,
                   heartbeat_ago: i64,
                   deleted_ago: Option<i64>| {
        db.conn
            .execute(
                "INSERT INTO sessions (id, display_id, name, machine, cwd, repo, registered_at, last_heartbeat, client_id, last_cursor, deleted_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                rusqlite::params![
                    id,
                    display,
                    name,
                    machine,
                    format!("/src/{name}"),
                    name,
                    ago(7200),
                    ago(heartbeat_ago),
                    client,
                    cursor,
                    deleted_ago.map(ago),
                ],
            )
            .expect("insert a session");
    };
    session(
        "cli-alpha",
        "brave-trex",
        "alpha",
        Some("cli-alpha"),
        Some("100"),
        600,
        None,
    );
    session("beta-0001", "calm-raptor", "beta", None, None, 300, None);
    session(
        "gamma-0001",
        "quiet-iguanodon",
        "gamma",
        Some("cli-gamma"),
        Some("40"),
        5000,
        Some(3600),
    );
    for (url, filter, active, secret, at) in [
        (sink.url.clone(), Some("repo:"), 1, Some(SECRET), 0),
        (format!("{}/gone", sink.url), None, 1, None, 1),
        (format!("{}/paused", sink.url), None, 0, None, 2),
    ] {
        db.conn
            .execute(
                "INSERT INTO webhooks (url, channel_filter, event_types, created_at, active, secret) VALUES (?1, ?2, NULL, ?3, ?4, ?5)",
                rusqlite::params![url, filter, local_iso(T0 + at * 1_000_000, OFFSET_HOURS), active, secret],
            )
            .expect("insert a webhook");
    }
    db.conn
        .execute("DELETE FROM webhooks WHERE id = 2", [])
        .expect("unregister webhook 2");
    db.close();
}

/// Asserts the import succeeded and its summary has every one of `lines`.
fn assert_summary(out: &Output, lines: &[&str]) {
    assert_eq!(out.code, 0, "{out:#?}");
    for line in lines {
        assert!(
            out.stdout.contains(line),
            "{line:?} not in:\n{}",
            out.stdout
        );
    }
}

/// The files in `dir`, to prove an import left nothing behind.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read the dir")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}
