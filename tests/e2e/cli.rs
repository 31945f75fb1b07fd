//! End-to-end tests: the real `agent-event-bus-cli` against a real hub, as
//! hooks and scripts run it — each command's text, `--json` and exit code,
//! the session-id fallbacks, `--follow`/`--wait`, `doctor`, the hook recipes
//! in `examples/hooks/`, and the service files in `deploy/`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Cli, Hub, Output, bin_path, command, wait_until};

/// Generous: these wait for real processes, never measure them.
const DEADLINE: Duration = Duration::from_secs(30);

fn host() -> String {
    shared::config::hostname()
}

/// A URL where nothing listens: a port the OS just handed out and took back.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("an address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/mcp")
}

/// A command with the bus environment cleared, as the harness runs ours.
fn clean(program: &str) -> Command {
    let mut cmd = Command::new(program);
    support::clear_bus_env(&mut cmd);
    cmd
}

fn output_of(out: std::process::Output) -> Output {
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_ok(out: &Output) {
    assert_eq!(out.code, 0, "expected success: {out:#?}");
}

fn assert_fails(out: &Output) {
    assert_eq!(out.code, 1, "expected exit 1: {out:#?}");
}

/// One event, read back from the hub by id.
fn event(hub: &Hub, id: u64) -> Value {
    let page = hub.tool(
        "get_events",
        json!({"cursor": (id - 1).to_string(), "order": "asc", "limit": 1}),
    );
    let event = page["events"][0].clone();
    assert_eq!(
        event["id"].as_u64(),
        Some(id),
        "event {id} reads back: {page}"
    );
    event
}

/// Registers a session the way the proxy does: on this machine, with a client PID.
fn register_with_pid(hub: &Hub, client_id: &str, machine: &str, pid: u32) -> Value {
    hub.tool(
        "register_session",
        json!({"name": client_id, "client_id": client_id, "machine": machine, "cwd": "/src/repo", "client_pid": pid}),
    )
}

fn publish_id(out: &Output) -> u64 {
    assert_ok(out);
    out.json()["event_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("an event_id: {out:#?}"))
}

// ---------------------------------------------------------------- usage

#[test]
fn no_command_prints_help_and_exits_1_and_usage_errors_exit_2() {
    let cli = Cli::at(&dead_url());
    let out = cli.run(&[]);
    assert_fails(&out);
    assert!(
        out.stdout.contains("Usage: agent-event-bus-cli"),
        "{out:#?}"
    );
    assert!(
        out.stdout
            .contains("Use -h or --help with any command for more details.")
    );

    let out = cli.run(&["webhook"]);
    assert_fails(&out);
    assert!(
        out.stdout.contains("Usage: agent-event-bus-cli webhook"),
        "{out:#?}"
    );

    for args in [
        &["events", "--bogus"][..],
        &["publish", "--payload", "no type"],
        &["events", "--order", "sideways"],
        &[
            "publish",
            "--type",
            "t",
            "--payload",
            "p",
            "--signal-level",
            "loud",
        ],
        &["events", "--follow", "--wait", "3"],
        &["webhook", "enable", "not-a-number"],
        &["register", "--json", "--nope"],
    ] {
        let out = cli.run(args);
        assert_eq!(out.code, 2, "{args:?} is a usage error: {out:#?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:#?}");
    }
    assert_ok(&cli.run(&["--help"]));
    assert_ok(&cli.run(&["events", "--help"]));
}

#[test]
fn unreachable_hub_exits_1_with_one_line_saying_where_and_how_to_start_it() {
    let url = dead_url();
    let cli = Cli::at(&url);
    for args in [
        &["register", "--name", "x"][..],
        &["unregister", "--session-id", "x"],
        &["sessions"],
        &["channels"],
        &["whoami"],
        &["publish", "--type", "t", "--payload", "p"],
        &["events"],
        &["events", "--follow"],
        &["events", "--follow", "--session-id", "s", "--resume"],
        &["events", "--wait", "1", "--session-id", "s", "--resume"],
        &["ack", "--session-id", "s", "--cursor", "1"],
        &["notify", "--title", "t", "--message", "m"],
        &["webhook", "list"],
        &["webhook", "register", "--url", "http://127.0.0.1:9/hook"],
        &["webhook", "disable", "1"],
    ] {
        let out = cli.run(args);
        assert_fails(&out);
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.starts_with("Following"))
            .collect();
        assert_eq!(lines.len(), 1, "{args:?} says one line: {out:#?}");
        assert!(
            lines[0].starts_with("Error: hub not reachable at "),
            "{args:?}: {out:#?}"
        );
        assert!(lines[0].contains(&url), "{args:?} names the URL: {out:#?}");
        assert!(
            lines[0].contains("start it with `agent-event-bus`"),
            "{args:?}: {out:#?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {out:#?}");
    }
}

#[test]
fn the_url_works_with_or_without_mcp_and_an_empty_env_means_the_default() {
    let hub = Hub::start();
    for url in [hub.url.clone(), hub.base(), format!("{}/", hub.base())] {
        let out = Cli::at(&url).run(&["sessions"]);
        assert_ok(&out);
        assert_eq!(out.stdout, "No active sessions\n", "{url}");
    }
    // --url beats the environment.
    let out = Cli::at(&dead_url()).run(&["--url", &hub.base(), "channels"]);
    assert_ok(&out);
    assert_eq!(out.stdout, "No active channels\n");
    // An empty AGENT_EVENT_BUS_URL means the default address. Run in a
    // network namespace of its own, where nothing listens on 8080 whatever
    // runs on this machine, so the CLI must name the default and fail.
    let out = output_of(
        clean("unshare")
            .arg("--net")
            .arg(bin_path("agent-event-bus-cli"))
            .args(["--url", "", "sessions"])
            .env("AGENT_EVENT_BUS_URL", "")
            .output()
            .expect("unshare (util-linux) runs"),
    );
    assert!(
        !out.stderr.contains("unshare:"),
        "this test needs a network namespace (run as root): {out:#?}"
    );
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr
            .starts_with("Error: hub not reachable at http://127.0.0.1:8080/mcp"),
        "{out:#?}"
    );
}

// ---------------------------------------------------------------- sessions

#[test]
fn register_prints_the_reply_and_who_it_registered() {
    let hub = Hub::start();
    let cli = Cli::new(&hub);
    let out = cli.run(&["register", "--name", "feature-x", "--client-id", "cc-1"]);
    assert_ok(&out);
    let reply = out.json();
    assert_eq!(reply["session_id"], "cc-1");
    assert_eq!(reply["name"], "feature-x");
    assert_eq!(
        reply["machine"],
        host().as_str(),
        "the CLI sends its machine"
    );
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(reply["cwd"], cwd.to_str().unwrap(), "the CLI sends its cwd");
    assert!(
        out.stdout.starts_with("{\n  \"session_id\": \"cc-1\",\n"),
        "indented JSON: {out:#?}"
    );
    let display = reply["display_id"].as_str().unwrap();
    assert_eq!(
        out.stderr,
        format!("\nRegistered as: {display}\nSession ID: cc-1\n")
    );

    // --json (the upstream README's form) gives the same parseable JSON;
    // the name defaults to AGENT_EVENT_BUS_SESSION_NAME, else the directory.
    let out = Cli::new(&hub)
        .env("AGENT_EVENT_BUS_SESSION_NAME", "from-env")
        .run(&["register", "--client-id", "cc-2", "--json"]);
    assert_ok(&out);
    assert_eq!(out.json()["name"], "from-env");
    let out = cli.run(&["register", "--json"]);
    assert_ok(&out);
    let dir = cwd.file_name().unwrap().to_str().unwrap();
    assert_eq!(out.json()["name"], dir);
    assert!(out.stderr.contains("Registered as: "));
}

#[test]
fn sessions_and_channels_print_the_original_text() {
    let hub = Hub::start();
    let cli = Cli::new(&hub);
    assert_eq!(cli.run(&["sessions"]).stdout, "No active sessions\n");
    assert_eq!(cli.run(&["channels"]).stdout, "No active channels\n");

    let reply = hub.register("alpha", Some("cc-alpha"));
    let display = reply["display_id"].as_str().unwrap();
    let out = cli.run(&["sessions"]);
    assert_ok(&out);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "Active sessions (1):");
    assert_eq!(lines[1], "");
    assert_eq!(lines[2], format!("  {display}  alpha"));
    assert_eq!(lines[3], format!("    repo: repo, machine: {}", host()));
    assert_eq!(lines[4], "    client_id: cc-alpha");
    assert!(
        lines[5].starts_with("    age: ") && lines[5].ends_with('s'),
        "{out:#?}"
    );
    assert_eq!(lines[6], "    session_id: cc-alpha");
    assert_eq!(
        lines[7],
        format!(
            "    channels: all, session:cc-alpha, repo:repo, machine:{}",
            host()
        )
    );
    assert_eq!(lines[8], "");
    assert_eq!(lines.len(), 9, "{out:#?}");

    let out = cli.run(&["channels"]);
    assert_ok(&out);
    let mut want = [
        "all".to_owned(),
        format!("machine:{}", host()),
        "repo:repo".to_owned(),
        "session:cc-alpha".to_owned(),
    ];
    want.sort();
    let body: String = want
        .iter()
        .map(|c| format!("  {c}  (1 subscriber)\n"))
        .collect();
    assert_eq!(out.stdout, format!("Active channels (4):\n\n{body}\n"));
}

