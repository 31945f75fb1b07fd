//! `notify`: a desktop notification shown by the hub's machine.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use shared::tools::notify::{Notify, NotifyParams};

use crate::hub::Hub;
use crate::output::{line, note};

#[derive(Debug, Args)]
pub(crate) struct NotifyArgs {
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

/// `notify`: `Notification sent`, or `Notification failed` on stderr (with
/// the hub's refusal and what to do, when it refused), exit 1.
pub(crate) async fn notify(hub: &Hub, args: NotifyArgs) -> Result<ExitCode> {
    let params = NotifyParams {
        title: args.title,
        message: args.message,
        sound: args.sound,
    };
    match hub.answer::<Notify>(&params).await? {
        Ok(reply) if reply.success => {
            line("Notification sent")?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(_) => {
            note("Notification failed");
            Ok(ExitCode::from(1))
        }
        Err(refusal) => {
            let why = crate::output::error_text(&refusal.to_value());
            note(&format!("Notification failed\n{why}"));
            Ok(ExitCode::from(1))
        }
    }
}
