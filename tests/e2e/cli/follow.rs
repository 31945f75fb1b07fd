//! `events --follow` and `events --wait`: a CLI left running while the test
//! publishes, restarts the hub, signals it or closes its stdout.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use support::{Cli, Hub, command, wait_until};

use super::assert_ok;

/// Generous: these wait for real processes, never measure them.
const DEADLINE: Duration = Duration::from_secs(30);

/// A CLI left running (for `--follow` and `--wait`), its output collected.
struct Running {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    /// The threads reading the pipes: joined once the child has exited, so
    /// what it wrote last is in `stdout`/`stderr` before a test reads them.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Starts the CLI against `hub`. With `read_stdout` false, stdout is a
    /// pipe whose reading end the test closes at once.
    fn start(hub: &Hub, args: &[&str], read_stdout: bool) -> Self {
        let mut child = command("agent-event-bus-cli")
            .env("AGENT_EVENT_BUS_URL", &hub.url)
            .envs(hub.client_env())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the CLI starts");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("piped");
        let mut readers = Vec::new();
        if read_stdout {
            readers.push(collect(out, stdout.clone()));
        } else {
            drop(out);
        }
        readers.push(collect(child.stderr.take().expect("piped"), stderr.clone()));
        Self {
            child,
            stdout,
            stderr,
            readers,
        }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn wait_stderr(&self, needle: &str) {
        wait_until(&format!("`{needle}` on stderr"), DEADLINE, || {
            self.stderr().contains(needle).then_some(())
        });
    }

    fn wait_stdout(&self, needle: &str) {
        wait_until(&format!("`{needle}` on stdout"), DEADLINE, || {
            self.stdout().contains(needle).then_some(())
        });
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, signal).expect("the CLI is ours to signal");
    }

    /// Waits for the exit and returns the code (-1 when killed by a signal).
    fn wait_exit(&mut self) -> i32 {
        let status = wait_until("the CLI to exit", DEADLINE, || {
            self.child.try_wait().ok().flatten()
        });
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        status.code().unwrap_or(-1)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(
    pipe: impl std::io::Read + Send + 'static,
    into: Arc<Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut text = into.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    })
}

#[test]
fn follow_prints_events_published_after_it_started_and_stops_cleanly_on_ctrl_c() {
    let hub = Hub::start();
    let old = hub.publish("x", "old_news", "before", "all");
    let mut follower = Running::start(&hub, &["events", "--follow", "--exclude", "skip_me"], true);
    follower.wait_stderr(&format!("Following events from after event {old}"));

    let skipped = hub.publish("x", "skip_me", "hidden", "all");
    let fresh = hub.publish("x", "fresh_news", "after", "repo:r");
    follower.wait_stdout(&format!(
        "[{fresh}] fresh_news (repo:r) [info]\n    after\n    from: x at "
    ));
    let text = follower.stdout();
    assert!(
        !text.contains("old_news"),
        "only events after the start: {text}"
    );
    assert!(
        !text.contains(&format!("[{skipped}]")),
        "--exclude applies: {text}"
    );

    follower.signal(rustix::process::Signal::INT);
    assert_eq!(
        follower.wait_exit(),
        0,
        "Ctrl-C is a clean exit: {}",
        follower.stderr()
    );
    assert!(
        !follower.stderr().contains("Error"),
        "{}",
        follower.stderr()
    );

    // --json: one event per line; SIGTERM is clean too.
    let mut follower = Running::start(
        &hub,
        &["events", "--follow", "--json", "--channel", "repo:r"],
        true,
    );
    follower.wait_stderr("Following events");
    hub.publish("x", "elsewhere", "not mine", "all");
    let mine = hub.publish("x", "mine", "on repo:r", "repo:r");
    follower.wait_stdout("\"event_type\": \"mine\"");
    let first: Value = serde_json::from_str(follower.stdout().lines().next().unwrap()).unwrap();
    assert_eq!(first["id"].as_u64(), Some(mine));
    follower.signal(rustix::process::Signal::TERM);
    assert_eq!(follower.wait_exit(), 0);
}

