//! One module per command group; each holds its flags (clap `Args`) and
//! its run function. [`run`] dispatches.

pub(crate) mod access;
pub(crate) mod claims;
pub(crate) mod doctor;
pub(crate) mod events;
pub(crate) mod hook;
pub(crate) mod hooks;
pub(crate) mod inbox;
pub(crate) mod notify;
pub(crate) mod sessions;
pub(crate) mod setup;
pub(crate) mod wait;
pub(crate) mod wake;
pub(crate) mod webhook;

use std::process::ExitCode;

use anyhow::Result;
use shared::config::Reader;

use crate::args::{Command, Global};
use crate::hub::Hub;

/// Runs one command against the hub named by the global flags.
pub(crate) async fn run(global: &Global, command: Command) -> Result<ExitCode> {
    let reader = match command {
        Command::Wait(_) => Reader::Wait,
        _ => Reader::Helper,
    };
    let hub = Hub::connect(global, reader)?;
    match command {
        Command::Register(args) => sessions::register(&hub, args).await,
        Command::Unregister(args) => sessions::unregister(&hub, args).await,
        Command::Sessions => sessions::list(&hub).await,
        Command::Channels => sessions::channels(&hub).await,
        Command::Whoami(args) => sessions::whoami(&hub, args).await,
        Command::Publish(args) => events::publish(&hub, args).await,
        Command::Events(args) => events::events(&hub, args).await,
        Command::Ack(args) => events::ack(&hub, args).await,
        Command::Notify(args) => notify::notify(&hub, args).await,
        Command::Claim(args) => claims::claim(&hub, args).await,
        Command::Release(args) => claims::release(&hub, args).await,
        Command::Claims(args) => claims::list(&hub, args).await,
        Command::Webhook(args) => webhook::run(&hub, args).await,
        Command::Doctor => doctor::doctor(&hub, global).await,
        Command::Token => access::token(&hub, global),
        Command::Open(args) => access::open(&hub, global, &args),
        Command::Wait(args) => wait::wait(&hub, args).await,
        Command::Inbox(args) => inbox::inbox(&hub, args).await,
        Command::InstallHook(args) => hooks::install_hook(args),
        Command::WakeState(args) => wake::wake_state(&hub, args).await,
        Command::Panes(args) => wake::panes(&hub, args).await,
        Command::Setup(args) => setup::setup(&args, global),
        Command::Hook(args) => hook::hook(&args, &global.url),
    }
}

/// Splits a comma-separated flag value into trimmed items, as the original.
pub(crate) fn split_list(raw: &str) -> Vec<String> {
    raw.split(',').map(|item| item.trim().to_owned()).collect()
}
