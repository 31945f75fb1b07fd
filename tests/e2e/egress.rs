//! End-to-end tests of what a client can make the hub do outside itself,
//! each at its edge: `notify` from another machine, `test_webhook`'s rate,
//! `--webhook-deny-private` and what it tells about private addresses, and
//! secrets in webhook URLs shown nowhere.

use std::net::{IpAddr, UdpSocket};

use serde_json::{Value, json};
use support::sink::WebhookSink;
use support::{Cli, ClosedPort, Hub, HubOptions, rt};

use crate::bounds::hub_with;

/// This machine's address on its network (not loopback), to call the hub
/// as another machine would; `None` on a machine without one.
fn network_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("198.51.100.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// A hub listening on every address with a token, and a client that calls
/// it through this machine's network address (a caller that is not local).
fn remote_hub(args: &[&str]) -> Option<(Hub, shared::HubClient, shared::HubClient)> {
    let Some(ip) = network_address() else {
        eprintln!("skipped: this machine has no network address to call the hub from");
        return None;
    };
    let mut all = vec!["--host".to_owned(), "0.0.0.0".to_owned()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let hub = Hub::start_with(HubOptions {
        args: all,
        env: vec![("AGENT_EVENT_BUS_TOKEN".into(), "bounds-token".into())],
    });
    let token = Some("bounds-token".to_owned());
    let remote =
        shared::HubClient::new(&format!("http://{ip}:{}/mcp", hub.port), token.clone()).unwrap();
    let local =
        shared::HubClient::new(&format!("http://127.0.0.1:{}/mcp", hub.port), token).unwrap();
    Some((hub, remote, local))
}

fn call(client: &shared::HubClient, tool: &str, args: Value) -> Value {
    rt().block_on(support::call(client, tool, args))
}

#[test]
fn notify_from_another_machine_is_refused_unless_the_hub_allows_it() {
    let Some((_hub, remote, local)) = remote_hub(&[]) else {
        return;
    };
    let ask = json!({"title": "hi", "message": "from afar"});
    let refused = call(&remote, "notify", ask.clone());
    assert_eq!(refused["success"], false, "{refused}");
    assert_eq!(
        refused["error"],
        "notify is off for callers on other machines"
    );
    assert!(
        refused["hint"]
            .as_str()
            .unwrap()
            .contains("--allow-remote-notify"),
        "{refused}"
    );
    let here = call(&local, "notify", ask.clone());
    assert!(here.get("error").is_none(), "a local caller may: {here}");
    assert_eq!(here["title"], "hi");

    let Some((_hub, remote, _)) = remote_hub(&["--allow-remote-notify"]) else {
        return;
    };
    let allowed = call(&remote, "notify", ask);
    assert!(allowed.get("error").is_none(), "{allowed}");
    assert_eq!(allowed["message"], "from afar");
}

#[test]
fn test_webhook_is_rate_limited_per_webhook_and_per_hub() {
    let hub = Hub::start();
    let sink = WebhookSink::ok();
    let ids: Vec<Value> = (0..7)
        .map(|n| {
            hub.tool(
                "register_webhook",
                json!({"url": format!("{}/{n}", sink.url)}),
            )["webhook_id"]
                .clone()
        })
        .collect();
    let test = |id: &Value| hub.tool("test_webhook", json!({"webhook_id": id}));
    assert_eq!(test(&ids[0])["success"], true);
    let again = test(&ids[0]);
    assert_eq!(again["error"], "Too many webhook tests", "{again}");
    assert_eq!(again["webhook_id"], ids[0]);
    let wait = again["retry_after_seconds"].as_u64().unwrap();
    assert!((1..=10).contains(&wait), "{again}");
    assert!(
        again["hint"]
            .as_str()
            .unwrap()
            .contains("once every 10 s per webhook and 6 times a minute")
    );
    for id in &ids[1..6] {
        assert_eq!(test(id)["success"], true, "six tests a minute per hub");
    }
    let seventh = test(&ids[6]);
    assert_eq!(seventh["error"], "Too many webhook tests", "{seventh}");
    assert_eq!(sink.received().len(), 6, "refused tests sent nothing");
}

#[test]
fn test_webhook_tells_a_remote_caller_nothing_about_a_private_address() {
    let Some((hub, remote, local)) = remote_hub(&[]) else {
        return;
    };
    let closed = ClosedPort::new();
    let register = |n: u32| {
        call(
            &local,
            "register_webhook",
            json!({"url": format!("{}/{n}", closed.url())}),
        )["webhook_id"]
            .clone()
    };
    let (near, far) = (register(1), register(2));
    let here = call(&local, "test_webhook", json!({"webhook_id": near}));
    assert_eq!(here["success"], false);
    assert!(
        here["error"].as_str().unwrap().contains("connection"),
        "a local caller hears why: {here}"
    );
    assert!(here["latency_ms"].is_u64(), "{here}");

    let there = call(&remote, "test_webhook", json!({"webhook_id": far}));
    assert_eq!(there["success"], false);
    assert!(
        there["error"]
            .as_str()
            .unwrap()
            .starts_with("the test failed; details are withheld"),
        "{there}"
    );
    assert!(
        there["latency_ms"].is_null() && there["status_code"].is_null(),
        "{there}"
    );
    let log = call(
        &remote,
        "list_webhook_deliveries",
        json!({"webhook_id": far}),
    );
    assert_eq!(
        log["deliveries"][0]["error"], there["error"],
        "the log holds no more: {log}"
    );
    drop(hub);
}

#[test]
fn test_webhook_is_held_to_deny_private() {
    let hub = hub_with(&["--webhook-deny-private"]);
    let sink = WebhookSink::ok();
    // A name, so registration cannot judge it; the ping resolves it.
    let url = sink.url.replace("127.0.0.1", "localhost");
    let id = hub.tool("register_webhook", json!({"url": url}))["webhook_id"].clone();
    let tested = hub.tool("test_webhook", json!({"webhook_id": id}));
    assert_eq!(tested["success"], false, "{tested}");
    assert!(
        tested["error"]
            .as_str()
            .unwrap()
            .contains("--webhook-deny-private"),
        "{tested}"
    );
    assert!(sink.received().is_empty());
}

#[test]
fn secrets_in_webhook_urls_are_shown_nowhere() {
    let hub = Hub::start();
    let secret = "T0ps3cr3tT0k3n";
    for url in [
        format!("https://hooks.slack.com/services/T01/B02/{secret}"),
        format!("https://discord.com/api/webhooks/1234/{secret}"),
        format!("https://chat.googleapis.com/v1/spaces/S/messages?key=k&token={secret}"),
    ] {
        let reply = hub.tool("register_webhook", json!({"url": url}));
        assert!(!reply.to_string().contains(secret), "{reply}");
        assert!(reply["url"].as_str().unwrap().contains("***"), "{reply}");
    }
    let listed = hub.tool("list_webhooks", json!({}));
    assert!(!listed.to_string().contains(secret), "{listed}");
    assert!(
        listed
            .to_string()
            .contains("https://discord.com/api/webhooks/1234/***"),
        "{listed}"
    );
    let cli = Cli::new(&hub).run(&["webhook", "list"]);
    assert!(
        cli.stdout
            .contains("URL: https://hooks.slack.com/services/***/***/***"),
        "{cli:#?}"
    );
    assert!(!cli.stdout.contains(secret) && !hub.log().contains(secret));
}
