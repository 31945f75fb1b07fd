//! Startup and shutdown. [`run`] serves until its shutdown future resolves,
//! then drains in this order: stop accepting and end long-polls → stop the
//! sweeper → stop the webhook worker, letting attempts in flight finish and
//! be recorded (undelivered ones stay in the outbox for the next start) →
//! flush and close the store.
//!
//! Connections are served by hyper (HTTP/1.1) under a cap, in `conns`:
//! past it, a new connection closes the oldest one with no request in
//! progress, so idle connections cannot lock callers out; when every
//! connection is busy the newcomer gets a 503. A connection must send its
//! request head within the header timeout of opening or of its previous
//! reply. Who may call is decided there, before any route
//! ([`crate::auth`]), with the credential [`crate::credential`] gives.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::Policy;
use crate::config::Config;
use crate::credential::Credential;
use crate::delivery::Delivery;
use crate::state::Bus;
use crate::store::Store;

mod conns;

pub use self::conns::Load;
use self::conns::{Conns, Server, connection_cap};

/// How long open connections get to finish after shutdown starts.
const DRAIN: Duration = Duration::from_secs(5);

/// Opens the store and serves `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    let fd_limit = raise_fd_limit();
    let db_path = config.db_path()?;
    if config.db.is_none()
        && !db_path.exists()
        && let Some(original) = shared::config::original_db_path().filter(|p| p.exists())
    {
        tracing::warn!("{}", shared::config::import_hint(&original));
    }
    crate::credential::prepare_data_dir(&db_path)?;
    let existed = db_path.exists();
    let store = {
        let path = db_path.clone();
        tokio::task::spawn_blocking(move || Store::open(&path))
            .await
            .context("opening the store")??
    };
    crate::credential::make_store_private(&db_path, existed);
    // After the store: its lock keeps a second hub from making a token too.
    let credential = crate::credential::load_or_create(config.token.as_deref(), &db_path)?;
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
        &credential,
        config.openings(),
        &config.public_hosts,
        &config.host,
    ));
    let load = Arc::new(Load::new(connection_cap(config.max_connections, fd_limit)));
    let addr = listener.local_addr()?;
    tracing::info!(db = %db_path.display(), "store open");
    tracing::info!(
        max_connections = load.max,
        open_files = fd_limit.map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
        "connection limits"
    );
    tracing::info!("listening on http://{addr}");
    announce(&credential, &config, addr);

    let sweeper = tokio::spawn(crate::sweeper::run(bus.clone()));
    let server = Server {
        routes: warp::service(crate::http::routes(bus.clone(), load.clone())),
        policy,
        conns: Arc::new(Conns::new(load)),
        header_timeout: config.header_timeout,
    };
    let stop = token.clone();
    let mut serving = std::pin::pin!(server.serve(listener, stop));
    tokio::select! {
        () = &mut serving => {}
        () = shutdown => {
            tracing::info!("shutting down");
            token.cancel();
            serving.await;
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

/// Logs where the credential is and how to connect; never the token. On a
/// terminal (not a service's log) it also prints the live view's address
/// with the token in its fragment, for the person who started the hub.
fn announce(credential: &Credential, config: &Config, addr: std::net::SocketAddr) {
    if let Some(file) = credential.file() {
        tracing::info!(
            file = %file.display(),
            "credential: the token file beside the database, readable by this user only; this user's proxy and CLI read it, remote clients set AGENT_EVENT_BUS_TOKEN (`agent-event-bus-cli token` prints it)"
        );
    } else {
        tracing::info!("credential: the token given (--token / AGENT_EVENT_BUS_TOKEN)");
    }
    if config.insecure_no_auth {
        tracing::warn!("--insecure-no-auth: every caller gets in without the token");
    }
    if config.trust_tailscale_headers {
        tracing::warn!(
            "--trust-tailscale-headers: requests forwarded from loopback with a Tailscale-User-Login get in without the token; safe only when `tailscale serve` is the only thing that can forward to this hub"
        );
    }
    tracing::info!(
        "connect Claude Code with: claude mcp add --scope user agent-event-bus -- agent-event-bus-proxy"
    );
    let host = if addr.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        addr.ip()
    };
    let base = format!("http://{}", std::net::SocketAddr::new(host, addr.port()));
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!(
            "live view: {}",
            crate::credential::live_view_url(&base, &credential.token)
        );
    } else {
        tracing::info!("live view: `agent-event-bus-cli open` opens {base}/ with the credential");
    }
}

/// Raises the soft open-file limit as far as the hard one allows (each
/// connection holds a descriptor) and returns the limit now in force
/// (`None`: unlimited).
fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let Some(current) = limit.current
        && limit.current != limit.maximum
    {
        // Some systems refuse an unlimited or very high soft limit (macOS
        // caps it at kern.maxfilesperproc): try high, then lower.
        let hard = limit.maximum.unwrap_or(u64::MAX);
        let raised = [hard, 1 << 20, 1 << 16, 24_576, 10_240]
            .into_iter()
            .filter(|&n| n > current && n <= hard)
            .any(|n| {
                let wanted = Rlimit {
                    current: Some(n),
                    maximum: limit.maximum,
                };
                setrlimit(Resource::Nofile, wanted).is_ok()
            });
        if !raised {
            tracing::warn!(
                soft = current,
                hard = limit.maximum,
                "cannot raise the open-file limit"
            );
        }
    }
    getrlimit(Resource::Nofile).current
}
