//! End-to-end tests: `agent-event-bus import` brings an original-format
//! `SQLite` database (the current schema and the first one) into a new store,
//! and the hub started on it answers `get_events`, `resume`,
//! `list_sessions` and `list_webhooks` as the original did, continues the
//! ids and signs deliveries with the imported secret. A missing, corrupt,
//! foreign or busy file and a non-empty target are refused with both files
//! left byte for byte as they were.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use support::original::{Original, SCHEMA_V1, SCHEMA_V5, local_iso};
use support::sink::WebhookSink;
use support::{Cli, Hub, HubOptions, Output};

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

fn ids(page: &Value) -> Vec<u64> {
    page["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {page}"))
        .iter()
        .map(|e| e["id"].as_u64().expect("an id"))
        .collect()
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

#[test]
fn an_imported_bus_answers_as_the_original_did() {
    let sink = WebhookSink::ok();
    let dir = Arc::new(tempfile::tempdir().expect("a temp dir"));
    let source = dir.path().join("data.db");
    let target = dir.path().join("data.redb");
    let now = now_secs();
    current_original(&source, &sink, now);
    let before = std::fs::read(&source).expect("read the original");

    let out = import(&[&source], &["--db", target.to_str().unwrap()]);
    assert_summary(
        &out,
        &[
            "(schema version 5)",
            "events:   120 (ids 1 to 120); the next published event gets id 121",
            "sessions: 3 (2 live, 1 ended)",
            "webhooks: 2 (1 active, 1 paused); the next registered gets id 4",
            "skipped:  nothing",
            "1 events whose payload_meta is not a JSON object",
        ],
    );
    assert_eq!(
        std::fs::read(&source).unwrap(),
        before,
        "the original is untouched"
    );
    assert_eq!(
        names_in(dir.path()),
        ["data.db", "data.redb"],
        "no -wal, -shm or temp file"
    );

    let hub = Hub::start_on(dir.clone(), HubOptions::default());

    // get_events pages through the history in the same order with the same cursors.
    let mut cursor = Value::Null;
    let mut seen = Vec::new();
    for (want, more) in [((1..=50), true), ((51..=100), true), ((101..=120), false)] {
        let page = hub.tool(
            "get_events",
            json!({"cursor": cursor, "limit": 50, "order": "asc"}),
        );
        assert_eq!(ids(&page), want.clone().collect::<Vec<_>>());
        assert_eq!(page["has_more"], more);
        assert_eq!(page["next_cursor"], want.end().to_string());
        cursor = page["next_cursor"].clone();
        seen.extend(ids(&page));
    }
    assert_eq!(seen, (1..=120).collect::<Vec<_>>());
    let newest = hub.tool("get_events", json!({"limit": 50}));
    assert_eq!(ids(&newest), (71..=120).rev().collect::<Vec<_>>());
    assert_eq!(newest["next_cursor"], "120");

    // Each event keeps its fields; its local time is now RFC 3339 UTC.
    let page = hub.tool(
        "get_events",
        json!({"cursor": "6", "limit": 4, "order": "asc"}),
    );
    let events = page["events"].as_array().unwrap();
    assert_eq!(
        events[0],
        json!({
            "id": 7, "event_type": "task_completed", "payload": "step 7",
            "session_id": "cli-alpha", "timestamp": "2026-11-29T16:04:34.051614Z",
            "channel": "repo:alpha", "correlation_id": null, "signal_level": "actionable",
            "title": "Build broke", "tags": ["ci", "urgent"]
        })
    );
    assert!(
        events[1].get("title").is_none(),
        "corrupt meta reads as none"
    );
    assert_eq!(events[1]["channel"], "session:beta-0001");
    assert_eq!(events[3]["correlation_id"], "thread-1");
    assert_eq!(events[3]["timestamp"], "2026-11-29T16:04:37.051614Z");
    let thread = hub.tool(
        "get_events",
        json!({"correlation_id": "thread-1", "limit": 100}),
    );
    assert_eq!(
        ids(&thread),
        (1..=12).rev().map(|i| i * 10).collect::<Vec<_>>()
    );

    // list_sessions: the live ones, most recently active first, as stored.
    let sessions = hub.tool("list_sessions", json!({}));
    let sessions = sessions.as_array().unwrap();
    let listed: Vec<&str> = sessions
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["beta-0001", "cli-alpha"]);
    let alpha = &sessions[1];
    assert_eq!(alpha["display_id"], "brave-trex");
    assert_eq!(alpha["name"], "alpha");
    assert_eq!(alpha["machine"], shared::config::hostname());
    assert_eq!(alpha["cwd"], "/src/alpha");
    assert_eq!(alpha["repo"], "alpha");
    assert_eq!(alpha["client_id"], "cli-alpha");
    let utc = |secs_ago: i64| shared::time::format_ms((now - secs_ago) * 1000);
    assert_eq!(alpha["registered_at"], utc(7200));
    assert_eq!(alpha["last_heartbeat"], utc(600));
    assert_eq!(sessions[0]["client_id"], Value::Null);

    // The unregistered session stays unregistered.
    let gamma = hub.tool(
        "get_events",
        json!({"session_id": "gamma-0001", "resume": true}),
    );
    assert_eq!(gamma["error"], "Session deleted", "{gamma}");
    assert_eq!(gamma["display_id"], "quiet-iguanodon");

    // A hook resumes from its saved cursor, under the same ids.
    let again = hub.tool(
        "register_session",
        json!({"name": "alpha", "machine": shared::config::hostname(), "cwd": "/src/alpha", "client_id": "cli-alpha"}),
    );
    assert_eq!(again["resumed"], true, "{again}");
    assert_eq!(again["session_id"], "cli-alpha");
    assert_eq!(again["display_id"], "brave-trex");
    assert_eq!(again["cursor"], "100");
    let resumed = hub.tool(
        "get_events",
        json!({"session_id": "cli-alpha", "resume": true, "order": "asc"}),
    );
    assert_eq!(ids(&resumed), (101..=120).collect::<Vec<_>>());
    assert_eq!(resumed["next_cursor"], "120");

    // list_webhooks: the active one by default; all of them newest first.
    let hooks = hub.tool("list_webhooks", json!({}));
    assert_eq!(hooks.as_array().unwrap().len(), 1, "{hooks}");
    let hook = &hooks[0];
    assert_eq!(hook["webhook_id"], 1);
    assert_eq!(hook["url"], sink.url);
    assert_eq!(hook["channel"], "repo:");
    assert_eq!(hook["event_types"], Value::Null);
    assert_eq!(hook["active"], true);
    assert_eq!(hook["has_secret"], true);
    assert_eq!(hook["created_at"], "2026-11-29T16:04:28.051000Z");
    let all = hub.tool("list_webhooks", json!({"active_only": false}));
    let all: Vec<(u64, bool)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["webhook_id"].as_u64().unwrap(),
                h["active"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(all, [(3, false), (1, true)]);

    // New ids continue after the highest the original handed out.
    let id = hub.publish(
        "cli-alpha",
        "task_completed",
        "after the move",
        "repo:alpha",
    );
    assert_eq!(id, 121);
    let new_hook = hub.tool(
        "register_webhook",
        json!({"url": format!("{}/new", sink.url)}),
    );
    assert_eq!(
        new_hook["webhook_id"], 4,
        "id 2 was handed out once and stays used"
    );

    // The delivery is signed with the secret the receiver already knows.
    let got = sink.wait_for(1, Duration::from_secs(20));
    let first = &got[0];
    assert!(sink.url.ends_with(&first.path), "{}", first.path);
    assert_eq!(first.json()["event_id"], 121, "history is not re-delivered");
    crate::webhooks::assert_signed(first, SECRET);
}

