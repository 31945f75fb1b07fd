//! End-to-end tests: webhook deliveries reach a real local receiver, signed
//! so that an independent HMAC check passes, filtered by channel and type;
//! retried with one `webhook-id` until they succeed, honouring `Retry-After`;
//! one hanging endpoint never delays another; 410 and a day of failures
//! disable; deliveries pending at a SIGKILL arrive after restart; the log,
//! redelivery and ping, from tools and the CLI.
//!
//! # Layout
//! - `delivery`: the signed body, the channel, type and active filters,
//!   session lifecycle events on request.
//! - `retries`: retries with one `webhook-id`, running out of them, event
//!   order, `Retry-After`, deliveries pending at a SIGKILL.
//! - `slow`: slow and hanging receivers, the attempt timeout.
//! - `disabling`: 410 Gone and a span of failures disable a webhook.
//! - `targets`: where deliveries may go: private addresses, an
//!   environment's proxy, credentials in the URL, redirects.
//! - `cli`: the delivery log, redelivery and ping from the CLI.

mod cli;
mod delivery;
mod disabling;
mod retries;
mod slow;
mod targets;

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use support::sink::Received;
use support::{Hub, HubOptions};

const DEADLINE: Duration = Duration::from_secs(20);

/// A hub with these extra flags.
fn hub_with(args: &[&str]) -> Hub {
    Hub::start_with(HubOptions {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        ..Default::default()
    })
}

/// Deliveries of `webhook_id` still owed an attempt, in flight included: an
/// attempt leaves the outbox only when its outcome is recorded, so 0 proves
/// nothing more will be sent without a fresh publish or redelivery.
fn pending(hub: &Hub, webhook_id: u64) -> u64 {
    let reply = hub.tool("list_webhook_deliveries", json!({"webhook_id": webhook_id}));
    reply["pending"]
        .as_u64()
        .unwrap_or_else(|| panic!("no pending count in {reply}"))
}

/// Registers a webhook and returns its id.
fn register(hub: &Hub, args: Value) -> u64 {
    let reply = hub.tool("register_webhook", args);
    reply["webhook_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no webhook_id in {reply}"))
}

/// The webhook's delivery log (newest first).
fn log(hub: &Hub, webhook_id: u64) -> Vec<Value> {
    let reply = hub.tool(
        "list_webhook_deliveries",
        json!({"webhook_id": webhook_id, "limit": 1000}),
    );
    reply["deliveries"]
        .as_array()
        .unwrap_or_else(|| panic!("no deliveries in {reply}"))
        .clone()
}

/// Polls the delivery log until `check` holds for it.
fn wait_for_log(
    hub: &Hub,
    webhook_id: u64,
    what: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    support::wait_until(what, DEADLINE, || {
        let rows = log(hub, webhook_id);
        check(&rows).then_some(rows)
    })
}

/// Every webhook, paused and disabled ones too.
fn webhook_info(hub: &Hub, webhook_id: u64) -> Value {
    let list = hub.tool("list_webhooks", json!({"active_only": false}));
    list.as_array()
        .unwrap()
        .iter()
        .find(|w| w["webhook_id"].as_u64() == Some(webhook_id))
        .cloned()
        .unwrap_or_else(|| panic!("webhook {webhook_id} not in {list}"))
}

fn event_id(r: &Received) -> u64 {
    r.json()["event_id"].as_u64().expect("an event_id")
}

/// Checks both signatures of one request independently of the hub's code,
/// and that its Standard Webhooks timestamp is within a 5-minute window.
pub(crate) fn assert_signed(r: &Received, secret: &str) {
    let mut hex = String::new();
    for b in hmac(secret, &r.body) {
        hex.push_str(&format!("{b:02x}"));
    }
    assert_eq!(r.headers["x-event-bus-signature"], format!("sha256={hex}"));
    let wid = &r.headers["webhook-id"];
    let ts = &r.headers["webhook-timestamp"];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        ts.parse::<u64>().unwrap().abs_diff(now) < 300,
        "timestamp within the replay window"
    );
    let mut signed = format!("{wid}.{ts}.").into_bytes();
    signed.extend_from_slice(&r.body);
    let want = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(hmac(secret, &signed))
    );
    assert_eq!(r.headers["webhook-signature"], want);
}

fn hmac(secret: &str, data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}