#[test]
fn unregister_by_session_or_client_id_and_its_errors() {
    let hub = Hub::start();
    let cli = Cli::new(&hub);
    let out = cli.run(&["unregister"]);
    assert_fails(&out);
    assert_eq!(
        out.stderr,
        "Error: Must provide --session-id or --client-id\n"
    );

    let out = cli.run(&["unregister", "--session-id", "never-was"]);
    assert_fails(&out);
    assert_eq!(out.stderr, "Error: Session not found\n");
    assert!(out.stdout.is_empty());

    hub.register("a", Some("cc-a"));
    let out = cli.run(&["unregister", "--session-id", "cc-a"]);
    assert_ok(&out);
    assert_eq!(out.json()["success"], true);
    assert_eq!(out.json()["session_id"], "cc-a");

    // Again: the deleted-session error and its hint, on stderr.
    let out = cli.run(&["unregister", "--session-id", "cc-a"]);
    assert_fails(&out);
    let mut lines = out.stderr.lines();
    assert_eq!(lines.next(), Some("Error: Session deleted"));
    assert!(
        lines
            .next()
            .is_some_and(|hint| hint.contains("nothing left to clean up")),
        "{out:#?}"
    );

    // By client id: looked up on this machine (the CLI's, not the hub's).
    assert_ok(&cli.run(&["register", "--name", "b", "--client-id", "cc-b"]));
    let out = cli.run(&["unregister", "--client-id", "cc-b"]);
    assert_ok(&out);
    assert_eq!(out.json()["session_id"], "cc-b");
    assert_eq!(cli.run(&["sessions"]).stdout, "No active sessions\n");

    // The environment never unregisters anything by itself.
    let out = Cli::new(&hub)
        .env("AGENT_EVENT_BUS_SESSION_ID", "cc-a")
        .run(&["unregister"]);
    assert_fails(&out);
}

// ---------------------------------------------------------------- session id

