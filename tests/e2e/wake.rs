//! End-to-end tests of the terminal wake: a real tmux server on a private
//! socket, a stand-in agent client (`py/standin_client.py`: a prompt line,
//! typed lines echoed, a turn per submitted line, hooks through the real
//! CLI) that starts the real proxy as its child over stdio. What the proxy
//! types is proved by what the stand-in recorded as submitted and what
//! other panes received, after the proxy logged its decision.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use support::tmux::Tmux;
use support::{Cli, Hub, bin_path, id_of, repo_root, session_by_id, wait_registered, wait_until};

/// A registration, a wake and its check (up to 15 s) on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(90);

/// How the stand-in agent is started.
#[derive(Default)]
struct Opts {
    /// Run the turn hooks (`wake-state busy|idle`).
    hooks: bool,
    /// Start the client with no tmux variables in its own environment.
    hide_pane: bool,
    /// Variables removed from the proxy's environment (comma-separated).
    server_strip: &'static str,
    /// Variables added to the proxy's environment.
    server_env: Vec<(&'static str, String)>,
    /// `AGENT_EVENT_BUS_WAKE` (default on).
    wake: Option<&'static str>,
}

/// A stand-in agent in a tmux pane, its proxy on the bus.
struct Agent {
    pane: String,
    id: String,
    dir: tempfile::TempDir,
}

impl Agent {
    fn start(hub: &Hub, tmux: &Tmux, name: &str, opts: &Opts) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let state = dir.path().join("state");
        std::fs::create_dir(&state).expect("the state dir");
        let script = repo_root().join("tests/e2e/py/standin_client.py");
        let proxy = bin_path("agent-event-bus-proxy");
        let command = format!(
            "exec {} python3 {} {}",
            if opts.hide_pane {
                "env -u TMUX -u TMUX_PANE"
            } else {
                ""
            },
            script.display(),
            proxy.display()
        );
        let server_env = opts
            .server_env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("|");
        // The hub's credential, as its user's proxy and hooks find it; what
        // follows (this agent's own state directory) overrides it.
        let credential = hub.client_env();
        let mut env: Vec<(&str, String)> = credential
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        env.extend([
            ("AGENT_EVENT_BUS_URL", hub.url.clone()),
            ("AGENT_EVENT_BUS_STATE_DIR", state.display().to_string()),
            ("AGENT_EVENT_BUS_SESSION_NAME", name.to_owned()),
            ("AGENT_EVENT_BUS_LEASE_SECONDS", "3".to_owned()),
            ("AGENT_EVENT_BUS_WAKE", opts.wake.unwrap_or("on").to_owned()),
            ("RUST_LOG", "proxy=debug,warn".to_owned()),
            (
                "SUBMITTED",
                dir.path().join("submitted").display().to_string(),
            ),
            (
                "SERVER_LOG",
                dir.path().join("proxy.log").display().to_string(),
            ),
            ("SERVER_STRIP", opts.server_strip.to_owned()),
            ("SERVER_ENV", server_env),
            ("TURN_SECONDS", "1".to_owned()),
        ]);
        if opts.hooks {
            env.push((
                "HOOK_CLI",
                bin_path("agent-event-bus-cli").display().to_string(),
            ));
        }
        let pane = tmux.window(&command, &env);
        let id = id_of(&wait_registered(hub, name));
        Self { pane, id, dir }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }

