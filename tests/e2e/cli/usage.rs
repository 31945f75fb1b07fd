//! Help, usage errors (exit 2), an unreachable hub (one line, exit 1), and
//! where the CLI looks for the hub.

use support::{Cli, ClosedPort, Hub, Output, bin_path};

use super::{assert_fails, assert_ok, clean};

#[test]
fn no_command_prints_help_and_exits_1_and_usage_errors_exit_2() {
    let closed = ClosedPort::new();
    let cli = Cli::at(&closed.url());
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
    let closed = ClosedPort::new();
    let url = closed.url();
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
        let out = Cli::at(&url).with_credential(&hub).run(&["sessions"]);
        assert_ok(&out);
        assert_eq!(out.stdout, "No active sessions\n", "{url}");
    }
    // --url beats the environment.
    let closed = ClosedPort::new();
    let out = Cli::at(&closed.url())
        .with_credential(&hub)
        .run(&["--url", &hub.base(), "channels"]);
    assert_ok(&out);
    assert_eq!(out.stdout, "No active channels\n");
    // An empty AGENT_EVENT_BUS_URL means the default address. Run in a
    // network namespace of its own, where nothing listens on 8080 whatever
    // runs on this machine, so the CLI must name the default and fail.
    let out: Output = clean("unshare")
        .arg("--net")
        .arg(bin_path("agent-event-bus-cli"))
        .args(["--url", "", "sessions"])
        .env("AGENT_EVENT_BUS_URL", "")
        .output()
        .expect("unshare (util-linux) runs")
        .into();
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
