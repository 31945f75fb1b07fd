//! Sizes and waits: a long poll not cut off, a call the hub refuses as
//! too large, and lines over the frame limit answered with memory bounded.

use serde_json::{Value, json};
use support::Hub;
use support::proxy::registered_proxy;

#[test]
fn a_long_poll_whose_wait_is_text_or_a_float_is_not_cut_off() {
    // Longer than the client's 10 s allowance for an ordinary call: only a
    // timeout that reads wait_seconds as the hub does lets these finish.
    let hub = Hub::start();
    let (mut proxy, _) = registered_proxy(&hub, "patient-poller", &[]);
    for (id, wait) in [("text", json!("11")), ("float", json!(11.0))] {
        proxy.send(&json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "get_events", "arguments": {
                "channel": "quiet-channel", "wait_seconds": wait,
            }},
        }));
    }
    for id in ["text", "float"] {
        let reply = proxy.wait_reply(&json!(id));
        let result = &reply["result"];
        assert_eq!(result["isError"], json!(false), "{id}: {reply}");
        assert_eq!(
            result["structuredContent"]["events"],
            json!([]),
            "{id}: {reply}"
        );
    }
}

#[test]
fn a_call_the_hub_refuses_as_too_large_is_reported_as_such() {
    let hub = Hub::start();
    let (mut proxy, _) = registered_proxy(&hub, "big-sender", &[]);
    // Over the hub's 1 MiB body limit, under the proxy's frame limit.
    let payload = "y".repeat(2 * 1024 * 1024);
    let out = proxy.call(
        "publish_event",
        json!({"event_type": "big", "payload": payload, "channel": "all"}),
    );
    assert!(out.is_error(), "{}", out.text());
    let text = out.text();
    assert!(
        text.contains("too large") && text.contains("limit") && !text.contains("not reachable"),
        "{text}"
    );
    // The proxy and the hub carry on.
    proxy.call_ok("list_sessions", json!({}));
}

#[test]
fn lines_it_cannot_take_get_json_rpc_errors_and_memory_stays_bounded() {
    let hub = Hub::start();
    let (mut proxy, _) = registered_proxy(&hub, "frames", &[]);
    let before = proxy.rss_kib();

    // Over the frame limit, with a readable id: an error for that id.
    let filler = "z".repeat(6 * 1024 * 1024);
    for id in 0..3 {
        let line = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"tools/call\",\"params\":{{\"name\":\"publish_event\",\"arguments\":{{\"event_type\":\"x\",\"payload\":\"{filler}\"}}}}}}\n",
            1000 + id
        );
        proxy.send_raw(line.as_bytes());
        let reply = proxy.wait_reply(&json!(1000 + id));
        assert_eq!(reply["error"]["code"], json!(-32600), "{reply}");
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("too large"), "{message}");
    }
    // Over the limit with no id to be read, and plain garbage: -32700, id null.
    for line in [format!("{filler}\n"), "this is not json\n".to_owned()] {
        proxy.send_raw(line.as_bytes());
        let reply = proxy.wait_reply(&Value::Null);
        assert_eq!(reply["error"]["code"], json!(-32700), "{reply}");
    }
    // Under the frame limit but over the hub's: answered, as too large.
    let payload = "w".repeat(3 * 1024 * 1024);
    for _ in 0..2 {
        let out = proxy.call(
            "publish_event",
            json!({"event_type": "big", "payload": payload, "channel": "all"}),
        );
        assert!(
            out.is_error() && out.text().contains("too large"),
            "{}",
            out.text()
        );
    }

    // It carries on, and did not keep the big lines' memory.
    proxy.call_ok("list_sessions", json!({}));
    let after = proxy.rss_kib();
    eprintln!("proxy RSS: {before} KiB before, {after} KiB after ~27 MiB of big lines");
    assert!(
        after < before + 32 * 1024,
        "the proxy kept {} KiB after big lines ({before} KiB before)",
        after - before
    );
    proxy.assert_stdout_is_json_rpc();
}
