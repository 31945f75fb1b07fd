//! End-to-end tests: the real `agent-event-bus-cli` against a real hub, as
//! hooks and scripts run it — each command's text, `--json` and exit code,
//! the session-id fallbacks, `--follow`/`--wait` and `doctor`. The hook
//! recipes are in `hooks.rs`, the service files in `deploy.rs`.
//!
//! # Layout
//! - `usage`: help, usage errors, an unreachable hub, the hub's URL.
//! - `sessions`: `register`, `sessions`, `channels`, `unregister`.
//! - `session_id`: which session a command acts as; `whoami`.
//! - `events`: `publish`, `events`, `ack`, `notify`.
//! - `webhooks`: the `webhook` commands.
//! - `follow`: `events --follow` and `events --wait`, left running.
//! - `doctor`: `doctor`'s checks and fixes.
//! - `access`: `token`, `open`, and `doctor` on a missing or wrong credential.

mod access;
mod doctor;
mod events;
mod follow;
mod session_id;
mod sessions;
mod usage;
mod webhooks;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support::{Hub, Output};

/// This machine's name, as the CLI sends it and the hub shows it.
pub(crate) fn host() -> String {
    shared::config::hostname()
}

/// A command with the bus environment cleared, as the harness runs ours.
pub(crate) fn clean(program: &str) -> Command {
    let mut cmd = Command::new(program);
    support::clear_bus_env(&mut cmd);
    cmd
}

pub(crate) fn assert_ok(out: &Output) {
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
pub(crate) fn register_with_pid(hub: &Hub, client_id: &str, machine: &str, pid: u32) -> Value {
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

/// Stand-ins in `dir` for `claude` (a tool we do not ship), `systemctl` and
/// `launchctl`: each logs its arguments to `$FAKE_LOG`, and `claude mcp get`
/// answers as `$FAKE_CLAUDE` says: `proxy` (registered), `http` (the
/// original's HTTP entry), else missing. Returns a `PATH` with them first and
/// the log file meant for `$FAKE_LOG`.
pub(crate) fn fake_tools(dir: &Path) -> (String, PathBuf) {
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
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (
        format!("{}:/usr/bin:/bin", bin.display()),
        dir.join("calls.log"),
    )
}
