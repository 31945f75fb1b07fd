//! `publish`, `events`, `ack` and `notify`: the original's blocks, hints,
//! JSON spacing and refusals.

use serde_json::json;
use support::{Cli, Hub};

use super::{assert_fails, assert_ok, event, publish_id};

#[test]
fn publish_and_events_print_the_original_blocks_and_hints() {
    let hub = Hub::start();
    let cli = Cli::new(&hub);
    assert_eq!(cli.run(&["events"]).stdout, "No events\n");

    let out = cli.run(&[
        "publish",
        "--type",
        "task_done",
        "--payload",
        "Finished héllo",
        "--channel",
        "repo:x",
        "--session-id",
        "pub-1",
        "--title",
        "Done",
        "--tags",
        "a, b",
        "--correlation-id",
        "c-9",
        "--signal-level",
        "actionable",
    ]);
    let first = publish_id(&out);
    let reply = out.json();
    assert_eq!(reply["channel"], "repo:x");
    assert_eq!(reply["signal_level"], "actionable");
    assert!(
        out.stdout.contains("\"payload\": \"Finished h\\u00e9llo\""),
        "Python's ensure_ascii: {out:#?}"
    );
    let second = publish_id(&cli.run(&["publish", "--type", "note", "--payload", "plain"]));

    let e1 = event(&hub, first);
    assert_eq!(e1["tags"], json!(["a", "b"]), "tags are split and trimmed");
    let e2 = event(&hub, second);
    let block1 = format!(
        "[{first}] task_done (repo:x) [actionable]\n    title: Done\n    Finished héllo\n    from: pub-1 at {} corr:c-9 tags:a,b\n\n",
        e1["timestamp"].as_str().unwrap()
    );
    let block2 = format!(
        "[{second}] note (all) [info]\n    plain\n    from: anonymous at {}\n\n",
        e2["timestamp"].as_str().unwrap()
    );
    let out = cli.run(&["events"]);
    assert_ok(&out);
    assert_eq!(
        out.stdout,
        format!("{block2}{block1}"),
        "newest first by default"
    );
    assert!(out.stderr.is_empty(), "{out:#?}");
    assert_eq!(
        cli.run(&["events", "--order", "asc"]).stdout,
        format!("{block1}{block2}")
    );

    // Filters: --include (server), --exclude (client), channel, correlation, level.
    assert_eq!(cli.run(&["events", "--include", "note"]).stdout, block2);
    assert_eq!(
        cli.run(&["events", "--exclude", "note,other"]).stdout,
        block1
    );
    assert_eq!(cli.run(&["events", "--channel", "repo:x"]).stdout, block1);
    assert_eq!(
        cli.run(&["events", "--correlation-id", "c-9"]).stdout,
        block1
    );
    assert_eq!(
        cli.run(&["events", "--min-level", "actionable"]).stdout,
        block1
    );
    assert_eq!(
        cli.run(&["events", "--include", "nothing-like-it"]).stdout,
        "No events\n"
    );
    assert_eq!(
        cli.run(&[
            "events",
            "--channel",
            "repo:x",
            "--channel",
            "all",
            "--order",
            "asc"
        ])
        .stdout,
        format!("{block1}{block2}"),
        "--channel repeats for several channels"
    );

    // has_more: the hint on stderr depends on the order.
    let third = publish_id(&cli.run(&["publish", "--type", "note", "--payload", "third"]));
    let out = cli.run(&["events", "--limit", "2"]);
    assert_ok(&out);
    assert_eq!(
        out.stderr,
        "More events available; use --order asc with --cursor to drain the backlog.\n"
    );
    let out = cli.run(&["events", "--limit", "2", "--order", "asc"]);
    assert_eq!(
        out.stderr,
        format!("More events available; re-poll with --cursor {second}.\n")
    );
    let out = cli.run(&["events", "--order", "asc", "--cursor", &second.to_string()]);
    assert!(
        out.stdout
            .starts_with(&format!("[{third}] note (all) [info]\n")),
        "{out:#?}"
    );
    assert!(out.stderr.is_empty());

    // Bad arguments are the hub's message, exit 1.
    let out = cli.run(&["events", "--cursor", "abc"]);
    assert_fails(&out);
    assert!(
        out.stderr.starts_with("Error: ") && out.stderr.contains("abc"),
        "{out:#?}"
    );
}

