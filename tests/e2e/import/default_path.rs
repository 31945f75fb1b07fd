//! A hub started on the default path beside an original database points
//! at the import, in its log and in `doctor`, until the store exists.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use support::Cli;
use support::original::{Original, SCHEMA_V5};

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
