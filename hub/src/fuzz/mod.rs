//! Property tests, a fuzzer that runs on stable: random bytes and random
//! but well-formed JSON-RPC calls through the hub's own dispatch (a real
//! store in a temp dir, with small page and list limits so replies are cut
//! often), random calls naming a keyed session with no key, a wrong one or
//! its own, and random JSON values through the argument coercion. The
//! access check's target (random headers, peers and paths) lives beside its
//! rules, in `auth`, and runs through [`fuzz`] too; [`bounds`] holds the
//! targets of the bounds and the escaping. A crash, a 5xx, a reply that is
//! not JSON-RPC or an internal error fails them, and so does any change to
//! the keyed session (its row, its claims, an event attributed to it) by a
//! call without its key (proptest shrinks the input it found).
//!
//! `FUZZ_CASES` sets the inputs per property (64 by default, as `make test`
//! runs them); `FUZZ_SECONDS` instead runs each for that long (`make fuzz`).
//! Each prints how many inputs it ran.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clap::Parser;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::caller::Caller;
use crate::delivery::Delivery;
use crate::state::Bus;
use crate::store::{ClaimRecord, EventQuery, SessionRecord, Store};

mod bounds;

/// Tools left out: they reach outside the process (a webhook ping, a
/// desktop notification).
const LEFT_OUT: [&str; 2] = ["test_webhook", "notify"];

/// Runs `check` on inputs from `strategy` for `FUZZ_SECONDS`, or for
/// `FUZZ_CASES` inputs; panics with the smallest failing input.
pub(crate) fn fuzz<S: Strategy>(
    name: &str,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let seconds = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(64);
    let batch = if seconds.is_some() { 256 } else { cases };
    let deadline = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let mut ran: u64 = 0;
    loop {
        let mut runner = TestRunner::new(RunnerConfig {
            cases: batch,
            failure_persistence: None,
            ..RunnerConfig::default()
        });
        if let Err(e) = runner.run(&strategy, &check) {
            panic!("fuzz {name}: {e}");
        }
        ran += u64::from(batch);
        if deadline.is_none_or(|d| Instant::now() >= d) {
            break;
        }
    }
    eprintln!("fuzz {name}: {ran} inputs, nothing found");
}

/// A hub's state on a fresh store, with shutdown already signalled so a
/// long-poll returns at once.
struct Hub {
    rt: tokio::runtime::Runtime,
    bus: Arc<Bus>,
    _dir: tempfile::TempDir,
}

/// The page and list limits of the fuzzed hub: small, so random calls meet
/// cut pages and cut lists.
const PAGE_BYTES: usize = 2048;
const LIST_ITEMS: usize = 3;

impl Hub {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = Store::open(&dir.path().join("data.redb")).expect("a fresh store");
        let config = Config::parse_from([
            "agent-event-bus".to_owned(),
            format!("--max-page-bytes={PAGE_BYTES}"),
            format!("--max-list-items={LIST_ITEMS}"),
        ]);
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let bus = Arc::new(Bus::new(
            store,
            config.limits(),
            86_400_000,
            config.retention(),
            Delivery::new(config.delivery()).expect("a delivery client"),
            shutdown,
        ));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        Self { rt, bus, _dir: dir }
    }

    /// Calls `tool` as a local client: its `tools/call` result.
    fn tool(&self, tool: &str, arguments: &Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}});
        let (_, reply) = self.post(body.to_string().as_bytes());
        let reply: Value = serde_json::from_slice(&reply).expect("a JSON-RPC reply");
        reply["result"].clone()
    }

    /// POSTs `body` as `/mcp` does: (status, body).
    fn post(&self, body: &[u8]) -> (u16, Vec<u8>) {
        self.post_as(&Caller::internal(), body)
    }

    /// POSTs `body` as `/mcp` does for `caller`: (status, body).
    fn post_as(&self, caller: &Caller, body: &[u8]) -> (u16, Vec<u8>) {
        self.rt.block_on(async {
            match crate::mcp::answer(&self.bus, caller, body).await {
                crate::mcp::Answer::Message { status, body } => {
                    (status.as_u16(), body.into_bytes())
                }
                crate::mcp::Answer::Accepted => (202, Vec::new()),
            }
        })
    }
}

/// A keyed session the fuzzed calls aim at.
#[derive(Debug, Clone)]
struct Keyed {
    id: String,
    client_id: String,
    key: String,
}

/// What a call without the key must leave as it was: the session's row,
/// its claims, and the newest event id (no event may be attributed to it
/// after it).
#[derive(Debug, PartialEq)]
struct Held {
    session: Option<SessionRecord>,
    claims: Vec<ClaimRecord>,
    tip: u64,
}

