//! End-to-end tests: the cursor rules (resume, peek, narrowing, levels,
//! `has_more`, order) as a table of cases, and the long-poll.

use serde_json::{Value, json};
use support::Hub;

fn ids(page: &Value) -> Vec<u64> {
    page["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {page}"))
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect()
}

/// A hub with one session `s` and five events after its registration:
/// ids r+1..=r+5 on channels all, repo:x, all, session:s, repo:x.
fn fixture() -> (Hub, u64) {
    let hub = Hub::start();
    let reg = hub.register("reader", Some("s"));
    let r: u64 = reg["cursor"].as_str().unwrap().parse().unwrap();
    hub.publish("w", "task_started", "1", "all");
    hub.publish("w", "task_completed", "2", "repo:x");
    hub.tool(
        "publish_event",
        json!({"event_type": "note", "payload": "3", "correlation_id": "c"}),
    );
    hub.publish("w", "note", "4", "session:s");
    hub.publish("w", "ci_failed", "5", "repo:x");
    (hub, r)
}

#[test]
fn cursor_rules_table() {
    struct Case {
        what: &'static str,
        args: Value,
        /// Offsets from the registration cursor.
        want: Vec<u64>,
        /// Whether the saved cursor moved to the page's max.
        consumes: bool,
    }
    let cases = [
        Case {
            what: "resume asc reads everything after registration",
            args: json!({"resume": true, "order": "asc"}),
            want: vec![1, 2, 3, 4, 5],
            consumes: true,
        },
        Case {
            what: "peek does not consume",
            args: json!({"resume": true, "order": "asc", "peek": true}),
            want: vec![1, 2, 3, 4, 5],
            consumes: false,
        },
        Case {
            what: "a channel filter narrows and does not consume",
            args: json!({"resume": true, "order": "asc", "channel": "repo:x"}),
            want: vec![2, 5],
            consumes: false,
        },
        Case {
            what: "several channels",
            args: json!({"resume": true, "order": "asc", "channels": ["repo:x", "session:s"]}),
            want: vec![2, 4, 5],
            consumes: false,
        },
        Case {
            what: "event_types narrows",
            args: json!({"resume": true, "order": "asc", "event_types": ["note"]}),
            want: vec![3, 4],
            consumes: false,
        },
        Case {
            what: "correlation_id narrows",
            args: json!({"resume": true, "correlation_id": "c"}),
            want: vec![3],
            consumes: false,
        },
        Case {
            what: "min_level filters but consumes",
            args: json!({"resume": true, "order": "asc", "min_level": "actionable"}),
            want: vec![4, 5],
            consumes: true,
        },
        Case {
            what: "desc returns newest first",
            args: json!({"resume": true}),
            want: vec![5, 4, 3, 2, 1],
            consumes: true,
        },
        Case {
            what: "limit pages asc",
            args: json!({"resume": true, "order": "asc", "limit": 2}),
            want: vec![1, 2],
            consumes: true,
        },
        Case {
            what: "desc with limit is the newest slice (the desc hazard)",
            args: json!({"resume": true, "limit": 2}),
            want: vec![5, 4],
            consumes: true,
        },
    ];
    for case in cases {
        let (hub, r) = fixture();
        let mut args = case.args.clone();
        args["session_id"] = json!("s");
        let page = hub.tool("get_events", args);
        let want: Vec<u64> = case.want.iter().map(|o| r + o).collect();
        assert_eq!(ids(&page), want, "{}", case.what);
        let max = want.iter().max().copied();
        let raw_max = if case.args.get("min_level").is_some() {
            Some(r + 5)
        } else {
            max
        };
        assert_eq!(
            page["next_cursor"],
            json!(raw_max.map(|m| m.to_string())),
            "{}: next_cursor is the raw max",
            case.what
        );
        let limit = case.args.get("limit").and_then(Value::as_u64).unwrap_or(50);
        assert_eq!(
            page["has_more"],
            json!(limit == 2),
            "{}: has_more",
            case.what
        );
        // What a plain resume sees next tells whether the cursor moved.
        let next = hub.tool(
            "get_events",
            json!({"session_id": "s", "resume": true, "order": "asc"}),
        );
        let after = if case.consumes { raw_max.unwrap() } else { r };
        let expect_next: Vec<u64> = ((after + 1)..=(r + 5)).collect();
        assert_eq!(
            ids(&next),
            expect_next,
            "{}: consumes={}",
            case.what,
            case.consumes
        );
    }
}

