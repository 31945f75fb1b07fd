//! The workspace's binaries as commands a test runs, with the developer's
//! own bus environment cleared; the hook recipes run as Claude Code runs them.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::{Hub, fresh};

/// The path of one of the workspace's binaries, built by `cargo build --bins`
/// into the same target dir as this test executable.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    // target/<profile>/deps/e2e-xxxx → target/<profile>/<name>; a bench
    // binary sits in target/<profile> itself.
    let mut dir = exe.parent().expect("the executable has a directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().expect("deps has a parent");
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`make test` runs `cargo build --workspace --bins`)",
        path.display()
    );
    fresh::refuse_stale(&path);
    path
}

/// The workspace root (for `examples/`, `deploy/`).
pub fn repo_root() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_owned()
}

/// Variables outside the `AGENT_EVENT_BUS_` family that the binaries (or
/// the HTTP client inside them) read; cleared for every child so the
/// developer's own setup never leaks into a test.
pub const BUS_ENV: &[&str] = &[
    "CLAUDE_CODE_SESSION_ID",
    // The wake paths: a test's proxy must never find the developer's own
    // terminal pane or Claude Code inbox.
    "CLAUDE_CODE_MESSAGING_SOCKET",
    "CLAUDE_CODE_MESSAGING_TOKEN",
    "TMUX",
    "TMUX_PANE",
    "ZELLIJ",
    "ZELLIJ_PANE_ID",
    "ZELLIJ_SESSION_NAME",
    "HOST",
    "PORT",
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Removes from `cmd` every `AGENT_EVENT_BUS_*` variable of this process's
/// environment (whatever the binaries read today or tomorrow) and the
/// others in [`BUS_ENV`].
pub fn clear_bus_env(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AGENT_EVENT_BUS_") {
            cmd.env_remove(name);
        }
    }
    for var in BUS_ENV {
        cmd.env_remove(var);
    }
}

/// A command for one of our binaries with the bus environment cleared.
pub fn command(name: &str) -> Command {
    let mut cmd = Command::new(bin_path(name));
    clear_bus_env(&mut cmd);
    cmd
}

/// Starts one of the hook recipes in `examples/hooks/` as Claude Code does:
/// `input` (the hook JSON) on stdin, our CLI first on `PATH`, the bus
/// environment cleared but for the hub's URL and `env`.
pub fn spawn_hook(hub: &Hub, script: &str, input: &Value, env: &[(&str, &str)]) -> Child {
    let cli_dir = bin_path("agent-event-bus-cli");
    let cli_dir = cli_dir.parent().expect("the CLI sits in a directory");
    let mut cmd = Command::new("bash");
    clear_bus_env(&mut cmd);
    let mut child = cmd
        .arg(repo_root().join("examples/hooks").join(script))
        .env("PATH", format!("{}:/usr/bin:/bin", cli_dir.display()))
        .env("AGENT_EVENT_BUS_URL", &hub.url)
        .envs(hub.client_env())
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs the hook");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.to_string().as_bytes());
    }
    child
}
