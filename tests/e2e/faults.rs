//! End-to-end tests: the hub under faults — a stalled process, a full disk,
//! a damaged database file. Waits are generous deadlines, never speed asserts.

use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use serde_json::{Value, json};
use support::proxy::Proxy;
use support::{Hub, HubOptions, call, events, rt, wait_until};

const DEADLINE: Duration = Duration::from_secs(30);

fn live_session(hub: &Hub, id: &str) -> bool {
    let list = rt().block_on(call(&hub.client(), "list_sessions", json!({})));
    list.as_array()
        .unwrap_or_else(|| panic!("list_sessions is not a list: {list}"))
        .iter()
        .any(|s| s["session_id"] == id)
}

fn unregistered(events: &[Value], id: &str) -> usize {
    events
        .iter()
        .filter(|e| e["event_type"] == "session_unregistered" && e["session_id"] == id)
        .count()
}

/// A proxy that has initialized and registered under `name` with a 2 s lease.
fn leased_proxy(hub: &Hub, name: &str) -> (Proxy, String) {
    let mut proxy = Proxy::spawn(
        hub,
        &[
            ("AGENT_EVENT_BUS_SESSION_NAME", name),
            ("AGENT_EVENT_BUS_LEASE_SECONDS", "2"),
        ],
    );
    proxy.initialize();
    let id = wait_until(&format!("{name} to register"), DEADLINE, || {
        let list = rt().block_on(call(&hub.client(), "list_sessions", json!({})));
        list.as_array()?
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["session_id"].as_str().map(str::to_owned))
    });
    (proxy, id)
}

fn signal_hub(hub: &Hub, signal: Signal) {
    let pid = hub.pid().expect("the hub runs");
    let pid = Pid::from_raw(i32::try_from(pid).expect("a pid fits")).expect("a real pid");
    kill_process(pid, signal).expect("the hub can be signalled");
}

#[test]
fn a_stalled_hub_gives_live_leases_a_fresh_term_and_still_ends_dead_ones() {
    let hub = Hub::start();
    let (mut alive, alive_id) = leased_proxy(&hub, "alive");
    let (mut dead, dead_id) = leased_proxy(&hub, "dead");
    dead.signal(Signal::KILL);
    dead.wait_exit(DEADLINE);

    // Stopped for well over the 2 s lease, as a closed laptop lid would.
    signal_hub(&hub, Signal::STOP);
    std::thread::sleep(Duration::from_secs(6));
    signal_hub(&hub, Signal::CONT);

    // The killed proxy's session still ends once its fresh term lapses...
    wait_until("the dead session to end", DEADLINE, || {
        (unregistered(&events(&hub), &dead_id) == 1).then_some(())
    });
    // ...and by then the live one has renewed: a sentinel published after
    // proves nothing ended it in between.
    let sentinel = alive.call_ok(
        "publish_event",
        json!({"event_type": "sentinel", "payload": "after the stall"}),
    )["event_id"]
        .clone();
    let seen = events(&hub);
    assert!(
        seen.iter().any(|e| e["id"] == sentinel),
        "the sentinel is in"
    );
    assert_eq!(
        unregistered(&seen, &alive_id),
        0,
        "a live proxy's session was ended by the stall: {}",
        hub.log()
    );
    assert!(live_session(&hub, &alive_id));
    alive.call_ok("list_sessions", json!({}));
    alive.assert_stdout_is_json_rpc();
}

/// A small tmpfs mounted for one test, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (needs root); `None` when this machine
    /// cannot, which fails under CI, where it must.
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("a temp dir");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Self { dir }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "CI must be able to mount a tmpfs (run as root): {why}"
                );
                eprintln!(
                    "SKIPPED: cannot mount a small tmpfs here ({why}); run as root to test a full disk"
                );
                None
            }
        }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).expect("the filler file");
        let chunk = vec![0x5a_u8; 16 * 1024];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.flush();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// `GET /health`: the status code and the body.
fn health(hub: &Hub) -> (u16, Value) {
    rt().block_on(async {
        let r = reqwest::get(format!("{}/health", hub.base()))
            .await
            .expect("/health answers");
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.expect("/health is JSON"))
    })
}

fn publish_raw(hub: &Hub, session: &str, payload: &str) -> shared::ToolOutput {
    hub.tool_raw(
        "publish_event",
        json!({"session_id": session, "event_type": "fill", "payload": payload, "channel": "all"}),
    )
}

fn event_ids(hub: &Hub) -> Vec<u64> {
    events(hub)
        .iter()
        .filter_map(|e| e["id"].as_u64())
        .collect()
}

