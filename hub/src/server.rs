//! Startup and shutdown. [`run`] serves until its shutdown future resolves,
//! then drains in this order: stop accepting and end long-polls → stop the
//! sweeper → stop the webhook worker, letting attempts in flight finish and
//! be recorded (undelivered ones stay in the outbox for the next start) →
//! flush and close the store.
//!
//! Connections are served by hyper (HTTP/1.1) under a cap: past it, a new
//! connection closes the oldest one with no request in progress, so idle
//! connections cannot lock callers out; when every connection is busy the
//! newcomer gets a 503. A connection must send its request head within the
//! header timeout of opening or of its previous reply. Who may call is
//! decided here, before any route ([`crate::auth`]).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tower_service::Service;

use crate::auth::{Policy, Verdict};
use crate::config::Config;
use crate::delivery::Delivery;
use crate::state::Bus;
use crate::store::Store;

/// How long open connections get to finish after shutdown starts.
const DRAIN: Duration = Duration::from_secs(5);

/// How long a connection over the cap waits for a slot to free up.
const SLOT_WAIT: Duration = Duration::from_secs(2);

/// A connection is not closed to make room until it has been idle this
/// long, so a client that has just connected gets to send its request.
const EVICT_GRACE: Duration = Duration::from_millis(250);

/// File descriptors kept back from the connection cap for the store,
/// webhook deliveries, logs and the listener.
const FD_HEADROOM: u64 = 256;

/// The default connection cap when the open-file limit allows it.
const DEFAULT_MAX_CONNECTIONS: u64 = 4096;

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
    let load = Arc::new(Load::new(connection_cap(config.max_connections, fd_limit)));
    let addr = listener.local_addr()?;
    tracing::info!(db = %db_path.display(), "store open");
    tracing::info!(
        max_connections = load.max,
        open_files = fd_limit.map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
        "connection limits"
    );
    tracing::info!("listening on http://{addr}");
    tracing::info!(
        "connect Claude Code with: claude mcp add --scope user agent-event-bus -- agent-event-bus-proxy"
    );

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

/// `--max-connections`, or 4096 less what the open-file limit cannot hold
/// beside the store and webhook deliveries.
fn connection_cap(configured: Option<u32>, fd_limit: Option<u64>) -> usize {
    let cap = match configured {
        Some(n) => u64::from(n),
        None => fd_limit.map_or(DEFAULT_MAX_CONNECTIONS, |fds| {
            fds.saturating_sub(FD_HEADROOM)
                .clamp(16, DEFAULT_MAX_CONNECTIONS)
        }),
    };
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// How many connections are open and how many requests are in progress,
/// for `/health`.
#[derive(Debug, Default)]
pub struct Load {
    open: AtomicUsize,
    busy: AtomicUsize,
    max: usize,
}

impl Load {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            ..Self::default()
        }
    }

    /// `{"open", "busy", "max"}`; `busy` counts the caller's own request.
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({
            "open": self.open.load(Ordering::Relaxed),
            "busy": self.busy.load(Ordering::Relaxed),
            "max": self.max,
        })
    }
}

/// What one served connection exposes to the others.
struct Conn {
    /// Requests in progress on it; only a connection at 0 may be closed to
    /// make room.
    busy: AtomicUsize,
    /// When it last became idle (opened, or finished a request), in
    /// milliseconds since [`Conns::epoch`].
    idle_since_ms: AtomicU64,
    /// Closes the connection when cancelled.
    evict: CancellationToken,
}

/// The open connections, oldest first, and the slots they hold.
struct Conns {
    /// Connections over the cap waiting in [`Conns::make_room`].
    waiting: AtomicUsize,
    epoch: Instant,
    load: Arc<Load>,
    slots: Arc<Semaphore>,
    next_id: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
}

impl Conns {
    fn new(load: Arc<Load>) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(load.max.min(Semaphore::MAX_PERMITS))),
            load,
            epoch: Instant::now(),
            waiting: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            open: Mutex::new(BTreeMap::new()),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Closes the oldest connection that has had no request in progress
    /// for [`EVICT_GRACE`], if there is one.
    fn evict_oldest_idle(&self) {
        let grace = u64::try_from(EVICT_GRACE.as_millis()).unwrap_or(u64::MAX);
        let now = self.now_ms();
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let idle = open.values().find(|c| {
            c.busy.load(Ordering::Acquire) == 0
                && now.saturating_sub(c.idle_since_ms.load(Ordering::Acquire)) >= grace
                && !c.evict.is_cancelled()
        });
        if let Some(conn) = idle {
            conn.evict.cancel();
        }
    }

    /// A slot for a connection over the cap: closes idle connections, oldest
    /// first, until one frees up; `None` after [`SLOT_WAIT`] of every
    /// connection being busy, or at once when as many connections as the
    /// cap are already waiting (each holds a descriptor).
    async fn make_room(&self) -> Option<OwnedSemaphorePermit> {
        let waiting = WaitingGuard::enter(&self.waiting);
        if waiting.count > self.load.max {
            return None;
        }
        let deadline = Instant::now() + SLOT_WAIT;
        while Instant::now() < deadline {
            self.evict_oldest_idle();
            let waiting = self.slots.clone().acquire_owned();
            if let Ok(Ok(slot)) = tokio::time::timeout(EVICT_GRACE, waiting).await {
                return Some(slot);
            }
        }
        None
    }

    fn register(self: &Arc<Self>) -> (Arc<Conn>, Registered) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(self.now_ms()),
            evict: CancellationToken::new(),
        });
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, conn.clone());
        self.load.open.fetch_add(1, Ordering::Relaxed);
        (
            conn,
            Registered {
                conns: self.clone(),
                id,
            },
        )
    }
}

