//! End-to-end tests: claims — advisory holds on resources that end with
//! their session — through real proxies and the hub.

use std::path::Path;
use std::time::Duration;

use rustix::process::Signal;
use serde_json::{Value, json};
use support::proxy::Proxy;
use support::{Cli, Hub, Output, wait_until};

/// A registration, a lease lapse plus the sweeper, or a hub restart, on a
/// loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(30);
const FILE: &str = "file:r/src/x.rs";

/// A proxy that has initialized and registered under `name`; returns its
/// session id.
pub(crate) fn registered_proxy(hub: &Hub, name: &str, env: &[(&str, &str)]) -> (Proxy, String) {
    let mut env = env.to_vec();
    env.push(("AGENT_EVENT_BUS_SESSION_NAME", name));
    let mut proxy = Proxy::spawn(hub, &env);
    proxy.initialize();
    let id = wait_until(&format!("{name} to register"), DEADLINE, || {
        hub.tool("list_sessions", json!({}))
            .as_array()?
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["session_id"].as_str().unwrap_or_default().to_owned())
    });
    (proxy, id)
}

/// A proxy registered under `name` with a 3 s lease.
fn proxy_session(hub: &Hub, name: &str) -> (Proxy, String) {
    registered_proxy(hub, name, &[("AGENT_EVENT_BUS_LEASE_SECONDS", "3")])
}

fn session(hub: &Hub, name: &str) -> String {
    let reply = hub.register(name, None);
    reply["session_id"]
        .as_str()
        .expect("a session id")
        .to_owned()
}

fn claim(hub: &Hub, session_id: &str, resource: &str, exclusive: bool) -> Value {
    hub.tool(
        "claim",
        json!({"session_id": session_id, "resource": resource, "exclusive": exclusive}),
    )
}

/// The events on `channel` of one type, oldest first.
fn events_of(hub: &Hub, channel: &str, event_type: &str) -> Vec<Value> {
    let page = hub.tool(
        "get_events",
        json!({"channel": channel, "order": "asc", "limit": 1000}),
    );
    page["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event_type"] == event_type)
        .cloned()
        .collect()
}