impl Hub {
    /// Registers a new keyed session through dispatch, as a client would.
    fn keyed(&self, n: u64) -> Keyed {
        let client_id = format!("fuzz-keyed-{n}");
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "register_session",
            "arguments": {"name": "keyed", "client_id": client_id, "lease_seconds": 3600, "key": true},
        }});
        let (_, body) = self.post(call.to_string().as_bytes());
        let reply: Value = serde_json::from_slice(&body).expect("a JSON-RPC reply");
        let registered = &reply["result"]["structuredContent"];
        Keyed {
            id: registered["session_id"].as_str().expect("an id").to_owned(),
            client_id,
            key: registered["session_key"]
                .as_str()
                .expect("a key")
                .to_owned(),
        }
    }

    fn held(&self, id: &str) -> Held {
        let id = id.to_owned();
        self.rt
            .block_on(self.bus.store.read(move |snap| {
                let claims = snap
                    .claims("", usize::MAX)?
                    .into_iter()
                    .filter(|c| c.session_id == id)
                    .collect();
                Ok(Held {
                    session: snap.session(&id)?,
                    claims,
                    tip: snap.tip()?,
                })
            }))
            .expect("the store reads")
    }

    /// Events after `tip` attributed to session `id`.
    fn attributed_after(&self, id: &str, tip: u64) -> usize {
        let id = id.to_owned();
        self.rt
            .block_on(self.bus.store.read(move |snap| {
                let page = snap.event_page(&EventQuery {
                    after: Some(tip),
                    limit: 1000,
                    ..EventQuery::default()
                })?;
                Ok(page.events.iter().filter(|e| e.session_id == id).count())
            }))
            .expect("the store reads")
    }
}

/// Any JSON value, leaning on what coercion cares about: numbers as text,
/// whole floats, booleans as words, and nesting.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        (-1000i64..1000).prop_map(|n| Value::from(n as f64)),
        (-1000i64..1000).prop_map(|n| Value::from(n.to_string())),
        prop::sample::select(vec![
            "true",
            "false",
            "yes",
            "off",
            "1.5",
            " 7 ",
            "",
            "all",
            "session:x",
            "asc",
            "desc",
            "latest",
            "0",
            "-1",
            "9999999999999999999999",
        ])
        .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every tool's name (but [`LEFT_OUT`]) and every argument name any tool takes.
fn catalog_names() -> (Vec<String>, Vec<String>) {
    let mut tools = Vec::new();
    let mut keys = Vec::new();
    for tool in shared::catalog::tools() {
        let Some(name) = tool["name"].as_str() else {
            continue;
        };
        if !LEFT_OUT.contains(&name) {
            tools.push(name.to_owned());
        }
        if let Some(props) = tool["inputSchema"]["properties"].as_object() {
            keys.extend(props.keys().cloned());
        }
    }
    keys.sort();
    keys.dedup();
    (tools, keys)
}

/// A JSON-RPC request: a known method (or not), an id of any kind, and for
/// `tools/call` a known tool (or not) with arguments named as tools name them.
fn rpc_request() -> impl Strategy<Value = Value> {
    let (tools, keys) = catalog_names();
    let tool = prop_oneof![
        4 => prop::sample::select(tools),
        1 => "[a-z_]{0,16}",
    ];
    let key = prop_oneof![
        6 => prop::sample::select(keys),
        1 => "[a-z_]{1,10}",
    ];
    let arguments = prop_oneof![
        8 => prop::collection::btree_map(key, json_value(), 0..6)
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        1 => json_value(),
    ];
    let call = (tool, arguments).prop_map(|(name, arguments)| {
        json!({"method": "tools/call", "params": {"name": name, "arguments": arguments}})
    });
    let other = (
        prop::sample::select(vec![
            "initialize",
            "ping",
            "tools/list",
            "resources/list",
            "resources/read",
            "resources/templates/list",
            "prompts/list",
            "tools/call",
            "nope/nothing",
        ]),
        json_value(),
    )
        .prop_map(|(method, params)| json!({"method": method, "params": params}));
    let id = prop_oneof![
        any::<i64>().prop_map(Value::from),
        "[ -~]{0,10}".prop_map(Value::from),
        json_value(),
    ];
    (prop_oneof![4 => call, 1 => other], prop::option::of(id)).prop_map(|(mut message, id)| {
        message["jsonrpc"] = json!("2.0");
        if let Some(id) = id {
            message["id"] = id;
        }
        message
    })
}

