//! `notify`: a desktop notification shown by the hub's machine.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use shared::tools::notify::{Notify, NotifyParams};

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
    let params = NotifyParams {
        title: args.title,
        message: args.message,
        sound: args.sound,
    };
    if hub
        .answer::<Notify>(&params)
        .await?
        .is_ok_and(|r| r.success)
    {
        line("Notification sent")?;
        Ok(ExitCode::SUCCESS)
    } else {
        note("Notification failed");
        Ok(ExitCode::from(1))
    }
}
