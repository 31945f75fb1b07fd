//! Refusals: a missing, corrupt, foreign or busy file, a non-empty target
//! and a store onto itself leave both files byte for byte as they were;
//! `--force` replaces a store that holds data.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::original::{Original, SCHEMA_V1};
use support::sink::WebhookSink;

use super::{assert_summary, current_original, import, names_in, now_secs};

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
