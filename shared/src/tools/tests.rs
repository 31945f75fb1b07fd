use serde_json::json;

use super::*;

/// A value of the type `property` declares.
fn sample(property: &Value) -> Value {
    match declared_type(property) {
        "integer" => json!(1),
        "boolean" => json!(true),
        "array" => json!([sample(&property["items"])]),
        _ => match property.get("enum").and_then(|e| e.get(0)) {
            Some(first) => first.clone(),
            // Text that is parsed (a cursor) holds a number.
            None if property.get("x-text").is_some() => json!("1"),
            // An enum whose variants carry docs: one schema per variant.
            None => property
                .get("oneOf")
                .and_then(|o| o.get(0))
                .and_then(|first| first.get("const").or_else(|| first["enum"].get(0)))
                .cloned()
                .unwrap_or_else(|| json!("x")),
        },
    }
}

#[test]
fn every_schema_property_is_a_params_field_and_back() {
    for e in ENTRIES {
        let schema = (e.schema)();
        let properties = schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let arguments: Map<String, Value> = properties
            .iter()
            .map(|(k, p)| (k.clone(), sample(p)))
            .collect();
        let echoed = (e.echo)(Value::Object(arguments))
            .unwrap_or_else(|err| panic!("{}: the schema's arguments do not parse: {err}", e.name));
        let fields: Vec<&String> = echoed
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        let names: Vec<&String> = properties.keys().collect();
        assert_eq!(
            fields, names,
            "{}: Params fields and schema properties differ",
            e.name
        );
    }
}

/// `tools/list` as the hub serves it, pinned: a change to the catalog is a
/// visible diff of `tools_list.json`. Regenerate with
/// `UPDATE_FIXTURES=1 cargo test -p agent-event-bus-shared tools_list`.
#[test]
fn tools_list_matches_its_fixture() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/tools/tools_list.json");
    let mut now =
        serde_json::to_string_pretty(&json!({"tools": crate::catalog::tools()})).expect("JSON");
    now.push('\n');
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        std::fs::write(path, &now).expect("the fixture is writable");
    }
    let pinned = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        pinned == now,
        "tools/list differs from src/tools/tools_list.json; if the change is meant, regenerate it with UPDATE_FIXTURES=1 cargo test -p agent-event-bus-shared tools_list, and review the diff:\n{now}"
    );
}

#[test]
fn lenient_coercion_and_its_messages() {
    let p = parse::<events::GetEvents>(Some(json!({
        "limit": "5", "peek": "true", "channels": "one", "cursor": 7, "wait_seconds": 2.0,
    })))
    .unwrap();
    assert_eq!(p.limit, 5);
    assert!(p.peek);
    assert_eq!(p.channels, Some(vec!["one".to_owned()]));
    assert_eq!(p.cursor, Some(7));
    assert_eq!(p.wait_seconds, 2);
    let err = |tool_args: Value| parse::<events::GetEvents>(Some(tool_args)).unwrap_err();
    assert_eq!(
        err(json!({"limit": "x"})),
        "limit must be a whole number, got \"x\""
    );
    assert_eq!(
        err(json!({"peek": "maybe"})),
        "peek must be true or false, got \"maybe\""
    );
    assert_eq!(
        err(json!({"order": 1})),
        "order must be a string, got a number"
    );
    assert_eq!(
        err(json!({"channels": [1]})),
        "channels must be a list of strings, but an item is a number"
    );
    assert_eq!(
        err(json!({"limit": 0})),
        "limit must be from 1 to 1000 (got 0); page with next_cursor for more"
    );
    let names = |n: usize| (0..n).map(|i| format!("c{i}")).collect::<Vec<_>>();
    let at_edge = json!({"channels": names(63), "channel": "x", "event_types": names(64)});
    assert!(parse::<events::GetEvents>(Some(at_edge)).is_ok());
    assert_eq!(
        err(json!({"channels": names(64), "channel": "x"})),
        "channels has 65 items; the limit is 64"
    );
    assert_eq!(
        err(json!({"event_types": names(65)})),
        "event_types has 65 items; the limit is 64"
    );
    assert_eq!(
        parse::<sessions::RegisterSession>(Some(json!({"name": null}))).unwrap_err(),
        "name is required (a string)"
    );
    assert_eq!(
        parse::<events::AckEvents>(Some(json!({"session_id": "s"}))).unwrap_err(),
        "cursor is required (an event id such as a next_cursor)"
    );
    assert_eq!(
        parse::<sessions::ListSessions>(Some(json!([1]))).unwrap_err(),
        "arguments must be an object, got an array"
    );
    let ids = parse::<receipts::MessageStatus>(Some(json!({"event_ids": "4"}))).unwrap();
    assert_eq!(ids.event_ids, vec![4]);
}