fn holders(reply: &Value) -> Vec<String> {
    assert_eq!(reply["error"], "Claimed", "{reply}");
    reply["held_by"]
        .as_array()
        .expect("held_by")
        .iter()
        .map(|h| h["session_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn a_claim_is_refused_naming_its_holder_and_passes_on_when_the_holders_lease_lapses() {
    let hub = Hub::start();
    let (mut a, a_id) = proxy_session(&hub, "alice");
    let (mut b, b_id) = proxy_session(&hub, "bob");

    let granted = a.call_ok("claim", json!({"resource": FILE, "note": "splitting x.rs"}));
    assert_eq!(granted["resource"], FILE);
    assert_eq!(granted["exclusive"], true);
    assert!(granted["claim_id"].as_u64().is_some(), "{granted}");
    let again = a.call_ok("claim", json!({"resource": FILE}));
    assert_eq!(
        again["claim_id"], granted["claim_id"],
        "claiming again is idempotent"
    );
    assert_eq!(again["already_held"], true);

    let refused = b.call_ok("claim", json!({"resource": FILE}));
    assert_eq!(holders(&refused), [a_id.as_str()]);
    let held = &refused["held_by"][0];
    assert_eq!(held["name"], "alice");
    assert_eq!(held["note"], "splitting x.rs");
    assert!(held["display_id"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(held["since"].as_str().is_some(), "{held}");

    let listed = b.call_ok("list_claims", json!({"prefix": "file:r/"}));
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["session_id"], a_id.as_str());

    a.signal(Signal::KILL);
    a.wait_exit(DEADLINE);
    let mine = wait_until(
        "bob's claim to be granted after the lease",
        DEADLINE,
        || {
            let reply = b.call_ok("claim", json!({"resource": FILE}));
            reply.get("claim_id").is_some().then_some(reply)
        },
    );
    assert_eq!(mine["session_id"], b_id.as_str());

    let released = events_of(&hub, "repo:r", "claim_released");
    assert_eq!(released.len(), 1, "{released:?}");
    assert_eq!(released[0]["session_id"], a_id.as_str());
    assert_eq!(released[0]["signal_level"], "lifecycle");
    let why = released[0]["payload"].as_str().unwrap_or_default();
    assert!(why.contains("lease lapsed") && why.contains(FILE), "{why}");
    let granted = events_of(&hub, "repo:r", "claim_granted");
    let who: Vec<&str> = granted
        .iter()
        .map(|e| e["session_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(who, [a_id.as_str(), b_id.as_str()]);
    assert!(granted[1]["id"].as_u64() > released[0]["id"].as_u64());
}

#[test]
fn prefixes_overlap_both_ways_and_shared_claims_coexist() {
    let hub = Hub::start();
    let a = session(&hub, "a");
    let b = session(&hub, "b");
    let c = session(&hub, "c");

    // A directory claim covers the files under it, and the other way round.
    assert!(claim(&hub, &a, "file:r/src/", true)["claim_id"].is_u64());
    assert_eq!(holders(&claim(&hub, &b, FILE, true)), [a.as_str()]);
    assert_eq!(holders(&claim(&hub, &b, "file:r/", false)), [a.as_str()]);
    assert!(claim(&hub, &b, "file:r/srcx/y.rs", true)["claim_id"].is_u64());
    assert!(claim(&hub, &b, "file:r/docs/a.md", true)["claim_id"].is_u64());
    assert_eq!(
        holders(&claim(&hub, &c, "file:r/", true)),
        [b.clone(), a.clone(), b.clone()],
        "a claim on the repo meets every claim under it, in resource order"
    );

    // Shared claims coexist; an exclusive one meets them all.
    assert!(claim(&hub, &a, "task:7", false)["claim_id"].is_u64());
    assert!(claim(&hub, &b, "task:7", false)["claim_id"].is_u64());
    let mut both = holders(&claim(&hub, &c, "task:7", true));
    both.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(both, want);
    // An exclusive holder keeps shared claimers out too.
    assert!(claim(&hub, &c, "task:8", true)["claim_id"].is_u64());
    assert_eq!(holders(&claim(&hub, &a, "task:8", false)), [c.as_str()]);
    // Upgrading a shared claim to exclusive is refused while others share it.
    assert_eq!(holders(&claim(&hub, &a, "task:7", true)), [b.as_str()]);

    // Release frees it, with a claim_released that says so.
    let released = hub.tool(
        "claim",
        json!({"session_id": a, "resource": "file:r/src/", "release": true}),
    );
    assert_eq!(released["released"], true, "{released}");
    let not_held = hub.tool(
        "claim",
        json!({"session_id": a, "resource": "file:r/src/", "release": true}),
    );
    assert_eq!(not_held["released"], false);
    assert!(claim(&hub, &c, FILE, true)["claim_id"].is_u64());
    let why = events_of(&hub, "repo:r", "claim_released");
    assert_eq!(why.len(), 1);
    assert!(
        why[0]["payload"]
            .as_str()
            .unwrap_or_default()
            .ends_with("(released)")
    );
}

#[test]
fn claims_survive_a_hub_restart_and_end_when_their_session_does() {
    let mut hub = Hub::start();
    let a = session(&hub, "a");
    let b = session(&hub, "b");
    assert!(claim(&hub, &a, FILE, true)["claim_id"].is_u64());
    hub.restart();
    let listed = hub.tool("list_claims", json!({}));
    assert_eq!(listed[0]["resource"], FILE, "{listed}");
    assert_eq!(holders(&claim(&hub, &b, FILE, true)), [a.as_str()]);

    hub.tool("unregister_session", json!({"session_id": a}));
    assert!(claim(&hub, &b, FILE, true)["claim_id"].is_u64());
    let released = events_of(&hub, "repo:r", "claim_released");
    assert_eq!(released.len(), 1);
    let why = released[0]["payload"].as_str().unwrap_or_default();
    assert!(why.contains("session ended"), "{why}");
    // An ended session can claim nothing.
    let refused = claim(&hub, &a, "task:1", true);
    assert_eq!(refused["error"], "Session deleted", "{refused}");
}

#[test]
fn bad_claims_are_refused_and_change_nothing() {
    let hub = Hub::start();
    let a = session(&hub, "a");
    for args in [
        json!({"session_id": a}),
        json!({"session_id": a, "resource": ""}),
        json!({"session_id": a, "resource": "file:r/\nx"}),
        json!({"session_id": a, "resource": "task:1", "exclusive": "maybe"}),
        json!({"resource": "task:1"}),
        json!({"session_id": a, "resource": "task:1", "owner": "me"}),
    ] {
        let out = hub.tool_raw("claim", args.clone());
        assert!(out.is_error(), "{args} was accepted: {}", out.text());
    }
    let unknown = claim(&hub, "no-such-session", "task:1", true);
    assert_eq!(unknown["error"], "Session not found");
    assert_eq!(hub.tool("list_claims", json!({})), json!([]));
}

// ---------------------------------------------------------------- CLI and hook

fn run_hook(hub: &Hub, script: &str, input: &Value, env: &[(&str, &str)]) -> Output {
    let out = support::spawn_hook(hub, script, input, env)
        .wait_with_output()
        .expect("the hook runs");
    let out = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(out.code, 0, "a hook never fails the tool call: {out:#?}");
    out
}

/// A `PreToolUse` input as Claude Code 2.1 sends it for an `Edit`.
fn pre_tool_use(cc_session: &str, cwd: &Path, file: &Path) -> Value {
    json!({
        "session_id": cc_session,
        "transcript_path": format!("/home/dev/.claude/projects/-work-my-app/{cc_session}.jsonl"),
        "cwd": cwd,
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": "Edit",
        "tool_input": {
            "file_path": file,
            "old_string": "fn old() {}",
            "new_string": "fn new() {}",
            "replace_all": false,
        },
        "tool_use_id": "toolu_01ABCDEF",
    })
}

#[test]
fn cli_claim_release_and_claims_print_upstream_style_text_and_json() {
    let hub = Hub::start();
    let a = session(&hub, "alice");
    let b = session(&hub, "bob");
    let cli_a = Cli::new(&hub).env("AGENT_EVENT_BUS_SESSION_ID", &a);
    let cli_b = Cli::new(&hub).env("AGENT_EVENT_BUS_SESSION_ID", &b);

    let out = cli_a.run(&["claim", FILE, "--note", "splitting x.rs"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Claimed file:r/src/x.rs (exclusive)\n"),
        "{out:#?}"
    );
    let out = cli_a.run(&["claim", FILE]);
    assert_eq!(out.stdout, "Already holding file:r/src/x.rs (exclusive)\n");

    let out = cli_b.run(&["claim", FILE]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr
            .starts_with("Error: Claimed\n  file:r/src/x.rs  exclusive\n    held by: alice ("),
        "{out:#?}"
    );
    assert!(out.stderr.contains("    note: splitting x.rs"), "{out:#?}");
    let refused = cli_b.run(&["claim", FILE, "--json"]);
    assert_eq!(refused.code, 1);
    assert_eq!(refused.json()["held_by"][0]["session_id"], a.as_str());

    assert!(
        cli_b
            .run(&["claim", "task:9", "--shared"])
            .stdout
            .contains("(shared)")
    );
    let out = cli_b.run(&["claims"]);
    assert!(
        out.stdout
            .starts_with("Claims (2):\n\n  file:r/src/x.rs  exclusive\n    held by: alice ("),
        "{out:#?}"
    );
    assert!(
        out.stdout.contains("  task:9  shared\n    held by: bob ("),
        "{out:#?}"
    );
    let listed = cli_b.run(&["claims", "task:", "--json"]).json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");

    let out = cli_a.run(&["release", FILE]);
    assert_eq!(out.stdout, "Released file:r/src/x.rs\n");
    let out = cli_a.run(&["release", FILE]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Not holding file:r/src/x.rs\n")
    );
    assert_eq!(cli_a.run(&["claims", "file:"]).stdout, "No claims\n");
    let out = cli_a.run(&["claim"]);
    assert_ne!(out.code, 0, "no resource: {out:#?}");
}

#[test]
fn the_pre_tool_use_hook_tells_the_agent_who_holds_the_file_and_can_claim_on_edit() {
    let hub = Hub::start();
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("my-app");
    std::fs::create_dir_all(project.join(".git")).unwrap();
    std::fs::create_dir_all(project.join("src")).unwrap();
    let state = tmp.path().join("state");
    let env = [("AGENT_EVENT_BUS_HOOK_STATE", state.to_str().unwrap())];
    let alice = session(&hub, "alice");
    hub.tool(
        "claim",
        json!({"session_id": alice, "resource": "file:my-app/src/", "note": "renaming the API"}),
    );

    // This Claude Code session goes on the bus through its SessionStart hook.
    let cc = "0b9e1c2d-3f4a-4b5c-8d6e-7f8091a2b3c4";
    let start = json!({
        "session_id": cc,
        "transcript_path": "/tmp/t.jsonl",
        "cwd": project,
        "hook_event_name": "SessionStart",
        "source": "startup",
    });
    run_hook(&hub, "session-start.sh", &start, &env);
    assert!(hub.session_ids().contains(&cc.to_owned()));

    let x = project.join("src/x.rs");
    let out = run_hook(
        &hub,
        "pre-tool-use-claims.sh",
        &pre_tool_use(cc, &project, &x),
        &env,
    );
    let reply: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:#?}"));
    let output = &reply["hookSpecificOutput"];
    assert_eq!(output["hookEventName"], "PreToolUse");
    assert!(
        output.get("permissionDecision").is_none(),
        "the user's settings decide: {reply}"
    );
    let context = output["additionalContext"]
        .as_str()
        .expect("additionalContext");
    assert!(context.contains("file:my-app/src/: alice ("), "{context}");
    assert!(context.contains(&format!("session {alice}")), "{context}");
    assert!(context.contains("note: renaming the API"), "{context}");
    assert!(
        reply["systemMessage"]
            .as_str()
            .is_some_and(|m| m.contains("alice"))
    );

    // A file nobody else holds: nothing to say, and nothing claimed by default.
    let readme = project.join("README.md");
    let out = run_hook(
        &hub,
        "pre-tool-use-claims.sh",
        &pre_tool_use(cc, &project, &readme),
        &env,
    );
    assert!(out.stdout.is_empty(), "{out:#?}");
    assert_eq!(
        hub.tool("list_claims", json!({"prefix": "file:my-app/README"})),
        json!([])
    );

    // Claim on first edit, when asked to; the own claim is never reported.
    let on_edit = [env[0], ("AGENT_EVENT_BUS_CLAIM_ON_EDIT", "1")];
    for _ in 0..2 {
        let out = run_hook(
            &hub,
            "pre-tool-use-claims.sh",
            &pre_tool_use(cc, &project, &readme),
            &on_edit,
        );
        assert!(out.stdout.is_empty(), "{out:#?}");
    }
    let mine = hub.tool("list_claims", json!({"prefix": "file:my-app/README"}));
    assert_eq!(mine[0]["resource"], "file:my-app/README.md", "{mine}");
    assert_eq!(mine[0]["session_id"], cc);
    // A file someone else holds is not claimed on edit.
    run_hook(
        &hub,
        "pre-tool-use-claims.sh",
        &pre_tool_use(cc, &project, &x),
        &on_edit,
    );
    let under = hub.tool("list_claims", json!({"prefix": "file:my-app/src/"}));
    assert_eq!(under.as_array().map(Vec::len), Some(1), "{under}");
}
