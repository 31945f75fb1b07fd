//! End-to-end tests: who may call the hub. The credential on every
//! `POST /mcp`, loopback included; Tailscale identity only when the hub is
//! told to trust it; what a web page can do (DNS rebinding, raw and in a
//! real browser in `browser.rs`); the refusal to run open. The credential
//! itself (where it is, its file, the open pages) is in `credential.rs`,
//! reverse proxies in `proxies.rs`, other OS users and port squatting in
//! `users.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::{Value, json};
use support::{Hub, HubOptions};

/// POSTs a `tools/list` with `headers` (and no credential unless they
/// hold one); returns the status and body.
pub(crate) fn post(hub: &Hub, headers: &[(&str, &str)]) -> (u16, Value) {
    request(hub, "POST", "/mcp", headers)
}

pub(crate) fn request(
    hub: &Hub,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    shared::client::install_crypto_provider();
    let client = reqwest::Client::new();
    support::rt().block_on(async {
        let mut req = client
            .request(method.parse().unwrap(), format!("{}{path}", hub.base()))
            .header("content-type", "application/json")
            .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("the hub answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    })
}

/// What a request is, its extra headers, and the status it must get.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16);

fn check_cases(hub: &Hub, cases: &[Case]) {
    for (what, headers, want) in cases {
        let (status, body) = post(hub, headers);
        assert_eq!(status, *want, "{what}: {body}");
        match want {
            200 => assert!(body["result"]["tools"].is_array(), "{what}: {body}"),
            401 => assert_eq!(body["error"], "Unauthorized", "{what}"),
            _ => assert_eq!(body["error"], "Forbidden", "{what}"),
        }
    }
}

const BEARER: (&str, &str) = ("authorization", "Bearer s3cret-token");

#[test]
fn the_auth_matrix() {
    let hub = Hub::start_with(HubOptions {
        args: vec!["--public-host".into(), "box.tail.ts.net".into()],
        env: vec![("AGENT_EVENT_BUS_TOKEN".into(), "s3cret-token".into())],
    });
    let forwarded_identity = [
        ("host", "box.tail.ts.net"),
        ("x-forwarded-for", "100.64.0.9"),
        ("tailscale-user-login", "me@example.com"),
    ];
    check_cases(
        &hub,
        &[
            ("plain loopback, no credential", &[], 401),
            ("loopback naming localhost", &[("host", "localhost")], 401),
            ("plain loopback with the token", &[BEARER], 200),
            (
                "loopback naming localhost, with the token",
                &[("host", "localhost"), BEARER],
                200,
            ),
            (
                "DNS rebinding: a foreign Host",
                &[("host", "evil.example")],
                403,
            ),
            (
                "a web page's Origin",
                &[("origin", "https://evil.example")],
                403,
            ),
            (
                "a local page's Origin with the token",
                &[("origin", "http://localhost:5173"), BEARER],
                200,
            ),
            (
                "forwarded without identity",
                &[
                    ("host", "box.tail.ts.net"),
                    ("x-forwarded-for", "100.64.0.9"),
                ],
                401,
            ),
            (
                "forwarded with a Tailscale identity the hub was not told to trust",
                &forwarded_identity,
                401,
            ),
            (
                "DNS rebinding through the forwarded path: headers a page adds itself",
                &[
                    ("host", "rebind.test:8080"),
                    ("x-forwarded-for", "100.64.0.9"),
                    ("tailscale-user-login", "me@example.com"),
                ],
                403,
            ),
            (
                "a foreign page's Origin with the token",
                &[("origin", "http://rebind.test:8080"), BEARER],
                403,
            ),
            (
                "forwarded with the token",
                &[("x-forwarded-for", "10.0.0.9"), BEARER],
                200,
            ),
            (
                "forwarded with a wrong token",
                &[
                    ("x-forwarded-for", "10.0.0.9"),
                    ("authorization", "Bearer nope"),
                ],
                401,
            ),
        ],
    );
    let (_, body) = post(&hub, &forwarded_identity);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("--trust-tailscale-headers")),
        "a refused identity says how to trust it: {body}"
    );
    assert!(
        !hub.log().contains("s3cret-token"),
        "the token is never logged"
    );
}

#[test]
fn tailscale_identity_is_trusted_only_when_the_hub_opts_in() {
    let hub = Hub::start_with(HubOptions {
        args: vec![
            "--public-host".into(),
            "box.tail.ts.net".into(),
            "--trust-tailscale-headers".into(),
        ],
        ..HubOptions::default()
    });
    check_cases(
        &hub,
        &[
            (
                "forwarded with a Tailscale identity",
                &[
                    ("host", "box.tail.ts.net"),
                    ("x-forwarded-for", "100.64.0.9"),
                    ("tailscale-user-login", "me@example.com"),
                ],
                200,
            ),
            (
                "the hub's own page through tailscale serve",
                &[
                    ("host", "box.tail.ts.net"),
                    ("origin", "https://box.tail.ts.net"),
                    ("x-forwarded-for", "100.64.0.9"),
                    ("tailscale-user-login", "me@example.com"),
                ],
                200,
            ),
            (
                "an identity header never implied by X-Forwarded-For alone",
                &[
                    ("host", "box.tail.ts.net"),
                    ("x-forwarded-for", "100.64.0.9"),
                ],
                401,
            ),
            (
                "an identity without X-Forwarded-For is not from tailscale serve",
                &[
                    ("host", "box.tail.ts.net"),
                    ("tailscale-user-login", "me@example.com"),
                ],
                401,
            ),
            (
                "a foreign page's Origin on the forwarded path",
                &[
                    ("host", "box.tail.ts.net"),
                    ("origin", "http://rebind.test:8080"),
                    ("x-forwarded-for", "100.64.0.9"),
                    ("tailscale-user-login", "me@example.com"),
                ],
                403,
            ),
            (
                "DNS rebinding through the forwarded path",
                &[
                    ("host", "rebind.test:8080"),
                    ("x-forwarded-for", "100.64.0.9"),
                    ("tailscale-user-login", "me@example.com"),
                ],
                403,
            ),
        ],
    );
    let env = support::command("agent-event-bus")
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&env.stdout).contains("AGENT_EVENT_BUS_TRUST_TAILSCALE"),
        "the opt-in has an environment form"
    );
}

