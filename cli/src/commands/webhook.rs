//! `webhook register|list|enable|disable|unregister|deliveries|redeliver|test`.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, CommandFactory, Subcommand};
use serde_json::json;
use shared::tools::webhooks::{
    DeliveriesParams, ListWebhookDeliveries, ListWebhooks, ListWebhooksParams, RedeliverParams,
    RedeliverWebhook, RegisterWebhook, RegisterWebhookParams, SetActiveParams, SetWebhookActive,
    TestWebhook, UnregisterWebhook, WebhookParams,
};
use shared::tools::{Answer, Refusal};

use super::split_list;
use crate::args::Cli;
use crate::hub::Hub;
use crate::output::{self, json_pretty, line, note};

#[derive(Debug, Args)]
pub(crate) struct WebhookArgs {
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
#[expect(
    clippy::doc_markdown,
    reason = "the doc comments are the --help text, written for a terminal"
)]
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

pub(crate) async fn run(hub: &Hub, args: WebhookArgs) -> Result<ExitCode> {
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
            let params = WebhookParams {
                webhook_id: id(webhook_id),
            };
            let answer = hub.answer::<UnregisterWebhook>(&params).await?;
            outcome(answer, &format!("Webhook #{webhook_id} removed"))
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
            let params = RedeliverParams {
                webhook_id: id(webhook_id),
                event_id: id(event_id),
            };
            let answer = hub.answer::<RedeliverWebhook>(&params).await?;
            outcome(
                answer,
                &format!("Event #{event_id} queued for webhook #{webhook_id}"),
            )
        }
        Some(WebhookCommand::Test { webhook_id, json }) => test(hub, webhook_id, json).await,
    }
}

/// An id as the contract types it (past `i64::MAX`, no webhook has it).
fn id(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `webhook deliveries ID`: the log as text (or the reply as JSON).
async fn deliveries(
    hub: &Hub,
    webhook_id: u64,
    event_id: Option<u64>,
    limit: u64,
    json: bool,
) -> Result<ExitCode> {
    let params = DeliveriesParams {
        webhook_id: id(webhook_id),
        event_id: event_id.map(id),
        limit: id(limit),
    };
    let reply = match hub.answer::<ListWebhookDeliveries>(&params).await? {
        Ok(reply) => reply,
        Err(refusal) => return Ok(failed(&refusal)),
    };
    if json {
        line(&json_pretty(&json!(reply)))?;
        return Ok(ExitCode::SUCCESS);
    }
    output::print(&output::deliveries_text(
        webhook_id,
        reply.pending,
        &reply.deliveries,
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// `webhook test ID`: one line saying how the ping went; exit 1 unless delivered.
async fn test(hub: &Hub, webhook_id: u64, json: bool) -> Result<ExitCode> {
    let params = WebhookParams {
        webhook_id: id(webhook_id),
    };
    let reply = match hub.answer::<TestWebhook>(&params).await? {
        Ok(reply) => reply,
        Err(refusal) => return Ok(failed(&refusal)),
    };
    let delivered = reply.success;
    if json {
        line(&json_pretty(&json!(reply)))?;
    } else {
        let text = output::ping_text(webhook_id, &reply.attempt);
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
    let params = RegisterWebhookParams {
        url: args.target,
        channel: args.channel.filter(|c| !c.is_empty()),
        event_types: args
            .event_types
            .filter(|t| !t.is_empty())
            .map(|t| split_list(&t)),
        secret: args.secret.filter(|s| !s.is_empty()),
        include_system: args.include_system,
    };
    match hub.answer::<RegisterWebhook>(&params).await? {
        Ok(reply) => {
            line(&json_pretty(&json!(reply)))?;
            note(&format!("\nWebhook registered: #{}", reply.webhook_id));
            Ok(ExitCode::SUCCESS)
        }
        Err(refusal) => output::refusal_pretty(&refusal),
    }
}

async fn list(hub: &Hub, all: bool) -> Result<ExitCode> {
    let params = ListWebhooksParams { active_only: !all };
    let hooks = hub.list::<ListWebhooks, _>(&params).await?;
    output::print(&output::webhooks_text(&hooks))?;
    Ok(ExitCode::SUCCESS)
}

async fn set_active(hub: &Hub, webhook_id: u64, active: bool) -> Result<ExitCode> {
    let params = SetActiveParams {
        webhook_id: id(webhook_id),
        active,
    };
    let answer = hub.answer::<SetWebhookActive>(&params).await?;
    let verb = if active { "enabled" } else { "disabled" };
    outcome(answer, &format!("Webhook #{webhook_id} {verb}"))
}

/// `done` on success, else `Failed: <error>` on stderr and exit 1.
fn outcome<R>(answer: Answer<R>, done: &str) -> Result<ExitCode> {
    match answer {
        Ok(_) => {
            line(done)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(refusal) => Ok(failed(&refusal)),
    }
}

/// `Failed: <error>` on stderr, exit 1.
/// `Failed: <error>`, and the hint on the next line when there is one.
fn failed(refusal: &Refusal) -> ExitCode {
    match refusal.to_value()["hint"].as_str() {
        Some(hint) => note(&format!("Failed: {refusal}\n{hint}")),
        None => note(&format!("Failed: {refusal}")),
    }
    ExitCode::from(1)
}
