//! Startup and shutdown. [`run`] serves until its shutdown future resolves,
//! then drains in this order: stop accepting and end long-polls → stop the
//! sweeper → stop the webhook worker, letting attempts in flight finish and
//! be recorded (undelivered ones stay in the outbox for the next start) →
//! flush and close the store.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::Policy;
use crate::config::Config;
use crate::delivery::Delivery;
use crate::state::Bus;
use crate::store::Store;

/// How long open connections get to finish after shutdown starts.
const DRAIN: Duration = Duration::from_secs(5);

/// Opens the store and serves `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    let db_path = config.db_path()?;
    if config.db.is_none()
        && !db_path.exists()
        && let Some(original) = shared::config::original_db_path().filter(|p| p.exists())
    {
        tracing::warn!("{}", shared::config::import_hint(&original));
    }
    let store = {
        let path = db_path.clone();
        tokio::task::spawn_blocking(move || Store::open(&path))
            .await
            .context("opening the store")??
    };
    let token = CancellationToken::new();
    let bus = Arc::new(Bus::new(
        store.clone(),
        config.limits(),
        i64::try_from(config.idle_timeout_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
        config.retention(),
        Delivery::new(config.delivery())?,
        token.clone(),
    ));
    crate::sweeper::grace_after_restart(&bus).await?;
    bus.delivery
        .start(store.clone())
        .context("starting the webhook delivery thread")?;
    let policy = Arc::new(Policy::new(
        config.token.clone(),
        config.insecure_no_auth,
        &config.public_hosts,
        &config.host,
    ));
    let routes = crate::mcp::routes(bus.clone(), policy);
    let addr = listener.local_addr()?;
    tracing::info!(db = %db_path.display(), "store open");
    tracing::info!("listening on http://{addr}");
    tracing::info!(
        "connect Claude Code with: claude mcp add --scope user agent-event-bus -- agent-event-bus-proxy"
    );

    let sweeper = tokio::spawn(crate::sweeper::run(bus.clone()));
    let stop = token.clone();
    let server = warp::serve(routes)
        .incoming(listener)
        .graceful(async move { stop.cancelled().await })
        .run();
    let mut server = std::pin::pin!(server);
    tokio::select! {
        () = &mut server => {}
        () = shutdown => {
            tracing::info!("shutting down");
            token.cancel();
            if tokio::time::timeout(DRAIN, &mut server).await.is_err() {
                tracing::warn!("connections still open after {DRAIN:?} were closed");
            }
        }
    }
    token.cancel();
    let _ = sweeper.await;
    bus.delivery.drain(DRAIN).await;
    drop(bus);
    tokio::task::spawn_blocking(move || {
        store.close();
        store.join_writer();
    })
    .await?;
    tracing::info!("stopped");
    Ok(())
}