/// Counts a connection waiting for a slot while alive.
struct WaitingGuard<'a> {
    waiting: &'a AtomicUsize,
    /// How many were waiting, this one included, when it started.
    count: usize,
}

impl<'a> WaitingGuard<'a> {
    fn enter(waiting: &'a AtomicUsize) -> Self {
        let count = waiting.fetch_add(1, Ordering::AcqRel) + 1;
        Self { waiting, count }
    }
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Removes a connection from [`Conns`] when dropped.
struct Registered {
    conns: Arc<Conns>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.conns
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
        self.conns.load.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a request in progress on a connection while alive.
struct Busy {
    conn: Arc<Conn>,
    conns: Arc<Conns>,
}

impl Busy {
    fn new(conn: &Arc<Conn>, conns: &Arc<Conns>) -> Self {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        conns.load.busy.fetch_add(1, Ordering::Relaxed);
        Self {
            conn: conn.clone(),
            conns: conns.clone(),
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.conn
            .idle_since_ms
            .store(self.conns.now_ms(), Ordering::Release);
        self.conn.busy.fetch_sub(1, Ordering::AcqRel);
        self.conns.load.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The accept loop and what every connection shares.
struct Server<S> {
    routes: S,
    policy: Arc<Policy>,
    conns: Arc<Conns>,
    header_timeout: Duration,
}

impl<S> Server<S>
where
    S: Service<
            hyper::Request<hyper::body::Incoming>,
            Response = warp::reply::Response,
            Error = Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    /// Accepts until `stop`, then lets open connections finish for up to
    /// [`DRAIN`].
    async fn serve(self, listener: TcpListener, stop: CancellationToken) {
        let this = Arc::new(self);
        let graceful = GracefulShutdown::new();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = stop.cancelled() => break,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors or a connection reset before it
                    // was accepted: wait a moment rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let slot = this.conns.slots.clone().try_acquire_owned().ok();
            let this = this.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let slot = match slot {
                    Some(slot) => slot,
                    None => match this.conns.make_room().await {
                        Some(slot) => slot,
                        None => return overloaded(stream).await,
                    },
                };
                this.connection(stream, peer, slot, watcher).await;
            });
        }
        drop(listener);
        if tokio::time::timeout(DRAIN, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after {DRAIN:?} were closed");
        }
    }

    /// Serves one connection while it holds `slot`.
    async fn connection(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        slot: OwnedSemaphorePermit,
        watcher: Watcher,
    ) {
        let (conn, _registered) = self.conns.register();
        let service = {
            let routes = self.routes.clone();
            let policy = self.policy.clone();
            let conn = conn.clone();
            let conns = self.conns.clone();
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let busy = Busy::new(&conn, &conns);
                let verdict = policy.check(Some(peer), request.uri(), request.headers());
                let mut routes = routes.clone();
                async move {
                    let response = match verdict {
                        Verdict::Allow => routes.call(request).await?,
                        refused => crate::http::refusal(&refused),
                    };
                    drop(busy);
                    Ok::<_, Infallible>(response)
                }
            })
        };
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout);
        let served = watcher.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::select! {
            result = served => {
                if let Err(e) = result {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
            }
            () = conn.evict.cancelled() => {
                tracing::debug!(%peer, "idle connection closed to make room");
            }
        }
        drop(slot);
    }
}

/// The reply to a connection over the cap when every slot is busy.
async fn overloaded(mut stream: TcpStream) {
    const BODY: &str = r#"{"error":"Service Unavailable","message":"the hub is at its connection limit (--max-connections); retry shortly"}"#;
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let write = async {
        stream.write_all(reply.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_the_store_and_webhooks() {
        assert_eq!(connection_cap(Some(32), Some(1024)), 32);
        assert_eq!(connection_cap(None, Some(1024)), 768);
        assert_eq!(connection_cap(None, Some(1 << 20)), 4096);
        assert_eq!(connection_cap(None, None), 4096);
        assert_eq!(connection_cap(None, Some(100)), 16);
    }
}