/// What every reply must be: a 200/202/400, JSON-RPC 2.0 when it has a
/// body, and never an internal error.
fn check_reply(status: u16, body: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(
        matches!(status, 200 | 202 | 400),
        "status {status}: {}",
        String::from_utf8_lossy(body)
    );
    if status == 202 {
        return Ok(());
    }
    let reply: Value = serde_json::from_slice(body)
        .map_err(|e| TestCaseError::fail(format!("the reply is not JSON: {e}")))?;
    prop_assert_eq!(&reply["jsonrpc"], &json!("2.0"));
    prop_assert!(
        reply.get("result").is_some() != reply.get("error").is_some(),
        "{reply}"
    );
    let text = reply["result"]["content"][0]["text"].as_str().unwrap_or("");
    prop_assert!(
        !text.starts_with("internal error") && !text.starts_with("storage error"),
        "{reply}"
    );
    Ok(())
}

#[test]
fn fuzz_raw_bodies_through_dispatch() {
    let hub = Hub::new();
    let bodies = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        any::<String>().prop_map(String::into_bytes),
        json_value().prop_map(|v| v.to_string().into_bytes()),
    ];
    fuzz("raw bodies", bodies, |body| {
        let (status, reply) = hub.post(&body);
        check_reply(status, &reply)
    });
}

#[test]
fn fuzz_json_rpc_calls_through_dispatch() {
    let hub = Hub::new();
    fuzz("JSON-RPC calls", rpc_request(), |request| {
        let (status, reply) = hub.post(request.to_string().as_bytes());
        check_reply(status, &reply)
    });
}

/// A `tools/call` aimed at the keyed session (`session_id`, `client_id`,
/// or as generated), sent with no key, a wrong key, or its key.
fn keyed_call() -> impl Strategy<Value = (Value, u8, u8)> {
    (rpc_request(), 0u8..3, 0u8..3)
}

#[test]
fn fuzz_calls_with_and_without_keys() {
    let hub = Hub::new();
    let made = Mutex::new(0u64);
    let keyed = Mutex::new(hub.keyed(0));
    fuzz(
        "calls with and without keys",
        keyed_call(),
        |(mut request, aim, key)| {
            let target = keyed.lock().unwrap_or_else(PoisonError::into_inner).clone();
            if let Some(Value::Object(args)) = request.pointer_mut("/params/arguments") {
                match aim {
                    0 => {
                        args.insert("session_id".into(), json!(target.id));
                    }
                    1 => {
                        args.insert("client_id".into(), json!(target.client_id));
                        args.remove("machine");
                    }
                    _ => {}
                }
            }
            let caller = Caller {
                session_key: match key {
                    0 => None,
                    1 => Some("not-the-key".to_owned()),
                    _ => Some(target.key.clone()),
                },
                ..Caller::internal()
            };
            let before = hub.held(&target.id);
            let (status, reply) = hub.post_as(&caller, request.to_string().as_bytes());
            check_reply(status, &reply)?;
            let after = hub.held(&target.id);
            if key < 2 {
                prop_assert_eq!(
                    &after.session,
                    &before.session,
                    "{}",
                    String::from_utf8_lossy(&reply)
                );
                prop_assert_eq!(&after.claims, &before.claims);
                prop_assert_eq!(hub.attributed_after(&target.id, before.tip), 0);
            } else if after
                .session
                .as_ref()
                .is_none_or(|s| s.key_hash.is_none() || s.is_deleted())
            {
                // Its own key ended it (or unkeyed it): aim at a fresh one.
                let mut n = made.lock().unwrap_or_else(PoisonError::into_inner);
                *n += 1;
                *keyed.lock().unwrap_or_else(PoisonError::into_inner) = hub.keyed(*n);
            }
            Ok(())
        },
    );
}

#[test]
fn fuzz_argument_coercion() {
    use shared::tools::events::GetEvents;
    use shared::tools::parse;
    use shared::tools::webhooks::ListWebhookDeliveries;
    fuzz("argument coercion", json_value(), |value| {
        let limit =
            parse::<ListWebhookDeliveries>(Some(json!({"webhook_id": 1, "limit": value.clone()})))
                .map(|p| p.limit)
                .map_err(|e| e.to_string());
        match (&value, shared::coerce::whole_number(&value)) {
            (Value::Null, _) => prop_assert_eq!(limit, Ok(20)),
            (_, Some(n)) if (1..=1000).contains(&n) => prop_assert_eq!(limit, Ok(n)),
            (_, Some(_)) => prop_assert!(limit.is_err_and(|e| e.starts_with("limit must be from"))),
            (_, None) => prop_assert!(limit.is_err_and(|e| e.starts_with("limit must be"))),
        }
        for key in ["peek", "order", "cursor", "channels"] {
            if let Err(e) = parse::<GetEvents>(Some(json!({key: value.clone()}))) {
                let e = e.to_string();
                // Text that is no event id is named as a cursor always was.
                let named = e.starts_with(&format!("{key} "))
                    || (key == "cursor" && e.starts_with("Invalid cursor '"));
                prop_assert!(named, "{}", e);
            }
        }
        Ok(())
    });
}
