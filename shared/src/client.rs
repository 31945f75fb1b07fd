//! [`HubClient`]: the one way the proxy, the CLI and the tests talk to the
//! hub — one JSON-RPC `POST /mcp` per call, no `initialize` needed (the hub is
//! stateless).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use url::Url;

use crate::config::{self, Credential, Discovery, Reader, UrlError};
pub use crate::mcp::ToolOutput;

pub mod follow;

/// How long a call may take before the hub counts as unresponsive; a
/// long-poll adds its own `wait_seconds` on top.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A request body this large that fails mid-send met the hub's size limit
/// (1 MiB by default), not a hub that is down.
const SUSPECT_TOO_LARGE: usize = 1024 * 1024;

/// What went wrong talking to the hub. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error(
        "hub not reachable at {url} — start it with `agent-event-bus` or set AGENT_EVENT_BUS_URL ({detail})"
    )]
    Unreachable { url: String, detail: String },
    #[error("request too large for the hub at {url} ({detail}): send less, e.g. a smaller payload")]
    TooLarge { url: String, detail: String },
    #[error("hub at {url} did not answer within {}", span(*after))]
    Timeout { url: String, after: Duration },
    #[error(
        "hub at {url} refused the request (401 Unauthorized){}; this client {sent}",
        hint_suffix(message)
    )]
    Unauthorized {
        url: String,
        /// The hub's own explanation.
        message: String,
        /// What this client sent, and from where (never the token).
        sent: String,
    },
    /// This machine's credential was not sent: another user's program
    /// listens on the hub's loopback port ([`crate::listener`]).
    #[error("{detail}")]
    Withheld { url: String, detail: String },
    #[error("hub at {url} answered HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    /// The hub rejected the call's arguments (`isError`); says what to send.
    #[error("{0}")]
    Tool(String),
    #[error("hub error {code}: {message}")]
    Rpc { code: i64, message: String },
    #[error("unexpected reply from the hub at {url}: {detail}")]
    Protocol { url: String, detail: String },
}

/// A timeout as a person reads it: whole seconds, else milliseconds.
fn span(after: Duration) -> String {
    if after.subsec_millis() == 0 {
        format!("{} s", after.as_secs())
    } else {
        format!("{} ms", after.as_millis())
    }
}

fn hint_suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl ClientError {
    /// True when the hub could not be reached at all (down, wrong URL).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::Timeout { .. } | Self::Withheld { .. }
        )
    }

    /// True when a retry may succeed where this call failed: the hub could
    /// not be reached or did not answer in time, or a proxy in front of it
    /// said it is away (502, 503, 504: a hub restarting behind one).
    pub fn is_transient(&self) -> bool {
        self.is_unreachable()
            || matches!(self, Self::Status { status, .. } if matches!(status, 502..=504))
    }
}

/// A typed client for one hub.
#[derive(Debug)]
pub struct HubClient {
    http: reqwest::Client,
    endpoint: Url,
    /// What this client presents (and why it has nothing, when it has not).
    credential: Arc<Discovery>,
    next_id: AtomicU64,
    /// Sent as [`config::HEADER_SESSION_KEY`] with every call, once known:
    /// the key of the session this client acts as (shared with every
    /// [`HubClient::as_reader`] view of it).
    session_key: Arc<RwLock<Option<String>>>,
    /// Sent as [`config::HEADER_READER`] unless it is the agent itself.
    reader: Reader,
}

/// Installs the TLS crypto provider once per process (reqwest is built with
/// `rustls-no-provider` so that no C crypto library is compiled).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another provider is installed already, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A reqwest client builder with the provider installed and redirects off.
pub fn http_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        // Below the hub's idle-connection timeout (30 s by default), so a
        // pooled connection is dropped here before the hub closes it.
        .pool_idle_timeout(Duration::from_secs(20))
}

impl HubClient {
    /// A client for the hub at `url` (with or without `/mcp`) that sends
    /// `token`, and nothing when it is `None`.
    pub fn new(url: &str, token: Option<String>) -> Result<Self, ClientError> {
        Self::with_credential(url, Discovery::given(token))
    }

