//! End-to-end tests: the default connection cap follows the open-file
//! limit; a flood of idle connections past the cap locks no caller out and
//! cuts no long-poll; a connection with every slot busy gets a quick 503;
//! slow and idle connections are closed after the header timeout, while a
//! long-poll outlasts it.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Hub, HubOptions};

const DEADLINE: Duration = Duration::from_secs(20);

fn hub_with(args: &[&str]) -> Hub {
    Hub::start_with(HubOptions {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        env: vec![("AGENT_EVENT_BUS_TOKEN".into(), "flood-token".into())],
    })
}

fn connect(hub: &Hub) -> TcpStream {
    TcpStream::connect(("127.0.0.1", hub.port)).expect("the hub accepts")
}

fn health(hub: &Hub) -> Value {
    support::rt()
        .block_on(hub.client().health())
        .expect("/health answers")
}

/// Starts a long-poll on its own connection; returns its page when it ends.
fn long_poll(hub: &Hub, session: &str, cursor: &str) -> std::thread::JoinHandle<Value> {
    let (url, cursor, channel) = (
        hub.url.clone(),
        cursor.to_owned(),
        format!("session:{session}"),
    );
    std::thread::spawn(move || {
        let client = shared::HubClient::new(&url, Some("flood-token".into())).unwrap();
        support::rt().block_on(support::call(
            &client,
            "get_events",
            json!({"cursor": cursor, "order": "asc", "wait_seconds": 60, "channel": channel}),
        ))
    })
}

/// Waits until `/health` counts `n` requests in progress besides its own.
fn wait_busy(hub: &Hub, n: u64) {
    support::wait_until("the long-polls to be in progress", DEADLINE, || {
        (health(hub)["connections"]["busy"].as_u64() == Some(n + 1)).then_some(())
    });
}

/// Reads until the peer closes; true when it did (EOF or reset) before
/// `DEADLINE`.
fn closed_by_peer(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// The soft and hard open-file limits in `/proc/<pid>/limits`.
#[cfg(target_os = "linux")]
fn open_files(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .collect();
    (files[3].to_owned(), files[4].to_owned())
}

/// Without `--max-connections`, the cap is what the open-file limit leaves
/// beside the hub's own descriptors: the soft limit is raised to the hard
/// one at start, and 1024 kept back (a quarter of a limit under 4096).
#[test]
fn the_default_cap_follows_the_open_file_limit() {
    for (soft, hard, cap) in [(256, 4096, 3072), (512, 512, 384)] {
        let hub = Hub::start_with_open_files(HubOptions::default(), soft, hard);
        #[cfg(target_os = "linux")]
        assert_eq!(
            open_files(hub.pid().unwrap()),
            (hard.to_string(), hard.to_string()),
            "the soft limit was raised to the hard one"
        );
        assert_eq!(
            health(&hub)["connections"]["max"],
            cap,
            "soft {soft}, hard {hard}"
        );
    }
}

#[test]
fn idle_connections_past_the_cap_lock_nobody_out_and_cut_no_long_poll() {
    let hub = hub_with(&["--max-connections", "32"]);
    assert_eq!(health(&hub)["connections"]["max"], 32);
    let reg = hub.register("waiter", Some("lp"));
    let waiter = long_poll(&hub, "lp", reg["cursor"].as_str().unwrap());
    wait_busy(&hub, 1);

    // More idle connections than the cap, from a client with no
    // credentials: some send nothing, some half a request head.
    let mut flood: Vec<TcpStream> = (0..48).map(|_| connect(&hub)).collect();
    for stream in flood.iter_mut().step_by(2) {
        let _ = stream.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    }

    let status = health(&hub);
    assert_eq!(status["status"], "ok");
    assert!(
        status["connections"]["open"].as_u64().unwrap() <= 32,
        "{status}"
    );
    let event = hub.publish("other", "dm", "for the waiter", "session:lp");
    let remote = shared::HubClient::new(&hub.url, Some("flood-token".into())).unwrap();
    let page = support::rt().block_on(support::call(
        &remote,
        "get_events",
        json!({"limit": 5, "order": "desc"}),
    ));
    assert_eq!(page["events"][0]["id"].as_u64(), Some(event), "{page}");

    let polled = waiter.join().expect("the long-poll was not cut");
    assert_eq!(polled["events"][0]["id"].as_u64(), Some(event), "{polled}");
    drop(flood);
}

#[test]
fn a_connection_finding_every_slot_busy_gets_a_503() {
    let mut hub = hub_with(&["--max-connections", "2"]);
    let a = hub.register("a", Some("a"));
    let b = hub.register("b", Some("b"));
    let first = long_poll(&hub, "a", a["cursor"].as_str().unwrap());
    let second = long_poll(&hub, "b", b["cursor"].as_str().unwrap());
    // Two long-polls and this request: /health may take a slot only while
    // one is free, so wait for both long-polls through a free slot.
    support::wait_until("both long-polls in progress", DEADLINE, || {
        let mut stream = connect(&hub);
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply).ok()?;
        reply.starts_with("HTTP/1.1 503").then_some(())
    });
    let mut stream = connect(&hub);
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("--max-connections"), "{reply}");

    // Shutting down ends the long-polls with their (empty) pages: they
    // held their connections throughout.
    hub.stop();
    for waiter in [first, second] {
        let page = waiter.join().expect("the long-poll got its reply");
        assert_eq!(page["events"], json!([]), "{page}");
    }
}

#[test]
fn slow_and_idle_connections_are_closed_but_a_long_poll_is_not() {
    let hub = hub_with(&["--header-timeout", "300ms"]);

    let mut silent = connect(&hub);
    assert!(closed_by_peer(&mut silent), "a silent connection is closed");

    let mut slow = connect(&hub);
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    assert!(closed_by_peer(&mut slow), "a half-sent head is cut off");

    let mut idle = connect(&hub);
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    assert!(
        closed_by_peer(&mut idle),
        "an idle keep-alive connection is closed"
    );

    // A wait far longer than the header timeout ends with its page.
    let reg = hub.register("waiter", Some("slow"));
    let waiter = long_poll(&hub, "slow", reg["cursor"].as_str().unwrap());
    wait_busy(&hub, 1);
    // Silent connections opened one after another and each closed by the
    // header timeout: the long-poll has been in progress for several of
    // them, on the hub's own clock.
    for _ in 0..3 {
        let mut silent = connect(&hub);
        assert!(closed_by_peer(&mut silent), "a silent connection is closed");
    }
    let event = hub.publish("x", "dm", "late", "session:slow");
    let page = waiter.join().expect("the long-poll was not cut");
    assert_eq!(page["events"][0]["id"].as_u64(), Some(event), "{page}");
}
