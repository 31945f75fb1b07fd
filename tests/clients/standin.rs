//! Scripted stand-ins for the model APIs the real clients call, on loopback.
//! Every request is recorded (when it came, its path and body), so a test can
//! find a marker in "the next model request". Two scripts:
//! - [`StandIn::start`]: answers the first request that offers the bus's
//!   `publish_event` tool with a call of it (the arguments the test chose),
//!   holds the request that carries the tool's result until the test has
//!   looked at the hub, and answers everything else with a short text;
//! - [`StandIn::chat`]: answers with a short text, holds a turn whose new
//!   input carries [`HOLD`] until [`StandIn::release`] (so a busy client can be
//!   looked at), and answers the next turn after [`StandIn::fetch_next`] with
//!   a `get_events(resume=true)` call, as a model does when told a message
//!   is waiting.

mod apis;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};
use warp::Filter;
use warp::http::Response;

use apis::{Answer, Call};

/// The final text the publishing script ends a turn with.
pub(crate) const FINAL_TEXT: &str = "Published to the bus.";
/// The text the chat script answers with.
pub(crate) const CHAT_TEXT: &str = "Noted.";
/// Typed into a prompt, it makes the chat script hold that turn.
pub(crate) const HOLD: &str = "[[hold this turn]]";
/// The longest a held request waits, so a test that never releases it
/// cannot hang a client.
const HOLD_LIMIT: Duration = Duration::from_secs(120);

/// Which model API to speak.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Api {
    /// Anthropic Messages (`POST /v1/messages`), as Claude Code calls it.
    Anthropic,
    /// Gemini `generateContent` / `streamGenerateContent?alt=sse`.
    Gemini,
    /// `OpenAI` Responses (`POST /v1/responses`), as Codex calls it.
    Responses,
}

/// One request the stand-in got.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub at: Instant,
    /// Path and query.
    pub path: String,
    pub body: Value,
}

impl Request {
    /// Whether the body mentions `text` anywhere (JSON-escaped as sent).
    pub(crate) fn mentions(&self, text: &str) -> bool {
        let escaped = serde_json::to_string(text).unwrap_or_default();
        let escaped = escaped.trim_matches('"');
        self.body.to_string().contains(escaped)
    }
}

/// The request that carried the tool's result, held until released.
pub(crate) struct Held {
    /// The request body.
    pub body: Value,
    release: oneshot::Sender<()>,
}

impl Held {
    /// Lets the client have its final answer.
    pub(crate) fn release(self) {
        let _ = self.release.send(());
    }
}

/// A running stand-in.
pub(crate) struct StandIn {
    /// Base URL, `http://127.0.0.1:<port>`.
    pub url: String,
    script: Arc<Script>,
    held: mpsc::Receiver<Held>,
    _runtime: tokio::runtime::Runtime,
}

enum Kind {
    Publish(Value),
    Chat,
}

struct Script {
    api: Api,
    kind: Kind,
    log: Mutex<Vec<Request>>,
    held: Mutex<mpsc::Sender<Held>>,
    holding_publish: AtomicBool,
    /// Bumped by `release`; a held chat turn waits for it to move.
    released: watch::Sender<u64>,
    /// Chat turns held right now.
    holding: AtomicUsize,
    /// Armed by `fetch_next`: the next turn answers with `get_events`.
    fetch: AtomicBool,
    calls: AtomicU64,
}

impl StandIn {
    /// Starts a stand-in of `api` whose `publish_event` call carries `args`.
    pub(crate) fn start(api: Api, args: Value) -> Self {
        Self::serve(api, Kind::Publish(args))
    }

    /// Starts a stand-in of `api` that chats (see the module's comment).
    pub(crate) fn chat(api: Api) -> Self {
        Self::serve(api, Kind::Chat)
    }