#[test]
fn the_session_id_comes_from_the_flag_then_the_environment() {
    let hub = Hub::start();
    for id in ["flag-sid", "env-sid", "cc-sid"] {
        hub.register(id, Some(id));
    }
    let publisher = |cli: Cli, args: &[&str]| {
        let mut all = vec!["publish", "--type", "t", "--payload", "p"];
        all.extend_from_slice(args);
        let id = publish_id(&cli.run(&all));
        event(&hub, id)["session_id"].as_str().unwrap().to_owned()
    };
    let both = || {
        Cli::new(&hub)
            .env("AGENT_EVENT_BUS_SESSION_ID", "env-sid")
            .env("CLAUDE_CODE_SESSION_ID", "cc-sid")
    };
    assert_eq!(publisher(both(), &["--session-id", "flag-sid"]), "flag-sid");
    assert_eq!(publisher(both(), &[]), "env-sid");
    assert_eq!(
        publisher(Cli::new(&hub).env("CLAUDE_CODE_SESSION_ID", "cc-sid"), &[]),
        "cc-sid"
    );
    // An empty variable counts as unset, as in the original.
    assert_eq!(
        publisher(
            Cli::new(&hub)
                .env("AGENT_EVENT_BUS_SESSION_ID", "")
                .env("CLAUDE_CODE_SESSION_ID", "cc-sid"),
            &[]
        ),
        "cc-sid"
    );
    // Nothing names a session, and no ancestor has one: anonymous.
    assert_eq!(publisher(Cli::new(&hub), &[]), "anonymous");
}

#[test]
fn a_hook_run_by_an_agent_acts_as_the_agents_session() {
    let hub = Hub::start();
    let me = std::process::id();
    // The CLI is our child, so this test process is its parent: the session
    // whose client_pid is ours is "the agent's" session. One on another
    // machine with the same PID, registered later, must not be taken.
    register_with_pid(&hub, "proxy-here", &host(), me);
    register_with_pid(&hub, "proxy-elsewhere", "some-other-machine", me);
    register_with_pid(&hub, "unrelated", &host(), 1);

    let cli = Cli::new(&hub);
    let id = publish_id(&cli.run(&["publish", "--type", "t", "--payload", "from a hook"]));
    assert_eq!(event(&hub, id)["session_id"], "proxy-here");

    let out = cli.run(&["whoami"]);
    assert_ok(&out);
    assert_eq!(out.stdout, "proxy-here\n");
    assert!(
        out.stderr.contains(&format!("ancestor process {me}")),
        "{out:#?}"
    );
    let out = cli.run(&["whoami", "--json"]);
    assert_ok(&out);
    let who = out.json();
    assert_eq!(who["session_id"], "proxy-here");
    assert_eq!(who["registered"], true);
    assert_eq!(who["client_pid"], me);
    assert_eq!(who["name"], "proxy-here");
    assert!(
        out.stdout.starts_with("{\"session_id\": \"proxy-here\", "),
        "Python spacing: {out:#?}"
    );

    // The environment still wins over the ancestor walk.
    let out = Cli::new(&hub)
        .env("CLAUDE_CODE_SESSION_ID", "cc-x")
        .run(&["whoami", "--json"]);
    assert_ok(&out);
    assert_eq!(out.json()["session_id"], "cc-x");
    assert_eq!(out.json()["registered"], false);

    // Events and ack act for it too.
    let out = cli.run(&["events", "--resume", "--order", "asc", "--json"]);
    assert_ok(&out);
    let out = cli.run(&["ack", "--cursor", &id.to_string(), "--json"]);
    assert_ok(&out);
    assert_eq!(out.json()["session_id"], "proxy-here");
}

#[test]
fn whoami_resume_and_ack_need_a_session() {
    let hub = Hub::start();
    let cli = Cli::new(&hub);
    let out = cli.run(&["whoami"]);
    assert_fails(&out);
    assert!(out.stderr.starts_with("Error: no session"), "{out:#?}");

    let out = cli.run(&["events", "--resume"]);
    assert_fails(&out);
    assert_eq!(out.stderr, "Error: --resume requires --session-id\n");

    let out = cli.run(&["ack", "--cursor", "1"]);
    assert_fails(&out);
    assert_eq!(
        out.stderr,
        "Error: ack requires --session-id (or $AGENT_EVENT_BUS_SESSION_ID, else $CLAUDE_CODE_SESSION_ID)\n"
    );
}

// ---------------------------------------------------------------- events

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

// ---------------------------------------------------------------- webhooks

#[test]
fn webhook_commands_print_the_original_text() {
    let hub = Hub::start();
    // The global --url (before `webhook`) is the hub; `register --url` is the target.
    let cli = Cli::at(&dead_url());
    let hub_url = hub.url.clone();
    let run = |args: &[&str]| {
        let mut all = vec!["--url", hub_url.as_str(), "webhook"];
        all.extend_from_slice(args);
        cli.run(&all)
    };
    assert_eq!(run(&["list"]).stdout, "No webhooks registered\n");

    let target = "http://127.0.0.1:9/hook";
    let out = run(&[
        "register",
        "--url",
        target,
        "--channel",
        "session:",
        "--event-types",
        "a, b",
        "--secret",
        "s3cret",
    ]);
    assert_ok(&out);
    let reply = out.json();
    let id = reply["webhook_id"].as_u64().unwrap();
    assert_eq!(reply["url"], target);
    assert_eq!(out.stderr, format!("\nWebhook registered: #{id}\n"));
    assert!(!out.stdout.contains("s3cret"), "the secret is never shown");

    let created = reply["created_at"].as_str().unwrap();
    let block = |mark: &str| {
        format!(
            "  [{mark}] #{id} 🔐\n      URL: {target}\n      Channel: session:\n      Events: a, b\n      Created: {created}\n\n"
        )
    };
    assert_eq!(
        run(&["list"]).stdout,
        format!("Webhooks (1):\n\n{}", block("✓"))
    );

    assert_eq!(
        run(&["disable", &id.to_string()]).stdout,
        format!("Webhook #{id} disabled\n")
    );
    assert_eq!(run(&["list"]).stdout, "No webhooks registered\n");
    assert_eq!(
        run(&["list", "--all"]).stdout,
        format!("Webhooks (1):\n\n{}", block("✗"))
    );
    assert_eq!(
        run(&["enable", &id.to_string()]).stdout,
        format!("Webhook #{id} enabled\n")
    );
    assert_eq!(
        run(&["unregister", &id.to_string()]).stdout,
        format!("Webhook #{id} removed\n")
    );

    for verb in ["unregister", "enable", "disable"] {
        let out = run(&[verb, &id.to_string()]);
        assert_fails(&out);
        assert_eq!(out.stderr, "Failed: Webhook not found\n", "{verb}");
    }
}