#[test]
fn the_first_schema_imports_with_the_defaults_the_original_read() {
    let dir = Arc::new(tempfile::tempdir().expect("a temp dir"));
    let source = dir.path().join("old.db");
    let db = Original::create(&source, SCHEMA_V1);
    for (i, event_type) in ["session_registered", "note", "help_needed"]
        .iter()
        .enumerate()
    {
        db.conn
            .execute(
                "INSERT INTO events (event_type, payload, session_id, timestamp) VALUES (?1, ?2, 'old-client', ?3)",
                rusqlite::params![event_type, format!("old {i}"), local_iso(T0 + i64::try_from(i).unwrap() * 1_000_000, OFFSET_HOURS)],
            )
            .expect("insert an old event");
    }
    db.conn
        .execute(
            "INSERT INTO sessions (id, name, machine, cwd, repo, registered_at, last_heartbeat, client_id) \
             VALUES ('old-client', 'veteran', ?1, '/src/old', 'old', ?2, ?3, 'old-client')",
            rusqlite::params![
                shared::config::hostname(),
                local_iso((now_secs() - 3600) * 1_000_000, OFFSET_HOURS),
                local_iso((now_secs() - 60) * 1_000_000, OFFSET_HOURS)
            ],
        )
        .expect("insert an old session");
    db.close();

    let out = import(
        &[&source],
        &["--db", dir.path().join("data.redb").to_str().unwrap()],
    );
    assert_summary(
        &out,
        &[
            "(schema version 1)",
            "events:   3 (ids 1 to 3)",
            "sessions: 1 (1 live, 0 ended)",
            "webhooks: 0 (0 active, 0 paused); the next registered gets id 1",
        ],
    );

    let hub = Hub::start_on(dir, HubOptions::default());
    let page = hub.tool("get_events", json!({"order": "asc"}));
    assert_eq!(
        page["events"][1],
        json!({
            "id": 2, "event_type": "note", "payload": "old 1", "session_id": "old-client",
            "timestamp": "2026-11-29T16:04:29.051614Z", "channel": "all",
            "correlation_id": null, "signal_level": "info"
        })
    );
    assert_eq!(page["events"][0]["signal_level"], "lifecycle");
    assert_eq!(page["events"][2]["signal_level"], "actionable");
    let sessions = hub.tool("list_sessions", json!({}));
    assert_eq!(sessions[0]["session_id"], "old-client");
    assert_eq!(
        sessions[0]["display_id"], "old-client",
        "the id stands in, as the original showed it"
    );
    // No saved cursor: a resume starts at the tip, as the original's did.
    let again = hub.tool(
        "register_session",
        json!({"name": "veteran", "machine": shared::config::hostname(), "client_id": "old-client"}),
    );
    assert_eq!(again["resumed"], true, "{again}");
    assert_eq!(again["cursor"], "3");
}