    fn serve(api: Api, kind: Kind) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the stand-in");
        let (tx, held) = mpsc::channel();
        let script = Arc::new(Script {
            api,
            kind,
            log: Mutex::new(Vec::new()),
            held: Mutex::new(tx),
            holding_publish: AtomicBool::new(false),
            released: watch::channel(0).0,
            holding: AtomicUsize::new(0),
            fetch: AtomicBool::new(false),
            calls: AtomicU64::new(0),
        });
        let serving = script.clone();
        let route = warp::path::full()
            .and(warp::query::raw().or(warp::any().map(String::new)).unify())
            .and(warp::body::bytes())
            .then(
                move |path: warp::path::FullPath, query: String, body: warp::hyper::body::Bytes| {
                    let script = serving.clone();
                    async move { script.answer(path.as_str(), &query, &body).await }
                },
            );
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("a local address");
        let server = warp::serve(route).incoming(listener).run();
        runtime.spawn(server);
        Self {
            url: format!("http://{addr}"),
            script,
            held,
            _runtime: runtime,
        }
    }

    /// Every request so far: path and JSON body.
    pub(crate) fn requests(&self) -> Vec<(String, Value)> {
        self.log().into_iter().map(|r| (r.path, r.body)).collect()
    }

    /// Every request so far.
    pub(crate) fn log(&self) -> Vec<Request> {
        self.script.log.lock().expect("the request log").clone()
    }

    /// How many requests came so far (a mark to look after).
    pub(crate) fn count(&self) -> usize {
        self.script.log.lock().expect("the request log").len()
    }

    /// The first request after `mark` that mentions `text`, waiting up to
    /// `deadline` for it.
    pub(crate) fn wait_mention(
        &self,
        mark: usize,
        text: &str,
        deadline: Duration,
    ) -> Option<Request> {
        let until = Instant::now() + deadline;
        loop {
            let found = self.log().into_iter().skip(mark).find(|r| r.mentions(text));
            if found.is_some() || Instant::now() >= until {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The first new turn after `mark` (a request with new input that
    /// offers the bus's tools, not a side request such as a title), waiting
    /// up to `deadline` for it.
    pub(crate) fn wait_turn(&self, mark: usize, deadline: Duration) -> Option<Request> {
        let api = self.script.api;
        self.wait_for(mark, deadline, |r| {
            !apis::newest_is_tool_result(api, &r.body)
                && apis::offered(api, &r.body, "get_events").is_some()
        })
    }

    /// The first request after `mark` that carries a tool's result
    /// mentioning `text`; its result text.
    pub(crate) fn wait_tool_result(
        &self,
        mark: usize,
        text: &str,
        deadline: Duration,
    ) -> Option<String> {
        let api = self.script.api;
        let found = self.wait_for(mark, deadline, |r| {
            apis::tool_result(api, &r.body).is_some_and(|t| r.mentions(text) && t.contains(text))
        })?;
        apis::tool_result(api, &found.body)
    }

    fn wait_for(
        &self,
        mark: usize,
        deadline: Duration,
        check: impl Fn(&Request) -> bool,
    ) -> Option<Request> {
        let until = Instant::now() + deadline;
        loop {
            let found = self.log().into_iter().skip(mark).find(&check);
            if found.is_some() || Instant::now() >= until {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether any request after `mark` mentions `text`.
    pub(crate) fn mentioned_since(&self, mark: usize, text: &str) -> bool {
        self.log().iter().skip(mark).any(|r| r.mentions(text))
    }

    /// The held tool-result request, if one arrives within `wait`.
    pub(crate) fn held(&self, wait: Duration) -> Option<Held> {
        self.held.recv_timeout(wait).ok()
    }

    /// How many chat turns are held now.
    pub(crate) fn holding(&self) -> usize {
        self.script.holding.load(Ordering::SeqCst)
    }

    /// Lets every held chat turn have its answer.
    pub(crate) fn release(&self) {
        self.script.released.send_modify(|n| *n += 1);
    }

    /// The next turn that offers `get_events` (a new input, not a tool's
    /// result) gets a `get_events(resume=true, order="asc")` call.
    pub(crate) fn fetch_next(&self) {
        self.script.fetch.store(true, Ordering::SeqCst);
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.release();
    }
}

impl Script {
    async fn answer(&self, path: &str, query: &str, body: &[u8]) -> Response<Vec<u8>> {
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        self.log.lock().expect("the request log").push(Request {
            at: Instant::now(),
            path: format!("{path}?{query}"),
            body: body.clone(),
        });
        let answer = match &self.kind {
            Kind::Publish(args) => self.publish_turn(&body, args).await,
            Kind::Chat => self.chat_turn(&body).await,
        };
        let streaming = body["stream"] == json!(true) || path.contains(":stream");
        let (content_type, text) = apis::reply(self.api, &body, &answer, streaming);
        Response::builder()
            .header("content-type", content_type)
            .body(text.into_bytes())
            .expect("a response")
    }

    fn call(&self, offered: Call, args: Value) -> Answer {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Answer::Tool(Call {
            id: format!("standin_{n}"),
            args,
            ..offered
        })
    }

    async fn publish_turn(&self, body: &Value, args: &Value) -> Answer {
        let offered = apis::offered(self.api, body, "publish_event");
        let answered = apis::has_tool_result(self.api, body);
        if offered.is_some() && answered && !self.holding_publish.swap(true, Ordering::SeqCst) {
            let (release, released) = oneshot::channel();
            let held = Held {
                body: body.clone(),
                release,
            };
            let sent = self.held.lock().expect("the held channel").send(held);
            if sent.is_ok() {
                let _ = tokio::time::timeout(HOLD_LIMIT, released).await;
            }
        }
        match offered.filter(|_| !answered) {
            Some(call) => self.call(call, args.clone()),
            None => Answer::Text(FINAL_TEXT.to_owned()),
        }
    }

    async fn chat_turn(&self, body: &Value) -> Answer {
        let fresh = !apis::newest_is_tool_result(self.api, body);
        let newest = apis::newest(self.api, body).to_string();
        if fresh && newest.contains(HOLD) {
            let mut released = self.released.subscribe();
            released.borrow_and_update();
            self.holding.fetch_add(1, Ordering::SeqCst);
            let _ = tokio::time::timeout(HOLD_LIMIT, released.changed()).await;
            self.holding.fetch_sub(1, Ordering::SeqCst);
        }
        if fresh
            && let Some(call) = apis::offered(self.api, body, "get_events")
            && self.fetch.swap(false, Ordering::SeqCst)
        {
            return self.call(call, json!({"resume": true, "order": "asc"}));
        }
        Answer::Text(CHAT_TEXT.to_owned())
    }
}
