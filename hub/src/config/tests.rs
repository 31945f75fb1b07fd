//! The flags as parsed: durations, bounds and what each refuses.

use super::*;

#[test]
fn durations_read_and_write_in_one_format() {
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
    assert_eq!(parse_duration(" 2m "), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
    assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
    assert!(parse_duration("5 parsecs").is_err());
    assert!(parse_duration("h").is_err());
    assert_eq!(format_span(86_400_000), "1d");
    assert_eq!(format_span(3_600_000 * 25), "25h");
    assert_eq!(format_span(90 * 60_000), "90m");
    assert_eq!(format_span(1500), "1500ms");
}

#[test]
fn the_heartbeat_interval_is_a_duration_well_under_a_lease() {
    let times = |args: &[&str]| {
        Config::try_parse_from([&["agent-event-bus"], args].concat()).map(|c| c.session_times())
    };
    let default = times(&[]).unwrap();
    assert_eq!(
        (default.heartbeat_every_ms, default.idle_timeout_ms),
        (1000, 86_400_000)
    );
    assert_eq!(
        times(&["--heartbeat-every", "0"])
            .unwrap()
            .heartbeat_every_ms,
        0
    );
    assert_eq!(
        times(&["--heartbeat-every", "250ms"])
            .unwrap()
            .heartbeat_every_ms,
        250
    );
    let refused = times(&["--heartbeat-every", "1m"]).unwrap_err().to_string();
    assert!(refused.contains("leases would lapse"), "{refused}");
}

#[test]
fn webhook_defaults_are_the_documented_schedule() {
    let config = Config::parse_from(["agent-event-bus"]);
    let d = config.delivery();
    let secs: Vec<u64> = d.retry_delays.iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [5, 30, 120, 600, 1800, 3600]);
    assert_eq!(d.timeout, Duration::from_secs(10));
    assert_eq!(d.disable_after, Duration::from_secs(86_400));
    assert_eq!(d.concurrency, 4);
    assert!(!d.deny_private);
}

#[test]
fn bounds_default_to_the_documented_values() {
    let l = Config::parse_from(["agent-event-bus"]).limits();
    assert_eq!(l.max_webhooks, 100);
    assert_eq!(l.max_webhook_event_types, 64);
    assert_eq!(l.max_page_bytes, 1024 * 1024);
    assert_eq!(l.max_list_items, 10_000);
    assert!(!l.remote_notify, "notify is local-only unless allowed");
    let l = Config::parse_from([
        "agent-event-bus",
        "--max-webhooks=3",
        "--max-list-items=2",
        "--allow-remote-notify",
    ])
    .limits();
    assert_eq!(
        (l.max_webhooks, l.max_list_items, l.remote_notify),
        (3, 2, true)
    );
    assert!(Config::try_parse_from(["agent-event-bus", "--max-page-bytes=0"]).is_err());
}
