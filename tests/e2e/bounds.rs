//! End-to-end tests of the bounds on what one client can make the hub hold
//! or do, each at its edge: webhooks per hub and event types per webhook,
//! channels and types per read, page bytes, list sizes, and desktop
//! notifiers in flight. What reaches outside the hub (`notify`,
//! `test_webhook`, webhook URLs) is in `egress`.

use serde_json::{Value, json};
use support::{Cli, Hub, HubOptions};

pub(crate) fn hub_with(args: &[&str]) -> Hub {
    Hub::start_with(HubOptions {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        ..HubOptions::default()
    })
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn register_webhook(hub: &Hub, args: Value) -> shared::ToolOutput {
    hub.tool_raw("register_webhook", args)
}

#[test]
fn webhooks_past_the_hub_limit_are_refused_until_one_is_removed() {
    let hub = hub_with(&["--max-webhooks", "2", "--max-webhook-event-types", "3"]);
    let url = |n: u32| json!({"url": format!("http://127.0.0.1:9/{n}")});
    let first = hub.tool("register_webhook", url(1));
    hub.tool("register_webhook", url(2));
    let refused = hub.tool("register_webhook", url(3));
    assert_eq!(refused["success"], false, "{refused}");
    assert_eq!(refused["error"], "Webhook limit reached");
    assert_eq!(refused["limit"], 2);
    let hint = refused["hint"].as_str().unwrap();
    assert!(
        hint.contains("at most 2 webhooks") && hint.contains("--max-webhooks"),
        "{hint}"
    );
    assert_eq!(
        hub.tool("list_webhooks", json!({"active_only": false}))
            .as_array()
            .unwrap()
            .len(),
        2
    );

    hub.tool(
        "unregister_webhook",
        json!({"webhook_id": first["webhook_id"]}),
    );
    assert!(
        hub.tool("register_webhook", url(3))["webhook_id"].is_u64(),
        "a slot was freed"
    );

    // Event types: at the limit is fine (repeats count once), past it is a
    // bad argument that says the limit; neither changes anything.
    hub.tool("unregister_webhook", json!({"webhook_id": 2}));
    let types = json!({"url": "http://127.0.0.1:9/t", "event_types": ["a", "b", "c", "a"]});
    let kept = hub.tool("register_webhook", types);
    assert_eq!(kept["event_types"], json!(["a", "b", "c"]));
    hub.tool(
        "unregister_webhook",
        json!({"webhook_id": kept["webhook_id"]}),
    );
    let out = register_webhook(
        &hub,
        json!({"url": "http://127.0.0.1:9/t", "event_types": ["a", "b", "c", "d"]}),
    );
    assert!(out.is_error(), "{:?}", out.result);
    assert!(
        out.text()
            .contains("event_types has 4 items; the limit is 3"),
        "{}",
        out.text()
    );
    assert_eq!(
        hub.tool("list_webhooks", json!({}))
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_read_takes_at_most_64_channels_and_64_event_types() {
    let hub = Hub::start();
    let event = hub.publish("a", "c63", "found", "c63");
    let at_edge = hub.tool(
        "get_events",
        json!({"channels": names("c", 64), "event_types": names("c", 64), "order": "asc"}),
    );
    assert_eq!(at_edge["events"][0]["id"], event, "{at_edge}");
    for (args, what) in [
        (
            json!({"channels": names("c", 64), "channel": "x"}),
            "channels has 65 items; the limit is 64",
        ),
        (
            json!({"event_types": names("t", 65)}),
            "event_types has 65 items; the limit is 64",
        ),
    ] {
        let out = hub.tool_raw("get_events", args);
        assert!(
            out.is_error() && out.text().contains(what),
            "{:?}",
            out.result
        );
    }
}

/// The JSON size of a page's events, as the limit counts it.
fn page_bytes(page: &Value) -> usize {
    let events = page["events"].as_array().unwrap();
    events.iter().map(|e| e.to_string().len()).sum::<usize>() + events.len().saturating_sub(1)
}

#[test]
fn pages_stop_at_the_byte_limit_and_the_next_starts_right_after() {
    let hub = hub_with(&["--max-page-bytes", "2000"]);
    let sizes = [300, 300, 300, 300, 300, 300, 5000, 10, 1500, 10];
    let ids: Vec<u64> = sizes
        .iter()
        .map(|n| hub.publish("a", "note", &"x".repeat(*n), "all"))
        .collect();
    for filtered in [false, true] {
        let mut cursor = "0".to_owned();
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let mut args = json!({"cursor": cursor, "order": "asc", "limit": 1000});
            if filtered {
                args["channel"] = json!("all");
            }
            let page = hub.tool("get_events", args);
            let events = page["events"].as_array().unwrap();
            assert!(!events.is_empty(), "{page}");
            assert!(
                page_bytes(&page) <= 2000 || events.len() == 1,
                "{} bytes in {} events",
                page_bytes(&page),
                events.len()
            );
            seen.extend(events.iter().map(|e| e["id"].as_u64().unwrap()));
            pages += 1;
            let last = events.last().unwrap()["id"].to_string();
            assert_eq!(
                page["next_cursor"], last,
                "the next page starts after the last event"
            );
            if page["has_more"] == false {
                break;
            }
            cursor = last;
        }
        assert_eq!(
            seen, ids,
            "every event once, in order (filtered: {filtered})"
        );
        assert!(pages >= 4, "{pages} pages");
    }
    // The 5000-byte event, larger than the limit, comes alone.
    let big = hub.tool(
        "get_events",
        json!({"cursor": ids[5].to_string(), "order": "asc"}),
    );
    assert_eq!(big["events"].as_array().unwrap().len(), 1);
    assert_eq!(big["events"][0]["id"], ids[6]);
    assert_eq!(big["has_more"], true);

    // A consuming read moves the session's cursor only past what it returned.
    let me = support::id_of(&hub.register("reader", Some("reader-1")));
    hub.tool(
        "ack_events",
        json!({"session_id": me, "cursor": "0", "allow_rewind": true}),
    );
    let first = hub.tool(
        "get_events",
        json!({"session_id": me, "resume": true, "order": "asc"}),
    );
    let next = hub.tool(
        "get_events",
        json!({"session_id": me, "resume": true, "order": "asc"}),
    );
    let last_of_first = first["events"].as_array().unwrap().last().unwrap()["id"]
        .as_u64()
        .unwrap();
    assert_eq!(
        next["events"][0]["id"],
        last_of_first + 1,
        "{first}\n{next}"
    );
}

/// A list tool's raw reply: its items, and whether it says it was cut.
fn listed(hub: &Hub, tool: &str) -> (usize, Option<Value>, Value) {
    let out = hub.tool_raw(tool, json!({}));
    let structured = out.result["structuredContent"].clone();
    let items = structured["result"].as_array().map_or(0, Vec::len);
    let text: Value =
        serde_json::from_str(out.text().as_str()).expect("the first block is the list");
    assert_eq!(
        text.as_array().map(Vec::len),
        Some(items),
        "the text is the same list"
    );
    (items, structured.get("truncated").cloned(), out.result)
}

#[test]
fn lists_past_the_limit_are_cut_and_say_so() {
    let hub = hub_with(&["--max-list-items", "3"]);
    for n in 0..3 {
        hub.register(&format!("s{n}"), Some(&format!("s{n}")));
    }
    // At the limit: the original's shape, nothing added.
    let (items, truncated, whole) = listed(&hub, "list_sessions");
    assert_eq!((items, truncated), (3, None), "{whole}");
    assert_eq!(whole["content"].as_array().unwrap().len(), 1);
    let newest = support::id_of(&hub.register("s3", Some("s3")));

    for tool in [
        "list_sessions",
        "list_channels",
        "list_claims",
        "list_webhooks",
    ] {
        if tool == "list_claims" {
            for n in 0..4 {
                hub.tool(
                    "claim",
                    json!({"resource": format!("task:{n}"), "session_id": newest}),
                );
            }
        }
        if tool == "list_webhooks" {
            for n in 0..4 {
                hub.tool(
                    "register_webhook",
                    json!({"url": format!("http://127.0.0.1:9/{n}")}),
                );
            }
        }
        let (items, truncated, result) = listed(&hub, tool);
        assert_eq!(
            (items, truncated),
            (3, Some(json!(true))),
            "{tool}: {result}"
        );
        let note = result["content"][1]["text"].as_str().unwrap();
        assert!(
            note.contains(&format!("{tool} was cut: only the first 3 items"))
                && note.contains("--max-list-items"),
            "{note}"
        );
    }
    let sessions = hub.tool("list_sessions", json!({}));
    assert_eq!(
        sessions[0]["session_id"], newest,
        "the most recently active come first"
    );

    let out = Cli::new(&hub).run(&["sessions"]);
    assert!(out.stdout.contains("Active sessions (3):"), "{out:#?}");
    assert!(out.stderr.contains("list_sessions was cut"), "{out:#?}");
}

/// A stand-in `notify-send` that records each call's message (its last
/// argument, one line, appended in one write so that notifiers running
/// together never interleave) and then holds until `<dir>/release` exists.
#[cfg(target_os = "linux")]
fn holding_notifier(dir: &std::path::Path) -> String {
    let path = dir.join("notify-send");
    std::fs::write(
        &path,
        "#!/bin/sh\nfor last; do :; done\nline=$(printf '%s' \"$last\" | tr '\\n' ' ')\nprintf '%s\\n' \"$line\" >>\"$0.log\"\n\
         while [ ! -e \"$(dirname \"$0\")/release\" ]; do sleep 0.05; done\n",
    )
    .unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).unwrap();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[cfg(target_os = "linux")]
#[test]
fn a_flood_of_direct_messages_runs_at_most_four_notifiers() {
    let tools = tempfile::tempdir().unwrap();
    let path = holding_notifier(tools.path());
    let hub = Hub::start_with(HubOptions {
        env: vec![("PATH".into(), path), ("DISPLAY".into(), ":99".into())],
        ..HubOptions::default()
    });
    let calls = || {
        std::fs::read_to_string(tools.path().join("notify-send.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // A local session without a lease: the hub announces its direct messages.
    let bob = support::id_of(&hub.register("bob", Some("bob-1")));
    // Twelve: four run, and the eighth drop is logged (drops are logged at
    // each power of two), so every notice has been decided before release.
    for n in 0..12 {
        hub.publish(
            "alice",
            "ping",
            &format!("flood {n}"),
            &format!("session:{bob}"),
        );
    }
    support::wait_until(
        "the eighth dropped notice to be logged",
        std::time::Duration::from_secs(20),
        || hub.log().contains("dropped=8").then_some(()),
    );
    support::wait_until(
        "four notifiers to start",
        std::time::Duration::from_secs(20),
        || (calls().len() == 4).then_some(()),
    );
    // Released, later messages are shown again; the dropped ones never
    // are. The hub frees a notifier's slot once it has reaped it, a moment
    // after the release, so later messages are sent until one shows.
    std::fs::write(tools.path().join("release"), "").unwrap();
    let mut sent = 0;
    support::wait_until(
        "a notice after the flood",
        std::time::Duration::from_secs(30),
        || {
            if calls().iter().any(|c| c.contains("after the flood")) {
                return Some(());
            }
            sent += 1;
            hub.publish(
                "alice",
                "ping",
                &format!("after the flood {sent}"),
                &format!("session:{bob}"),
            );
            None
        },
    );
    let shown = calls();
    let floods = shown
        .iter()
        .filter(|c| c.contains("flood ") && !c.contains("after"))
        .count();
    assert_eq!(floods, 4, "only the four notices that ran show: {shown:#?}");
    assert!(
        shown[..4].iter().all(|c| !c.contains("after")),
        "{shown:#?}"
    );
}
