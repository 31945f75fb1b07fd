//! A real HTTP receiver for webhook tests: records each request and answers
//! with a status chosen per request (so it can fail N times, hang, 410, or
//! send `Retry-After`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names are lower-cased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
    /// The status the sink answered (or will answer, while it holds the request).
    pub status: u16,
}

impl Received {
    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// How the sink answers one request.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub status: u16,
    /// How long to hold the request before answering.
    pub delay: Duration,
    /// Extra response headers, e.g. `("retry-after", "2")`.
    pub headers: Vec<(String, String)>,
}

/// What the sink answers to the n-th request (0-based).
pub type Responder = dyn Fn(usize) -> Answer + Send + Sync;

/// A loopback HTTP server on port 0.
pub struct WebhookSink {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    _runtime: tokio::runtime::Runtime,
}

impl WebhookSink {
    /// A sink that answers 200 at once.
    pub fn ok() -> Self {
        Self::with(|_| (200, Duration::ZERO))
    }

    /// A sink whose status and delay come from `responder`.
    pub fn with(responder: impl Fn(usize) -> (u16, Duration) + Send + Sync + 'static) -> Self {
        Self::answering(move |n| {
            let (status, delay) = responder(n);
            Answer {
                status,
                delay,
                headers: Vec::new(),
            }
        })
    }

    /// A sink whose whole answers come from `responder`.
    pub fn answering(responder: impl Fn(usize) -> Answer + Send + Sync + 'static) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the sink");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind a loopback port");
        let port = listener.local_addr().expect("a local address").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let responder: Arc<Responder> = Arc::new(responder);
        let store = received.clone();
        runtime.spawn(async move {
            let counter = Arc::new(Mutex::new(0usize));
            while let Ok((mut socket, _)) = listener.accept().await {
                let store = store.clone();
                let responder = responder.clone();
                let counter = counter.clone();
                // Keep-alive, as real receivers: one request after another.
                tokio::spawn(async move {
                    while let Some(mut request) = read_request(&mut socket).await {
                        let n = {
                            let mut c = counter
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner);
                            let n = *c;
                            *c += 1;
                            n
                        };
                        let answer = responder(n);
                        request.status = answer.status;
                        store
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(request);
                        tokio::time::sleep(answer.delay).await;
                        let mut extra = String::new();
                        for (k, v) in &answer.headers {
                            extra.push_str(&format!("{k}: {v}\r\n"));
                        }
                        let status = answer.status;
                        let reply =
                            format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\n{extra}\r\nok");
                        if socket.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            received,
            _runtime: runtime,
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Waits until at least `n` requests arrived (generous deadline).
    pub fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Received> {
        crate::wait_until(&format!("{n} webhook deliveries"), deadline, || {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[header_end..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Received {
        method,
        path,
        headers,
        body,
        at: Instant::now(),
        status: 0,
    })
}
