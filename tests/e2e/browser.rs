//! End-to-end tests in a real browser (headless Chromium). A web page
//! whose name rebinds to 127.0.0.1 (`--host-resolver-rules`) tries to use
//! the hub from its own origin, with the forwarding headers it may add
//! itself. And the live view, opened with the hub's token in its address's
//! fragment as `agent-event-bus-cli open` does, reads the bus; without it,
//! it says how to get in.
//!
//! The page is served on a free port P by a decoy server; once the page
//! runs, the decoy stops and the hub starts on P, so the page's same-origin
//! requests reach the hub. The page reports what it got to a second local
//! listener. Needs `chromium` or `chromium-headless-shell` (`.ci/run`
//! installs it); skipped when absent, except under CI.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};
use support::group::Group;
use support::{Hub, HubOptions};

/// The attack page. `REPORT` is replaced by the report listener's URL.
const PAGE: &str = r#"<!doctype html>
<title>rebinding</title>
<script>
const forged = {"x-forwarded-for": "100.64.0.9", "tailscale-user-login": "attacker@example.com"};
const rpc = (name, args) => JSON.stringify({jsonrpc: "2.0", id: 1, method: "tools/call",
  params: {name, arguments: args}});
const publish = rpc("publish_event", {event_type: "pwned", payload: "from a web page"});
async function attempt(name, path, init) {
  try {
    const r = await fetch(path, {cache: "no-store", ...init});
    return {name, status: r.status, body: (await r.text()).slice(0, 300)};
  } catch (e) {
    return {name, status: 0, body: String(e)};
  }
}
(async () => {
  await fetch("/armed", {cache: "no-store"});
  // Until the name answers with the hub rather than the decoy.
  for (let i = 0; i < 600; i++) {
    try {
      const r = await fetch("/health", {cache: "no-store", headers: forged});
      if (!(await r.text()).includes("decoy")) break;
    } catch (e) {}
    await new Promise(done => setTimeout(done, 100));
  }
  const json = {...forged, "content-type": "application/json"};
  const results = [
    await attempt("health with forwarding headers", "/health", {headers: forged}),
    await attempt("the live view with forwarding headers", "/", {headers: forged}),
    await attempt("publish with forwarding headers", "/mcp", {method: "POST", headers: json, body: publish}),
    await attempt("read events with forwarding headers", "/mcp",
      {method: "POST", headers: json, body: rpc("get_events", {})}),
    await attempt("publish as text/plain (no preflight)", "/mcp",
      {method: "POST", headers: {"content-type": "text/plain"}, body: publish}),
    await attempt("publish as JSON, no extra headers", "/mcp",
      {method: "POST", headers: {"content-type": "application/json"}, body: publish}),
  ];
  await fetch("REPORT", {method: "POST", mode: "no-cors", body: JSON.stringify(results)});
})();
</script>
"#;

/// The browser binary, if one is installed.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-headless-shell", "google-chrome"]
        .into_iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// Reads one HTTP request: the target and the body.
fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let target = line.split(' ').nth(1)?.to_owned();
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((target, body))
}

fn answer(stream: &mut TcpStream, content_type: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\ncache-control: no-store\r\naccess-control-allow-origin: *\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Serves the page on `listener` until the page asks for `/armed`, then
/// closes the listener (which frees the port for the hub).
fn serve_decoy(listener: &TcpListener, page: &str, armed: &mpsc::Sender<()>) {
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    let done = Arc::new(AtomicBool::new(false));
    while !done.load(Ordering::SeqCst) {
        let Ok((mut stream, _)) = listener.accept() else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = stream.set_nonblocking(false);
        let (page, armed, done) = (page.to_owned(), armed.clone(), done.clone());
        std::thread::spawn(move || {
            let Some((target, _)) = read_request(&mut stream) else {
                return;
            };
            match target.as_str() {
                "/" => answer(&mut stream, "text/html", &page),
                "/armed" => {
                    done.store(true, Ordering::SeqCst);
                    answer(&mut stream, "application/json", r#"{"decoy":true}"#);
                    let _ = armed.send(());
                }
                _ => answer(&mut stream, "application/json", r#"{"decoy":true}"#),
            }
        });
    }
}

/// The browser, or `None` (a skip, said on stderr) when none is installed
/// outside CI.
fn browser_for(test: &str) -> Option<&'static str> {
    let found = chromium();
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium is required under CI (.ci/run installs chromium-headless-shell)"
        );
        eprintln!("skipped: {test} needs chromium (apt-get install chromium-headless-shell)");
    }
    found
}