#[test]
fn unknown_arguments_are_named_and_client_injected_ones_dropped() {
    let p = parse::<claims::ListClaims>(Some(
        json!({"prefix": "x", "wait_for_previous": true, "random_string": "r"}),
    ))
    .unwrap();
    assert_eq!(p.prefix.as_deref(), Some("x"));
    assert_eq!(
        parse::<claims::ListClaims>(Some(json!({"prefx": "x", "wait_for_previous": 1})))
            .unwrap_err(),
        "unknown argument prefx; this tool takes: prefix"
    );
    assert_eq!(
        parse::<notify::Notify>(Some(json!({"a": 1, "b": 2}))).unwrap_err(),
        "unknown arguments a, b; this tool takes: title, message, sound"
    );
}

#[test]
fn refusals_read_back_as_written() {
    for refusal in [
        Refusal::SessionNotFound {
            session_id: "s".into(),
        },
        Refusal::ClientNotFound {
            client_id: "c".into(),
            machine: "m".into(),
        },
        Refusal::NoSessionGiven,
        Refusal::cursor_ahead("s".into(), Some(3), 9, 5),
        Refusal::cursor_behind("s".into(), 5, 3),
        Refusal::keyed("s", false),
        Refusal::keyed("s", true),
        Refusal::WebhookNotFound { webhook_id: 2 },
        Refusal::WebhookPaused { webhook_id: 2 },
        Refusal::EventNotFound {
            webhook_id: 2,
            event_id: 4,
        },
        Refusal::WebhookLimit { limit: 100 },
        Refusal::NotifyNotLocal,
        Refusal::TestsLimited {
            webhook_id: 2,
            retry_after_seconds: 7,
        },
    ] {
        let value = refusal.to_value();
        assert_eq!(Refusal::from_value(&value), Some(refusal), "{value}");
    }
    assert_eq!(
        Refusal::WebhookNotFound { webhook_id: 2 }
            .to_value()
            .to_string(),
        r#"{"success":false,"error":"Webhook not found","webhook_id":2}"#
    );
    let full = Refusal::WebhookLimit { limit: 100 }.to_value();
    assert!(
        full["hint"]
            .as_str()
            .unwrap()
            .contains("at most 100 webhooks"),
        "{full}"
    );
    let limited = Refusal::TestsLimited {
        webhook_id: 2,
        retry_after_seconds: 7,
    }
    .to_value();
    assert!(
        limited["hint"]
            .as_str()
            .unwrap()
            .ends_with("try again in 7 s."),
        "{limited}"
    );
    let notify = Refusal::NotifyNotLocal.to_value();
    assert!(
        notify["hint"]
            .as_str()
            .unwrap()
            .contains("--allow-remote-notify"),
        "{notify}"
    );
}

#[test]
fn answers_tell_refusals_from_replies_that_carry_an_error() {
    let out = |value: Value| crate::client::ToolOutput {
        result: crate::mcp::tool_result(&value, false),
    };
    let removed = out(Refusal::WebhookNotFound { webhook_id: 3 }.to_value());
    assert_eq!(
        removed.answer::<webhooks::UnregisterWebhook>().unwrap(),
        Err(Refusal::WebhookNotFound { webhook_id: 3 })
    );
    let ping = out(json!({
        "success": false, "webhook_id": 3, "event_id": 0, "delivery_id": "d",
        "attempt": 1, "status": "failed", "attempted_at": "t", "error": "connection refused",
    }));
    let tested = ping.answer::<webhooks::TestWebhook>().unwrap().unwrap();
    assert_eq!(tested.attempt.error.as_deref(), Some("connection refused"));
}

