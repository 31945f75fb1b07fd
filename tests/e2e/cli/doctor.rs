//! `doctor`: every check, and how to fix what fails, with stand-ins for
//! `claude` on `PATH`.

use serde_json::json;
use support::{Cli, ClosedPort, Hub};

use super::{assert_fails, assert_ok, fake_tools};

#[test]
fn doctor_checks_everything_and_says_how_to_fix_what_fails() {
    let hub = Hub::start();
    let tmp = tempfile::tempdir().unwrap();
    let (path, log) = fake_tools(tmp.path());
    let log = log.to_str().unwrap();

    // No `claude` on PATH: every hub check passes, Claude Code is skipped.
    let out = Cli::new(&hub).env("PATH", "/nonexistent").run(&["doctor"]);
    assert_ok(&out);
    for want in [
        format!("✓ hub reachable at {}", hub.url),
        format!(
            "✓ auth ok (token from {})",
            hub.token_file().unwrap().display()
        ),
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
            .env("PATH", &path)
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
    let closed = ClosedPort::new();
    let out = Cli::at(&closed.url())
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
