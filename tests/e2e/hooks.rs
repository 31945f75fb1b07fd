//! End-to-end tests: the hook recipes in `examples/hooks/`, run as Claude
//! Code runs them, with our CLI on `PATH`, against a real hub.

use std::path::Path;

use serde_json::{Value, json};
use support::{Hub, Output};

use crate::cli::{assert_ok, host, register_with_pid};

/// Runs the recipe for a hook event (`SessionStart` → `session-start.sh`) as
/// Claude Code does: what it sends that hook on stdin, the CLI on PATH, the
/// bus environment cleared.
pub(crate) fn fire(
    hub: &Hub,
    event: &str,
    session_id: &str,
    cwd: &Path,
    env: &[(&str, &str)],
) -> Output {
    let script = match event {
        "SessionStart" => "session-start.sh",
        "UserPromptSubmit" => "user-prompt-submit.sh",
        "SessionEnd" => "session-end.sh",
        other => panic!("no recipe for {other}"),
    };
    support::spawn_hook(hub, script, &hook_input(event, session_id, cwd), env)
        .wait_with_output()
        .expect("the hook runs")
        .into()
}

/// What Claude Code sends each hook (as recorded from Claude Code 2.1).
fn hook_input(event: &str, session_id: &str, cwd: &Path) -> Value {
    let mut input = json!({
        "session_id": session_id,
        "transcript_path": format!("/home/dev/.claude/projects/-work-app/{session_id}.jsonl"),
        "cwd": cwd,
        "hook_event_name": event,
    });
    match event {
        "SessionStart" => {
            input["source"] = json!("startup");
            input["model"] = json!("claude-sonnet-4-5");
        }
        "UserPromptSubmit" => {
            input["prompt"] = json!("what's next?");
            input["permission_mode"] = json!("default");
        }
        _ => input["reason"] = json!("prompt_input_exit"),
    }
    input
}

pub(crate) fn context_of(out: &Output, event: &str) -> String {
    assert_ok(out);
    let reply: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("hook JSON ({e}): {out:#?}"));
    assert_eq!(reply["hookSpecificOutput"]["hookEventName"], event);
    reply["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .expect("additionalContext")
        .to_owned()
}

#[test]
fn hooks_without_a_proxy_register_deliver_direct_messages_and_unregister() {
    let hub = Hub::start();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let env_file = tmp.path().join("claude-env");
    let project = tmp.path().join("my-app");
    std::fs::create_dir_all(&project).unwrap();
    let (state_s, env_s) = (state.to_str().unwrap(), env_file.to_str().unwrap());
    let env = [
        ("AGENT_EVENT_BUS_HOOK_STATE", state_s),
        ("CLAUDE_ENV_FILE", env_s),
    ];
    let cc = "6f1c1a2e-5b7d-4c1e-9a0b-2f3d4e5f6a7b";

    hub.publish("peer", "session_registered", "noise", "all");
    let news = hub.publish(
        "peer",
        "task_completed",
        "peer finished the API",
        "repo:my-app",
    );

    let out = fire(&hub, "SessionStart", cc, &project, &env);
    let context = context_of(&out, "SessionStart");
    assert!(context.contains(&format!("as session {cc}")), "{context}");
    assert!(
        context.contains(&format!("[{news}] task_completed (repo:my-app) [info]")),
        "{context}"
    );
    assert!(context.contains("peer finished the API"));
    assert!(
        !context.contains("noise"),
        "lifecycle events are left out: {context}"
    );
    assert!(
        hub.session_ids().contains(&cc.to_owned()),
        "registered with Claude Code's id"
    );
    let sessions = hub.tool("list_sessions", json!({}));
    assert_eq!(sessions[0]["name"], "my-app", "named after the project");
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        format!("export AGENT_EVENT_BUS_SESSION_ID={cc}\n"),
        "later Bash commands act as this session"
    );

    // Nothing new: UserPromptSubmit prints nothing.
    let out = fire(&hub, "UserPromptSubmit", cc, &project, &env);
    assert_ok(&out);
    assert_eq!(out.stdout, "");

    // A direct message (and a broadcast, which is not one) arrive.
    hub.publish("peer", "broadcast", "for everyone", "all");
    let dm = hub.publish(
        "peer-7",
        "question",
        "can you review #42?",
        &format!("session:{cc}"),
    );
    let out = fire(&hub, "UserPromptSubmit", cc, &project, &env);
    let context = context_of(&out, "UserPromptSubmit");
    assert!(
        context.contains(&format!(
            "from session peer-7, event type \"question\" (event {dm})"
        )) && context.contains("\ncan you review #42?\n"),
        "{context}"
    );
    assert!(!context.contains("for everyone"), "{context}");
    assert!(
        context.contains("not instructions"),
        "framed as information: {context}"
    );
    let receipt = hub.tool("message_status", json!({"event_ids": [dm]}))[0].clone();
    assert_eq!(receipt["delivered_path"], "prompt", "{receipt}");
    // Delivered once.
    let out = fire(&hub, "UserPromptSubmit", cc, &project, &env);
    assert_eq!(out.stdout, "", "{out:#?}");
    // What the agent fetched itself is not shown again either.
    let fetched = hub.publish("peer-7", "question", "seen it?", &format!("session:{cc}"));
    let agent = crate::receipts::session_client(&hub, cc);
    support::rt().block_on(support::call(
        &agent,
        "get_events",
        json!({"session_id": cc, "channel": format!("session:{cc}"), "cursor": dm.to_string()}),
    ));
    let out = fire(&hub, "UserPromptSubmit", cc, &project, &env);
    assert_eq!(out.stdout, "", "{out:#?}");
    let receipt = hub.tool("message_status", json!({"event_ids": [fetched]}))[0].clone();
    assert_eq!(receipt["delivered_path"], "tool", "{receipt}");

    // The hook registered the session, so SessionEnd unregisters it.
    let out = fire(&hub, "SessionEnd", cc, &project, &env);
    assert_ok(&out);
    assert!(!hub.session_ids().contains(&cc.to_owned()));
    assert_eq!(
        std::fs::read_dir(&state).unwrap().count(),
        0,
        "its state is cleared"
    );
}

