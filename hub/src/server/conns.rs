//! Connections under a cap: the cap itself (by default what the open-file
//! limit leaves beside the hub's own descriptors), the accept loop, the
//! count of open and busy connections `/health` reports, and room made for
//! a newcomer by closing the oldest idle connection (or a 503 when every
//! one is busy). Who may call is decided here, before any route
//! ([`crate::auth`]).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

use super::DRAIN;
use crate::auth::{Policy, Verdict};
use crate::caller::Caller;

/// How long a connection over the cap waits for a slot to free up.
const SLOT_WAIT: Duration = Duration::from_secs(2);

/// Descriptors kept back from the connection cap, when the open-file limit
/// is at least four times as many (below that, a quarter of the limit):
/// the hub's own (stdio, the listener, the database file, the runtime's
/// poll and wake-up descriptors: about 30); webhook deliveries (at most
/// `--max-webhooks` × `--webhook-concurrency`, 100 × 4 by default, in
/// flight, each a connection and, while it connects, a name lookup: about
/// 640 with the pooled ones between attempts); desktop notices (at most
/// [`shared::notify::IN_FLIGHT_MAX`] notifiers, a few descriptors each);
/// and the connections over the cap ([`OVER_CAP`]). README's *Connection
/// limits* gives the same reckoning.
const FD_RESERVE: u64 = 1024;

/// Connections over the cap held at once, waiting for a slot or being
/// told 503; past it a newcomer is closed at once, so a flood cannot take
/// the descriptors kept for the rest ([`FD_RESERVE`]).
const OVER_CAP: usize = 256;

/// The open-file limit assumed when it is unlimited: the service units'.
const UNLIMITED_FILES: u64 = 65_536;

/// The fewest connections a derived cap allows.
const MIN_CAP: u64 = 16;

