//! The webhook commands of the CLI against real deliveries: the log,
//! redelivery and ping.

use std::time::Duration;

use serde_json::json;
use support::sink::WebhookSink;
use support::{Cli, Hub};

use super::{DEADLINE, assert_signed, event_id, register, wait_for_log};

#[test]
fn cli_shows_the_log_redelivers_and_pings() {
    let hub = Hub::start();
    let sink = WebhookSink::ok();
    let id = register(&hub, json!({"url": sink.url, "secret": "pssst"}));
    let event = hub.publish("s", "t", "p", "all");
    sink.wait_for(1, DEADLINE);
    wait_for_log(&hub, id, "the delivery", |r| !r.is_empty());
    let cli = Cli::new(&hub);
    let ids = id.to_string();

    let out = cli.run(&["webhook", "deliveries", &ids]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with(&format!(
            "Deliveries for webhook #{id} (newest first; 0 pending):"
        )),
        "{out:?}"
    );
    let row = out.stdout.lines().nth(2).unwrap_or_default();
    assert!(
        row.contains(&format!("event {event}")) && row.contains("delivered") && row.contains("200"),
        "{out:?}"
    );
    let json_out = cli.run(&["webhook", "deliveries", &ids, "--json"]);
    let reply = json_out.json();
    assert_eq!(
        reply["deliveries"][0]["delivery_id"],
        format!("evt_{event}_wh_{id}")
    );

    let again = cli.run(&["webhook", "redeliver", &ids, "--event", &event.to_string()]);
    assert_eq!(
        again.stdout,
        format!("Event #{event} queued for webhook #{id}\n"),
        "{again:?}"
    );
    let got = sink.wait_for(2, DEADLINE);
    assert_eq!(got[1].headers["webhook-id"], got[0].headers["webhook-id"]);
    assert_eq!(event_id(&got[1]), event);

    let ping = cli.run(&["webhook", "test", &ids]);
    assert_eq!(ping.code, 0, "{ping:?}");
    assert!(
        ping.stdout
            .starts_with(&format!("Ping to webhook #{id} delivered (HTTP 200, ")),
        "{ping:?}"
    );
    let got = sink.wait_for(3, DEADLINE);
    assert_eq!(got[2].json()["event_type"], "ping");
    assert_eq!(got[2].json()["event_id"], 0);
    assert_signed(&got[2], "pssst");
    let out = cli.run(&["webhook", "deliveries", &ids, "--limit", "1"]);
    assert!(out.stdout.contains("  ping "), "{out:?}");

    let missing = cli.run(&["webhook", "redeliver", &ids, "--event", "9999"]);
    assert_eq!(missing.code, 1);
    assert_eq!(missing.stderr, "Failed: Event not found\n");
    let unknown = cli.run(&["webhook", "deliveries", "77"]);
    assert_eq!(unknown.code, 1);
    assert_eq!(unknown.stderr, "Failed: Webhook not found\n");

    let broken = WebhookSink::with(|_| (500, Duration::ZERO));
    let bid = register(&hub, json!({"url": broken.url}));
    let ping = cli.run(&["webhook", "test", &bid.to_string()]);
    assert_eq!(ping.code, 1, "{ping:?}");
    assert_eq!(
        ping.stderr,
        format!("Ping to webhook #{bid} failed: answered 500\n")
    );
    assert!(!hub.log().contains("pssst"), "secrets are never logged");
}