// ---------------------------------------------------------------- follow / wait

/// A CLI left running (for `--follow` and `--wait`), its output collected.
struct Running {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    /// The threads reading the pipes: joined once the child has exited, so
    /// what it wrote last is in `stdout`/`stderr` before a test reads them.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Starts the CLI against `hub`. With `read_stdout` false, stdout is a
    /// pipe whose reading end the test closes at once.
    fn start(hub: &Hub, args: &[&str], read_stdout: bool) -> Self {
        let mut child = command("agent-event-bus-cli")
            .env("AGENT_EVENT_BUS_URL", &hub.url)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the CLI starts");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("piped");
        let mut readers = Vec::new();
        if read_stdout {
            readers.push(collect(out, stdout.clone()));
        } else {
            drop(out);
        }
        readers.push(collect(child.stderr.take().expect("piped"), stderr.clone()));
        Self {
            child,
            stdout,
            stderr,
            readers,
        }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn wait_stderr(&self, needle: &str) {
        wait_until(&format!("`{needle}` on stderr"), DEADLINE, || {
            self.stderr().contains(needle).then_some(())
        });
    }

    fn wait_stdout(&self, needle: &str) {
        wait_until(&format!("`{needle}` on stdout"), DEADLINE, || {
            self.stdout().contains(needle).then_some(())
        });
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, signal).expect("the CLI is ours to signal");
    }

    /// Waits for the exit and returns the code (-1 when killed by a signal).
    fn wait_exit(&mut self) -> i32 {
        let status = wait_until("the CLI to exit", DEADLINE, || {
            self.child.try_wait().ok().flatten()
        });
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        status.code().unwrap_or(-1)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(
    pipe: impl std::io::Read + Send + 'static,
    into: Arc<Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut text = into.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    })
}

#[test]
fn follow_prints_events_published_after_it_started_and_stops_cleanly_on_ctrl_c() {
    let hub = Hub::start();
    let old = hub.publish("x", "old_news", "before", "all");
    let mut follower = Running::start(&hub, &["events", "--follow", "--exclude", "skip_me"], true);
    follower.wait_stderr(&format!("Following events from after event {old}"));

    let skipped = hub.publish("x", "skip_me", "hidden", "all");
    let fresh = hub.publish("x", "fresh_news", "after", "repo:r");
    follower.wait_stdout(&format!(
        "[{fresh}] fresh_news (repo:r) [info]\n    after\n    from: x at "
    ));
    let text = follower.stdout();
    assert!(
        !text.contains("old_news"),
        "only events after the start: {text}"
    );
    assert!(
        !text.contains(&format!("[{skipped}]")),
        "--exclude applies: {text}"
    );

    follower.signal(rustix::process::Signal::INT);
    assert_eq!(
        follower.wait_exit(),
        0,
        "Ctrl-C is a clean exit: {}",
        follower.stderr()
    );
    assert!(
        !follower.stderr().contains("Error"),
        "{}",
        follower.stderr()
    );

    // --json: one event per line; SIGTERM is clean too.
    let mut follower = Running::start(
        &hub,
        &["events", "--follow", "--json", "--channel", "repo:r"],
        true,
    );
    follower.wait_stderr("Following events");
    hub.publish("x", "elsewhere", "not mine", "all");
    let mine = hub.publish("x", "mine", "on repo:r", "repo:r");
    follower.wait_stdout("\"event_type\": \"mine\"");
    let first: Value = serde_json::from_str(follower.stdout().lines().next().unwrap()).unwrap();
    assert_eq!(first["id"].as_u64(), Some(mine));
    follower.signal(rustix::process::Signal::TERM);
    assert_eq!(follower.wait_exit(), 0);
}

#[test]
fn follow_resume_continues_from_the_sessions_saved_cursor() {
    let hub = Hub::start();
    hub.register("reader", Some("cc-r"));
    let args = [
        "events",
        "--follow",
        "--resume",
        "--session-id",
        "cc-r",
        "--json",
    ];

    let mut follower = Running::start(&hub, &args, true);
    follower.wait_stderr("Following events from the session's saved cursor");
    let first = hub.publish("x", "one", "1", "all");
    follower.wait_stdout("\"event_type\": \"one\"");
    follower.signal(rustix::process::Signal::INT);
    assert_eq!(follower.wait_exit(), 0);

    // Published while nobody follows: the next --resume starts with it.
    let missed = hub.publish("x", "two", "2", "all");
    let mut follower = Running::start(&hub, &args, true);
    follower.wait_stdout("\"event_type\": \"two\"");
    let ids: Vec<u64> = follower
        .stdout()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        ids,
        vec![missed],
        "nothing twice, nothing lost (first was {first})"
    );
    follower.signal(rustix::process::Signal::INT);
    assert_eq!(follower.wait_exit(), 0);
}

#[test]
fn follow_rides_out_a_hub_restart() {
    let mut hub = Hub::start();
    let mut follower = Running::start(&hub, &["events", "--follow", "--json"], true);
    follower.wait_stderr("Following events");
    hub.restart_same_port();
    let id = hub.publish("x", "after_restart", "still here", "all");
    follower.wait_stdout("\"event_type\": \"after_restart\"");
    let last: Value = serde_json::from_str(follower.stdout().lines().last().unwrap()).unwrap();
    assert_eq!(last["id"].as_u64(), Some(id));
    follower.signal(rustix::process::Signal::INT);
    assert_eq!(follower.wait_exit(), 0, "{}", follower.stderr());
}

