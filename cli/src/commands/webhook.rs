//! `webhook register|list|enable|disable|unregister|deliveries|redeliver|test`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, Subcommand};
use serde_json::{Value, json};
use shared::wire::{DeliveryInfo, WebhookInfo};

use super::split_list;
use crate::args::Cli;
use crate::hub::Hub;
use crate::output::{self, json_pretty, line, note};

#[derive(Debug, Args)]
pub struct WebhookArgs {
    #[command(subcommand)]
    command: Option<WebhookCommand>,
}

#[derive(Debug, Subcommand)]
enum WebhookCommand {
    /// Register a webhook
    Register(RegisterArgs),
    /// List webhooks
    List {
        /// Include inactive webhooks
        #[arg(long)]
        all: bool,
    },
    /// Pause deliveries, keeping the registration
    Disable {
        /// Webhook ID to disable
        webhook_id: u64,
    },
    /// Resume deliveries, keeping the registration
    Enable {
        /// Webhook ID to enable
        webhook_id: u64,
    },
    /// Remove a webhook
    Unregister {
        /// Webhook ID to remove
        webhook_id: u64,
    },
    /// Show a webhook's delivery log, newest first
    Deliveries {
        /// Webhook ID
        webhook_id: u64,
        /// Only this event's attempts
        #[arg(long = "event")]
        event_id: Option<u64>,
        /// Rows to show (1-1000)
        #[arg(long, default_value_t = 20)]
        limit: u64,
        /// Output the reply as JSON
        #[arg(long)]
        json: bool,
    },
    /// Send one event to a webhook again
    Redeliver {
        /// Webhook ID
        webhook_id: u64,
        /// The event to send again
        #[arg(long = "event")]
        event_id: u64,
    },
    /// POST a ping event to a webhook now and show how it went
    Test {
        /// Webhook ID
        webhook_id: u64,
        /// Output the attempt as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct RegisterArgs {
    /// Webhook URL to POST events to (the hub's URL is the global --url, before `webhook`)
    #[arg(long = "url")]
    target: String,
    /// Filter to channel (supports prefix, e.g., 'session:')
    #[arg(long)]
    channel: Option<String>,
    /// Comma-separated event types to filter
    #[arg(long)]
    event_types: Option<String>,
    /// Shared secret for HMAC signing
    #[arg(long)]
    secret: Option<String>,
    /// Also deliver session lifecycle events (session_registered/unregistered)
    #[arg(long)]
    include_system: bool,
}

pub async fn run(hub: &Hub, args: WebhookArgs) -> Result<ExitCode> {
    match args.command {
        None => {
            // As the original: `webhook` alone prints its help and exits 1.
            let mut root = Cli::command();
            root.build();
            let help = root
                .find_subcommand_mut("webhook")
                .expect("`webhook` is a subcommand of the CLI");
            output::print_help(help, None);
            Ok(ExitCode::from(1))
        }
        Some(WebhookCommand::Register(args)) => register(hub, args).await,
        Some(WebhookCommand::List { all }) => list(hub, all).await,
        Some(WebhookCommand::Disable { webhook_id }) => set_active(hub, webhook_id, false).await,
        Some(WebhookCommand::Enable { webhook_id }) => set_active(hub, webhook_id, true).await,
        Some(WebhookCommand::Unregister { webhook_id }) => {
            let reply = hub
                .call("unregister_webhook", json!({"webhook_id": webhook_id}))
                .await?;
            outcome(&reply, &format!("Webhook #{webhook_id} removed"))
        }
        Some(WebhookCommand::Deliveries {
            webhook_id,
            event_id,
            limit,
            json,
        }) => deliveries(hub, webhook_id, event_id, limit, json).await,
        Some(WebhookCommand::Redeliver {
            webhook_id,
            event_id,
        }) => {
            let reply = hub
                .call(
                    "redeliver_webhook",
                    json!({"webhook_id": webhook_id, "event_id": event_id}),
                )
                .await?;
            outcome(
                &reply,
                &format!("Event #{event_id} queued for webhook #{webhook_id}"),
            )
        }
        Some(WebhookCommand::Test { webhook_id, json }) => test(hub, webhook_id, json).await,
    }
}

/// `webhook deliveries ID`: the log as text (or the reply as JSON).
async fn deliveries(
    hub: &Hub,
    webhook_id: u64,
    event_id: Option<u64>,
    limit: u64,
    json: bool,
) -> Result<ExitCode> {
    let mut params = json!({"webhook_id": webhook_id, "limit": limit});
    if let Some(event_id) = event_id {
        params["event_id"] = json!(event_id);
    }
    let reply = hub.call("list_webhook_deliveries", params).await?;
    if reply.get("error").is_some() {
        return outcome(&reply, "");
    }
    if json {
        line(&json_pretty(&reply))?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<DeliveryInfo> = serde_json::from_value(reply["deliveries"].clone())
        .context("list_webhook_deliveries sent an unexpected reply")?;
    let pending = reply["pending"].as_u64().unwrap_or(0);
    output::print(&output::deliveries_text(webhook_id, pending, &rows))?;
    Ok(ExitCode::SUCCESS)
}

/// `webhook test ID`: one line saying how the ping went; exit 1 unless delivered.
async fn test(hub: &Hub, webhook_id: u64, json: bool) -> Result<ExitCode> {
    let reply = hub
        .call("test_webhook", json!({"webhook_id": webhook_id}))
        .await?;
    if reply.get("error").is_some() && reply.get("status").is_none() {
        return outcome(&reply, "");
    }
    let delivered = reply.get("success").and_then(Value::as_bool) == Some(true);
    if json {
        line(&json_pretty(&reply))?;
    } else {
        let attempt: DeliveryInfo =
            serde_json::from_value(reply).context("test_webhook sent an unexpected reply")?;
        let text = output::ping_text(webhook_id, &attempt);
        if delivered {
            line(&text)?;
        } else {
            note(&text);
        }
    }
    Ok(if delivered {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The reply as indented JSON, and `Webhook registered: #N` on stderr.
async fn register(hub: &Hub, args: RegisterArgs) -> Result<ExitCode> {
    let mut params = json!({"url": args.target});
    if let Some(channel) = args.channel.filter(|c| !c.is_empty()) {
        params["channel"] = json!(channel);
    }
    if let Some(types) = args.event_types.filter(|t| !t.is_empty()) {
        params["event_types"] = json!(split_list(&types));
    }
    if let Some(secret) = args.secret.filter(|s| !s.is_empty()) {
        params["secret"] = json!(secret);
    }
    if args.include_system {
        params["include_system"] = json!(true);
    }
    let reply = hub.call("register_webhook", params).await?;
    line(&json_pretty(&reply))?;
    match reply.get("webhook_id") {
        Some(id) => {
            note(&format!("\nWebhook registered: #{id}"));
            Ok(ExitCode::SUCCESS)
        }
        None => {
            note(&output::error_text(&reply));
            Ok(ExitCode::from(1))
        }
    }
}

async fn list(hub: &Hub, all: bool) -> Result<ExitCode> {
    let reply = hub
        .call("list_webhooks", json!({"active_only": !all}))
        .await?;
    let hooks: Vec<WebhookInfo> =
        serde_json::from_value(reply).context("list_webhooks sent an unexpected reply")?;
    output::print(&output::webhooks_text(&hooks))?;
    Ok(ExitCode::SUCCESS)
}

async fn set_active(hub: &Hub, webhook_id: u64, active: bool) -> Result<ExitCode> {
    let reply = hub
        .call(
            "set_webhook_active",
            json!({"webhook_id": webhook_id, "active": active}),
        )
        .await?;
    let verb = if active { "enabled" } else { "disabled" };
    outcome(&reply, &format!("Webhook #{webhook_id} {verb}"))
}

/// `done` on success, else `Failed: <error>` on stderr and exit 1.
fn outcome(reply: &Value, done: &str) -> Result<ExitCode> {
    if reply.get("success").and_then(Value::as_bool) == Some(true) {
        line(done)?;
        return Ok(ExitCode::SUCCESS);
    }
    let error = reply
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("Unknown error");
    note(&format!("Failed: {error}"));
    Ok(ExitCode::from(1))
}