#[test]
fn explicit_cursor_wins_and_resume_needs_a_known_session() {
    let (hub, r) = fixture();
    let page = hub.tool(
        "get_events",
        json!({"session_id": "s", "resume": true, "cursor": (r + 3).to_string(), "order": "asc"}),
    );
    assert_eq!(ids(&page), vec![r + 4, r + 5]);
    let unknown = hub.tool(
        "get_events",
        json!({"session_id": "nobody", "resume": true}),
    );
    assert_eq!(
        unknown,
        json!({"error": "Session not found", "session_id": "nobody"})
    );
    // resume without a session id is a plain read.
    let plain = hub.tool(
        "get_events",
        json!({"resume": true, "order": "asc", "limit": 1000}),
    );
    assert_eq!(ids(&plain).len() as u64, r + 5);
    // An empty read keeps the cursor it was given.
    let empty = hub.tool("get_events", json!({"cursor": (r + 5).to_string()}));
    assert_eq!(
        empty,
        json!({"events": [], "next_cursor": (r + 5).to_string(), "has_more": false})
    );
    // A page that exactly fills the limit says there may be more.
    let full = hub.tool(
        "get_events",
        json!({"cursor": (r + 3).to_string(), "limit": 2, "order": "asc"}),
    );
    assert_eq!(full["has_more"], true);
}

#[test]
fn bad_cursors_and_limits_are_clear_errors() {
    let hub = Hub::start();
    for (args, needle) in [
        (json!({"cursor": "abc"}), "Invalid cursor 'abc'"),
        (json!({"cursor": "-3"}), "must not be negative"),
        (json!({"limit": 0}), "limit must be from 1 to 1000"),
        (json!({"limit": 1001}), "limit must be from 1 to 1000"),
        (json!({"limit": -1}), "limit must be from 1 to 1000"),
        (
            json!({"order": "sideways"}),
            "order must be 'asc' or 'desc'",
        ),
        (json!({"min_level": "loud"}), "min_level must be one of"),
        (
            json!({"wait_seconds": 61}),
            "wait_seconds must be from 0 to 60",
        ),
    ] {
        let out = hub.tool_raw("get_events", args.clone());
        assert!(out.is_error(), "{args} should be refused");
        assert!(out.text().contains(needle), "{args}: {}", out.text());
    }
    // Lax coercion, as the original: "5" is 5.
    let ok = hub.tool_raw("get_events", json!({"limit": "5", "peek": "true"}));
    assert!(!ok.is_error(), "{}", ok.text());
}

#[test]
fn a_long_poll_returns_an_event_published_during_its_wait() {
    let hub = Hub::start();
    let reg = hub.register("waiter", Some("w1"));
    let cursor = reg["cursor"].as_str().unwrap().to_owned();
    let client = hub.client();
    let waiter = std::thread::spawn(move || {
        support::rt().block_on(support::call(
            &client,
            "get_events",
            json!({"cursor": cursor, "order": "asc", "wait_seconds": 30, "channel": "session:w1"}),
        ))
    });
    hub.wait_long_polls(1);
    hub.publish("other", "noise", "not for w1", "all");
    let id = hub.publish("other", "dm", "for w1", "session:w1");
    // A page returned on the unrelated publish, or at the deadline, would
    // be empty: the DM in it shows the wait ended on the matching publish.
    let page = waiter.join().unwrap();
    assert_eq!(ids(&page), vec![id]);
}

#[test]
fn a_long_poll_with_nothing_new_returns_an_empty_page_at_its_deadline() {
    let hub = Hub::start();
    let reg = hub.register("waiter", Some("w2"));
    let page = hub.tool(
        "get_events",
        json!({"session_id": "w2", "resume": true, "wait_seconds": 1}),
    );
    assert_eq!(page["events"], json!([]));
    assert_eq!(page["next_cursor"], reg["cursor"]);
    assert_eq!(page["has_more"], false);
}

