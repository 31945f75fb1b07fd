//! `register`, `sessions`, `channels` and `unregister`: the original's text
//! and JSON.

use support::{Cli, Hub};

use super::{assert_fails, assert_ok, host};

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
    let mut body = String::new();
    for c in &want {
        body.push_str(&format!("  {c}  (1 subscriber)\n"));
    }
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