    /// A client for the hub at `url` that finds its credential itself:
    /// `given` (a `--token` flag), else `AGENT_EVENT_BUS_TOKEN`, else this
    /// machine's hub token file for a hub on this machine
    /// ([`config::discover_credential`]).
    pub fn discover(url: &str, given: Option<&str>) -> Result<Self, ClientError> {
        let endpoint = config::mcp_endpoint(url)?;
        Self::with_credential(url, config::discover_credential(given, &endpoint))
    }

    fn with_credential(url: &str, credential: Discovery) -> Result<Self, ClientError> {
        let endpoint = config::mcp_endpoint(url)?;
        let mut builder =
            http_builder().user_agent(concat!("agent-event-bus/", env!("CARGO_PKG_VERSION")));
        if let Some(guard) = crate::listener::OwnerGuard::for_credential(&endpoint, &credential) {
            builder = builder.connector_layer(guard);
        }
        let http = builder.build().map_err(|e| ClientError::Protocol {
            url: endpoint.to_string(),
            detail: format!("cannot build an HTTP client: {e}"),
        })?;
        Ok(Self {
            http,
            endpoint,
            credential: Arc::new(credential),
            next_id: AtomicU64::new(1),
            session_key: Arc::new(RwLock::new(None)),
            reader: Reader::Agent,
        })
    }

    /// A view of this client (its connections and its session key, now
    /// and later) that calls as `reader`.
    pub fn as_reader(&self, reader: Reader) -> Self {
        Self {
            http: self.http.clone(),
            endpoint: self.endpoint.clone(),
            credential: self.credential.clone(),
            next_id: AtomicU64::new(1),
            session_key: self.session_key.clone(),
            reader,
        }
    }

    /// The session key this client sends, if any.
    pub fn session_key(&self) -> Option<String> {
        self.session_key
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Sends `key` with every call from now on (`None`: no key).
    pub fn set_session_key(&self, key: Option<String>) {
        *self
            .session_key
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = key.filter(|k| !k.is_empty());
    }

    /// A client for `AGENT_EVENT_BUS_URL` (or the default) with the
    /// credential it finds ([`HubClient::discover`]).
    pub fn from_env() -> Result<Self, ClientError> {
        Self::discover(&config::url_from_env(), None)
    }

    /// The credential this client presents, if it found one.
    pub fn credential(&self) -> Option<&Credential> {
        self.credential.credential()
    }

    /// The `/mcp` endpoint this client posts to.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// Sends one JSON-RPC request and returns its `result`.
    pub async fn request(
        &self,
        method: &str,
        params: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut body = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(params) = params {
            body["params"] = params;
        }
        let reply = self.post(&self.endpoint, &body, timeout).await?;
        if let Some(error) = reply.get("error") {
            return Err(ClientError::Rpc {
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
                    .to_owned(),
            });
        }
        reply
            .get("result")
            .cloned()
            .ok_or_else(|| self.protocol("the reply has neither result nor error"))
    }

    /// Calls one tool. A long-poll (`wait_seconds`) extends the timeout.
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Result<ToolOutput, ClientError> {
        // Read as the hub reads it ("15" and 15.0 wait too).
        let wait = arguments
            .get("wait_seconds")
            .and_then(crate::coerce::whole_number)
            .and_then(|w| u64::try_from(w).ok())
            .unwrap_or(0)
            .min(config::MAX_WAIT_SECONDS);
        let timeout = DEFAULT_TIMEOUT + Duration::from_secs(wait);
        self.call_tool_within(name, arguments, timeout).await
    }

    /// Calls one tool, giving up after `timeout` (a long-poll's wait
    /// included).
    pub async fn call_tool_within(
        &self,
        name: &str,
        arguments: Value,
        timeout: Duration,
    ) -> Result<ToolOutput, ClientError> {
        let result = self
            .request(
                "tools/call",
                Some(json!({"name": name, "arguments": arguments})),
                timeout,
            )
            .await?;
        Ok(ToolOutput { result })
    }

    /// `GET /health` on the hub's base URL: `status` is `ok`, or `degraded`
    /// (HTTP 503) with the reason in `storage`.
    pub async fn health(&self) -> Result<Value, ClientError> {
        let url = config::base_of(&self.endpoint)
            .join("health")
            .map_err(|e| self.protocol(&e.to_string()))?;
        // `/health` is open: no credential goes with it.
        let request = self.http.get(url.clone()).timeout(DEFAULT_TIMEOUT);
        let response = request
            .send()
            .await
            .map_err(|e| self.send_error(&e, DEFAULT_TIMEOUT))?;
        if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            // A degraded hub (its storage failing) still sends its health.
            let text = response
                .text()
                .await
                .map_err(|e| self.send_error(&e, DEFAULT_TIMEOUT))?;
            return serde_json::from_str::<Value>(&text)
                .ok()
                .filter(|v| v.get("status").is_some())
                .ok_or_else(|| ClientError::Status {
                    url: self.endpoint.to_string(),
                    status: 503,
                    body: text.chars().take(300).collect(),
                });
        }
        self.decode(response, DEFAULT_TIMEOUT).await
    }