#[test]
fn a_resumed_long_poll_consumes_what_it_returns() {
    let hub = Hub::start();
    hub.register("waiter", Some("w3"));
    let client = hub.client();
    let waiter = std::thread::spawn(move || {
        support::rt().block_on(support::call(
            &client,
            "get_events",
            json!({"session_id": "w3", "resume": true, "order": "asc", "wait_seconds": 30}),
        ))
    });
    hub.wait_long_polls(1);
    let id = hub.publish("x", "t", "p", "all");
    assert_eq!(ids(&waiter.join().unwrap()), vec![id]);
    let next = hub.tool("get_events", json!({"session_id": "w3", "resume": true}));
    assert_eq!(ids(&next), Vec::<u64>::new());
}

/// A filtered read that finds nothing says how far it looked: its
/// `next_cursor` is the newest id, so the next round (a push loop, `wait`)
/// starts there instead of where the last match was. The session's saved
/// cursor is untouched: narrowed reads never consume.
#[test]
fn a_quiet_filtered_read_moves_its_cursor_to_the_tip() {
    let hub = Hub::start();
    let reg = hub.register("quiet", Some("q"));
    let saved = reg["cursor"].as_str().unwrap().to_owned();
    let dm = hub.publish("w", "note", "for q", "session:q");
    let mut tip = dm;
    for i in 0..5 {
        tip = hub.publish("w", "note", &i.to_string(), "all");
    }
    let quiet = json!({"channel": "session:q", "cursor": dm.to_string(), "order": "asc"});
    let page = hub.tool("get_events", quiet.clone());
    assert_eq!(
        page,
        json!({"events": [], "next_cursor": tip.to_string(), "has_more": false})
    );
    // The same with a session and a long-poll that reaches its deadline.
    let mut waited = quiet.clone();
    waited["session_id"] = json!("q");
    waited["wait_seconds"] = json!(1);
    let page = hub.tool("get_events", waited);
    assert_eq!(page["events"], json!([]));
    assert_eq!(page["next_cursor"], tip.to_string());
    // From the moved cursor, the next DM is the whole page.
    let next = hub.publish("w", "note", "again", "session:q");
    let mut from_tip = quiet;
    from_tip["cursor"] = json!(tip.to_string());
    let page = hub.tool("get_events", from_tip);
    assert_eq!(ids(&page), vec![next]);
    assert_eq!(page["next_cursor"], next.to_string());
    // Unfiltered and with nothing stored past the cursor, it stays put.
    let page = hub.tool("get_events", json!({"cursor": next.to_string()}));
    assert_eq!(page["next_cursor"], next.to_string());
    // The saved cursor did not move: a resumed read still starts after it.
    let resumed = hub.tool(
        "get_events",
        json!({"session_id": "q", "resume": true, "order": "asc", "peek": true, "limit": 1}),
    );
    let first: u64 = saved.parse::<u64>().unwrap() + 1;
    assert_eq!(ids(&resumed), vec![first]);
}

/// A long-poll narrowed to a channel sleeps through publishes elsewhere
/// and returns the first event on its channel, with `next_cursor` at it.
#[test]
fn a_channel_long_poll_returns_the_first_event_on_its_channel() {
    let hub = Hub::start();
    let tip = hub.publish("w", "note", "before", "all");
    let client = hub.client();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        started_tx.send(()).unwrap();
        support::rt().block_on(support::call(
            &client,
            "get_events",
            json!({"cursor": tip.to_string(), "order": "asc", "wait_seconds": 30, "channels": ["session:c", "repo:c"]}),
        ))
    });
    started_rx.recv().unwrap();
    for i in 0..20 {
        hub.publish("w", "noise", &i.to_string(), "all");
    }
    let id = hub.publish("w", "dm", "for c", "repo:c");
    let page = waiter.join().unwrap();
    // Whenever the poll started, only the event on its channels can be in it.
    assert_eq!(ids(&page), vec![id]);
    assert_eq!(page["next_cursor"], id.to_string());
}
