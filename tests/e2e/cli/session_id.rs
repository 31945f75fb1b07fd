//! Which session a command acts as: the flag, then the environment, then the
//! agent's own session found through the CLI's ancestors; `whoami`.

use support::{Cli, Hub};

use super::{assert_fails, assert_ok, event, host, publish_id, register_with_pid};

#[test]
fn the_session_id_comes_from_the_flag_then_the_environment() {
    let hub = Hub::start();
    for id in ["flag-sid", "env-sid", "cc-sid"] {
        hub.register(id, Some(id));
    }
    let publisher = |cli: Cli, args: &[&str]| {
        let mut all = vec!["publish", "--type", "t", "--payload", "p"];
        all.extend_from_slice(args);
        let id = publish_id(&cli.run(&all));
        event(&hub, id)["session_id"].as_str().unwrap().to_owned()
    };
    let both = || {
        Cli::new(&hub)
            .env("AGENT_EVENT_BUS_SESSION_ID", "env-sid")
            .env("CLAUDE_CODE_SESSION_ID", "cc-sid")
    };
    assert_eq!(publisher(both(), &["--session-id", "flag-sid"]), "flag-sid");
    assert_eq!(publisher(both(), &[]), "env-sid");
    assert_eq!(
        publisher(Cli::new(&hub).env("CLAUDE_CODE_SESSION_ID", "cc-sid"), &[]),
        "cc-sid"
    );
    // An empty variable counts as unset, as in the original.
    assert_eq!(
        publisher(
            Cli::new(&hub)
                .env("AGENT_EVENT_BUS_SESSION_ID", "")
                .env("CLAUDE_CODE_SESSION_ID", "cc-sid"),
            &[]
        ),
        "cc-sid"
    );
    // Nothing names a session, and no ancestor has one: anonymous.
    assert_eq!(publisher(Cli::new(&hub), &[]), "anonymous");
}

#[test]
fn a_hook_run_by_an_agent_acts_as_the_agents_session() {
    let hub = Hub::start();
    let me = std::process::id();
    // The CLI is our child, so this test process is its parent: the session
    // whose client_pid is ours is "the agent's" session. One on another
    // machine with the same PID, registered later, must not be taken.
    register_with_pid(&hub, "proxy-here", &host(), me);
    register_with_pid(&hub, "proxy-elsewhere", "some-other-machine", me);
    register_with_pid(&hub, "unrelated", &host(), 1);

    let cli = Cli::new(&hub);
    let id = publish_id(&cli.run(&["publish", "--type", "t", "--payload", "from a hook"]));
    assert_eq!(event(&hub, id)["session_id"], "proxy-here");

    let out = cli.run(&["whoami"]);
    assert_ok(&out);
    assert_eq!(out.stdout, "proxy-here\n");
    assert!(
        out.stderr.contains(&format!("ancestor process {me}")),
        "{out:#?}"
    );
    let out = cli.run(&["whoami", "--json"]);
    assert_ok(&out);
    let who = out.json();
    assert_eq!(who["session_id"], "proxy-here");
    assert_eq!(who["registered"], true);
    assert_eq!(who["client_pid"], me);
    assert_eq!(who["name"], "proxy-here");
    assert!(
        out.stdout.starts_with("{\"session_id\": \"proxy-here\", "),
        "Python spacing: {out:#?}"
    );

    // The environment still wins over the ancestor walk.
    let out = Cli::new(&hub)
        .env("CLAUDE_CODE_SESSION_ID", "cc-x")
        .run(&["whoami", "--json"]);
    assert_ok(&out);
    assert_eq!(out.json()["session_id"], "cc-x");
    assert_eq!(out.json()["registered"], false);

    // Events and ack act for it too.
    let out = cli.run(&["events", "--resume", "--order", "asc", "--json"]);
    assert_ok(&out);
    let out = cli.run(&["ack", "--cursor", &id.to_string(), "--json"]);
    assert_ok(&out);
    assert_eq!(out.json()["session_id"], "proxy-here");
}

#[test]
fn whoami_resume_and_ack_need_a_session() {
    let hub = Hub::start();
    let cli = Cli::new(&hub);
    let out = cli.run(&["whoami"]);
    assert_fails(&out);
    assert!(out.stderr.starts_with("Error: no session"), "{out:#?}");

    let out = cli.run(&["events", "--resume"]);
    assert_fails(&out);
    assert_eq!(out.stderr, "Error: --resume requires --session-id\n");

    let out = cli.run(&["ack", "--cursor", "1"]);
    assert_fails(&out);
    assert_eq!(
        out.stderr,
        "Error: ack requires --session-id (or $AGENT_EVENT_BUS_SESSION_ID, else $CLAUDE_CODE_SESSION_ID)\n"
    );
}