#[test]
fn follow_exits_quietly_when_its_reader_goes_away() {
    let hub = Hub::start();
    let mut follower = Running::start(&hub, &["events", "--follow"], false);
    follower.wait_stderr("Following events");
    hub.publish("x", "t", "nobody reads this", "all");
    assert_eq!(follower.wait_exit(), 0, "{}", follower.stderr());
    let stderr = follower.stderr();
    assert!(
        !stderr.contains("Error") && !stderr.contains("panicked"),
        "{stderr}"
    );

    // A one-shot command into a closed pipe is quiet too.
    let mut shot = Running::start(&hub, &["events", "--limit", "1"], false);
    assert_eq!(shot.wait_exit(), 0);
    assert!(!shot.stderr().contains("panicked"), "{}", shot.stderr());
}

#[test]
fn events_wait_returns_with_an_event_or_no_events_at_the_deadline() {
    let hub = Hub::start();
    hub.register("waiter", Some("cc-w"));
    let cli = Cli::new(&hub);
    // Catch the session up, so only new events are pending.
    assert_ok(&cli.run(&[
        "events",
        "--session-id",
        "cc-w",
        "--resume",
        "--order",
        "asc",
    ]));

    let out = cli.run(&["events", "--session-id", "cc-w", "--resume", "--wait", "1"]);
    assert_ok(&out);
    assert_eq!(out.stdout, "No events\n");

    let waiter = Running::start(
        &hub,
        &[
            "events",
            "--session-id",
            "cc-w",
            "--resume",
            "--wait",
            "60",
            "--json",
        ],
        true,
    );
    let id = hub.publish("x", "wake_up", "here it is", "session:cc-w");
    let mut waiter = waiter;
    assert_eq!(waiter.wait_exit(), 0, "{}", waiter.stderr());
    let page: Value = serde_json::from_str(waiter.stdout().trim()).unwrap();
    assert_eq!(page["events"][0]["id"].as_u64(), Some(id));
    assert_eq!(page["next_cursor"], id.to_string());
}

// ---------------------------------------------------------------- doctor

/// A stand-in for `claude` (a tool we do not ship) that logs its arguments
/// to `$FAKE_LOG` and answers `mcp get` as `$FAKE_CLAUDE` says:
/// `proxy` (registered), `http` (the original's HTTP entry), else missing.
fn fake_tools(dir: &Path) -> PathBuf {
    let bin = dir.join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let claude = r#"#!/bin/sh
echo "claude $*" >> "$FAKE_LOG"
if [ "$1 $2" = "mcp get" ]; then
  case "${FAKE_CLAUDE:-}" in
    proxy) printf '%s:\n  Scope: User config\n  Status: \342\234\224 Connected\n  Type: stdio\n  Command: %s\n' "$3" "${FAKE_PROXY:-agent-event-bus-proxy}" ;;
    http) printf '%s:\n  Type: http\n  URL: http://localhost:8080/mcp\n' "$3" ;;
    *) echo "No MCP server found with name: $3" >&2; exit 1 ;;
  esac
