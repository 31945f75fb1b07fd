//! End-to-end tests with a client nobody on the team wrote: the official
//! Python `mcp` package (installed by `.ci/run`) against the real hub.

use std::process::Command;

use serde_json::Value;
use support::Hub;

/// Whether the Python `mcp` package is importable. On CI it must be: a
/// missing client there fails the test instead of skipping it.
pub(crate) fn python_mcp_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have the Python mcp package (.ci/run installs it)"
        );
        eprintln!("skipped: python3 cannot import mcp (pip install mcp to run this test)");
    }
    ok
}

#[test]
fn the_official_python_client_speaks_to_the_hub_over_http() {
    if !python_mcp_available() {
        return;
    }
    let hub = Hub::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/py/http_client.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(&hub.url)
        .env("AGENT_EVENT_BUS_TOKEN", hub.token())
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Python client failed:\n{}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("one JSON line");
    assert_eq!(
        seen["tools"].as_array().unwrap().len(),
        shared::catalog::TOOL_NAMES.len()
    );
    assert_eq!(seen["register"]["session_id"], "py-1");
    assert_eq!(seen["publish"]["event_type"], "hello");
    assert_eq!(seen["sessions"]["result"][0]["session_id"], "py-1");
    assert_eq!(seen["bad_is_error"], true);
    assert!(seen["guide"].as_str().unwrap().contains("Agent Event Bus"));
    assert_eq!(seen["protocol"], "2025-11-25");
}
