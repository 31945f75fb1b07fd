//! A webhook disabled by the hub: on 410 Gone, or after failing for the
//! configured span; enabling it again clears the hub's reason.

use std::time::Duration;

use serde_json::json;
use support::sink::WebhookSink;
use support::{Cli, Hub};

use super::{DEADLINE, hub_with, pending, register, wait_for_log, webhook_info};

#[test]
fn gone_disables_the_webhook() {
    let hub = Hub::start();
    let gone = WebhookSink::with(|_| (410, Duration::ZERO));
    let marker = WebhookSink::ok();
    let id = register(&hub, json!({"url": gone.url}));
    register(&hub, json!({"url": marker.url}));
    hub.publish("s", "t", "first", "all");
    let rows = wait_for_log(&hub, id, "the 410", |rows| !rows.is_empty());
    assert_eq!(rows[0]["status"], "failed");
    assert_eq!(rows[0]["status_code"], 410);
    let info = webhook_info(&hub, id);
    assert_eq!(info["active"], false);
    assert!(
        info["disabled_reason"].as_str().unwrap().contains("410"),
        "{info}"
    );
    assert!(info["disabled_at"].is_string(), "{info}");
    assert_eq!(
        hub.tool("list_webhooks", json!({}))
            .as_array()
            .unwrap()
            .len(),
        1,
        "only the live one is listed by default"
    );

    hub.publish("s", "t", "second", "all");
    marker.wait_for(2, DEADLINE);
    assert_eq!(
        pending(&hub, id),
        0,
        "nothing queued for a disabled endpoint"
    );
    assert_eq!(
        gone.received().len(),
        1,
        "a gone endpoint gets nothing more"
    );

    let listed = Cli::new(&hub).run(&["webhook", "list", "--all"]);
    assert!(
        listed
            .stdout
            .contains("Disabled by the hub: the endpoint answered 410 Gone"),
        "{listed:?}"
    );
    // Enabling again clears the hub's reason.
    hub.tool(
        "set_webhook_active",
        json!({"webhook_id": id, "active": true}),
    );
    let info = webhook_info(&hub, id);
    assert_eq!(info["active"], true);
    assert!(info.get("disabled_reason").is_none(), "{info}");
}

#[test]
fn failing_for_the_configured_span_disables_the_webhook() {
    let hub = hub_with(&[
        "--webhook-disable-after",
        "1s",
        "--webhook-retry-delays",
        "200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms",
    ]);
    let down = WebhookSink::with(|_| (500, Duration::ZERO));
    let id = register(&hub, json!({"url": down.url}));
    hub.publish("s", "t", "p", "all");
    let info = support::wait_until("the webhook to be disabled", DEADLINE, || {
        let info = webhook_info(&hub, id);
        (info["active"] == false).then_some(info)
    });
    let reason = info["disabled_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("every attempt failed for 1s (since "),
        "{reason}"
    );
    assert!(info["failing_since"].is_string() && info["disabled_at"].is_string());
    let reply = hub.tool("list_webhook_deliveries", json!({"webhook_id": id}));
    assert_eq!(reply["pending"], 0, "{reply}");
    assert_eq!(reply["deliveries"][0]["status"], "failed");
}