fi
exit 0
"#;
    for (name, script) in [
        ("claude", claude.to_owned()),
        (
            "systemctl",
            "#!/bin/sh\necho \"systemctl $*\" >> \"$FAKE_LOG\"\n".to_owned(),
        ),
        (
            "launchctl",
            "#!/bin/sh\necho \"launchctl $*\" >> \"$FAKE_LOG\"\n".to_owned(),
        ),
    ] {
        let path = bin.join(name);
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

fn path_with(dir: &Path) -> String {
    format!("{}:/usr/bin:/bin", dir.display())
}

#[test]
fn doctor_checks_everything_and_says_how_to_fix_what_fails() {
    let hub = Hub::start();
    let tmp = tempfile::tempdir().unwrap();
    let fake = fake_tools(tmp.path());
    let log = tmp.path().join("calls.log");
    let log = log.to_str().unwrap();

    // No `claude` on PATH: every hub check passes, Claude Code is skipped.
    let out = Cli::new(&hub).env("PATH", "/nonexistent").run(&["doctor"]);
    assert_ok(&out);
    for want in [
        format!("✓ hub reachable at {}", hub.url),
        "✓ auth ok (no token needed)".to_owned(),
        format!("✓ versions match ({})", shared::VERSION),
        "✓ publish → read round trip (event #".to_owned(),
        "- Claude Code: `claude` is not on PATH".to_owned(),
        "All checks passed.".to_owned(),
    ] {
        assert!(out.stdout.contains(&want), "`{want}` in {out:#?}");
    }
    // The round trip left a lifecycle event that `--min-level info` hides.
    let page = hub.tool("get_events", json!({"event_types": ["doctor_check"]}));
    assert_eq!(page["events"][0]["signal_level"], "lifecycle");
    assert_eq!(
        hub.tool("get_events", json!({"min_level": "info"}))["events"],
        json!([])
    );

    let with_claude = |mode: &str| {
        Cli::new(&hub)
            .env("PATH", &path_with(&fake))
            .env("FAKE_LOG", log)
            .env("FAKE_CLAUDE", mode)
            .run(&["doctor"])
    };
    let out = with_claude("proxy");
    assert_ok(&out);
    assert!(
        out.stdout.contains("✓ proxy registered with Claude Code"),
        "{out:#?}"
    );
    assert!(
        std::fs::read_to_string(log)
            .unwrap()
            .contains("claude mcp get agent-event-bus")
    );

    let out = with_claude("missing");
    assert_fails(&out);
    assert!(
        out.stdout
            .contains("✗ the proxy is not registered with Claude Code"),
        "{out:#?}"
    );
    assert!(
        out.stdout
            .contains("  fix: claude mcp add --scope user -e AGENT_EVENT_BUS_URL="),
        "a non-default hub URL goes into the proxy's env: {out:#?}"
    );
    assert!(
        out.stdout
            .contains("agent-event-bus -- agent-event-bus-proxy"),
        "{out:#?}"
    );
    assert!(out.stdout.ends_with("1 check failed.\n"), "{out:#?}");

    let out = with_claude("http");
    assert_fails(&out);
    assert!(out.stdout.contains("is not the proxy"), "{out:#?}");
    assert!(
        out.stdout
            .contains("fix: claude mcp remove --scope user agent-event-bus && claude mcp add")
    );

    // No hub: the first check fails with how to start one; the rest are skipped.
    let out = Cli::at(&dead_url())
        .env("PATH", "/nonexistent")
        .run(&["doctor"]);
    assert_fails(&out);
    assert!(out.stdout.contains("✗ hub not reachable at "), "{out:#?}");
    assert!(
        out.stdout
            .contains("  fix: start it with `agent-event-bus`"),
        "{out:#?}"
    );
    assert!(
        out.stdout
            .contains("- auth, version and round trip: skipped (no hub)")
    );
}

// ---------------------------------------------------------------- hooks

/// Runs a hook recipe as Claude Code does: the hook JSON on stdin, the CLI on
/// PATH, the bus environment cleared.
fn run_hook(hub: &Hub, script: &str, input: &Value, env: &[(&str, &str)]) -> Output {
    output_of(
        support::spawn_hook(hub, script, input, env)
            .wait_with_output()
            .expect("the hook runs"),
    )
}

/// What Claude Code sends each hook (as recorded from Claude Code 2.1).
fn hook_input(event: &str, session_id: &str, cwd: &Path) -> Value {
    let mut input = json!({
        "session_id": session_id,
        "transcript_path": format!("/home/dev/.claude/projects/-work-app/{session_id}.jsonl"),
        "cwd": cwd,
        "hook_event_name": event,
    });
    match event {
        "SessionStart" => {
            input["source"] = json!("startup");
            input["model"] = json!("claude-sonnet-4-5");
        }
        "UserPromptSubmit" => {
            input["prompt"] = json!("what's next?");
            input["permission_mode"] = json!("default");
        }
        _ => input["reason"] = json!("prompt_input_exit"),
    }
    input
}

fn context_of(out: &Output, event: &str) -> String {
    assert_ok(out);
    let reply: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("hook JSON ({e}): {out:#?}"));
    assert_eq!(reply["hookSpecificOutput"]["hookEventName"], event);
    reply["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .expect("additionalContext")
        .to_owned()
}

#[test]
fn hooks_without_a_proxy_register_deliver_direct_messages_and_unregister() {
    let hub = Hub::start();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let env_file = tmp.path().join("claude-env");
    let project = tmp.path().join("my-app");
    std::fs::create_dir_all(&project).unwrap();
    let (state_s, env_s) = (state.to_str().unwrap(), env_file.to_str().unwrap());
    let env = [
        ("AGENT_EVENT_BUS_HOOK_STATE", state_s),
        ("CLAUDE_ENV_FILE", env_s),
    ];
    let cc = "6f1c1a2e-5b7d-4c1e-9a0b-2f3d4e5f6a7b";

    hub.publish("peer", "session_registered", "noise", "all");
    let news = hub.publish(
        "peer",
        "task_completed",
        "peer finished the API",
        "repo:my-app",
    );

    let out = run_hook(
        &hub,
        "session-start.sh",
        &hook_input("SessionStart", cc, &project),
        &env,
    );
    let context = context_of(&out, "SessionStart");
    assert!(context.contains(&format!("as session {cc}")), "{context}");
    assert!(
        context.contains(&format!("[{news}] task_completed (repo:my-app) [info]")),
        "{context}"
    );
    assert!(context.contains("peer finished the API"));
    assert!(
        !context.contains("noise"),
        "lifecycle events are left out: {context}"
    );
    assert!(
        hub.session_ids().contains(&cc.to_owned()),
        "registered with Claude Code's id"
    );
    let sessions = hub.tool("list_sessions", json!({}));
    assert_eq!(sessions[0]["name"], "my-app", "named after the project");
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        format!("export AGENT_EVENT_BUS_SESSION_ID={cc}\n"),
        "later Bash commands act as this session"
    );

    // Nothing new: UserPromptSubmit prints nothing.
    let prompt = hook_input("UserPromptSubmit", cc, &project);
    let out = run_hook(&hub, "user-prompt-submit.sh", &prompt, &env);
    assert_ok(&out);
    assert_eq!(out.stdout, "");

    // A direct message (and a broadcast, which is not one) arrive.
    hub.publish("peer", "broadcast", "for everyone", "all");
    let dm = hub.publish(
        "peer-7",
        "question",
        "can you review #42?",
        &format!("session:{cc}"),
    );
    let out = run_hook(&hub, "user-prompt-submit.sh", &prompt, &env);
    let context = context_of(&out, "UserPromptSubmit");
    assert!(
        context.contains(&format!(
            "[event {dm}] from session peer-7 (question): can you review #42?"
        )),
        "{context}"
    );
    assert!(!context.contains("for everyone"), "{context}");
    assert!(
        context.contains("not instructions"),
        "framed as information: {context}"
    );
    // Delivered once.
    let out = run_hook(&hub, "user-prompt-submit.sh", &prompt, &env);
    assert_eq!(out.stdout, "", "{out:#?}");

    // The hook registered the session, so SessionEnd unregisters it.
    let out = run_hook(
        &hub,
        "session-end.sh",
        &hook_input("SessionEnd", cc, &project),
        &env,
    );
    assert_ok(&out);
    assert!(!hub.session_ids().contains(&cc.to_owned()));
    assert_eq!(
        std::fs::read_dir(&state).unwrap().count(),
        0,
        "its state is cleared"
    );
}

