//! The top-level command line. Global flags come before the subcommand, as in
//! the original (so `webhook register --url` can name the webhook's target).
//! Each command group's own flags live beside its code in [`crate::commands`].

use clap::{Args, Parser, Subcommand};
use shared::config;

use crate::commands::{
    access, claims, events, hook, hooks, inbox, notify, sessions, setup, wait, wake, webhook,
};

/// Shown under `--help`: the everyday forms, and the drain loop hooks use.
const EXAMPLES: &str = "\
Examples:
  agent-event-bus-cli register --name my-feature --client-id \"$CC_SESSION_ID\"
  agent-event-bus-cli publish --type task_done --payload \"Finished API\" --channel repo:my-project
  agent-event-bus-cli events --session-id \"$SID\" --resume --order asc
  agent-event-bus-cli events --follow --min-level info
  agent-event-bus-cli events --session-id \"$SID\" --resume --wait 30
  agent-event-bus-cli ack --session-id \"$SID\" --cursor 42
  agent-event-bus-cli claim --file src/x.rs --note \"splitting it\"
  agent-event-bus-cli claims file:my-project/
  agent-event-bus-cli wait --timeout 540    # exit 2 with the message when one arrives
  agent-event-bus-cli wake-state busy       # from a turn-start hook (idle from a turn-end hook)
  agent-event-bus-cli panes set             # map this session to this tmux/zellij pane
  agent-event-bus-cli doctor
  agent-event-bus-cli open                  # the live view, with this machine's hub token
  agent-event-bus-cli setup claude-code --dry-run

Session id: --session-id, else $AGENT_EVENT_BUS_SESSION_ID, else $CLAUDE_CODE_SESSION_ID,
else the session on this machine whose client process is an ancestor of this command
(so a hook run by an agent acts as that agent's session).";

/// CLI for agent-event-bus: for shell hooks and scripts.
#[derive(Debug, Parser)]
#[command(
    name = "agent-event-bus-cli",
    version,
    about = "CLI for agent-event-bus: for shell hooks and scripts",
    after_help = EXAMPLES,
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Where the hub is and how to talk to it.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Hub URL, with or without /mcp
    #[arg(long, env = config::ENV_URL, default_value = config::DEFAULT_URL)]
    pub url: String,
    /// Bearer token for the hub [default: for a hub on this machine, the token file beside its database]
    #[arg(long, env = config::ENV_TOKEN, hide_env_values = true)]
    pub token: Option<String>,
    /// Show the full error chain on failures
    #[arg(long)]
    pub debug: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Register a session
    Register(sessions::RegisterArgs),
    /// Unregister a session
    Unregister(sessions::UnregisterArgs),
    /// List active sessions
    Sessions,
    /// List active channels
    Channels,
    /// Print the session this command would act for
    Whoami(sessions::WhoamiArgs),
    /// Publish an event
    Publish(events::PublishArgs),
    /// Get recent events (or follow them as they arrive)
    Events(events::EventsArgs),
    /// Advance the session cursor to an event id you already hold
    Ack(events::AckArgs),
    /// Claim a resource (advisory) until you release it or your session ends
    Claim(claims::ClaimArgs),
    /// Release a claim
    Release(claims::ReleaseArgs),
    /// List claims (under a prefix, and those covering it)
    Claims(claims::ClaimsArgs),
    /// Send system notification
    Notify(notify::NotifyArgs),
    /// Manage webhooks
    Webhook(webhook::WebhookArgs),
    /// Check the hub, auth, versions, a publish/read round trip and the Claude Code setup
    Doctor,
    /// Print the hub's token this CLI sends, to give a client on another machine
    Token,
    /// Open the live view in a browser, with the hub's token
    Open(access::OpenArgs),
    /// Wait for a direct message (or a push-channel event): exit 2 with it on stderr, 0 on timeout
    Wait(wait::WaitArgs),
    /// Print direct messages nothing has delivered yet, framed for the model, and report them delivered (for a prompt hook)
    Inbox(inbox::InboxArgs),
    /// Add the wake-up hook (Stop, asyncRewake, running `wait`) to Claude Code's settings
    InstallHook(hooks::InstallHookArgs),
    /// Record that the agent is busy (in a turn) or idle, for the terminal wake (from hooks)
    WakeState(wake::WakeStateArgs),
    /// Map this session to a tmux or zellij pane by hand, or clear the mapping
    Panes(wake::PanesArgs),
    /// Connect a client: register the proxy as its MCP server and add its hooks
    Setup(setup::SetupArgs),
    /// Run one of the hooks `setup` installs (what a client's hook entry runs)
    Hook(hook::HookArgs),
}

/// The subcommand named on a command line, found without parsing it (the
/// global flags that take a value are skipped), so a usage error can be
/// reported with that subcommand's exit code.
pub(crate) fn subcommand_of(args: impl IntoIterator<Item = std::ffi::OsString>) -> Option<String> {
    let mut args = args.into_iter().skip(1);
    while let Some(arg) = args.next() {
        let arg = arg.to_string_lossy().into_owned();
        if arg == "--" {
            return args.next().map(|a| a.to_string_lossy().into_owned());
        }
        if arg == "--url" || arg == "--token" {
            args.next();
            continue;
        }
        if !arg.starts_with('-') {
            return Some(arg);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(args: &[&str]) -> Option<String> {
        subcommand_of(args.iter().map(std::ffi::OsString::from))
    }

    #[test]
    fn finds_the_subcommand_past_global_flags() {
        assert_eq!(
            of(&["cli", "wait", "--timeout", "x"]).as_deref(),
            Some("wait")
        );
        assert_eq!(
            of(&["cli", "--url", "http://h", "--debug", "wait"]).as_deref(),
            Some("wait")
        );
        assert_eq!(
            of(&["cli", "--token=t", "events"]).as_deref(),
            Some("events")
        );
        assert_eq!(of(&["cli", "--debug"]), None);
    }
}