#[test]
fn events_json_is_the_page_after_exclude_in_pythons_spacing() {
    let hub = Hub::start();
    let cli = Cli::new(&hub);
    let out = cli.run(&["events", "--json"]);
    assert_ok(&out);
    assert_eq!(
        out.stdout,
        "{\"events\": [], \"next_cursor\": null, \"has_more\": false}\n"
    );

    let a = publish_id(&cli.run(&["publish", "--type", "keep", "--payload", "1"]));
    let b = publish_id(&cli.run(&["publish", "--type", "drop", "--payload", "2"]));
    let out = cli.run(&[
        "events",
        "--json",
        "--order",
        "asc",
        "--exclude",
        "drop",
        "--limit",
        "2",
    ]);
    assert_ok(&out);
    let page = out.json();
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    assert_eq!(page["events"][0]["id"].as_u64(), Some(a));
    assert_eq!(page["next_cursor"], b.to_string(), "the raw page's cursor");
    assert_eq!(page["has_more"], true);
    assert!(
        out.stdout.starts_with("{\"events\": [{\"id\": "),
        "{out:#?}"
    );
    assert!(out.stderr.is_empty(), "no hint under --json: {out:#?}");
}

#[test]
fn a_deleted_session_fails_reads_and_acks_and_only_warns_on_publish() {
    let hub = Hub::start();
    let cli = Cli::new(&hub);
    hub.register("gone", Some("cc-gone"));
    assert_ok(&cli.run(&["unregister", "--session-id", "cc-gone"]));

    let out = cli.run(&["events", "--session-id", "cc-gone", "--resume"]);
    assert_fails(&out);
    assert!(
        out.stderr.starts_with("Error: Session deleted\n"),
        "{out:#?}"
    );
    assert!(out.stderr.contains("stop polling"), "the hint: {out:#?}");
    let out = cli.run(&["events", "--session-id", "cc-gone", "--resume", "--json"]);
    assert_fails(&out);
    assert_eq!(
        out.json()["session_deleted"],
        true,
        "the error as JSON on stdout"
    );

    let out = cli.run(&["ack", "--session-id", "cc-gone", "--cursor", "1", "--json"]);
    assert_fails(&out);
    assert_eq!(out.json()["error"], "Session deleted");

    let out = cli.run(&[
        "publish",
        "--session-id",
        "cc-gone",
        "--type",
        "t",
        "--payload",
        "p",
    ]);
    assert_ok(&out);
    assert_eq!(out.json()["session_deleted"], true);
    let display = out.json()["display_id"].as_str().unwrap().to_owned();
    assert!(
        out.stderr
            .starts_with(&format!("Warning: session {display} was deleted at ")),
        "{out:#?}"
    );
    assert!(
        out.stderr.contains("will not come back on its own"),
        "{out:#?}"
    );
}

#[test]
fn ack_moves_the_cursor_and_reports_refusals() {
    let hub = Hub::start();
    let cli = Cli::new(&hub);
    hub.register("acker", Some("cc-ack"));
    let a = hub.publish("x", "t", "1", "all");
    let b = hub.publish("x", "t", "2", "all");

    let out = cli.run(&[
        "events",
        "--session-id",
        "cc-ack",
        "--resume",
        "--peek",
        "--order",
        "asc",
        "--json",
    ]);
    assert_ok(&out);
    assert_eq!(out.json()["next_cursor"], b.to_string());

    let out = cli.run(&["ack", "--session-id", "cc-ack", "--cursor", &a.to_string()]);
    assert_ok(&out);
    let line = out.stdout.trim_end();
    assert!(
        line.starts_with("Cursor acked: ") && line.ends_with(&format!(" → {a}")),
        "{out:#?}"
    );

    let out = cli.run(&[
        "ack",
        "--session-id",
        "cc-ack",
        "--cursor",
        &b.to_string(),
        "--json",
    ]);
    assert_ok(&out);
    assert_eq!(out.json()["previous_cursor"], a.to_string());
    assert_eq!(out.json()["cursor"], b.to_string());

    let out = cli.run(&["ack", "--session-id", "cc-ack", "--cursor", &a.to_string()]);
    assert_fails(&out);
    assert!(
        out.stderr
            .contains("is behind the session's current position"),
        "{out:#?}"
    );
    assert!(out.stdout.is_empty());
    let out = cli.run(&[
        "ack",
        "--session-id",
        "cc-ack",
        "--cursor",
        &a.to_string(),
        "--allow-rewind",
    ]);
    assert_ok(&out);
    assert_eq!(out.stdout, format!("Cursor acked: {b} → {a}\n"));

    let out = cli.run(&[
        "ack",
        "--session-id",
        "cc-ack",
        "--cursor",
        "999999",
        "--json",
    ]);
    assert_fails(&out);
    assert!(
        out.json()["error"]
            .as_str()
            .unwrap()
            .contains("ahead of the newest event")
    );
}

#[test]
fn notify_reports_what_the_hub_could_do() {
    let hub = Hub::start();
    // Whether a desktop notification can be shown depends on the machine;
    // the CLI must report the hub's answer either way.
    let shown = hub.tool("notify", json!({"title": "t", "message": "m"}))["success"] == true;
    let out = Cli::new(&hub).run(&["notify", "--title", "t", "--message", "m", "--sound"]);
    if shown {
        assert_ok(&out);
        assert_eq!(out.stdout, "Notification sent\n");
    } else {
        assert_fails(&out);
        assert_eq!(out.stderr, "Notification failed\n");
    }
}