    async fn post(&self, url: &Url, body: &Value, timeout: Duration) -> Result<Value, ClientError> {
        let body = body.to_string();
        let len = body.len();
        let mut request = self
            .http
            .post(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .timeout(timeout);
        if let Some(credential) = self.credential() {
            request = request.bearer_auth(&credential.token);
        }
        if let Some(key) = self.session_key() {
            request = request.header(config::HEADER_SESSION_KEY, key);
        }
        if self.reader != Reader::Agent {
            request = request.header(config::HEADER_READER, self.reader.name());
        }
        let response = request.send().await.map_err(|e| {
            // The hub refuses an oversize body before reading it, and may
            // close the connection before its 413 can be read.
            if !e.is_connect() && !e.is_timeout() && len > SUSPECT_TOO_LARGE {
                ClientError::TooLarge {
                    url: self.endpoint.to_string(),
                    detail: format!(
                        "{len} bytes; the hub closed the connection while it was sent, as it does past its limit (--max-body, 1 MiB by default)"
                    ),
                }
            } else {
                self.send_error(&e, timeout)
            }
        })?;
        self.decode(response, timeout).await
    }

    async fn decode(
        &self,
        response: reqwest::Response,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| self.send_error(&e, timeout))?;
        if status == reqwest::StatusCode::UNAUTHORIZED {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            return Err(ClientError::Unauthorized {
                url: self.endpoint.to_string(),
                message,
                sent: self.credential.note(),
            });
        }
        let parsed = parse_body(&text);
        if status == reqwest::StatusCode::PAYLOAD_TOO_LARGE {
            let message = parsed.as_ref().and_then(|v| {
                v.pointer("/error/message")
                    .or_else(|| v.get("message"))
                    .and_then(Value::as_str)
            });
            return Err(ClientError::TooLarge {
                url: self.endpoint.to_string(),
                detail: message.unwrap_or("413 Payload Too Large").to_owned(),
            });
        }
        match parsed {
            Some(value) if status.is_success() || value.get("error").is_some() => Ok(value),
            _ => Err(ClientError::Status {
                url: self.endpoint.to_string(),
                status: status.as_u16(),
                body: text.chars().take(300).collect(),
            }),
        }
    }

    fn send_error(&self, e: &reqwest::Error, timeout: Duration) -> ClientError {
        let url = self.endpoint.to_string();
        if e.is_timeout() {
            ClientError::Timeout {
                url,
                after: timeout,
            }
        } else {
            let mut detail = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                if let Some(refused) = inner.downcast_ref::<crate::listener::ForeignListener>() {
                    return ClientError::Withheld {
                        url,
                        detail: refused.to_string(),
                    };
                }
                detail = format!("{detail}: {inner}");
                source = inner.source();
            }
            ClientError::Unreachable { url, detail }
        }
    }

    fn protocol(&self, detail: &str) -> ClientError {
        ClientError::Protocol {
            url: self.endpoint.to_string(),
            detail: detail.to_owned(),
        }
    }
}

/// Reads a reply body that is plain JSON or SSE-framed (`data: {...}` lines).
pub fn parse_body(text: &str) -> Option<Value> {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return Some(value);
    }
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .find_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sse_and_json() {
        assert_eq!(parse_body("{\"a\":1}"), Some(json!({"a":1})));
        assert_eq!(
            parse_body("event: message\ndata: {\"a\":2}\n\n"),
            Some(json!({"a":2}))
        );
        assert_eq!(parse_body(""), None);
    }
}