/// The live view's DOM after its script ran for a few (virtual) seconds.
fn rendered(browser: &str, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    // Its own process group: whatever it starts ends with it.
    let mut browser = Group::spawn(
        Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=5000",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .expect("chromium starts");
    let mut dom = String::new();
    if let Some(mut stdout) = browser.child().stdout.take() {
        let _ = stdout.read_to_string(&mut dom);
    }
    dom
}

#[test]
fn the_live_view_reads_the_bus_with_the_token_from_its_fragment() {
    let Some(browser) = browser_for("the_live_view_reads_the_bus_with_the_token_from_its_fragment")
    else {
        return;
    };
    let hub = Hub::start();
    hub.register("seen-in-the-live-view", None);
    let opened = support::Cli::new(&hub).run(&["open", "--print"]);
    assert_eq!(opened.code, 0, "{opened:#?}");
    let dom = rendered(browser, opened.stdout.trim());
    assert!(dom.contains("seen-in-the-live-view"), "{dom}");
    assert!(dom.contains("live · updated"), "{dom}");
    assert!(
        !dom.contains(hub.token()),
        "the token is not on the page: {dom}"
    );

    let dom = rendered(browser, &format!("{}/", hub.base()));
    assert!(!dom.contains("seen-in-the-live-view"), "{dom}");
    assert!(dom.contains("agent-event-bus-cli open"), "{dom}");
}

#[test]
fn a_rebinding_web_page_in_chromium_cannot_use_the_hub() {
    let Some(browser) = browser_for("a_rebinding_web_page_in_chromium_cannot_use_the_hub") else {
        return;
    };

    let reports = TcpListener::bind("127.0.0.1:0").expect("a report listener");
    let report_url = format!(
        "http://127.0.0.1:{}/report",
        reports.local_addr().unwrap().port()
    );
    let (report_tx, report_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in reports.incoming() {
            let Ok(mut stream) = stream else { continue };
            if let Some((_, body)) = read_request(&mut stream) {
                answer(&mut stream, "text/plain", "");
                let _ = report_tx.send(body);
            }
        }
    });

    let decoy = TcpListener::bind("127.0.0.1:0").expect("a decoy listener");
    let port = decoy.local_addr().unwrap().port();
    let (armed_tx, armed_rx) = mpsc::channel();
    let page = PAGE.replace("REPORT", &report_url);
    let decoy_thread = std::thread::spawn(move || serve_decoy(&decoy, &page, &armed_tx));

    let profile = tempfile::tempdir().unwrap();
    // Its own process group: the browser's renderer and GPU processes end
    // with it when the test ends, however it ends.
    let _browser = Group::spawn(
        Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--host-resolver-rules=MAP rebind.test 127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("http://rebind.test:{port}/"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("chromium starts");

    armed_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the page loaded and ran its script");
    decoy_thread.join().expect("the decoy stopped");
    // The name now leads to the hub: same port, same origin for the page.
    let hub = Hub::start_on_port(
        HubOptions {
            args: vec!["--public-host".into(), "box.tail.ts.net".into()],
            ..Default::default()
        },
        port,
    );

    let report = report_rx
        .recv_timeout(Duration::from_secs(90))
        .expect("the page reported its results");
    let results: Vec<Value> = serde_json::from_slice(&report).expect("a JSON report");
    assert_eq!(results.len(), 6, "{results:#?}");
    for r in &results {
        let status = r["status"].as_u64().unwrap_or(0);
        assert!(
            [400, 401, 403, 415].contains(&status),
            "the hub refused the page's request '{}': {r}",
            r["name"]
        );
    }
    let events = hub.tool("get_events", json!({"order": "asc"}));
    assert!(
        !events.to_string().contains("pwned"),
        "nothing was published: {events}"
    );
}
