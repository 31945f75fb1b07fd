//! End-to-end tests: the hub behind a reverse proxy on its own machine. A
//! small proxy written here (real TCP) forwards to the real hub the way
//! common ones do by default:
//! - nginx-style: `proxy_pass http://127.0.0.1:PORT` rewrites `Host` to the
//!   hub's address and adds no `X-Forwarded-For`, so every internet client
//!   arrives from loopback looking like local use;
//! - Caddy-style (also ngrok, cloudflared): keeps the client's `Host`, adds
//!   `X-Forwarded-For`, and passes the client's own headers, a forged
//!   `Tailscale-User-Login` included.
//!
//! Without the credential both are refused; with it, the bus works.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use support::{Hub, HubOptions};

#[derive(Clone, Copy)]
enum Style {
    Nginx,
    Caddy,
}

/// A reverse proxy in front of a hub, until dropped.
struct ReverseProxy {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl ReverseProxy {
    fn start(hub: &Hub, style: Style) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the proxy");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let (upstream, stopping) = (hub.port, stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                std::thread::spawn(move || forward(client, upstream, style));
            }
        });
        Self { port, stop }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ReverseProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Forwards one request to the hub as `style` does, and the reply back.
fn forward(client: TcpStream, upstream: u16, style: Style) {
    let peer = client
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let mut reader = BufReader::new(client.try_clone().expect("a second handle"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.is_empty() {
        return;
    }
    let mut headers = Vec::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            return;
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            if name == "content-length" {
                length = value.trim().parse().unwrap_or(0);
            }
            headers.push((name, value.trim().to_owned()));
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let client_host = headers
        .iter()
        .find(|(n, _)| n == "host")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    headers.retain(|(n, _)| n != "host" && n != "connection");
    let mut head = request_line;
    match style {
        Style::Nginx => head.push_str(&format!("host: 127.0.0.1:{upstream}\r\n")),
        Style::Caddy => {
            head.push_str(&format!("host: {client_host}\r\n"));
            head.push_str(&format!("x-forwarded-for: {peer}\r\n"));
            head.push_str(&format!("x-forwarded-host: {client_host}\r\n"));
            head.push_str("x-forwarded-proto: http\r\n");
        }
    }
    for (name, value) in &headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("connection: close\r\n\r\n");
    let Ok(mut hub) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    if hub.write_all(head.as_bytes()).is_err() || hub.write_all(&body).is_err() {
        return;
    }
    let mut reply = Vec::new();
    let _ = hub.read_to_end(&mut reply);
    let mut client = client;
    let _ = client.write_all(&reply);
    let _ = client.shutdown(Shutdown::Both);
}

/// POSTs `tools/call name(args)` to `base` with `headers`; the status and
/// the body (the JSON-RPC reply, or the hub's refusal).
fn call(base: &str, headers: &[(&str, &str)], name: &str, args: &Value) -> (u16, Value) {
    shared::client::install_crypto_provider();
    support::rt().block_on(async {
        let mut request = reqwest::Client::new()
            .post(format!("{base}/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": name, "arguments": args}})
                .to_string(),
            );
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.expect("the proxy answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}

/// Shows the bus works through `proxy` with the credential: a publish,
/// and a read that finds it.
fn works_with_the_credential(proxy: &ReverseProxy, hub: &Hub, extra: &[(&str, &str)]) {
    let bearer = format!("Bearer {}", hub.token());
    let mut headers = extra.to_vec();
    headers.push(("authorization", &bearer));
    let (status, reply) = call(
        &proxy.base(),
        &headers,
        "publish_event",
        &json!({"event_type": "through_proxy", "payload": "hello"}),
    );
    assert_eq!(status, 200, "{reply}");
    let id = reply["result"]["structuredContent"]["event_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("an event id: {reply}"));
    let (status, page) = call(
        &proxy.base(),
        &headers,
        "get_events",
        &json!({"event_types": ["through_proxy"]}),
    );
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        page["result"]["structuredContent"]["events"][0]["id"].as_u64(),
        Some(id),
        "{page}"
    );
    // The typed client, as a remote proxy or CLI with the token would be.
    let client = shared::HubClient::new(&proxy.base(), Some(hub.token().to_owned())).unwrap();
    let sessions = support::rt().block_on(support::call(&client, "list_sessions", json!({})));
    assert!(sessions.is_array(), "{sessions}");
}

fn assert_refused(status: u16, reply: &Value, what: &str) {
    assert_eq!(status, 401, "{what}: {reply}");
    assert_eq!(reply["error"], "Unauthorized", "{what}: {reply}");
}

#[test]
fn an_nginx_style_proxy_gets_nothing_without_the_credential() {
    let hub = Hub::start();
    let proxy = ReverseProxy::start(&hub, Style::Nginx);
    // Every internet client arrives as loopback, Host 127.0.0.1:PORT, no XFF.
    let (status, reply) = call(&proxy.base(), &[], "list_sessions", &json!({}));
    assert_refused(status, &reply, "no credential");
    let (status, reply) = call(
        &proxy.base(),
        &[("tailscale-user-login", "attacker@example.com")],
        "publish_event",
        &json!({"event_type": "pwned", "payload": "x"}),
    );
    assert_refused(status, &reply, "a forged identity");
    let (status, reply) = call(
        &proxy.base(),
        &[("authorization", "Bearer guessed")],
        "list_sessions",
        &json!({}),
    );
    assert_refused(status, &reply, "a wrong token");
    // `/health` stays open, and says nothing of the credential.
    let health = support::rt()
        .block_on(
            shared::HubClient::new(&proxy.base(), None)
                .unwrap()
                .health(),
        )
        .expect("health through the proxy");
    assert_eq!(health["status"], "ok");

    works_with_the_credential(&proxy, &hub, &[]);
    let events = hub.tool("get_events", json!({"event_types": ["pwned"]}));
    assert_eq!(events["events"], json!([]), "nothing got in: {events}");
}

#[test]
fn a_caddy_style_proxy_passing_a_forged_tailscale_identity_gets_nothing() {
    let hub = Hub::start_with(HubOptions {
        args: vec!["--public-host".into(), "hub.example.com".into()],
        ..HubOptions::default()
    });
    let proxy = ReverseProxy::start(&hub, Style::Caddy);
    let public = [("host", "hub.example.com")];
    let (status, reply) = call(&proxy.base(), &public, "list_sessions", &json!({}));
    assert_refused(status, &reply, "no credential");
    let (status, reply) = call(
        &proxy.base(),
        &[
            ("host", "hub.example.com"),
            ("tailscale-user-login", "attacker@example.com"),
        ],
        "publish_event",
        &json!({"event_type": "pwned", "payload": "x"}),
    );
    assert_refused(status, &reply, "a forged Tailscale identity");
    // A name the hub was not told about is refused before that.
    let (status, reply) = call(
        &proxy.base(),
        &[("host", "elsewhere.example.com")],
        "list_sessions",
        &json!({}),
    );
    assert_eq!(status, 403, "{reply}");

    works_with_the_credential(&proxy, &hub, &public);
    works_with_the_credential(&proxy, &hub, &[]);
    let events = hub.tool("get_events", json!({"event_types": ["pwned"]}));
    assert_eq!(events["events"], json!([]), "nothing got in: {events}");
}
