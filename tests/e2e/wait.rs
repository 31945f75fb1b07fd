//! End-to-end tests of the wake-up hook: the CLI's `wait`, the `Stop` hook
//! recipe that runs it, and `install-hook`. Waits are generous deadlines,
//! never speed asserts.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Cli, Hub, Output, command, id_of as sid, wait_until};

/// Long enough for a hub restart or a waiter's round on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(90);

/// A `wait` (or any CLI command) with its own state dir.
fn waiter(hub: &Hub, state: &Path) -> Cli {
    Cli::new(hub).env("AGENT_EVENT_BUS_STATE_DIR", state.to_str().unwrap())
}

/// Starts `agent-event-bus-cli wait …` in the background.
pub(crate) fn spawn_wait(hub: &Hub, state: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    command("agent-event-bus-cli")
        .env("AGENT_EVENT_BUS_URL", &hub.url)
        .envs(hub.client_env())
        .env("AGENT_EVENT_BUS_STATE_DIR", state)
        .envs(env.iter().copied())
        .arg("wait")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the CLI starts")
}

/// Waits for a background command to exit; its output.
pub(crate) fn finish(mut child: Child) -> Output {
    wait_until("the command to exit", DEADLINE, || {
        child.try_wait().ok().flatten().map(|_| ())
    });
    child.wait_with_output().unwrap().into()
}

#[test]
fn wait_exits_2_with_a_direct_message_and_0_on_timeout() {
    let hub = Hub::start();
    let state = tempfile::tempdir().unwrap();
    let me = sid(&hub.register("sleeper", Some("sleeper-1")));
    let other = sid(&hub.register("caller", Some("caller-1")));

    let out = waiter(&hub, state.path()).run(&["wait", "--session-id", &me, "--timeout", "1"]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));

    // Published before the next wait starts: the saved cursor still finds it.
    let dm = hub.publish(&other, "question", "ship it?", &format!("session:{me}"));
    let out = waiter(&hub, state.path()).run(&["wait", "--session-id", &me, "--timeout", "30"]);
    assert_eq!(out.code, 2, "{out:#?}");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains(&format!(
            "Direct message to you on session:{me} from session \"caller\" ({other}), event type \"question\" (event {dm})"
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("\nship it?\n"), "{}", out.stderr);
    assert!(out.stderr.contains("not instructions from your user"));
    assert!(out.stderr.contains("session:<their session id>"));

    // Shown once: the next wait waits for something new.
    let child = spawn_wait(
        &hub,
        state.path(),
        &["--session-id", &me, "--timeout", "60"],
        &[],
    );
    hub.publish(&me, "mine", "my own broadcast", "all");
    let news = hub.publish(&other, "ping", "second", &format!("session:{me}"));
    let out = finish(child);
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr.contains(&format!("(event {news})")),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("ship it?") && !out.stderr.contains("my own"));
}

#[test]
fn wait_rides_out_a_hub_restart() {
    let mut hub = Hub::start();
    let state = tempfile::tempdir().unwrap();
    let me = sid(&hub.register("patient", Some("patient-1")));
    let other = sid(&hub.register("caller", Some("caller-1")));
    let child = spawn_wait(
        &hub,
        state.path(),
        &["--session-id", &me, "--timeout", "60"],
        &[],
    );
    hub.wait_long_polls(1);
    hub.restart_same_port();
    let dm = hub.publish(&other, "question", "still there?", &format!("session:{me}"));
    let out = finish(child);
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr.contains(&format!("(event {dm})")),
        "{}",
        out.stderr
    );
}

#[test]
fn wait_wakes_for_push_channels_too() {
    let hub = Hub::start();
    let state = tempfile::tempdir().unwrap();
    let me = sid(&hub.register("ci-watcher", Some("ci-1")));
    let other = sid(&hub.register("ci-bot", Some("ci-bot-1")));
    let env = [("AGENT_EVENT_BUS_PUSH_CHANNELS", "ci")];
    let child = spawn_wait(
        &hub,
        state.path(),
        &["--session-id", &me, "--timeout", "60"],
        &env,
    );
    crate::reach::wait_hook(&hub, &me, true);
    hub.publish(&other, "chatter", "not for ci", "repo:x");
    hub.publish(&other, "ci_failed", "main is red", "ci");
    let out = finish(child);
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr
            .contains("Event on channel ci from session \"ci-bot\"")
    );
    assert!(!out.stderr.contains("not for ci"), "{}", out.stderr);
}

#[test]
fn a_second_waiter_replaces_the_first() {
    let hub = Hub::start();
    let state = tempfile::tempdir().unwrap();
    let me = sid(&hub.register("twice", Some("twice-1")));
    let first = spawn_wait(
        &hub,
        state.path(),
        &["--session-id", &me, "--timeout", "60"],
        &[],
    );
    // The hook shows once the waiter holds the session and waits.
    crate::reach::wait_hook(&hub, &me, true);
    let second = spawn_wait(
        &hub,
        state.path(),
        &["--session-id", &me, "--timeout", "60"],
        &[],
    );
    let out = finish(first);
    assert_eq!(out.code, 0, "the first gives way quietly: {out:#?}");
    assert_eq!(out.stderr, "");
    hub.publish(
        "anonymous",
        "ping",
        "for the second",
        &format!("session:{me}"),
    );
    let out = finish(second);
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("for the second"));
}