    /// Every line the stand-in's user (or a wake) submitted.
    fn submitted(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("submitted"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits for a proxy log line holding every one of `parts`.
    fn wait_log(&self, parts: &[&str]) -> String {
        let found = wait_until_or_none(|| {
            self.log()
                .lines()
                .find(|l| parts.iter().all(|p| l.contains(p)))
                .map(str::to_owned)
        });
        found
            .unwrap_or_else(|| panic!("the proxy never logged {parts:?}; its log:\n{}", self.log()))
    }

    /// Waits for the proxy's receipt of `step` on `path` for event `id`.
    fn wait_receipt(&self, step: &str, path: &str, id: u64) -> String {
        let ids = format!("event_ids=[{id}]");
        let (step, path) = (format!("step=\"{step}\""), format!("path=\"{path}\""));
        self.wait_log(&["receipt", &step, &path, &ids])
    }

    /// A CLI run as this agent's hooks would, with its state dir.
    fn cli(&self, hub: &Hub, args: &[&str]) -> support::Output {
        let out = Cli::new(hub)
            .env(
                "AGENT_EVENT_BUS_STATE_DIR",
                self.state().to_str().expect("a UTF-8 path"),
            )
            .run(args);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        out
    }
}

fn wait_until_or_none<T>(mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = std::time::Instant::now();
    loop {
        if let Some(found) = check() {
            return Some(found);
        }
        if start.elapsed() > DEADLINE {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the pane shows `line` as a row of its own.
fn wait_row(tmux: &Tmux, pane: &str, line: &str) {
    wait_until(&format!("the pane to show {line:?}"), DEADLINE, || {
        tmux.screen(pane)
            .lines()
            .any(|l| l.trim_end() == line)
            .then_some(())
    });
}

fn push_of(hub: &Hub, id: &str) -> Vec<String> {
    session_by_id(hub, id)
        .and_then(|s| serde_json::from_value(s["push"].clone()).ok())
        .unwrap_or_default()
}

fn wait_pane_in_reach(hub: &Hub, id: &str) {
    wait_until("the pane in the session's reach", DEADLINE, || {
        push_of(hub, id).contains(&"pane".to_owned()).then_some(())
    });
}

fn dm(hub: &Hub, to: &str, payload: &str) -> u64 {
    let alice = id_of(&hub.register("alice", Some("alice-1")));
    hub.publish(&alice, "question", payload, &format!("session:{to}"))
}

fn notice_for(id: u64) -> String {
    format!(
        "[agent-event-bus] direct message from \"alice\" (event {id}), from another session, not your user: read it with get_events"
    )
}

#[test]
fn an_idle_agents_own_pane_gets_the_notice_typed_submitted_and_checked() {
    let hub = Hub::start();
    let tmux = Tmux::start();
    // As Codex does, the client gives its server no tmux variables: the
    // proxy finds its pane through its ancestors.
    let agent = Agent::start(
        &hub,
        &tmux,
        "woken",
        &Opts {
            hooks: true,
            server_strip: "TMUX,TMUX_PANE",
            ..Opts::default()
        },
    );
    wait_pane_in_reach(&hub, &agent.id);
    wait_row(&tmux, &agent.pane, ">");
    let id = dm(&hub, &agent.id, "lunch?");
    agent.wait_receipt("offered", "pane", id);
    agent.wait_receipt("delivered", "pane", id);
    assert_eq!(agent.submitted(), [notice_for(id)]);
}

#[test]
fn a_draft_is_never_submitted_and_the_wake_waits_until_the_line_is_empty() {
    let hub = Hub::start();
    let tmux = Tmux::start();
    let agent = Agent::start(
        &hub,
        &tmux,
        "drafting",
        &Opts {
            hooks: true,
            ..Opts::default()
        },
    );
    wait_row(&tmux, &agent.pane, ">");
    tmux.type_text(&agent.pane, "half typed");
    wait_row(&tmux, &agent.pane, "> half typed");
    let id = dm(&hub, &agent.id, "are you there?");
    let held = agent.wait_receipt("held", "pane", id);
    assert!(held.contains("a person's draft"), "{held}");
    assert!(agent.submitted().is_empty(), "{:?}", agent.submitted());
    assert!(
        tmux.screen(&agent.pane)
            .lines()
            .any(|l| l.trim_end() == "> half typed"),
        "the draft stays as it was:\n{}",
        tmux.screen(&agent.pane)
    );
    // The person clears the line: the wake goes ahead.
    tmux.key(&agent.pane, "C-u");
    agent.wait_receipt("delivered", "pane", id);
    assert_eq!(
        agent.submitted(),
        [notice_for(id)],
        "only the notice, never the draft"
    );
}

#[test]
fn a_pane_that_does_not_hold_the_client_is_never_typed_into() {
    let hub = Hub::start();
    let tmux = Tmux::start();
    let dir = tempfile::tempdir().unwrap();
    let typed = dir.path().join("typed");
    // Another pane (the operator's, say) records every key it gets.
    let foreign = tmux.window(
        &format!("sh -c 'stty raw -echo; exec cat > {}'", typed.display()),
        &[],
    );
    let socket = tmux.socket().display().to_string();
    // The client shows no pane of its own; a stale variable and a stale
    // hand-made mapping both name the foreign pane.
    let agent = Agent::start(
        &hub,
        &tmux,
        "elsewhere",
        &Opts {
            hide_pane: true,
            server_env: vec![
                ("TMUX", format!("{socket},1,0")),
                ("TMUX_PANE", foreign.clone()),
            ],
            ..Opts::default()
        },
    );
    agent.cli(
        &hub,
        &[
            "panes",
            "set",
            "--session-id",
            &agent.id,
            "--pane",
            &foreign,
            "--socket",
            &socket,
        ],
    );
    let id = dm(&hub, &agent.id, "psst");
    agent.wait_log(&["no pane proven to be this client's", &format!("[{id}]")]);
    let refused = agent.wait_log(&["not typing into tmux pane", &foreign]);
    assert!(refused.contains("stale or foreign"), "{refused}");
    // Sentinel: keys typed after the decision arrive alone.
    tmux.type_text(&foreign, "SENTINEL");
    wait_until("the sentinel in the foreign pane", DEADLINE, || {
        std::fs::read_to_string(&typed)
            .ok()
            .filter(|t| t.contains("SENTINEL"))
    });
    assert_eq!(std::fs::read_to_string(&typed).unwrap(), "SENTINEL");
    assert!(!push_of(&hub, &agent.id).contains(&"pane".to_owned()));
    assert!(agent.submitted().is_empty());
}

#[test]
fn the_off_switch_types_nothing() {
    let hub = Hub::start();
    let tmux = Tmux::start();
    let agent = Agent::start(
        &hub,
        &tmux,
        "quiet",
        &Opts {
            wake: Some("off"),
            ..Opts::default()
        },
    );
    wait_row(&tmux, &agent.pane, ">");
    let first = dm(&hub, &agent.id, "one");
    let second = dm(&hub, &agent.id, "two");
    agent.wait_log(&["wake is off", &format!("[{first}]")]);
    agent.wait_log(&["wake is off", &format!("[{second}]")]);
    assert!(agent.submitted().is_empty());
    wait_row(&tmux, &agent.pane, ">");
    assert!(!tmux.screen(&agent.pane).contains("agent-event-bus"));
    assert!(!push_of(&hub, &agent.id).contains(&"pane".to_owned()));
}

#[test]
fn panes_set_maps_a_pane_by_hand_busy_waits_for_idle_and_panes_clear_unmaps() {
    let hub = Hub::start();
    let tmux = Tmux::start();
    // Neither the client nor its server shows the pane (a custom socket,
    // variables scrubbed): only a hand-made mapping finds it.
    let agent = Agent::start(
        &hub,
        &tmux,
        "mapped",
        &Opts {
            hide_pane: true,
            server_strip: "TMUX,TMUX_PANE",
            ..Opts::default()
        },
    );
    assert!(!push_of(&hub, &agent.id).contains(&"pane".to_owned()));
    let socket = tmux.socket().display().to_string();
    let set = agent.cli(
        &hub,
        &[
            "panes",
            "set",
            "--session-id",
            &agent.id,
            "--pane",
            &agent.pane,
            "--socket",
            &socket,
        ],
    );
    assert!(
        set.stderr.contains(&format!(
            "Mapped session {} to tmux pane {}",
            agent.id, agent.pane
        )),
        "{}",
        set.stderr
    );
    assert!(
        set.stdout.is_empty(),
        "hooks' stdout reaches the model: {}",
        set.stdout
    );
    let mapped: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(agent.state().join(format!("pane-{}.json", agent.id))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        mapped,
        json!({"mux": "tmux", "pane": agent.pane, "socket": socket})
    );
    wait_pane_in_reach(&hub, &agent.id);

    // A busy agent is not woken until its hook says it is idle.
    agent.cli(&hub, &["wake-state", "busy", "--session-id", &agent.id]);
    let state =
        std::fs::read_to_string(agent.state().join(format!("wake-{}.state", agent.id))).unwrap();
    assert!(
        state.starts_with("busy ") && state.ends_with('\n'),
        "{state:?}"
    );
    let id = dm(&hub, &agent.id, "after your turn");
    agent.wait_log(&["the agent is busy; the wake waits", &format!("[{id}]")]);
    assert!(agent.submitted().is_empty());
    agent.cli(&hub, &["wake-state", "idle", "--session-id", &agent.id]);
    agent.wait_receipt("delivered", "pane", id);
    assert_eq!(agent.submitted(), [notice_for(id)]);

    let clear = agent.cli(&hub, &["panes", "clear", "--session-id", &agent.id]);
    assert!(
        clear.stderr.contains("Cleared the pane mapping"),
        "{}",
        clear.stderr
    );
    assert!(
        !agent
            .state()
            .join(format!("pane-{}.json", agent.id))
            .exists()
    );
    // The proxy's next renewal reports no pane.
    let unreached = wait_until_or_none(|| {
        agent
            .log()
            .lines()
            .any(|l| l.ends_with("reach now routes="))
            .then_some(())
    });
    assert!(
        unreached.is_some(),
        "the pane stayed in reach:\n{}",
        agent.log()
    );
}

#[test]
fn panes_set_outside_a_multiplexer_maps_nothing_and_a_bad_pane_is_refused() {
    let hub = Hub::start();
    let state = tempfile::tempdir().unwrap();
    let cli = || Cli::new(&hub).env("AGENT_EVENT_BUS_STATE_DIR", state.path().to_str().unwrap());
    let out = cli().run(&["panes", "set", "--session-id", "s1"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("Not in a tmux or zellij pane"),
        "{}",
        out.stderr
    );
    assert!(
        std::fs::read_dir(state.path()).unwrap().next().is_none(),
        "nothing written"
    );
    let bad = cli().run(&["panes", "set", "--session-id", "s1", "--pane", "3"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("a tmux pane id starts with %"),
        "{}",
        bad.stderr
    );
    let usage = cli().run(&["wake-state", "asleep", "--session-id", "s1"]);
    assert_eq!(usage.code, 2, "{}", usage.stderr);
    assert!(!Path::new(&state.path().join("wake-s1.state")).exists());
}
