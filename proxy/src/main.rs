//! `agent-event-bus-proxy`: started by an MCP client (Claude Code, Codex, …)
//! once per session, speaking MCP on stdin/stdout. See the `proxy` library.

use clap::Parser;
use shared::config;

/// The agent-event-bus MCP server for one agent session (stdio).
#[derive(Debug, Parser)]
#[command(version, about)]
#[expect(
    clippy::doc_markdown,
    reason = "the doc comments are the --help text, written for a terminal"
)]
struct Args {
    /// The hub, with or without /mcp.
    #[arg(long, env = config::ENV_URL, default_value = config::DEFAULT_URL)]
    url: String,
    /// Bearer token for the hub [default: for a hub on this machine, the token file beside its database].
    #[arg(long, env = config::ENV_TOKEN, hide_env_values = true)]
    token: Option<String>,
    /// Session name [default: repo/branch from git, else the cwd's name].
    #[arg(long, env = config::ENV_SESSION_NAME)]
    name: Option<String>,
    /// Stable id of this agent session [default: CLAUDE_CODE_SESSION_ID, else one per process].
    #[arg(long, env = config::ENV_CLIENT_ID)]
    client_id: Option<String>,
    #[arg(long, env = config::ENV_CLAUDE_SESSION_ID, hide = true)]
    claude_session_id: Option<String>,
    /// Presence lease in seconds, renewed every third of it.
    #[arg(long, env = config::ENV_LEASE_SECONDS, default_value_t = config::DEFAULT_LEASE_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..))]
    lease_seconds: u64,
    /// Channels pushed into the session besides its direct messages (comma-separated).
    #[arg(long, env = config::ENV_PUSH_CHANNELS, default_value = "")]
    push_channels: String,
    /// Wake paths for an idle agent: on, off, or a list of inbox, pane.
    #[arg(long, env = shared::wake::ENV_WAKE, default_value = "on",
          value_parser = wake_paths)]
    wake: WakePaths,
    #[arg(long, env = shared::state::ENV_STATE_DIR, hide = true)]
    state_dir: Option<std::path::PathBuf>,
}

/// The wake paths the switch turns on.
#[derive(Debug, Clone)]
struct WakePaths(Vec<&'static str>);

fn wake_paths(raw: &str) -> Result<WakePaths, String> {
    shared::wake::parse_switch(raw).map(WakePaths)
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,proxy=info".into()),
        )
        .init();

    let config = proxy::Config {
        url: non_empty(Some(args.url)).unwrap_or_else(|| config::DEFAULT_URL.to_owned()),
        token: non_empty(args.token),
        name: non_empty(args.name),
        client_id: non_empty(args.client_id).or_else(|| non_empty(args.claude_session_id)),
        lease_seconds: args.lease_seconds,
        push_channels: shared::push::parse_channels(&args.push_channels),
        wake: proxy::wake::WakeConfig {
            paths: args.wake.0,
            state_dir: args.state_dir,
        },
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(proxy::run(config)) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e:#}");
            1
        }
    };
    // Exit while `runtime` is still alive: dropping it would wait for a
    // blocking stdin read that may never return (stdin is not always a
    // pipe rmcp can read without blocking, e.g. a socket from Node).
    std::process::exit(code);
}
