//! End-to-end tests: the hub's credential. A caller on loopback without it
//! is told where it is; a wrong one is refused; `/health` and the live
//! view's page stay open and hold nothing of it; the token file is 0600 in
//! a 0700 directory, never logged, and not written when a token is given;
//! a store an older version left open is made private; the original's
//! keyless flow works with the credential.

use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};
use support::{Cli, Hub, HubOptions};

use crate::auth::{post, request};

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
