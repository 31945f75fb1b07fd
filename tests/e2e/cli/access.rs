//! `token`, `open` and `doctor` on the credential: the hub's token for a
//! remote client, the live view opened with the token in its address's
//! fragment (never on a command line), and what `doctor` says when the
//! credential is missing or wrong.

use std::os::unix::fs::PermissionsExt;

use support::{Cli, Hub};

use super::{assert_fails, assert_ok};

#[test]
fn token_prints_the_hubs_token_and_open_hands_it_to_the_browser_privately() {
    let hub = Hub::start();
    let out = Cli::new(&hub).run(&["token"]);
    assert_ok(&out);
    assert_eq!(out.stdout.trim(), hub.token());

    let out = Cli::new(&hub).run(&["open", "--print"]);
    assert_ok(&out);
    assert_eq!(
        out.stdout.trim(),
        format!("{}/#token={}", hub.base(), hub.token())
    );

    // A stand-in browser records what it was given: a file, whose page
    // forwards to the address with the token in its fragment.
    let tmp = tempfile::tempdir().unwrap();
    let browser = tmp.path().join("browser");
    let seen = tmp.path().join("seen");
    std::fs::write(
        &browser,
        format!(
            "#!/bin/sh\nprintf '%s' \"$*\" > {seen}.args\ncat \"$1\" > {seen}.page\nstat -c %a \"$1\" > {seen}.mode\n",
            seen = seen.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = tmp.path().join("state");
    let out = Cli::new(&hub)
        .env("BROWSER", browser.to_str().unwrap())
        .env("AGENT_EVENT_BUS_STATE_DIR", state.to_str().unwrap())
        .run(&["open"]);
    assert_ok(&out);
    assert!(!out.stdout.contains(hub.token()), "{out:#?}");
    let read = |ext: &str| std::fs::read_to_string(format!("{}.{ext}", seen.display())).unwrap();
    let args = read("args");
    assert!(
        !args.contains(hub.token()),
        "the token is on no command line: {args}"
    );
    assert!(args.starts_with(state.to_str().unwrap()), "{args}");
    assert!(
        read("page").contains(&format!("{}/#token={}", hub.base(), hub.token())),
        "{}",
        read("page")
    );
    assert_eq!(read("mode").trim(), "600");
}

#[test]
fn without_a_credential_token_and_open_say_where_to_get_one() {
    let hub = Hub::start();
    let home = tempfile::tempdir().unwrap();
    let cli = Cli::at(&hub.url).env("HOME", home.path().to_str().unwrap());
    for args in [&["token"][..], &["open", "--print"]] {
        let out = cli.run(args);
        assert_fails(&out);
        assert!(out.stderr.contains("no token file at"), "{out:#?}");
        assert!(out.stdout.is_empty(), "{out:#?}");
    }
    // A hub elsewhere never gets this machine's token file.
    let out = Cli::at("https://hub.example.invalid/agent-event-bus")
        .env(
            "AGENT_EVENT_BUS_TOKEN_FILE",
            hub.token_file().unwrap().to_str().unwrap(),
        )
        .run(&["token"]);
    assert_fails(&out);
    assert!(
        out.stderr
            .contains("a hub on another machine needs its token"),
        "{out:#?}"
    );
}

#[test]
fn doctor_explains_a_missing_or_wrong_credential() {
    let hub = Hub::start();
    let home = tempfile::tempdir().unwrap();
    let home = home.path().to_str().unwrap();

    let out = Cli::new(&hub).env("PATH", "/nonexistent").run(&["doctor"]);
    assert_ok(&out);
    let file = hub.token_file().unwrap().display().to_string();
    assert!(
        out.stdout
            .contains(&format!("✓ auth ok (token from {file})")),
        "{out:#?}"
    );

    let out = Cli::at(&hub.url)
        .env("HOME", home)
        .env("PATH", "/nonexistent")
        .run(&["doctor"]);
    assert_fails(&out);
    assert!(out.stdout.contains("✗ tool call refused"), "{out:#?}");
    assert!(
        out.stdout.contains("fix: there is no token file at"),
        "{out:#?}"
    );

    let out = Cli::at(&hub.url)
        .env("AGENT_EVENT_BUS_TOKEN", "wrong")
        .env("PATH", "/nonexistent")
        .run(&["doctor"]);
    assert_fails(&out);
    assert!(
        out.stdout
            .contains("fix: AGENT_EVENT_BUS_TOKEN (or --token) is not this hub's token"),
        "{out:#?}"
    );
    assert!(!out.stdout.contains(hub.token()), "{out:#?}");
}