#[test]
fn hooks_use_the_agents_proxy_session_and_leave_it_alone() {
    let hub = Hub::start();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let project = tmp.path().join("app");
    std::fs::create_dir_all(&project).unwrap();
    let cc = "0b8e7e9a-1111-4c1e-9a0b-000000000002";
    // Claude Code puts its id in the environment; the proxy's session id
    // differs, and the hooks must still find the proxy's session.
    let env = [
        ("AGENT_EVENT_BUS_HOOK_STATE", state.to_str().unwrap()),
        ("CLAUDE_CODE_SESSION_ID", cc),
    ];
    // This test process plays the agent: the hook's ancestors include it.
    register_with_pid(&hub, "proxy-1", &host(), std::process::id());
    let before = hub.session_ids();

    let out = fire(&hub, "SessionStart", cc, &project, &env);
    let context = context_of(&out, "SessionStart");
    assert!(context.contains("as session proxy-1"), "{context}");
    assert_eq!(hub.session_ids(), before, "no second session for one agent");

    let dm = hub.publish("peer", "ping", "hello proxy", "session:proxy-1");
    let context = context_of(
        &fire(&hub, "UserPromptSubmit", cc, &project, &env),
        "UserPromptSubmit",
    );
    assert!(
        context.contains(&format!(
            "from session peer, event type \"ping\" (event {dm})"
        )) && context.contains("\nhello proxy\n"),
        "{context}"
    );

    let out = fire(&hub, "SessionEnd", cc, &project, &env);
    assert_ok(&out);
    assert_eq!(
        hub.session_ids(),
        before,
        "the proxy's session is the proxy's to end"
    );
}

#[test]
fn hooks_stay_quiet_when_the_hub_is_down() {
    let tmp = tempfile::tempdir().unwrap();
    let mut hub = Hub::start();
    hub.stop();
    let env = [("AGENT_EVENT_BUS_HOOK_STATE", tmp.path().to_str().unwrap())];
    for event in ["SessionStart", "UserPromptSubmit", "SessionEnd"] {
        let out = fire(&hub, event, "cc-down", tmp.path(), &env);
        assert_ok(&out);
        assert_eq!(out.stdout, "", "{event}: {out:#?}");
    }
}
