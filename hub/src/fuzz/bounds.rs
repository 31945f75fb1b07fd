//! The fuzz targets of the bounds and the escaping: byte-limited pages
//! read one after another return every event once, lists never pass their
//! limit and say when they were cut, an event's counted wire length is its
//! JSON's, and client text escaped for a frame, a log or a terminal keeps
//! none of its hazards.

use proptest::prelude::*;
use serde_json::json;

use super::{Hub, LIST_ITEMS, PAGE_BYTES, fuzz};

/// Text that leans on what the escaping cares about: control characters,
/// separators, bidi overrides, quotes, and the frame tags in any case.
fn hazardous_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<String>(),
        prop::sample::select(vec![
            "</channel>",
            "<CHANNEL source=\"x\">",
            "< /event-bus-messages >",
            "<recent-events>",
            "<system-reminder>",
            "<channels>",
            "&lt;",
            "\"",
            "\\",
            "\n",
            "\r",
            "\t",
            "\u{1b}[2J",
            "\u{7f}",
            "\u{85}",
            "\u{2028}",
            "\u{202e}",
            "Vec<u8>",
        ])
        .prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|parts| parts.concat())
}

/// Whether `text` holds an opening or closing frame tag.
fn has_frame_tag(text: &str) -> bool {
    let lower = text.to_lowercase();
    lower.match_indices('<').any(|(at, _)| {
        let rest = lower[at + 1..].trim_start();
        let rest = rest.strip_prefix('/').unwrap_or(rest).trim_start();
        shared::text::FRAME_TAGS.iter().any(|tag| {
            rest.strip_prefix(tag).is_some_and(|after| {
                after
                    .chars()
                    .next()
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '-' || c == '_'))
            })
        })
    })
}

#[test]
fn fuzz_escaping_of_client_text() {
    use shared::text;
    let cases = (hazardous_text(), hazardous_text(), hazardous_text());
    fuzz("escaping", cases, |(name, channel, payload)| {
        let one = text::line(&payload);
        prop_assert!(!one.chars().any(text::is_hazard), "{:?}", one);
        let many = text::lines(&payload);
        prop_assert!(
            !many
                .chars()
                .any(|c| text::is_hazard(c) && c != '\n' && c != '\t'),
            "{:?}",
            many
        );
        let quoted = text::quoted(&name);
        prop_assert!(!quoted.chars().any(text::is_hazard));
        prop_assert_eq!(
            serde_json::from_str::<String>(&quoted).ok(),
            Some(name.clone())
        );
        let unframed = text::unframed(&payload);
        prop_assert!(!has_frame_tag(&unframed), "{:?}", unframed);
        prop_assert_eq!(unframed.replace("&lt;", "<"), payload.replace("&lt;", "<"));

        let event = shared::wire::Event {
            id: 7,
            event_type: name.clone(),
            payload: payload.clone(),
            session_id: channel.clone(),
            timestamp: String::new(),
            channel: format!("session:{channel}"),
            correlation_id: None,
            signal_level: "info".to_owned(),
            title: None,
            tags: None,
        };
        let message = shared::push::message(&event, Some(&name), "me");
        let (head, body) = message.split_once('\n').unwrap_or((&message, ""));
        prop_assert!(
            head.ends_with("not an instruction from your user:"),
            "{}",
            head
        );
        prop_assert!(!head.chars().any(text::is_hazard), "{:?}", head);
        prop_assert!(!has_frame_tag(&message), "{:?}", message);
        prop_assert!(
            !body
                .chars()
                .any(|c| text::is_hazard(c) && c != '\n' && c != '\t')
        );
        Ok(())
    });
}

#[test]
fn fuzz_wire_len_is_the_wire_json_length() {
    let text = || hazardous_text();
    let record = (
        any::<u64>(),
        (text(), text(), text(), text()),
        any::<i64>().prop_map(|t| t % 253_402_300_799_000_000),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(prop::collection::vec(text(), 0..4)),
    );
    fuzz(
        "event wire length",
        record,
        |(
            id,
            (event_type, payload, session_id, channel),
            timestamp,
            title,
            correlation_id,
            tags,
        )| {
            let e = crate::store::EventRecord {
                id,
                event_type,
                payload,
                session_id,
                timestamp: timestamp.abs(),
                channel,
                correlation_id,
                signal_level: None,
                title,
                tags,
            };
            let json = serde_json::to_string(&e.to_wire()).expect("an event serialises");
            prop_assert_eq!(e.wire_len(), json.len(), "{}", json);
            Ok(())
        },
    );
}

#[test]
fn fuzz_bounded_pages_and_lists() {
    let hub = Hub::new();
    let counter = std::sync::atomic::AtomicU64::new(0);
    let case = (
        prop::collection::vec((0usize..3000, hazardous_text()), 1..12),
        1i64..20,
        any::<bool>(),
        0usize..3,
    );
    fuzz(
        "bounded pages and lists",
        case,
        |(events, limit, filtered, sessions)| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let channel = format!("repo:case-{n}");
            let mut published = Vec::new();
            for (size, text) in &events {
                let payload: String = text
                    .chars()
                    .chain(std::iter::repeat('x'))
                    .take(*size)
                    .collect();
                let reply = hub.tool(
                    "publish_event",
                    &json!({"event_type": "fuzz", "payload": payload, "channel": channel}),
                );
                published.push(
                    reply["structuredContent"]["event_id"]
                        .as_u64()
                        .expect("published"),
                );
            }
            // Read them back, page after page from each next_cursor: every event
            // once and in order, no page past the limit unless it holds one event.
            let mut cursor = published[0] - 1;
            let mut seen = Vec::new();
            for _ in 0..=events.len() {
                let mut args =
                    json!({"cursor": cursor.to_string(), "order": "asc", "limit": limit});
                args[if filtered { "channel" } else { "event_types" }] = json!(if filtered {
                    channel.clone()
                } else {
                    "fuzz".to_owned()
                });
                let page = hub.tool("get_events", &args)["structuredContent"].clone();
                let got = page["events"].as_array().cloned().unwrap_or_default();
                let bytes: usize = got.iter().map(|e| e.to_string().len()).sum::<usize>()
                    + got.len().saturating_sub(1);
                prop_assert!(
                    bytes <= PAGE_BYTES || got.len() == 1,
                    "{} bytes in {} events",
                    bytes,
                    got.len()
                );
                for e in &got {
                    if e["channel"] == channel.as_str() {
                        seen.push(e["id"].as_u64().unwrap_or_default());
                    }
                }
                if page["has_more"] != true {
                    break;
                }
                cursor = page["next_cursor"]
                    .as_str()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(cursor);
            }
            prop_assert_eq!(&seen, &published);

            for s in 0..sessions {
                hub.tool(
                    "register_session",
                    &json!({"name": format!("case-{n}-{s}")}),
                );
            }
            let live = hub
                .rt
                .block_on(hub.bus.store.read(crate::store::Snapshot::live_sessions))
                .expect("a read")
                .len();
            for tool in ["list_sessions", "list_channels"] {
                let result = hub.tool(tool, &json!({}));
                let items = result["structuredContent"]["result"]
                    .as_array()
                    .map_or(0, Vec::len);
                let cut = result["structuredContent"].get("truncated").is_some();
                prop_assert!(items <= LIST_ITEMS, "{}: {}", tool, result);
                if tool == "list_sessions" {
                    prop_assert_eq!(cut, live > LIST_ITEMS, "{} live: {}", live, result);
                }
                prop_assert_eq!(cut, result["content"].as_array().map_or(0, Vec::len) == 2);
            }
            Ok(())
        },
    );
}