#[test]
fn follow_resume_continues_from_the_sessions_saved_cursor() {
    let hub = Hub::start();
    hub.register("reader", Some("cc-r"));
    let args = [
        "events",
        "--follow",
        "--resume",
        "--session-id",
        "cc-r",
        "--json",
    ];

    let mut follower = Running::start(&hub, &args, true);
    follower.wait_stderr("Following events from the session's saved cursor");
    let first = hub.publish("x", "one", "1", "all");
    follower.wait_stdout("\"event_type\": \"one\"");
    follower.signal(rustix::process::Signal::INT);
    assert_eq!(follower.wait_exit(), 0);

    // Published while nobody follows: the next --resume starts with it.
    let missed = hub.publish("x", "two", "2", "all");
    let mut follower = Running::start(&hub, &args, true);
    follower.wait_stdout("\"event_type\": \"two\"");
    let ids: Vec<u64> = follower
        .stdout()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        ids,
        vec![missed],
        "nothing twice, nothing lost (first was {first})"
    );
    follower.signal(rustix::process::Signal::INT);
    assert_eq!(follower.wait_exit(), 0);
}

#[test]
fn follow_rides_out_a_hub_restart() {
    let mut hub = Hub::start();
    let mut follower = Running::start(&hub, &["events", "--follow", "--json"], true);
    follower.wait_stderr("Following events");
    hub.wait_long_polls(1);
    hub.stop();
    // Said once, however many rounds fail while the hub is down.
    follower.wait_stderr("; retrying");
    hub.restart_same_port();
    let id = hub.publish("x", "after_restart", "still here", "all");
    follower.wait_stdout("\"event_type\": \"after_restart\"");
    let last: Value = serde_json::from_str(follower.stdout().lines().last().unwrap()).unwrap();
    assert_eq!(last["id"].as_u64(), Some(id));
    let stderr = follower.stderr();
    assert!(stderr.contains("hub not reachable at "), "{stderr}");
    assert_eq!(stderr.matches("; retrying").count(), 1, "{stderr}");
    assert!(
        stderr.contains("Hub reachable again; following"),
        "{stderr}"
    );
    follower.signal(rustix::process::Signal::INT);
    assert_eq!(follower.wait_exit(), 0, "{}", follower.stderr());
}

#[test]
fn follow_exits_quietly_when_its_reader_goes_away() {
    let hub = Hub::start();
    let mut follower = Running::start(&hub, &["events", "--follow"], false);
    follower.wait_stderr("Following events");
    hub.publish("x", "t", "nobody reads this", "all");
    assert_eq!(follower.wait_exit(), 0, "{}", follower.stderr());
    let stderr = follower.stderr();
    assert!(
        !stderr.contains("Error") && !stderr.contains("panicked"),
        "{stderr}"
    );

    // A one-shot command into a closed pipe is quiet too.
    let mut shot = Running::start(&hub, &["events", "--limit", "1"], false);
    assert_eq!(shot.wait_exit(), 0);
    assert!(!shot.stderr().contains("panicked"), "{}", shot.stderr());
}

