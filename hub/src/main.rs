//! `agent-event-bus`: parse flags, set a private umask, set up logging,
//! bind, serve.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use hub::Config;
use hub::config::Command;

/// jemalloc rather than glibc's allocator, which gives each busy thread an
/// arena of its own and keeps what it freed: at 10,000 sessions the fleet
/// benchmark measured 343–705 MB resident with glibc's, run to run, and
/// 212–304 MB with jemalloc, whose `list_sessions` and wake-ups were as
/// fast or faster.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let config = Config::parse();
    // Whatever the hub creates (the database, its token file, the data
    // directory) is its user's alone, whatever umask it inherited.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if let Some(Command::Import(args)) = &config.command {
        return import(args);
    }
    if let Err(e) = config.validate() {
        eprintln!("agent-event-bus: {e}");
        return ExitCode::from(2);
    }
    if config.check {
        return check(&config);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agent-event-bus: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let addr = format!("{}:{}", config.host, config.port);
        let listener = tokio::net::TcpListener::bind(&addr).await.with_context(|| {
            format!("cannot listen on {addr} (is another hub running? pick another with --port or PORT)")
        })?;
        hub::run(listener, config, shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agent-event-bus: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `agent-event-bus import`: the summary on stdout, progress and errors on
/// stderr; exit 1 when nothing was imported.
fn import(args: &hub::import::ImportArgs) -> ExitCode {
    match hub::import::run(args, true) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("agent-event-bus import: {e}");
            eprintln!("Nothing was imported, and no file was changed.");
            ExitCode::FAILURE
        }
    }
}

/// `--check`: verifies the database file as the hub does at start.
fn check(config: &Config) -> ExitCode {
    let report = config
        .db_path()
        .map_err(anyhow::Error::from)
        .and_then(|path| Ok((hub::store::Store::check(&path)?, path)));
    match report {
        Ok((tip, path)) => {
            println!("{} is sound (newest event id {tip})", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("agent-event-bus: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = ctrl_c.await;
            return;
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