#[test]
fn a_waiter_gives_up_when_its_session_ends() {
    let hub = Hub::start();
    let state = tempfile::tempdir().unwrap();
    let me = sid(&hub.register("leaving", Some("leaving-1")));
    let child = spawn_wait(
        &hub,
        state.path(),
        &["--session-id", &me, "--timeout", "600"],
        &[],
    );
    crate::reach::wait_hook(&hub, &me, true);
    hub.tool("unregister_session", json!({"session_id": me}));
    let out = finish(child);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out.stderr.contains("has ended"), "{out:#?}");
}

#[test]
fn wait_usage_errors_and_failures_exit_1_never_2() {
    let hub = Hub::start();
    let state = tempfile::tempdir().unwrap();
    let cli = waiter(&hub, state.path());
    for args in [
        &["wait", "--timeout", "soon"][..],
        &["wait", "--bogus"],
        &["--url", hub.url.as_str(), "wait", "extra"],
    ] {
        let out = cli.run(args);
        assert_eq!(out.code, 1, "{args:?}: {out:#?}");
    }
    let out = cli.run(&["wait", "--timeout", "1"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr.contains("wait requires --session-id"),
        "{out:#?}"
    );
    let out = cli.run(&["wait", "--session-id", "nobody", "--timeout", "1"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out.stderr.contains("not on the bus"), "{out:#?}");
    let out = Cli::at("http://127.0.0.1:9/mcp").run(&["wait", "--session-id", "x"]);
    assert_eq!(out.code, 1, "{out:#?}");
    // Help is not an error.
    assert_eq!(cli.run(&["wait", "--help"]).code, 0);
}

#[test]
fn the_stop_hook_wakes_the_agent_with_a_direct_message() {
    let hub = Hub::start();
    let tmp = tempfile::tempdir().unwrap();
    let hook_state = tmp.path().join("hooks");
    let wait_state = tmp.path().join("wait");
    // This test process plays the agent whose proxy registered the session.
    let me = sid(&hub.tool(
        "register_session",
        json!({"name": "agent", "client_id": "agent-1", "machine": shared::config::hostname(),
               "cwd": "/src/app", "client_pid": std::process::id()}),
    ));
    let input = json!({"session_id": "cc-1", "cwd": "/src/app", "hook_event_name": "Stop",
                       "stop_hook_active": false});
    let child = support::spawn_hook(
        &hub,
        "stop-wait.sh",
        &input,
        &[
            ("AGENT_EVENT_BUS_HOOK_STATE", hook_state.to_str().unwrap()),
            ("AGENT_EVENT_BUS_STATE_DIR", wait_state.to_str().unwrap()),
            ("AGENT_EVENT_BUS_WAIT_SECONDS", "60"),
        ],
    );
    crate::reach::wait_hook(&hub, &me, true);
    let dm = hub.publish(
        "anonymous",
        "question",
        "are you free?",
        &format!("session:{me}"),
    );
    let out = finish(child);
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stderr.contains("\nare you free?\n"), "{}", out.stderr);
    let r = hub.tool("message_status", json!({"event_ids": [dm]}))[0].clone();
    assert_eq!(
        (&r["status"], &r["delivered_path"]),
        (&json!("delivered"), &json!("hook")),
        "the UserPromptSubmit hook will not show it again: {r}"
    );
}

#[test]
fn install_hook_merges_the_stop_hook_once() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = tmp.path().join("claude").join("settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(
        &settings,
        r#"{"model": "opus", "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "other.sh"}]}]}}"#,
    )
    .unwrap();
    let cli = Cli::at("http://127.0.0.1:9/mcp");
    let args = [
        "install-hook",
        "--settings",
        settings.to_str().unwrap(),
        "--command",
        "/opt/bus/examples/hooks/stop-wait.sh",
    ];
    let out = cli.run(&args);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stdout.starts_with("Added the wake-up hook"), "{out:#?}");
    let merged: Value = serde_json::from_str(&std::fs::read_to_string(&settings).unwrap()).unwrap();
    assert_eq!(merged["model"], "opus");
    assert_eq!(
        merged["hooks"]["Stop"],
        json!([
            {"hooks": [{"type": "command", "command": "other.sh"}]},
            {"hooks": [{"type": "command", "command": "/opt/bus/examples/hooks/stop-wait.sh",
                        "asyncRewake": true, "timeout": 3600}]},
        ])
    );
    let before = std::fs::read(&settings).unwrap();
    let out = cli.run(&args);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stdout.contains("already"), "{out:#?}");
    assert_eq!(std::fs::read(&settings).unwrap(), before, "not rewritten");

    // A fresh settings file is created.
    let fresh = tmp.path().join("new").join("settings.json");
    let out = cli.run(&[
        "install-hook",
        "--settings",
        fresh.to_str().unwrap(),
        "--command",
        "w",
    ]);
    assert_eq!(out.code, 0, "{out:#?}");
    let created: Value = serde_json::from_str(&std::fs::read_to_string(&fresh).unwrap()).unwrap();
    assert_eq!(created["hooks"]["Stop"][0]["hooks"][0]["asyncRewake"], true);
}
