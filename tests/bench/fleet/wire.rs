//! The fleet's own connections: one keep-alive HTTP/1.1 connection per
//! loop, as each session's proxy holds one for its push long-poll and one
//! for its renewals. They come from loopback source addresses (127.x.y.z),
//! 2,000 sessions to each and fresh ones for every fleet, so a fleet of tens
//! of thousands never runs out of ephemeral ports (about 28,000 per source
//! address, the closed ones held a minute). A pooled client would share a
//! few connections between sessions and spare the hub the connections a
//! real fleet costs it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use shared::tools::Tool;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

/// Sessions per source address: two connections each, far inside the
/// ephemeral port range.
const SESSIONS_PER_SOURCE: usize = 2_000;

/// How long any call may take before it counts as failed: past the
/// longest long-poll (30 s) with room.
const CALL_TIMEOUT: Duration = Duration::from_secs(45);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The next unused block of source addresses: each fleet takes fresh ones,
/// since the ports its predecessor closed wait out `TIME_WAIT` (a minute)
/// on theirs.
static NEXT_SOURCE: AtomicU32 = AtomicU32::new(2);

/// The loopback source addresses of one fleet's sessions.
#[derive(Clone, Copy)]
pub(super) struct Sources {
    first: u32,
}

impl Sources {
    /// Fresh addresses for a fleet of `n` sessions.
    pub(super) fn for_fleet(n: usize) -> Self {
        let blocks = u32::try_from(n / SESSIONS_PER_SOURCE + 1).unwrap_or(u32::MAX);
        Self {
            first: NEXT_SOURCE.fetch_add(blocks, Ordering::Relaxed),
        }
    }

    /// The source address of session `i`'s connections.
    pub(super) fn of(self, i: usize) -> IpAddr {
        let n = u32::try_from(i / SESSIONS_PER_SOURCE)
            .unwrap_or(u32::MAX)
            .saturating_add(self.first);
        IpAddr::V4(Ipv4Addr::from(0x7f00_0000 | n.min(0x00ff_fffe)))
    }
}

/// One keep-alive connection to the hub's `POST /mcp`, reopened when the
/// hub closes it (a connection idle past the header timeout).
pub(super) struct Conn {
    hub: SocketAddr,
    source: IpAddr,
    /// The hub's credential, sent with every call.
    token: Arc<str>,
    stream: Option<BufReader<TcpStream>>,
}

impl Conn {
    pub(super) fn new(hub: SocketAddr, source: IpAddr, token: Arc<str>) -> Self {
        Self {
            hub,
            source,
            token,
            stream: None,
        }
    }

    async fn open(&mut self) -> std::io::Result<&mut BufReader<TcpStream>> {
        if self.stream.is_none() {
            let socket = TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(self.source, 0))?;
            let stream = socket.connect(self.hub).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(BufReader::with_capacity(2048, stream));
        }
        Ok(self.stream.as_mut().expect("just opened"))
    }

    /// Calls tool `T`; its reply's `structuredContent`. A connection the
    /// hub closed before the call is reopened once. Fails when the
    /// connection fails or is closed, the call takes too long, or the hub
    /// answers anything but a tool's result.
    pub(super) async fn call<T: Tool>(&mut self, arguments: &Value) -> std::io::Result<Value> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                          "params": {"name": T::NAME, "arguments": arguments}})
        .to_string();
        let reused = self.stream.is_some();
        let first = tokio::time::timeout(CALL_TIMEOUT, self.exchange(&body)).await;
        let reply = match first {
            Ok(Err(_)) if reused => {
                self.stream = None;
                tokio::time::timeout(CALL_TIMEOUT, self.exchange(&body)).await
            }
            other => other,
        };
        let reply = match reply {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                self.stream = None;
                return Err(e);
            }
            Err(_) => {
                self.stream = None;
                return Err(std::io::ErrorKind::TimedOut.into());
            }
        };
        let value: Value = serde_json::from_slice(&reply).map_err(|e| {
            std::io::Error::other(format!("{e}: {}", String::from_utf8_lossy(&reply)))
        })?;
        match value["result"].get("structuredContent") {
            Some(content) if value["result"]["isError"] != true => Ok(content.clone()),
            _ => Err(std::io::Error::other(value.to_string())),
        }
    }

    /// Sends one request and reads its reply's body (a `Content-Length`
    /// body, as the hub sends); an answer other than 200 is an error.
    async fn exchange(&mut self, body: &str) -> std::io::Result<Vec<u8>> {
        let head = format!(
            "POST /mcp HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\naccept: application/json\r\n\
             content-length: {}\r\n\r\n",
            self.hub,
            self.token,
            body.len()
        );
        let stream = self.open().await?;
        stream.get_mut().write_all(head.as_bytes()).await?;
        stream.get_mut().write_all(body.as_bytes()).await?;
        let mut line = String::new();
        stream.read_line(&mut line).await?;
        let status = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut length = None;
        let mut close = false;
        loop {
            line.clear();
            if stream.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.trim().eq_ignore_ascii_case("close");
            }
        }
        let length = length.ok_or_else(|| std::io::Error::other("a reply without a length"))?;
        let mut reply = vec![0; length];
        stream.read_exact(&mut reply).await?;
        if close {
            self.stream = None;
        }
        if status != "200" {
            return Err(std::io::Error::other(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&reply)
            )));
        }
        Ok(reply)
    }
}

/// Raises this process's open-file limit (and so the hubs' it starts) as
/// far as it may: to the hard limit, and past it to `fs.nr_open` when
/// running as root. Returns the limit now in force.
pub(super) fn raise_open_files() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    let ceiling = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    let hard = now.maximum.unwrap_or(ceiling);
    for soft in [ceiling.max(hard), hard] {
        let wanted = Rlimit {
            current: Some(soft),
            maximum: now.maximum.map(|h| h.max(soft)),
        };
        if setrlimit(Resource::Nofile, wanted).is_ok() {
            break;
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}