#[test]
fn a_full_disk_refuses_writes_clearly_and_recovers_without_a_restart() {
    let Some(disk) = SmallDisk::mount("6m") else {
        return;
    };
    let mut hub = Hub::start_on_db(disk.path().join("data.redb"), HubOptions::default());
    let me = hub.register("filler", Some("fill-1"))["session_id"]
        .as_str()
        .expect("a session id")
        .to_owned();
    let mut acknowledged: Vec<u64> = (0..20)
        .map(|i| hub.publish(&me, "before", &format!("event {i}"), "all"))
        .collect();

    let filler = disk.fill();
    // Large events until one cannot be stored: the file's own free pages
    // take a few first.
    let payload = "x".repeat(48 * 1024);
    let refusal = (0..200)
        .find_map(|_| {
            let out = publish_raw(&hub, &me, &payload);
            if out.is_error() {
                return Some(out.text());
            }
            acknowledged.push(out.value()["event_id"].as_u64().expect("an event id"));
            None
        })
        .expect("a publish fails once the disk is full");
    assert!(
        refusal.contains("storage error (disk full?)") && refusal.contains("Retry"),
        "{refusal}"
    );

    // Still up: /health says degraded with a status a monitor alerts on,
    // and reads carry on.
    let (status, body) = health(&hub);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "degraded", "{body}");
    assert!(
        body["storage"]
            .as_str()
            .is_some_and(|s| s.starts_with("error: ")),
        "{body}"
    );
    let during = rt()
        .block_on(hub.client().health())
        .expect("the client reads a degraded /health");
    assert_eq!(during["status"], "degraded");
    let doctor = support::Cli::new(&hub).run(&["doctor"]);
    assert!(
        doctor.stdout.contains("the hub's storage is failing"),
        "{}{}",
        doctor.stdout,
        doctor.stderr
    );
    let ids = event_ids(&hub);
    for id in &acknowledged {
        assert!(
            ids.contains(id),
            "acknowledged event {id} is readable while the disk is full"
        );
    }

    // Room again: the next write succeeds without a restart.
    std::fs::remove_file(filler).expect("the filler goes");
    let after = publish_raw(&hub, &me, "after");
    assert!(!after.is_error(), "{}", after.text());
    acknowledged.push(after.value()["event_id"].as_u64().expect("an event id"));
    let (status, body) = health(&hub);
    assert_eq!((status, &body["status"]), (200, &json!("ok")), "{body}");

    // Every acknowledged event is there, now and after a restart.
    let ids = event_ids(&hub);
    for id in &acknowledged {
        assert!(ids.contains(id), "acknowledged event {id} survived");
    }
    hub.restart();
    let ids = event_ids(&hub);
    for id in &acknowledged {
        assert!(
            ids.contains(id),
            "acknowledged event {id} survived a restart"
        );
    }
}

/// A hub with `n` events whose payloads carry `marker`, stopped cleanly:
/// its database file is left for a test to damage.
fn stopped_hub_with_events(n: usize, marker: &str) -> Hub {
    let mut hub = Hub::start();
    let me = hub.register("writer", Some("writer-1"))["session_id"]
        .as_str()
        .expect("a session id")
        .to_owned();
    for i in 0..n {
        let payload = format!("{marker}-{i:05}-{}", "p".repeat(900));
        hub.publish(&me, "note", &payload, "all");
    }
    hub.stop();
    hub
}

/// Every offset in `bytes` where `needle` starts.
fn find_all(bytes: &[u8], needle: &[u8]) -> Vec<usize> {
    bytes
        .windows(needle.len())
        .enumerate()
        .filter_map(|(i, w)| (w == needle).then_some(i))
        .collect()
}

/// Runs the hub binary on `db` until it exits (it must refuse to serve);
/// one still running after the deadline is killed and the test fails.
fn refused_start(db: &std::path::Path) -> (i32, String) {
    let mut child = support::command("agent-event-bus")
        .args(["--host", "127.0.0.1", "--port", "0", "--db"])
        .arg(db)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the hub runs");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the hub can be waited on") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the hub served a damaged file: {}",
                reader.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code().unwrap_or(-1),
        reader.join().unwrap_or_default(),
    )
}

fn check_db(db: &std::path::Path) -> (i32, String) {
    let out = support::command("agent-event-bus")
        .arg("--check")
        .arg("--db")
        .arg(db)
        .output()
        .expect("the hub runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn assert_refused_as_damaged(db: &std::path::Path) {
    let (code, stderr) = refused_start(db);
    assert_ne!(code, 0, "a damaged file must not be served: {stderr}");
    assert!(
        stderr.contains("is damaged") && stderr.contains("restore a copy"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let (code, text) = check_db(db);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("is damaged"), "{text}");
}

#[test]
fn a_file_with_kibibytes_overwritten_is_refused_with_how_to_recover() {
    let hub = stopped_hub_with_events(300, "overwrite");
    let db = hub.db_path();
    let (code, text) = check_db(&db);
    assert_eq!(code, 0, "the intact file is sound: {text}");
    assert!(text.contains("is sound (newest event id"), "{text}");

    // 4 KiB of garbage over every page holding one event's payload.
    let mut bytes = std::fs::read(&db).expect("the database file");
    let hits = find_all(&bytes, b"overwrite-00150-");
    assert!(!hits.is_empty(), "the payload is in the file");
    for at in hits {
        let page = at / 4096 * 4096;
        let end = (page + 4096).min(bytes.len());
        bytes[page..end].fill(0xa5);
    }
    std::fs::write(&db, &bytes).expect("the damaged file is written");
    assert_refused_as_damaged(&db);
}

#[test]
fn a_file_with_one_bit_flipped_is_refused() {
    let hub = stopped_hub_with_events(300, "flip");
    let db = hub.db_path();
    let mut bytes = std::fs::read(&db).expect("the database file");
    let hits = find_all(&bytes, b"flip-00150-");
    assert!(!hits.is_empty(), "the payload is in the file");
    for at in hits {
        bytes[at + 7] ^= 0x01;
    }
    std::fs::write(&db, &bytes).expect("the damaged file is written");
    assert_refused_as_damaged(&db);
}