/// A `SQLite` writer in another process (python3's sqlite3, as the original
/// used) holding an open write transaction until dropped.
struct Writer(std::process::Child);

impl Writer {
    /// `journal_mode` is the original's `WAL`, or `DELETE` (a rollback
    /// journal, as databases older than its WAL switch were written).
    fn hold(path: &Path, journal_mode: &str) -> Self {
        let script = "import sqlite3, sys\n\
                      c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
                      c.execute('PRAGMA journal_mode=' + sys.argv[2])\n\
                      c.execute('BEGIN IMMEDIATE')\n\
                      c.execute(\"INSERT INTO events (event_type, payload, session_id, timestamp) VALUES ('x', 'y', 'z', '2026-11-29T16:00:00')\")\n\
                      print('ready', flush=True)\n\
                      sys.stdin.read()\n";
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(path)
            .arg(journal_mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs (the original's own runtime)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout is piped"))
            .read_line(&mut line)
            .expect("the writer reports");
        assert_eq!(line.trim(), "ready");
        Self(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.0.stdin.take() {
            let _ = stdin.write_all(b"");
        }
        let _ = self.0.wait();
    }
}

#[test]
fn refusals_leave_both_files_as_they_were() {
    let sink = WebhookSink::ok();
    let dir = tempfile::tempdir().expect("a temp dir");
    let good = dir.path().join("good.db");
    current_original(&good, &sink, now_secs());
    let target = dir.path().join("data.redb");
    assert_summary(&import(&[&good], &["--db", target.to_str().unwrap()]), &[]);

    let corrupt = dir.path().join("corrupt.db");
    let mut bytes = std::fs::read(&good).unwrap();
    let page = 4096.min(bytes.len() / 2);
    for b in &mut bytes[page..] {
        *b = 0xA5;
    }
    std::fs::write(&corrupt, &bytes).unwrap();
    let foreign = dir.path().join("foreign.db");
    let other = rusqlite::Connection::open(&foreign).unwrap();
    other
        .execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('x');")
        .unwrap();
    drop(other);
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database\n").unwrap();
    let busy = dir.path().join("busy.db");
    std::fs::copy(&good, &busy).unwrap();
    let writer = Writer::hold(&busy, "WAL");
    let journaled = dir.path().join("journaled.db");
    std::fs::copy(&good, &journaled).unwrap();
    let rollback_writer = Writer::hold(&journaled, "DELETE");

    let cases: Vec<(PathBuf, Vec<&str>, String)> = vec![
        (dir.path().join("missing.db"), vec![], "cannot read".into()),
        (
            text.clone(),
            vec!["--force"],
            "is not a SQLite database".into(),
        ),
        (
            corrupt.clone(),
            vec!["--force"],
            "cannot be read as a SQLite database".into(),
        ),
        (
            foreign.clone(),
            vec!["--force"],
            "not the original agent-event-bus's".into(),
        ),
        (
            busy.clone(),
            vec!["--force"],
            format!("is in use: process {} has it open", writer.pid()),
        ),
        (
            journaled.clone(),
            vec!["--force"],
            "journaled.db-journal holds".into(),
        ),
        (
            good.clone(),
            vec![],
            "already holds 120 events, 3 sessions and 2 webhooks; pass --force".into(),
        ),
    ];
    let listing = names_in(dir.path());
    let target_bytes = std::fs::read(&target).unwrap();
    for (source, flags, want) in cases {
        let source_bytes = std::fs::read(&source).ok();
        let mut args = vec!["--db", target.to_str().unwrap()];
        args.extend(flags);
        let out = import(&[&source], &args);
        assert_ne!(out.code, 0, "{}: {out:#?}", source.display());
        assert!(out.stderr.contains(&want), "{want:?} not in {out:#?}");
        assert!(out.stderr.contains("no file was changed"), "{out:#?}");
        assert_eq!(
            std::fs::read(&source).ok(),
            source_bytes,
            "{} untouched",
            source.display()
        );
        assert_eq!(
            std::fs::read(&target).unwrap(),
            target_bytes,
            "the store untouched"
        );
        assert_eq!(names_in(dir.path()), listing, "nothing left behind");
    }
    drop(writer);
    drop(rollback_writer);
    let onto_itself = import(&[&good], &["--db", good.to_str().unwrap(), "--force"]);
    assert_ne!(onto_itself.code, 0);
    assert!(
        onto_itself.stderr.contains("are the same file"),
        "{onto_itself:#?}"
    );

    // --force replaces a store that holds data.
    let old = dir.path().join("old.db");
    let db = Original::create(&old, SCHEMA_V1);
    db.conn
        .execute("INSERT INTO events (event_type, payload, session_id, timestamp) VALUES ('note', 'only', 's', '2026-11-29T16:00:00')", [])
        .unwrap();
    db.close();
    let out = import(&[&old], &["--db", target.to_str().unwrap(), "--force"]);
    assert_summary(
        &out,
        &["(replacing what it held)", "events:   1 (ids 1 to 1)"],
    );
}

#[test]
fn a_hub_on_the_default_path_points_at_the_import() {
    let home = tempfile::tempdir().expect("a temp home");
    let data = home.path().join(".claude/contrib/agent-event-bus");
    std::fs::create_dir_all(&data).unwrap();
    Original::create(&data.join("data.db"), SCHEMA_V5).close();
    let hint = format!("agent-event-bus import {}", data.join("data.db").display());

    let (log, doctor) = run_default_hub(home.path(), true);
    assert!(log.contains(&hint), "{log}");
    assert!(doctor.contains(&hint), "{doctor}");
    // Once the store exists the hub stays quiet about it.
    let (log, _) = run_default_hub(home.path(), false);
    assert!(!log.contains("agent-event-bus import"), "{log}");
}

/// Starts the hub with `HOME` and no `--db`, returns its log up to the
/// readiness line and (when asked) `doctor`'s output against it.
fn run_default_hub(home: &Path, doctor: bool) -> (String, String) {
    let mut child = support::command("agent-event-bus")
        .args(["--host", "127.0.0.1", "--port", "0"])
        .env("HOME", home)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the hub starts");
    let mut log = String::new();
    let mut url = None;
    for line in BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        log.push_str(&line);
        log.push('\n');
        if let Some(rest) = line.split("listening on ").nth(1) {
            url = Some(format!("{}/mcp", rest.trim()));
            break;
        }
    }
    let url = url.unwrap_or_else(|| panic!("the hub did not start:\n{log}"));
    let report = if doctor {
        Cli::at(&url)
            .env("HOME", &home.to_string_lossy())
            .run(&["doctor"])
            .stdout
    } else {
        String::new()
    };
    let _ = child.kill();
    let _ = child.wait();
    (log, report)
}
