//! End-to-end tests: who may call the hub (loopback, token, a local reverse
//! proxy with a Tailscale identity), and the refusal to run open.

use serde_json::{Value, json};
use support::{Hub, HubOptions};

/// POSTs a `tools/list` with extra headers; returns the status and body.
fn post(hub: &Hub, headers: &[(&str, &str)]) -> (u16, Value) {
    shared::client::install_crypto_provider();
    let client = reqwest::Client::new();
    support::rt().block_on(async {
        let mut req = client
            .post(&hub.url)
            .header("content-type", "application/json")
            .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("the hub answers");
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    })
}

/// What a request is, its extra headers, and the status it must get.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16);

#[test]
fn the_auth_matrix() {
    let hub = Hub::start_with(HubOptions {
        args: vec!["--public-host".into(), "box.tail.ts.net".into()],
        env: vec![("AGENT_EVENT_BUS_TOKEN".into(), "s3cret-token".into())],
    });
    let cases: &[Case] = &[
        ("plain loopback", &[], 200),
        ("loopback naming localhost", &[("host", "localhost")], 200),
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
            "a local page's Origin",
            &[("origin", "http://localhost:5173")],
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
            "forwarded with a Tailscale identity",
            &[
                ("host", "box.tail.ts.net"),
                ("x-forwarded-for", "100.64.0.9"),
                ("tailscale-user-login", "me@example.com"),
            ],
            200,
        ),
        (
            "forwarded with the token",
            &[
                ("x-forwarded-for", "10.0.0.9"),
                ("authorization", "Bearer s3cret-token"),
            ],
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
    ];
    for (what, headers, want) in cases {
        let (status, body) = post(&hub, headers);
        assert_eq!(status, *want, "{what}: {body}");
        match want {
            200 => assert!(body["result"]["tools"].is_array(), "{what}: {body}"),
            401 => assert_eq!(body["error"], "Unauthorized", "{what}"),
            _ => assert_eq!(body["error"], "Forbidden", "{what}"),
        }
    }
    assert!(
        !hub.log().contains("s3cret-token"),
        "the token is never logged"
    );
}

#[test]
fn a_401_tells_the_client_to_set_the_token() {
    let hub = Hub::start_with(HubOptions {
        env: vec![("AGENT_EVENT_BUS_TOKEN".into(), "t".into())],
        ..Default::default()
    });
    // The typed client cannot fake a remote peer, so check its message on a
    // 401 produced by a forwarded request through a raw call instead.
    let (status, body) = post(&hub, &[("x-forwarded-for", "10.0.0.1")]);
    assert_eq!(status, 401);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("AGENT_EVENT_BUS_TOKEN")
    );
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
    }
}
