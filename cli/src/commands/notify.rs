//! `notify`: a desktop notification shown by the hub's machine.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};

use crate::hub::Hub;
use crate::output::{line, note};

#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// Notification title
    #[arg(long)]
    title: String,
    /// Notification message
    #[arg(long)]
    message: String,
    /// Play sound
    #[arg(long)]
    sound: bool,
}

/// `notify`: `Notification sent`, or `Notification failed` on stderr, exit 1.
pub async fn notify(hub: &Hub, args: NotifyArgs) -> Result<ExitCode> {
    let mut params = json!({"title": args.title, "message": args.message});
    if args.sound {
        params["sound"] = json!(true);
    }
    let reply = hub.call("notify", params).await?;
    if reply.get("success").and_then(Value::as_bool) == Some(true) {
        line("Notification sent")?;
        Ok(ExitCode::SUCCESS)
    } else {
        note("Notification failed");
        Ok(ExitCode::from(1))
    }
}