#[test]
fn hooks_use_the_agents_proxy_session_and_leave_it_alone() {
    let hub = Hub::start();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let project = tmp.path().join("app");
    std::fs::create_dir_all(&project).unwrap();
    let cc = "0b8e7e9a-1111-4c1e-9a0b-000000000002";
    // Claude Code puts its id in the environment; the proxy's session id
    // differs, and the hooks must still find the proxy's session.
    let env = [
        ("AGENT_EVENT_BUS_HOOK_STATE", state.to_str().unwrap()),
        ("CLAUDE_CODE_SESSION_ID", cc),
    ];
    // This test process plays the agent: the hook's ancestors include it.
    register_with_pid(&hub, "proxy-1", &host(), std::process::id());
    let before = hub.session_ids();

    let out = run_hook(
        &hub,
        "session-start.sh",
        &hook_input("SessionStart", cc, &project),
        &env,
    );
    let context = context_of(&out, "SessionStart");
    assert!(context.contains("as session proxy-1"), "{context}");
    assert_eq!(hub.session_ids(), before, "no second session for one agent");

    let dm = hub.publish("peer", "ping", "hello proxy", "session:proxy-1");
    let prompt = hook_input("UserPromptSubmit", cc, &project);
    let context = context_of(
        &run_hook(&hub, "user-prompt-submit.sh", &prompt, &env),
        "UserPromptSubmit",
    );
    assert!(
        context.contains(&format!(
            "[event {dm}] from session peer (ping): hello proxy"
        )),
        "{context}"
    );

    let out = run_hook(
        &hub,
        "session-end.sh",
        &hook_input("SessionEnd", cc, &project),
        &env,
    );
    assert_ok(&out);
    assert_eq!(
        hub.session_ids(),
        before,
        "the proxy's session is the proxy's to end"
    );
}

#[test]
fn hooks_stay_quiet_when_the_hub_is_down() {
    let tmp = tempfile::tempdir().unwrap();
    let mut hub = Hub::start();
    hub.stop();
    let env = [("AGENT_EVENT_BUS_HOOK_STATE", tmp.path().to_str().unwrap())];
    for (script, event) in [
        ("session-start.sh", "SessionStart"),
        ("user-prompt-submit.sh", "UserPromptSubmit"),
        ("session-end.sh", "SessionEnd"),
    ] {
        let out = run_hook(
            &hub,
            script,
            &hook_input(event, "cc-down", tmp.path()),
            &env,
        );
        assert_ok(&out);
        assert_eq!(out.stdout, "", "{script}: {out:#?}");
    }
}

// ---------------------------------------------------------------- service install

fn service_script(
    home: &Path,
    bindir: &Path,
    path: &str,
    extra: &[(&str, &str)],
    args: &[&str],
) -> Output {
    let out = clean("sh")
        .arg(support::repo_root().join("deploy/service.sh"))
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env("BINDIR", bindir)
        .env("PATH", path)
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("sh runs the service script");
    output_of(out)
}