/// Sends `request` as written (a raw HTTP/1.x request) and returns the
/// status and the body as JSON.
fn send_raw(hub: &Hub, request: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", hub.port)).expect("the hub listens");
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {reply:?}"));
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn requests_a_browser_could_forge_or_smuggle_are_refused() {
    let hub = Hub::start_with(HubOptions {
        args: vec![
            "--public-host".into(),
            "box.tail.ts.net".into(),
            "--trust-tailscale-headers".into(),
        ],
        ..Default::default()
    });
    let auth = format!("authorization: Bearer {}\r\n", hub.token());
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string();
    let request = |target: &str, headers: &str| {
        format!(
            "POST {target} HTTP/1.1\r\n{headers}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let cases: &[(&str, String, u16)] = &[
        (
            "a well-formed local request with the credential",
            request("/mcp", &format!("host: 127.0.0.1\r\n{auth}")),
            200,
        ),
        (
            "two Host headers",
            request(
                "/mcp",
                &format!("host: 127.0.0.1\r\nhost: rebind.test\r\n{auth}"),
            ),
            400,
        ),
        (
            "a request line in absolute form",
            request(
                "http://127.0.0.1/mcp",
                &format!("host: 127.0.0.1\r\n{auth}"),
            ),
            400,
        ),
        (
            "a Host that only starts like an address",
            request("/mcp", "host: [::1]evil\r\n"),
            400,
        ),
        (
            "a Host with userinfo",
            request("/mcp", "host: rebind.test@127.0.0.1\r\n"),
            400,
        ),
        (
            "no Host (HTTP/1.0) and no credential",
            format!(
                "POST /mcp HTTP/1.0\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            ),
            401,
        ),
        (
            "no Host on the forwarded path",
            format!(
                "POST /mcp HTTP/1.0\r\nx-forwarded-for: 100.64.0.9\r\ntailscale-user-login: me@example.com\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            ),
            401,
        ),
    ];
    for (what, raw, want) in cases {
        let (status, reply) = send_raw(&hub, raw);
        assert_eq!(status, *want, "{what}: {reply}");
        if *want != 200 {
            assert!(reply["message"].is_string(), "{what}: {reply}");
        }
    }
}

#[test]
fn a_post_without_a_json_content_type_is_refused() {
    let hub = Hub::start();
    let auth = format!("authorization: Bearer {}\r\n", hub.token());
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "publish_event", "arguments": {"event_type": "x", "payload": "p"}}})
    .to_string();
    // What a form or a fetch without a preflight can send.
    for content_type in [
        None,
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonp"),
    ] {
        let header = content_type.map_or(String::new(), |ct| format!("content-type: {ct}\r\n"));
        let (status, reply) = send_raw(
            &hub,
            &format!(
                "POST /mcp HTTP/1.1\r\nhost: localhost\r\n{auth}{header}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            ),
        );
        assert_eq!(status, 415, "{content_type:?}: {reply}");
        assert!(
            reply["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Content-Type: application/json")),
            "{content_type:?}: {reply}"
        );
    }
    let (status, reply) = send_raw(
        &hub,
        &format!(
            "POST /mcp HTTP/1.1\r\nhost: localhost\r\n{auth}content-type: Application/JSON; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(status, 200, "{reply}");
    let events = hub.tool("get_events", json!({"order": "asc"}));
    let published: Vec<&Value> = events["events"]
        .as_array()
        .map(|a| a.iter().filter(|e| e["event_type"] == "x").collect())
        .unwrap_or_default();
    assert_eq!(published.len(), 1, "only the JSON post published: {events}");
}

#[test]
fn the_hub_refuses_to_listen_openly_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = support::command("agent-event-bus")
        .args(["--host", "0.0.0.0", "--port", "0", "--db"])
        .arg(dir.path().join("d.redb"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tailscale serve") && stderr.contains("AGENT_EVENT_BUS_TOKEN"),
        "{stderr}"
    );
    assert!(!dir.path().join("d.redb").exists(), "nothing was created");
    assert!(!dir.path().join("token").exists(), "nothing was created");
}

#[test]
fn an_open_listener_starts_with_a_token_or_when_told_to() {
    for env in [
        ("AGENT_EVENT_BUS_TOKEN", "x"),
        ("AGENT_EVENT_BUS_AUTH_DISABLED", "1"),
    ] {
        let hub = Hub::start_with(HubOptions {
            args: vec!["--host".into(), "0.0.0.0".into()],
            env: vec![(env.0.into(), env.1.into())],
        });
        let health = support::rt().block_on(hub.client().health()).unwrap();
        assert_eq!(health["status"], "ok", "{env:?}");
        let sessions =
            support::rt().block_on(hub.anonymous_client().call_tool("list_sessions", json!({})));
        assert_eq!(
            sessions.is_ok(),
            env.0 == "AGENT_EVENT_BUS_AUTH_DISABLED",
            "only --insecure-no-auth lets a caller in without the token: {env:?}"
        );
    }
}
