//! Where deliveries may go: `--webhook-deny-private` at registration and
//! after DNS, also behind an environment's proxy; credentials in a URL
//! never shown; a redirect never followed.

use base64::Engine;
use serde_json::json;
use support::sink::{Answer, WebhookSink};
use support::{Cli, Hub, HubOptions};

use super::{DEADLINE, event_id, hub_with, register, wait_for_log, webhook_info};

#[test]
fn deny_private_is_checked_at_registration_and_after_dns_at_send_time() {
    let hub = hub_with(&["--webhook-deny-private"]);
    let sink = WebhookSink::ok();
    let literal = hub.tool_raw("register_webhook", json!({"url": sink.url}));
    assert!(literal.is_error());
    assert!(
        literal.text().contains("private address"),
        "{}",
        literal.text()
    );

    // A name is resolved when sending: localhost resolves to loopback only.
    let by_name = sink.url.replace("127.0.0.1", "localhost");
    let id = register(&hub, json!({"url": by_name}));
    hub.publish("s", "t", "p", "all");
    let rows = wait_for_log(&hub, id, "the refused attempt", |r| !r.is_empty());
    assert_eq!(
        rows[0]["status"], "failed",
        "a policy refusal is not retried"
    );
    let error = rows[0]["error"].as_str().unwrap();
    assert!(error.contains("--webhook-deny-private"), "{error}");
    let ping = hub.tool("test_webhook", json!({"webhook_id": id}));
    assert_eq!(ping["success"], false);
    assert!(
        sink.received().is_empty(),
        "nothing reached the private target"
    );
}

/// A hub whose environment sends HTTP through `proxy`.
fn hub_behind_proxy(proxy: &WebhookSink, args: &[&str]) -> Hub {
    let proxy_url = proxy.url.trim_end_matches("/hook").to_owned();
    Hub::start_with(HubOptions {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        env: ["HTTP_PROXY", "http_proxy", "ALL_PROXY"]
            .into_iter()
            .map(|k| (k.to_owned(), proxy_url.clone()))
            .collect(),
    })
}

#[test]
fn deny_private_holds_when_the_environment_names_a_proxy() {
    // The "proxy" is a local receiver: whatever reaches it has left the
    // hub for a loopback address.
    let proxy = WebhookSink::ok();
    let target = WebhookSink::ok();
    let by_name = target.url.replace("127.0.0.1", "localhost");

    let hub = hub_behind_proxy(&proxy, &["--webhook-deny-private"]);
    let id = register(&hub, json!({"url": by_name}));
    hub.publish("s", "t", "p", "all");
    let rows = wait_for_log(&hub, id, "the refused attempt", |r| !r.is_empty());
    assert_eq!(rows[0]["status"], "failed", "{rows:?}");
    let error = rows[0]["error"].as_str().unwrap();
    assert!(error.contains("--webhook-deny-private"), "{error}");
    assert!(
        proxy.received().is_empty(),
        "nothing went through the proxy"
    );
    assert!(target.received().is_empty(), "nothing reached the target");

    // Without the policy the environment's proxy is used as usual.
    let open = hub_behind_proxy(&proxy, &[]);
    let id = register(&open, json!({"url": by_name}));
    let event = open.publish("s", "t", "p", "all");
    let via_proxy = proxy.wait_for(1, DEADLINE);
    assert_eq!(event_id(&via_proxy[0]), event);
    assert!(
        via_proxy[0].path.starts_with("http://localhost:"),
        "sent to the proxy in absolute form: {}",
        via_proxy[0].path
    );
    wait_for_log(&open, id, "the delivery", |r| {
        r.first().is_some_and(|row| row["status"] == "delivered")
    });
    assert!(
        target.received().is_empty(),
        "the proxy, not the target, got it"
    );
}

#[test]
fn credentials_in_a_webhook_url_are_never_shown() {
    let hub = Hub::start();
    let sink = WebhookSink::ok();
    let with_credentials = sink
        .url
        .replace("http://", "http://hook-user:hunter2-secret@");
    let reply = hub.tool("register_webhook", json!({"url": with_credentials}));
    let shown = sink.url.replace("http://", "http://***@");
    assert_eq!(reply["url"], shown, "{reply}");
    let id = reply["webhook_id"].as_u64().unwrap();
    assert_eq!(webhook_info(&hub, id)["url"], shown);

    // The receiver still gets the credentials it was given.
    hub.publish("s", "t", "p", "all");
    let got = sink.wait_for(1, DEADLINE);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("hook-user:hunter2-secret")
    );
    assert_eq!(got[0].headers.get("authorization"), Some(&expected));

    let cli = Cli::new(&hub);
    for args in [
        &["webhook", "list"][..],
        &["webhook", "list", "--all"][..],
        &["webhook", "deliveries", &id.to_string(), "--json"][..],
    ] {
        let out = cli.run(args);
        assert_eq!(out.code, 0, "{out:?}");
        assert!(!out.stdout.contains("hunter2"), "{args:?}: {out:?}");
    }
    assert!(
        cli.run(&["webhook", "list"])
            .stdout
            .contains("***@127.0.0.1"),
        "the list shows where it goes"
    );
    assert!(!hub.log().contains("hunter2"), "never logged");
}

#[test]
fn a_redirect_is_not_followed() {
    let hub = hub_with(&["--webhook-retry-delays", "50ms"]);
    let elsewhere = WebhookSink::ok();
    let target = elsewhere.url.clone();
    let moved = WebhookSink::answering(move |_| Answer {
        status: 301,
        headers: vec![("location".into(), target.clone())],
        ..Default::default()
    });
    let id = register(&hub, json!({"url": moved.url}));
    hub.publish("s", "t", "p", "all");
    let rows = wait_for_log(&hub, id, "both attempts", |r| {
        r.first().is_some_and(|r| r["status"] == "failed")
    });
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1]["error"], "answered 301; redirects are not followed");
    assert!(
        elsewhere.received().is_empty(),
        "the redirect was not followed"
    );
}
