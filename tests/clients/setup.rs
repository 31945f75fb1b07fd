//! `agent-event-bus-cli setup` against temp HOMEs holding config of their
//! own, checked with the real clients' `mcp list`; and the Claude Code
//! plugin, validated, installed from the repository's marketplace and
//! connected, offline.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::{Hub, bin_path, repo_root};

use crate::client::Client;
use crate::sandbox::Sandbox;
use crate::{assert_connected, run};

fn setup(sandbox: &Sandbox, client: Client, extra: &[&str]) -> String {
    let cli = bin_path("agent-event-bus-cli");
    let mut cmd = sandbox.command(&cli);
    cmd.args(["setup", client.name()]).args(extra);
    let out = cmd.output().expect("setup runs");
    assert!(
        out.status.success(),
        "setup {} failed: {}",
        client.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A sandbox whose user's shell points at `hub`.
fn sandbox_for(hub: &Hub) -> Sandbox {
    let mut sandbox = Sandbox::new();
    sandbox.point_at(hub);
    sandbox
}

/// The files `setup` may touch, and what is in them now.
fn snapshot(files: &[PathBuf]) -> Vec<Option<Vec<u8>>> {
    files.iter().map(|f| std::fs::read(f).ok()).collect()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("the file")).expect("JSON")
}

/// Dry run first (prints, writes nothing), then for real (prints one line
/// per change), then again (prints nothing, changes nothing).
fn three_runs(sandbox: &Sandbox, client: Client, files: &[PathBuf], changes: usize) {
    let before = snapshot(files);
    let dry = setup(sandbox, client, &["--dry-run"]);
    assert!(dry.contains("(dry run: nothing was written)"), "{dry}");
    assert_eq!(snapshot(files), before, "a dry run wrote:\n{dry}");
    let first = setup(sandbox, client, &[]);
    assert_eq!(first.lines().count(), changes, "{first}");
    assert_eq!(dry.lines().count(), changes + 1, "{dry}");
    let after = snapshot(files);
    let second = setup(sandbox, client, &[]);
    assert_eq!(second, "", "a second run changed something");
    assert_eq!(snapshot(files), after);
}

#[test]
fn setup_connects_claude_code_keeping_its_config() {
    let Some(claude) = Client::ClaudeCode.executable() else {
        return;
    };
    let hub = Hub::start();
    let sandbox = sandbox_for(&hub);
    let config = sandbox.home.join(".claude.json");
    let settings = sandbox.home.join(".claude/settings.json");
    std::fs::create_dir_all(settings.parent().expect("a folder")).expect("~/.claude");
    std::fs::write(
        &config,
        r#"{"numStartups": 3, "mcpServers": {"other": {"command": "other-server"}}}"#,
    )
    .expect("config");
    let stop = json!([{"hooks": [{"type": "command", "command": "my-stop.sh"}]}]);
    std::fs::write(
        &settings,
        json!({"model": "opus", "hooks": {"Stop": stop}}).to_string(),
    )
    .expect("settings");
    three_runs(
        &sandbox,
        Client::ClaudeCode,
        &[config.clone(), settings.clone()],
        5,
    );
    let config = read_json(&config);
    assert_eq!(config["numStartups"], 3);
    assert_eq!(
        config["mcpServers"]["other"],
        json!({"command": "other-server"})
    );
    assert_eq!(
        config["mcpServers"]["agent-event-bus"]["env"]["AGENT_EVENT_BUS_URL"],
        json!(hub.base())
    );
    let settings = read_json(&settings);
    assert_eq!(settings["model"], "opus");
    assert_eq!(settings["hooks"]["Stop"][0], stop[0]);
    let rewake = &settings["hooks"]["Stop"][2]["hooks"][0];
    assert_eq!(rewake["asyncRewake"], true, "{settings}");
    let listed = run(
        "claude mcp list",
        sandbox.command(&claude).args(["mcp", "list"]),
    );
    assert_connected(&listed, "agent-event-bus:");
}

#[test]
fn setup_connects_codex_keeping_its_config() {
    let Some(codex) = Client::Codex.executable() else {
        return;
    };
    let hub = Hub::start();
    let sandbox = sandbox_for(&hub);
    let config = sandbox.home.join(".codex/config.toml");
    std::fs::create_dir_all(config.parent().expect("a folder")).expect("~/.codex");
    let own = "# my settings\nmodel = \"o3\" # the one I like\n\n[projects.\"/src/x\"]\ntrust_level = \"trusted\"\n";
    std::fs::write(&config, own).expect("config.toml");
    three_runs(&sandbox, Client::Codex, std::slice::from_ref(&config), 3);
    let text = std::fs::read_to_string(&config).expect("config.toml");
    assert!(
        text.starts_with("# my settings\nmodel = \"o3\" # the one I like\n"),
        "{text}"
    );
    assert!(
        text.contains("[projects.\"/src/x\"]\ntrust_level = \"trusted\""),
        "{text}"
    );
    assert!(text.contains("daemon_auto_start = false"), "{text}");
    let got = run(
        "codex mcp get",
        sandbox
            .command(&codex)
            .args(["mcp", "get", "agent-event-bus"]),
    );
    let proxy = bin_path("agent-event-bus-proxy");
    assert!(
        got.contains(&format!("command: {}", proxy.display())),
        "{got}"
    );
    assert!(
        got.contains("default_tools_approval_mode: approve"),
        "{got}"
    );
    assert!(
        got.contains("TMUX_PANE=") && got.contains("XDG_RUNTIME_DIR="),
        "{got}"
    );
}

#[test]
fn setup_connects_gemini_cli_keeping_its_config() {
    let Some(gemini) = Client::Gemini.executable() else {
        return;
    };
    let hub = Hub::start();
    let sandbox = sandbox_for(&hub);
    let dir = sandbox.home.join(".gemini");
    std::fs::create_dir_all(&dir).expect("~/.gemini");
    let settings = dir.join("settings.json");
    std::fs::write(&settings, json!({"ui": {"theme": "Dracula"}}).to_string()).expect("settings");
    // MCP servers only start in a folder the user trusts.
    let project = sandbox.project.display().to_string();
    std::fs::write(
        dir.join("trustedFolders.json"),
        json!({project: "TRUST_FOLDER"}).to_string(),
    )
    .expect("trust");
    three_runs(&sandbox, Client::Gemini, std::slice::from_ref(&settings), 3);
    let settings = read_json(&settings);
    assert_eq!(settings["ui"]["theme"], "Dracula");
    assert_eq!(settings["mcpServers"]["agent-event-bus"]["trust"], true);
    let listed = run(
        "gemini mcp list",
        sandbox.command(&gemini).args(["mcp", "list"]),
    );
    assert_connected(&listed, "✓ agent-event-bus:");
}

/// Installing the plugin is all a Claude Code user does: it brings the MCP
/// server (the proxy on PATH) and the hooks.
#[test]
fn the_claude_code_plugin_installs_offline_and_connects() {
    let Some(claude) = Client::ClaudeCode.executable() else {
        return;
    };
    let hub = Hub::start();
    let mut sandbox = sandbox_for(&hub);
    // `make install` puts the binaries on PATH; here, the built ones.
    let bins = bin_path("agent-event-bus-proxy")
        .parent()
        .expect("the binaries' folder")
        .to_owned();
    let path = std::env::join_paths(std::iter::once(bins).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("a PATH");
    sandbox.set_env("PATH", &path.to_string_lossy());
    let repo = repo_root();
    let plugin = repo.join("plugins/claude-code");
    run(
        "claude plugin validate",
        sandbox
            .command(&claude)
            .args(["plugin", "validate"])
            .arg(&plugin),
    );
    run(
        "claude plugin marketplace add",
        sandbox
            .command(&claude)
            .args(["plugin", "marketplace", "add"])
            .arg(&repo),
    );
    run(
        "claude plugin install",
        sandbox
            .command(&claude)
            .args(["plugin", "install", "agent-event-bus@agent-event-bus"]),
    );
    let listed = run(
        "claude mcp list",
        sandbox.command(&claude).args(["mcp", "list"]),
    );
    assert_connected(&listed, "plugin:agent-event-bus:agent-event-bus:");
    let hooks = read_json(&plugin.join("hooks/hooks.json"));
    for (event, at, recipe) in [
        ("UserPromptSubmit", 0, "busy"),
        ("UserPromptSubmit", 1, "user-prompt-submit"),
        ("Stop", 0, "idle"),
        ("Stop", 1, "stop-wait"),
    ] {
        assert_eq!(
            hooks["hooks"][event][0]["hooks"][at]["command"],
            json!(format!("agent-event-bus-cli hook {recipe}")),
            "{hooks}"
        );
    }
}