#[test]
fn events_wait_returns_with_an_event_or_no_events_at_the_deadline() {
    let hub = Hub::start();
    hub.register("waiter", Some("cc-w"));
    let cli = Cli::new(&hub);
    // Catch the session up, so only new events are pending.
    assert_ok(&cli.run(&[
        "events",
        "--session-id",
        "cc-w",
        "--resume",
        "--order",
        "asc",
    ]));

    let out = cli.run(&["events", "--session-id", "cc-w", "--resume", "--wait", "1"]);
    assert_ok(&out);
    assert_eq!(out.stdout, "No events\n");

    let waiter = Running::start(
        &hub,
        &[
            "events",
            "--session-id",
            "cc-w",
            "--resume",
            "--wait",
            "60",
            "--json",
        ],
        true,
    );
    let id = hub.publish("x", "wake_up", "here it is", "session:cc-w");
    let mut waiter = waiter;
    assert_eq!(waiter.wait_exit(), 0, "{}", waiter.stderr());
    let page: Value = serde_json::from_str(waiter.stdout().trim()).unwrap();
    assert_eq!(page["events"][0]["id"].as_u64(), Some(id));
    assert_eq!(page["next_cursor"], id.to_string());
}

/// The ids of a `--json` follower's lines.
fn ids_of(lines: &str) -> Vec<u64> {
    lines
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn follow_shows_every_event_once_across_a_hub_restart() {
    let mut hub = Hub::start();
    let mut follower = Running::start(&hub, &["events", "--follow", "--json"], true);
    follower.wait_stderr("Following events");
    let before = hub.publish("x", "before", "1", "all");
    follower.wait_stdout("\"event_type\": \"before\"");
    hub.wait_long_polls(1);
    hub.stop();
    follower.wait_stderr("; retrying");
    hub.restart_same_port();
    let after = hub.publish("x", "after", "2", "all");
    // A sentinel: once it is out, anything shown twice would be too.
    let sentinel = hub.publish("x", "sentinel", "3", "all");
    follower.wait_stdout("\"event_type\": \"sentinel\"");
    assert_eq!(
        ids_of(&follower.stdout()),
        vec![before, after, sentinel],
        "{}",
        follower.stderr()
    );
    follower.signal(rustix::process::Signal::INT);
    assert_eq!(follower.wait_exit(), 0, "{}", follower.stderr());
}

#[test]
fn events_wait_rides_out_a_hub_restart() {
    let mut hub = Hub::start();
    hub.register("patient", Some("cc-p"));
    let cli = Cli::new(&hub);
    // Catch the session up, so only new events are pending.
    assert_ok(&cli.run(&["events", "--session-id", "cc-p", "--resume"]));
    let mut waiter = Running::start(
        &hub,
        &[
            "events",
            "--session-id",
            "cc-p",
            "--resume",
            "--wait",
            "600",
            "--json",
        ],
        true,
    );
    hub.wait_long_polls(1);
    hub.stop();
    waiter.wait_stderr("; retrying");
    hub.restart_same_port();
    let id = hub.publish("x", "after_restart", "still waiting", "all");
    assert_eq!(waiter.wait_exit(), 0, "{}", waiter.stderr());
    let page: Value = serde_json::from_str(waiter.stdout().trim()).unwrap();
    assert_eq!(support::page_ids(&page), vec![id], "{page}");
    let stderr = waiter.stderr();
    assert!(stderr.contains("hub not reachable at "), "{stderr}");
    assert_eq!(stderr.matches("; retrying").count(), 1, "{stderr}");
}

#[test]
fn a_filtered_wait_hears_its_own_sessions_end() {
    let hub = Hub::start();
    hub.register("leaving", Some("cc-l"));
    // Far longer than the test waits: it can only end by hearing the end.
    let mut waiter = Running::start(
        &hub,
        &[
            "events",
            "--session-id",
            "cc-l",
            "--channel",
            "session:cc-l",
            "--wait",
            "3600",
            "--json",
        ],
        true,
    );
    hub.wait_long_polls(1);
    let ended = Cli::new(&hub).run(&["unregister", "--session-id", "cc-l"]);
    assert_ok(&ended);
    assert_eq!(waiter.wait_exit(), 1, "{}", waiter.stderr());
    let reply: Value = serde_json::from_str(waiter.stdout().trim()).unwrap();
    assert_eq!(reply["error"], "Session deleted", "{reply}");
    assert_eq!(reply["session_deleted"], true, "{reply}");
}
