//! The three agent clients, pinned, and how each is made ready to run
//! offline against its stand-in: the first-run dialogs passed with config
//! files and variables (onboarding, theme, API-key approval, folder trust,
//! update checks and telemetry off), and the bus proxy registered as its
//! MCP server — the README's way, or by `agent-event-bus-cli setup`.

use std::path::PathBuf;

use serde_json::{Value, json};
use support::{Hub, bin_path};

use crate::sandbox::Sandbox;
use crate::standin::Api;
use crate::{installed, run};

/// A pinned agent client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Client {
    ClaudeCode,
    Codex,
    Gemini,
}

/// The stand-in API key Claude Code is told to use (approved in its config).
const ANTHROPIC_KEY: &str = "sk-ant-stand-in-0123456789abcdefghij";

impl Client {
    /// The name `setup` takes and the screens folder uses.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::ClaudeCode => "claude-code",
            Self::Codex => "codex",
            Self::Gemini => "gemini",
        }
    }

    /// The version the Makefile pins (and the screens were recorded with).
    pub(crate) fn version(self) -> &'static str {
        match self {
            Self::ClaudeCode => "2.1.332",
            Self::Codex => "0.171.0",
            Self::Gemini => "0.61.0",
        }
    }

    pub(crate) fn api(self) -> Api {
        match self {
            Self::ClaudeCode => Api::Anthropic,
            Self::Codex => Api::Responses,
            Self::Gemini => Api::Gemini,
        }
    }

    fn package(self) -> &'static str {
        match self {
            Self::ClaudeCode => "@anthropic-ai/claude-code",
            Self::Codex => "@openai/codex",
            Self::Gemini => "@google/gemini-cli",
        }
    }

    /// The installed executable, or `None` (skipped with a line saying so).
    pub(crate) fn executable(self) -> Option<PathBuf> {
        let bin = match self {
            Self::ClaudeCode => "claude",
            Self::Codex => "codex",
            Self::Gemini => "gemini",
        };
        let path = installed(self.package(), &format!("node_modules/.bin/{bin}"))?;
        let manifest =
            crate::clients_dir().join(format!("node_modules/{}/package.json", self.package()));
        let have: Value = std::fs::read_to_string(&manifest)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        assert_eq!(
            have["version"],
            json!(self.version()),
            "{} is not the pinned version (run `make test-clients`)",
            self.package()
        );
        Some(path)
    }

    /// The arguments the interactive client starts with.
    pub(crate) fn tui_args(self, home: &std::path::Path) -> Vec<String> {
        match self {
            Self::ClaudeCode => vec![
                "--debug-file".into(),
                home.join("claude-debug.log").display().to_string(),
            ],
            Self::Codex => Vec::new(),
            // A named model: `auto` would first ask a router model to rate the prompt.
            Self::Gemini => vec!["-m".into(), "gemini-2.5-flash".into()],
        }
    }
}

/// How a client is connected to the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Connect {
    /// The README's manual registration of the MCP server, nothing more.
    Readme,
    /// `agent-event-bus-cli setup <client>`: the server and the hooks.
    Setup,
}

/// Extra client settings a test asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Prefs {
    /// Claude Code's `crossSessionInbound` setting.
    pub cross_session_inbound: Option<&'static str>,
    /// The proxy's wake switch (`AGENT_EVENT_BUS_WAKE`), from the user's
    /// environment.
    pub wake: Option<&'static str>,
}

impl Prefs {
    /// Claude Code holding messages from other sessions.
    pub(crate) fn holding() -> Self {
        Self {
            cross_session_inbound: Some("hold"),
            ..Self::default()
        }
    }
}

/// `client`'s executable and a new sandbox it is prepared in (see
/// [`prepare`]); `None` when the client is not installed.
pub(crate) fn prepared(
    client: Client,
    hub: &Hub,
    standin_url: &str,
    connect: Connect,
    prefs: &Prefs,
) -> Option<(PathBuf, Sandbox)> {
    let exe = client.executable()?;
    let mut sandbox = Sandbox::new();
    prepare(client, &exe, hub, &mut sandbox, standin_url, connect, prefs);
    Some((exe, sandbox))
}

