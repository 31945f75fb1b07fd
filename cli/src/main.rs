//! `agent-event-bus-cli`: the command line that shell hooks and scripts use to
//! talk to the hub. Its human text and exit codes are a contract (users'
//! hooks compare its output with strings such as `No events`), so they follow
//! the original Python CLI exactly; `--json` output uses the original's JSON
//! spacing too.
//!
//! It owns argument parsing, output and exit codes only: every hub call is
//! one `tools/call` through [`shared::HubClient`], never hand-rolled HTTP.
//!
//! Exit codes: 0 success; 1 a failed request, a domain error or an
//! unreachable hub (one line saying where it looked and how to start the
//! hub); 2 a usage error (clap). No subcommand prints help and exits 1.
//! `wait` and `hook` are the exception: 2 means "a message arrived" (it
//! wakes an agent from a hook), so their usage errors exit 1.
//!
//! # Layout
//! - [`args`]: the top-level command line (global flags, the subcommand enum).
//! - [`hub`]: the connection: typed tool calls, timeouts.
//! - [`session`]: which session a command acts for (flag, env, ancestor
//!   PIDs), and its key from the key file.
//! - [`output`]: stdout/stderr, Python-compatible JSON, the text blocks.
//! - [`stop`]: clean stops for long-running commands (signals).
//! - [`commands`]: one file per command group (sessions, events, webhooks,
//!   notify, doctor, wait, inbox, hooks, wake, and `access`: `token` and
//!   `open`), `setup` (connecting a client) and `hook` (what the hooks it
//!   installs run).

mod args;
mod commands;
mod hub;
mod output;
mod session;
mod stop;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // `wait` and `hook` exit 2 only to wake an agent.
            let waiting = matches!(
                args::subcommand_of(std::env::args_os()).as_deref(),
                Some("wait" | "hook")
            );
            return match e.exit_code() {
                0 => ExitCode::SUCCESS,
                // `wait` exits 2 only when a message arrived.
                _ if waiting => ExitCode::from(1),
                code => ExitCode::from(u8::try_from(code).unwrap_or(2)),
            };
        }
    };
    let Some(command) = cli.command else {
        // The original prints its help and exits 1 when no command is given.
        let mut help = args::Cli::command();
        output::print_help(
            &mut help,
            Some("\nUse -h or --help with any command for more details."),
        );
        return ExitCode::from(1);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            output::note(&format!("Error: cannot start the async runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(&cli.global, command)) {
        Ok(code) => code,
        // A reader that went away (`| head`) is not a failure.
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            if cli.global.debug {
                output::note(&format!("Error: {e:?}"));
            } else {
                output::note(&format!("Error: {e:#}"));
            }
            ExitCode::from(1)
        }
    }
}