#[test]
fn the_unit_and_the_plist_render_into_a_home_and_check_out() {
    let home = tempfile::tempdir().unwrap();
    let bindir = bin_path("agent-event-bus").parent().unwrap().to_owned();
    let path = "/usr/bin:/bin";

    let out = service_script(home.path(), &bindir, path, &[], &["render", "linux"]);
    assert_ok(&out);
    let unit_path = home
        .path()
        .join(".config/systemd/user/agent-event-bus.service");
    assert_eq!(out.stdout.trim(), unit_path.to_str().unwrap());
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    assert!(!unit.contains('@'), "every placeholder is filled: {unit}");
    let lines: Vec<&str> = unit.lines().collect();
    for want in [
        format!("ExecStart={}/agent-event-bus", bindir.display()),
        format!(
            "EnvironmentFile=-{}/.config/agent-event-bus/hub.env",
            home.path().display()
        ),
        "Restart=always".to_owned(),
        "WantedBy=default.target".to_owned(),
    ] {
        assert!(lines.contains(&want.as_str()), "`{want}` in {unit}");
    }
    // Rendering again is idempotent.
    assert_ok(&service_script(
        home.path(),
        &bindir,
        path,
        &[],
        &["render", "linux"],
    ));
    assert_eq!(std::fs::read_to_string(&unit_path).unwrap(), unit);
    if let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    {
        let out = Command::new(analyze)
            .arg("verify")
            .arg(&unit_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "systemd-analyze verify: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let out = service_script(home.path(), &bindir, path, &[], &["render", "macos"]);
    assert_ok(&out);
    let plist_path = home
        .path()
        .join("Library/LaunchAgents/com.agent-event-bus.hub.plist");
    let xml = std::fs::read_to_string(&plist_path).unwrap();
    assert!(!xml.contains('@'), "every placeholder is filled: {xml}");
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(&xml, options)
        .expect("the plist is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "plist");
    assert_eq!(root.attribute("version"), Some("1.0"));
    let dict = plist_value(
        root.children()
            .find(|n| n.is_element())
            .expect("one top-level dict"),
    );
    assert_eq!(dict["Label"], "com.agent-event-bus.hub");
    assert_eq!(dict["RunAtLoad"], true);
    assert_eq!(dict["KeepAlive"], true);
    let program = dict["ProgramArguments"].as_array().unwrap();
    assert_eq!(program[0], "/bin/sh");
    let hub_bin = program.last().unwrap().as_str().unwrap();
    assert_eq!(hub_bin, format!("{}/agent-event-bus", bindir.display()));
    assert!(
        Path::new(hub_bin).exists(),
        "the plist runs the installed hub"
    );
    let log = format!(
        "{}/.claude/contrib/agent-event-bus/agent-event-bus.log",
        home.path().display()
    );
    assert_eq!(dict["StandardErrorPath"], log.as_str());
    assert!(
        dict["EnvironmentVariables"]["PATH"]
            .as_str()
            .unwrap()
            .contains("/usr/bin")
    );
    // The wrapper script sources the env file and execs the hub.
    let out = Command::new("sh")
        .args(["-n", "-c", program[2].as_str().unwrap()])
        .status()
        .unwrap();
    assert!(out.success(), "the wrapper is valid sh");
}

/// A plist element as JSON (dict, array, string, integer, true/false).
fn plist_value(node: roxmltree::Node) -> Value {
    let elements = || node.children().filter(|n| n.is_element());
    match node.tag_name().name() {
        "dict" => {
            let items: Vec<_> = elements().collect();
            assert!(items.len() % 2 == 0, "a dict alternates key and value");
            let mut map = serde_json::Map::new();
            for pair in items.chunks(2) {
                assert_eq!(
                    pair[0].tag_name().name(),
                    "key",
                    "a dict alternates key and value"
                );
                map.insert(
                    pair[0].text().unwrap_or_default().to_owned(),
                    plist_value(pair[1]),
                );
            }
            Value::Object(map)
        }
        "array" => Value::Array(elements().map(plist_value).collect()),
        "string" => json!(node.text().unwrap_or_default()),
        "integer" => json!(
            node.text()
                .unwrap_or_default()
                .parse::<i64>()
                .expect("an integer")
        ),
        "true" => json!(true),
        "false" => json!(false),
        other => panic!("unexpected plist element <{other}>"),
    }
}

#[test]
fn install_server_is_idempotent_and_uninstall_keeps_the_data() {
    let hub = Hub::start();
    let home = tempfile::tempdir().unwrap();
    let fake = fake_tools(home.path());
    let log = home.path().join("calls.log");
    // The binaries as `make install` would leave them.
    let bindir = home.path().join(".local/bin");
    std::fs::create_dir_all(&bindir).unwrap();
    for bin in [
        "agent-event-bus",
        "agent-event-bus-proxy",
        "agent-event-bus-cli",
    ] {
        std::os::unix::fs::symlink(bin_path(bin), bindir.join(bin)).unwrap();
    }
    let proxy = format!("{}/agent-event-bus-proxy", bindir.display());
    let extra = [
        ("FAKE_LOG", log.to_str().unwrap()),
        ("FAKE_CLAUDE", "proxy"),
        ("FAKE_PROXY", proxy.as_str()),
        // The post-install check talks to the test hub.
        ("AGENT_EVENT_BUS_URL", hub.url.as_str()),
    ];
    let path = path_with(&fake);
    let linux = cfg!(target_os = "linux");
    let service_file = if linux {
        home.path()
            .join(".config/systemd/user/agent-event-bus.service")
    } else {
        home.path()
            .join("Library/LaunchAgents/com.agent-event-bus.hub.plist")
    };

    let mut runs = Vec::new();
    for _ in 0..2 {
        std::fs::write(&log, "").unwrap();
        let out = service_script(home.path(), &bindir, &path, &extra, &["install-server"]);
        assert_ok(&out);
        assert!(
            out.stdout.contains("All checks passed."),
            "doctor runs at the end: {out:#?}"
        );
        runs.push((
            std::fs::read_to_string(&service_file).unwrap(),
            std::fs::read_to_string(&log).unwrap(),
        ));
    }
    assert_eq!(runs[0], runs[1], "a second install does the same again");
    let calls = &runs[0].1;
    let want: &[&str] = if linux {
        &[
            "systemctl --user daemon-reload",
            "systemctl --user enable agent-event-bus.service",
            "systemctl --user restart agent-event-bus.service",
        ]
    } else {
        &["launchctl bootstrap"]
    };
    for call in want {
        assert!(calls.contains(call), "`{call}` in {calls}");
    }
    assert!(
        calls.contains("claude mcp remove --scope user agent-event-bus"),
        "{calls}"
    );
    assert!(
        calls.contains(&format!(
            "claude mcp add --scope user agent-event-bus -- {proxy}"
        )),
        "{calls}"
    );

    // A client install: the proxy's env carries the remote URL and token.
    std::fs::write(&log, "").unwrap();
    let mut client_env = extra.to_vec();
    client_env.push(("AGENT_EVENT_BUS_TOKEN", "tok-123"));
    let out = service_script(
        home.path(),
        &bindir,
        &path,
        &client_env,
        &["install-client", &hub.url],
    );
    assert_ok(&out);
    assert!(
        out.stdout
            .contains(&format!("export AGENT_EVENT_BUS_URL={}", hub.url)),
        "{out:#?}"
    );
    assert!(
        !out.stdout.contains("tok-123"),
        "the token is never printed: {out:#?}"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls.contains(&format!(
            "claude mcp add --scope user -e AGENT_EVENT_BUS_URL={} -e AGENT_EVENT_BUS_TOKEN=tok-123 agent-event-bus -- {proxy}",
            hub.url
        )),
        "{calls}"
    );

    // Uninstall removes the service, the entry and the binaries; data stays.
    let data = home
        .path()
        .join(".claude/contrib/agent-event-bus/data.redb");
    std::fs::write(&data, "precious").unwrap();
    std::fs::write(&log, "").unwrap();
    let out = service_script(home.path(), &bindir, &path, &extra, &["uninstall"]);
    assert_ok(&out);
    assert!(out.stdout.contains("Your data is kept in"), "{out:#?}");
    assert!(!service_file.exists());
    assert_eq!(
        std::fs::read_dir(&bindir).unwrap().count(),
        0,
        "the binaries are gone"
    );
    assert_eq!(std::fs::read_to_string(&data).unwrap(), "precious");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("claude mcp remove --scope user agent-event-bus")
    );
    // And again: nothing left to do, still fine.
    assert_ok(&service_script(
        home.path(),
        &bindir,
        &path,
        &extra,
        &["uninstall"],
    ));

    // DRY_RUN shows what would change and changes nothing.
    let out = service_script(
        home.path(),
        &bindir,
        &path,
        &[("DRY_RUN", "1"), ("FAKE_LOG", "/dev/null")],
        &["restart"],
    );
    assert_ok(&out);
    assert!(out.stdout.starts_with("+ "), "{out:#?}");
}