/// Prepares `client` in the sandbox: passes its first-run dialogs, points it
/// at the stand-in (`standin_url`) and the hub, and connects it to the bus.
fn prepare(
    client: Client,
    exe: &std::path::Path,
    hub: &Hub,
    sandbox: &mut Sandbox,
    standin_url: &str,
    connect: Connect,
    prefs: &Prefs,
) {
    // The user's shell knows where the hub is, as README says for the CLI
    // and hooks; the MCP registration carries it too.
    sandbox.point_at(hub);
    if let Some(wake) = prefs.wake {
        sandbox.set_env(shared::wake::ENV_WAKE, wake);
    }
    match client {
        Client::ClaudeCode => claude_code(sandbox, standin_url, prefs),
        Client::Codex => codex(sandbox, standin_url),
        Client::Gemini => gemini(sandbox, standin_url),
    }
    let proxy = bin_path("agent-event-bus-proxy");
    // The proxy's environment as `-e` flags: the hub, and its credential.
    let mut env = vec![(shared::config::ENV_URL.to_owned(), hub.base())];
    env.extend(hub.client_env());
    let flags: Vec<String> = env
        .iter()
        .flat_map(|(k, v)| ["-e".to_owned(), format!("{k}={v}")])
        .collect();
    match (connect, client) {
        (Connect::Setup, _) => {
            let cli = bin_path("agent-event-bus-cli");
            let out = run(
                "agent-event-bus-cli setup",
                sandbox.command(&cli).args(["setup", client.name()]),
            );
            eprintln!("setup {}:\n{out}", client.name());
        }
        (Connect::Readme, Client::ClaudeCode) => {
            run(
                "claude mcp add",
                sandbox
                    .command(exe)
                    .args(["mcp", "add", "--scope", "user", "agent-event-bus"])
                    .args(&flags)
                    .arg("--")
                    .arg(&proxy),
            );
        }
        (Connect::Readme, Client::Gemini) => {
            let mut add = sandbox.command(exe);
            add.args([
                "mcp",
                "add",
                "--scope",
                "user",
                "--trust",
                "agent-event-bus",
            ])
            .arg(&proxy)
            .args(&flags);
            run("gemini mcp add", &mut add);
        }
        (Connect::Readme, Client::Codex) => {
            let config = sandbox.home.join(".codex/config.toml");
            let mut text = std::fs::read_to_string(&config).expect("config.toml");
            let env: Vec<String> = env.iter().map(|(k, v)| format!("{k} = {v:?}")).collect();
            text.push_str(&format!(
                "\n[mcp_servers.agent-event-bus]\ncommand = {proxy:?}\ndefault_tools_approval_mode = \"approve\"\nenv = {{ {env} }}\n",
                proxy = proxy.display().to_string(),
                env = env.join(", "),
            ));
            std::fs::write(&config, text).expect("config.toml");
        }
    }
}

fn write_json(path: &std::path::Path, value: &Value) {
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("a config folder");
    std::fs::write(path, serde_json::to_string_pretty(value).expect("json"))
        .expect("a config file");
}

/// Onboarding done, theme chosen, the stand-in key approved, the project
/// trusted; the bus's tools allowed (as a user allows them once).
fn claude_code(sandbox: &mut Sandbox, standin_url: &str, prefs: &Prefs) {
    let project = sandbox.project.display().to_string();
    write_json(
        &sandbox.home.join(".claude.json"),
        &json!({
            "hasCompletedOnboarding": true,
            "theme": "dark",
            "numStartups": 1,
            "autoUpdates": false,
            "customApiKeyResponses": {"approved": [&ANTHROPIC_KEY[ANTHROPIC_KEY.len() - 20..]], "rejected": []},
            "projects": {project: {"hasTrustDialogAccepted": true, "hasCompletedProjectOnboarding": true}},
        }),
    );
    let mut settings = json!({
        "permissions": {"allow": ["mcp__agent-event-bus", "mcp__plugin_agent-event-bus_agent-event-bus"]},
    });
    if let Some(policy) = prefs.cross_session_inbound {
        settings["crossSessionInbound"] = json!(policy);
    }
    write_json(&sandbox.home.join(".claude/settings.json"), &settings);
    sandbox.set_env("ANTHROPIC_BASE_URL", standin_url);
    sandbox.set_env("ANTHROPIC_API_KEY", ANTHROPIC_KEY);
    // The stand-in calls the tools directly rather than searching for them.
    sandbox.set_env("ENABLE_TOOL_SEARCH", "false");
}

/// A model provider at the stand-in, tools run without asking, the project
/// trusted, update checks and analytics off.
fn codex(sandbox: &mut Sandbox, standin_url: &str) {
    let codex_home = sandbox.home.join(".codex");
    std::fs::create_dir_all(&codex_home).expect("CODEX_HOME");
    let config = format!(
        r#"model = "stand-in"
model_provider = "stand-in"
approval_policy = "never"
sandbox_mode = "read-only"
check_for_update_on_startup = false

[analytics]
enabled = false

[model_providers.stand-in]
name = "stand-in"
base_url = "{standin_url}/v1"
wire_api = "responses"

[projects.{project:?}]
trust_level = "trusted"
"#,
        project = sandbox.project.display().to_string(),
    );
    std::fs::write(codex_home.join("config.toml"), config).expect("config.toml");
}

/// API-key auth at the stand-in, update checks and telemetry off, the
/// project trusted (MCP servers start only in a trusted folder).
fn gemini(sandbox: &mut Sandbox, standin_url: &str) {
    let dir = sandbox.home.join(".gemini");
    write_json(
        &dir.join("settings.json"),
        &json!({
            "general": {"enableAutoUpdate": false, "enableAutoUpdateNotification": false},
            "telemetry": {"enabled": false},
            "privacy": {"usageStatisticsEnabled": false},
            "security": {"auth": {"selectedType": "gemini-api-key"}},
        }),
    );
    let project = sandbox.project.display().to_string();
    write_json(
        &dir.join("trustedFolders.json"),
        &json!({project: "TRUST_FOLDER"}),
    );
    sandbox.set_env("GEMINI_API_KEY", "stand-in-key");
    sandbox.set_env("GOOGLE_GEMINI_BASE_URL", standin_url);
}