/// The connection cap: `--max-connections`, else the open-file limit less
/// [`FD_RESERVE`] (a quarter of a limit under 4096), at least [`MIN_CAP`].
/// A configured cap past what the limit leaves is kept, with a warning.
pub(super) fn connection_cap(configured: Option<u32>, fd_limit: Option<u64>) -> usize {
    let files = fd_limit.unwrap_or(UNLIMITED_FILES);
    let room = files.saturating_sub(FD_RESERVE.min(files / 4)).max(MIN_CAP);
    let cap = match configured {
        Some(n) => {
            let n = u64::from(n);
            if n > room {
                tracing::warn!(
                    max_connections = n,
                    open_files = files,
                    "--max-connections is above what the open-file limit leaves beside the hub's own files ({room});                      past that, connections and webhook deliveries fail for want of descriptors.                      Raise the limit (LimitNOFILE, ulimit -n) or lower --max-connections"
                );
            }
            n
        }
        None => room,
    };
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// A connection is not closed to make room until it has been idle this
/// long, so a client that has just connected gets to send its request.
const EVICT_GRACE: Duration = Duration::from_millis(250);

/// How many connections are open and how many requests are in progress,
/// for `/health`.
#[derive(Debug, Default)]
pub struct Load {
    open: AtomicUsize,
    busy: AtomicUsize,
    pub(super) max: usize,
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
pub(super) struct Conns {
    /// Connections over the cap waiting in [`Conns::make_room`].
    waiting: AtomicUsize,
    /// Connections over the cap: waiting, or being told 503.
    over_cap: AtomicUsize,
    epoch: Instant,
    load: Arc<Load>,
    slots: Arc<Semaphore>,
    next_id: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
}

impl Conns {
    pub(super) fn new(load: Arc<Load>) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(load.max.min(Semaphore::MAX_PERMITS))),
            load,
            epoch: Instant::now(),
            waiting: AtomicUsize::new(0),
            over_cap: AtomicUsize::new(0),
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
        let open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        let waiting = Counted::enter(&self.waiting);
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
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

/// Counts a connection waiting (for a slot, or over the cap) while alive.
struct Counted<'a> {
    waiting: &'a AtomicUsize,
    /// How many were waiting, this one included, when it started.
    count: usize,
}

impl<'a> Counted<'a> {
    fn enter(waiting: &'a AtomicUsize) -> Self {
        let count = waiting.fetch_add(1, Ordering::AcqRel) + 1;
        Self { waiting, count }
    }
}

impl Drop for Counted<'_> {
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
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
pub(super) struct Server<S> {
    pub(super) routes: S,
    pub(super) policy: Arc<Policy>,
    pub(super) conns: Arc<Conns>,
    pub(super) header_timeout: Duration,
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
    pub(super) async fn serve(self, listener: TcpListener, stop: CancellationToken) {
        let this = Arc::new(self);
        let tracker = TaskTracker::new();
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
            let stop = stop.clone();
            tracker.spawn(async move {
                let slot = if let Some(slot) = slot {
                    slot
                } else {
                    let over = Counted::enter(&this.conns.over_cap);
                    if over.count > OVER_CAP {
                        // Closed unanswered: its descriptor is wanted.
                        return;
                    }
                    match this.conns.make_room().await {
                        Some(slot) => slot,
                        None => return overloaded(stream).await,
                    }
                };
                this.connection(stream, peer, slot, stop).await;
            });
        }
        drop(listener);
        tracker.close();
        if tokio::time::timeout(DRAIN, tracker.wait()).await.is_err() {
            tracing::warn!("connections still open after {DRAIN:?} were closed");
        }
    }

    /// Serves one connection while it holds `slot`. Closed to make room or
    /// at `stop`, it finishes a request in progress first (one can start
    /// just as the connection is picked as idle), so no reply is cut off.
    async fn connection(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        slot: OwnedSemaphorePermit,
        stop: CancellationToken,
    ) {
        let (conn, registered) = self.conns.register();
        let service = {
            let routes = self.routes.clone();
            let policy = self.policy.clone();
            let conn = conn.clone();
            let conns = self.conns.clone();
            hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                let busy = Busy::new(&conn, &conns);
                let verdict = policy.check(
                    Some(peer),
                    request.method(),
                    request.uri(),
                    request.headers(),
                );
                let mut routes = routes.clone();
                async move {
                    let response = match verdict {
                        Verdict::Allow(access) => {
                            let caller =
                                Caller::from_request(access, Some(peer.ip()), request.headers());
                            request.extensions_mut().insert(caller);
                            routes.call(request).await?
                        }
                        // An open page: routed with no caller, which
                        // `POST /mcp` refuses.
                        Verdict::Public => routes.call(request).await?,
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
        let mut served = std::pin::pin!(http.serve_connection(TokioIo::new(stream), service));
        let ended = tokio::select! {
            result = served.as_mut() => Some(result),
            () = conn.evict.cancelled() => None,
            () = stop.cancelled() => None,
        };
        let result = match ended {
            Some(result) => result,
            // Picked as idle and still idle (nothing past a partial request
            // head, which may never end): closed now, so its slot frees.
            None if !stop.is_cancelled() && conn.busy.load(Ordering::Acquire) == 0 => {
                tracing::debug!(%peer, "idle connection closed to make room");
                Ok(())
            }
            // A request in progress (at shutdown, or one that started just as
            // the connection was picked) is answered first.
            None => {
                served.as_mut().graceful_shutdown();
                served.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, "connection ended: {e}");
        }
        // Out of the count before the slot frees, so `open` never passes
        // the cap.
        drop(registered);
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
    fn the_cap_follows_the_open_file_limit_less_the_hubs_own() {
        // The service units' limit, and a high hard limit raised to.
        assert_eq!(connection_cap(None, Some(65_536)), 64_512);
        assert_eq!(connection_cap(None, Some(1 << 20)), (1 << 20) - 1024);
        assert_eq!(connection_cap(None, None), 64_512);
        // Under 4096, a quarter of the limit stays free.
        assert_eq!(connection_cap(None, Some(4096)), 3072);
        assert_eq!(connection_cap(None, Some(1024)), 768);
        assert_eq!(connection_cap(None, Some(100)), 75);
        assert_eq!(connection_cap(None, Some(10)), 16);
        // A cap given is the cap, even past what the limit leaves.
        assert_eq!(connection_cap(Some(32), Some(1024)), 32);
        assert_eq!(connection_cap(Some(5000), Some(1024)), 5000);
    }
}
