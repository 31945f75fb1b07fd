//! Reasons to exit other than stdin EOF: SIGTERM, SIGINT, SIGHUP, and the
//! parent (the MCP client) dying — a proxy must never outlive its client.

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// How often the parent PID is checked.
const PARENT_POLL: Duration = Duration::from_millis(200);

/// This process's parent PID (0 when there is none).
pub fn parent_pid() -> u32 {
    rustix::process::getppid().map_or(0, |pid| pid.as_raw_nonzero().get().unsigned_abs())
}

/// Cancels `stop` on the first signal, or when the parent `client_pid` is
/// gone (we were re-parented). Must run inside the runtime, before `serve`,
/// so a signal during the handshake is not missed.
pub fn watch(stop: CancellationToken, client_pid: u32) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        let reason = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = hup.recv() => "SIGHUP",
            () = parent_gone(client_pid) => "the parent process exited",
            () = stop.cancelled() => return,
        };
        tracing::info!("{reason}: shutting down");
        stop.cancel();
    });
    Ok(())
}

/// Resolves once our parent is no longer `original`. A proxy started by
/// init (PID 1) or without a parent has nothing to watch.
async fn parent_gone(original: u32) {
    if original <= 1 {
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(PARENT_POLL).await;
        if parent_pid() != original {
            return;
        }
    }
}
