//! Stopping long-running commands (`events --follow`, `wait`) cleanly.

use std::future::Future;

use anyhow::{Context, Result};

/// A future that resolves on Ctrl-C, SIGTERM, or when `also` resolves. The
/// signal handlers are installed here, before the future is first polled, so
/// a signal that arrives early is not missed.
pub(crate) fn on_signal_or<F>(also: F) -> Result<impl Future<Output = ()>>
where
    F: Future<Output = ()>,
{
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
            () = also => {}
        }
    })
}