/// What declaring every tool's `outputSchema` would add to `tools/list`
/// (`cargo test -p agent-event-bus-shared output_schema_cost -- --ignored --nocapture`).
#[test]
#[ignore = "a measurement, not a check"]
fn output_schema_cost() {
    let mut total = 0;
    let mut bare = 0;
    for e in ENTRIES.iter().filter(|e| e.listed) {
        let mut schema = (e.output)();
        let full = serde_json::to_string(&schema).unwrap().len() + ",\"outputSchema\":".len();
        strip_descriptions(&mut schema);
        let short = serde_json::to_string(&schema).unwrap().len() + ",\"outputSchema\":".len();
        eprintln!(
            "{:26} {full:5} bytes ({short} without descriptions)",
            e.name
        );
        total += full;
        bare += short;
    }
    eprintln!("all tools: {total} bytes ({bare} without descriptions)");
}

fn strip_descriptions(schema: &mut Value) {
    if let Value::Object(map) = schema {
        map.remove("description");
        map.values_mut().for_each(strip_descriptions);
    } else if let Value::Array(items) = schema {
        items.iter_mut().for_each(strip_descriptions);
    }
}

#[test]
fn get_events_reads_order_level_and_cursor_as_parsed_values() {
    let p = parse::<events::GetEvents>(Some(json!({
        "cursor": " 7 ", "order": "asc", "min_level": "info",
    })))
    .unwrap();
    assert_eq!(
        (p.cursor, p.order, p.min_level),
        (
            Some(7),
            events::Order::Asc,
            Some(crate::level::SignalLevel::Info)
        )
    );
    let blank = parse::<events::GetEvents>(Some(json!({"cursor": " "}))).unwrap();
    assert_eq!(blank.cursor, None, "a blank cursor is none");
    let err = |tool_args: Value| {
        parse::<events::GetEvents>(Some(tool_args))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(json!({"order": "up"})),
        "order must be 'asc' or 'desc' (got 'up')"
    );
    assert_eq!(
        err(json!({"min_level": "loud"})),
        "min_level must be one of lifecycle, info, actionable (got 'loud')"
    );
    assert_eq!(
        err(json!({"cursor": "abc"})),
        "Invalid cursor 'abc': expected an event id; pass a next_cursor from an earlier reply, or omit cursor to read from the start"
    );
    assert_eq!(
        err(json!({"cursor": "-1"})),
        "Invalid cursor '-1': must not be negative"
    );
    assert_eq!(
        err(json!({"wait_seconds": 61})),
        "wait_seconds must be from 0 to 60 (got 61)"
    );
    // The checks keep their order: the limit before the order before the cursor.
    assert_eq!(
        err(json!({"limit": 0, "order": "up", "cursor": "x"})),
        "limit must be from 1 to 1000 (got 0); page with next_cursor for more"
    );
    assert_eq!(
        err(json!({"order": "up", "cursor": "x"})),
        "order must be 'asc' or 'desc' (got 'up')"
    );
    // A client's typed params travel as the wire form.
    let sent = events::GetParams {
        cursor: Some(3),
        order: events::Order::Asc,
        min_level: Some(crate::level::SignalLevel::Actionable),
        ..events::GetParams::default()
    };
    assert_eq!(
        serde_json::to_value(&sent).unwrap(),
        json!({"cursor": "3", "limit": 50, "order": "asc", "resume": false, "peek": false, "min_level": "actionable", "wait_seconds": 0})
    );
    let back: events::GetParams =
        serde_json::from_value(serde_json::to_value(&sent).unwrap()).unwrap();
    assert_eq!(back, sent);
}

#[test]
fn bad_arguments_say_which_tool() {
    let invalid = Invalid::of::<events::GetEvents>(ArgError::Order("up".into()));
    assert_eq!(
        invalid.to_string(),
        "Invalid arguments for get_events: order must be 'asc' or 'desc' (got 'up')"
    );
}
