//! End-to-end tests: who may call the hub. The credential on every
//! `POST /mcp`, loopback included, with `/health` and the live view's page
//! open; Tailscale identity only when the hub is told to trust it; what a
//! web page can do (DNS rebinding, raw and in a real browser in
//! `browser.rs`); the refusal to run open; the token file and the data
//! directory kept private. Reverse proxies are in `proxies.rs`, other OS
//! users and port squatting in `users.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};
use support::{Cli, Hub, HubOptions};

/// POSTs a `tools/list` with `headers` (and no credential unless they
/// hold one); returns the status and body.
fn post(hub: &Hub, headers: &[(&str, &str)]) -> (u16, Value) {
    request(hub, "POST", "/mcp", headers)
}

fn request(hub: &Hub, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
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

#[test]
fn loopback_without_the_credential_is_told_where_it_is() {
    let hub = Hub::start();
    let file = hub.token_file().expect("the hub made a token file");
    let (status, body) = post(&hub, &[]);
    assert_eq!(status, 401, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(message.contains("AGENT_EVENT_BUS_TOKEN"), "{message}");

    let (status, body) = post(&hub, &[("authorization", "Bearer not-the-token")]);
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("the credential sent is not this hub's token"),
        "{body}"
    );
    let bearer = format!("Bearer {}", hub.token());
    assert_eq!(post(&hub, &[("authorization", &bearer)]).0, 200);

    // The typed client without a credential: the hub's message and what it sent.
    let refused = support::rt()
        .block_on(hub.anonymous_client().call_tool("list_sessions", json!({})))
        .expect_err("refused");
    let text = refused.to_string();
    assert!(
        text.contains("401") && text.contains("sent no credential"),
        "{text}"
    );

    // A CLI that reads another database's token file is refused, and says
    // which file it sent.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("token"), "someone-elses\n").unwrap();
    let out = Cli::at(&hub.url)
        .env(
            "AGENT_EVENT_BUS_DB",
            other.path().join("data.redb").to_str().unwrap(),
        )
        .run(&["sessions"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr.contains("the credential sent is not"),
        "{out:#?}"
    );
    assert!(
        out.stderr
            .contains(&other.path().join("token").display().to_string()),
        "{out:#?}"
    );
    assert!(
        !hub.log().contains(hub.token()),
        "the token is never logged"
    );
}

#[test]
fn health_and_the_live_views_page_are_open_but_its_data_is_not() {
    let hub = Hub::start();
    let (status, health) = request(&hub, "GET", "/health", &[]);
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok");
    let text = health.to_string();
    assert!(!text.contains(hub.token()), "{text}");
    assert!(
        !text.contains("token"),
        "/health names no credential: {text}"
    );
    let (status, page) = request(&hub, "GET", "/", &[]);
    assert_eq!(status, 200);
    assert!(page.as_str().is_some_and(|p| p.contains("sessionStorage")));
    assert!(!page.to_string().contains(hub.token()));
    // Every other path wants the credential first.
    assert_eq!(request(&hub, "GET", "/mcp", &[]).0, 401);
    assert_eq!(request(&hub, "GET", "/elsewhere", &[]).0, 401);
}

#[test]
fn the_token_file_is_private_and_so_is_the_data_directory() {
    let base = tempfile::tempdir().unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = base.path().join("data/data.redb");
    let hub = Hub::start_on_db(db.clone(), HubOptions::default());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let file = hub.token_file().unwrap().to_owned();
    assert_eq!(file, base.path().join("data/token"));
    assert_eq!(mode(&file), 0o600, "the token file");
    assert_eq!(mode(&base.path().join("data")), 0o700, "the data directory");
    assert_eq!(mode(&db), 0o600, "the database");
    assert_eq!(hub.token().len(), 64, "32 random bytes in hex");
    assert!(!hub.log().contains(hub.token()), "never logged");
    assert!(
        hub.log().contains(&file.display().to_string()),
        "its place is"
    );
}

#[test]
fn a_given_token_writes_no_file_and_an_older_store_is_made_private() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join(".claude/contrib/agent-event-bus");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("data.redb");
    let home_env = ("HOME".to_owned(), home.path().display().to_string());
    let mut hub = Hub::start_on_db(
        db.clone(),
        HubOptions {
            env: vec![
                home_env.clone(),
                ("AGENT_EVENT_BUS_TOKEN".into(), "given-token".into()),
            ],
            ..HubOptions::default()
        },
    );
    assert!(hub.token_file().is_none());
    assert!(!data.join("token").exists(), "a given token writes no file");
    assert_eq!(hub.token(), "given-token");
    hub.stop();

    // As an older version left them: the directory and the store open to
    // everyone. The default data directory and the store are made private
    // at the next start, and say so.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let hub = Hub::start_on_db(
        db.clone(),
        HubOptions {
            env: vec![home_env],
            ..HubOptions::default()
        },
    );
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&db), 0o600);
    let log = hub.log();
    assert!(log.contains("made the data directory private"), "{log}");
    assert!(log.contains("made the database file private"), "{log}");
    assert_eq!(hub.token_file(), Some(data.join("token").as_path()));
    // This user's CLI finds it through HOME alone.
    let out = Cli::at(&hub.url)
        .env("HOME", home.path().to_str().unwrap())
        .run(&["sessions"]);
    assert_eq!(out.code, 0, "{out:#?}");
}

#[test]
fn the_originals_keyless_flow_works_with_the_credential() {
    let hub = Hub::start();
    let bearer = format!("Bearer {}", hub.token());
    let call = |name: &str, args: Value| {
        shared::client::install_crypto_provider();
        support::rt().block_on(async {
            let reply: Value = reqwest::Client::new()
                .post(&hub.url)
                .header("authorization", &bearer)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(
                    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                        "params": {"name": name, "arguments": args}})
                    .to_string(),
                )
                .send()
                .await
                .expect("the hub answers")
                .text()
                .await
                .ok()
                .and_then(|t| shared::client::parse_body(&t))
                .expect("a JSON-RPC reply");
            reply["result"]["structuredContent"].clone()
        })
    };
    let session = call(
        "register_session",
        json!({"name": "original", "client_id": "orig-1"}),
    );
    assert_eq!(session["session_id"], "orig-1", "{session}");
    let published = call(
        "publish_event",
        json!({"session_id": "orig-1", "event_type": "hello", "payload": "keyless", "channel": "all"}),
    );
    assert!(published["event_id"].is_u64(), "{published}");
    let page = call(
        "get_events",
        json!({"session_id": "orig-1", "order": "asc"}),
    );
    assert!(
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["payload"] == "keyless"),
        "{page}"
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
fn a_401_tells_a_remote_client_to_set_the_token() {
    let hub = Hub::start_with(HubOptions {
        env: vec![("AGENT_EVENT_BUS_TOKEN".into(), "t".into())],
        ..Default::default()
    });
    // A forwarded request stands in for a remote one: its message names
    // the variable, never a local file.
    let (status, body) = post(&hub, &[("x-forwarded-for", "10.0.0.1")]);
    assert_eq!(status, 401);
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("AGENT_EVENT_BUS_TOKEN"), "{message}");
    assert!(message.contains("agent-event-bus-cli token"), "{message}");
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
