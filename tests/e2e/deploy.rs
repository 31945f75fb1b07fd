//! End-to-end tests: the service files in `deploy/` (the systemd unit, the
//! launchd plist) rendered into a temp home, and `install-server`,
//! `install-client` and `uninstall` with stand-ins for `systemctl`,
//! `launchctl` and `claude`.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use support::{Hub, Output, bin_path};

use crate::cli::{assert_ok, clean, fake_tools};

fn service_script(
    home: &Path,
    bindir: &Path,
    path: &str,
    extra: &[(&str, &str)],
    args: &[&str],
) -> Output {
    clean("sh")
        .arg(support::repo_root().join("deploy/service.sh"))
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env("BINDIR", bindir)
        .env("PATH", path)
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("sh runs the service script")
        .into()
}

#[test]
fn the_unit_and_the_plist_render_into_a_home_and_check_out() {
    let home = tempfile::tempdir().unwrap();
    let bindir = bin_path("agent-event-bus").parent().unwrap().to_owned();
    let path = "/usr/bin:/bin";

    let out = service_script(home.path(), &bindir, path, &[], &["render", "linux"]);
    assert_ok(&out);
    let unit_path = home
        .path()
        .join(".config/systemd/user/agent-event-bus.service");
    assert_eq!(out.stdout.trim(), unit_path.to_str().unwrap());
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    assert!(filled(&unit), "every placeholder is filled: {unit}");
    let lines: Vec<&str> = unit.lines().collect();
    for want in [
        format!("ExecStart={}/agent-event-bus", bindir.display()),
        format!(
            "EnvironmentFile=-{}/.config/agent-event-bus/hub.env",
            home.path().display()
        ),
        "Restart=always".to_owned(),
        "WantedBy=default.target".to_owned(),
        // Hardening: private files, no new privileges, a memory bound, and
        // a read-only system and home but for the data directory.
        "UMask=0077".to_owned(),
        "NoNewPrivileges=yes".to_owned(),
        "MemoryMax=1G".to_owned(),
        "ProtectSystem=strict".to_owned(),
        "ProtectHome=read-only".to_owned(),
        format!(
            "ReadWritePaths={}/.claude/contrib/agent-event-bus",
            home.path().display()
        ),
        "PrivateTmp=yes".to_owned(),
    ] {
        assert!(lines.contains(&want.as_str()), "`{want}` in {unit}");
    }
    // The data directory the unit may write exists, and is private.
    let data = home.path().join(".claude/contrib/agent-event-bus");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&data).unwrap().permissions())
            & 0o777,
        0o700
    );
    // Rendering again is idempotent.
    assert_ok(&service_script(
        home.path(),
        &bindir,
        path,
        &[],
        &["render", "linux"],
    ));
    assert_eq!(std::fs::read_to_string(&unit_path).unwrap(), unit);
    if let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    {
        let out = Command::new(analyze)
            .arg("verify")
            .arg(&unit_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "systemd-analyze verify: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let out = service_script(home.path(), &bindir, path, &[], &["render", "macos"]);
    assert_ok(&out);
    let plist_path = home
        .path()
        .join("Library/LaunchAgents/com.agent-event-bus.hub.plist");
    let xml = std::fs::read_to_string(&plist_path).unwrap();
    assert!(filled(&xml), "every placeholder is filled: {xml}");
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(&xml, options)
        .expect("the plist is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "plist");
    assert_eq!(root.attribute("version"), Some("1.0"));
    let dict = plist_value(
        root.children()
            .find(roxmltree::Node::is_element)
            .expect("one top-level dict"),
    );
    assert_eq!(dict["Label"], "com.agent-event-bus.hub");
    assert_eq!(dict["RunAtLoad"], true);
    assert_eq!(dict["KeepAlive"], true);
    assert_eq!(dict["Umask"], 0o077, "the LaunchAgent's files are private");
    let program = dict["ProgramArguments"].as_array().unwrap();
    assert_eq!(program[0], "/bin/sh");
    let hub_bin = program.last().unwrap().as_str().unwrap();
    assert_eq!(hub_bin, format!("{}/agent-event-bus", bindir.display()));
    assert!(
        Path::new(hub_bin).exists(),
        "the plist runs the installed hub"
    );
    let log = format!(
        "{}/.claude/contrib/agent-event-bus/agent-event-bus.log",
        home.path().display()
    );
    assert_eq!(dict["StandardErrorPath"], log.as_str());
    assert!(
        dict["EnvironmentVariables"]["PATH"]
            .as_str()
            .unwrap()
            .contains("/usr/bin")
    );
    // The wrapper script sources the env file and execs the hub.
    let out = Command::new("sh")
        .args(["-n", "-c", program[2].as_str().unwrap()])
        .status()
        .unwrap();
    assert!(out.success(), "the wrapper is valid sh");
}

/// No `@NAME@` placeholder is left (`@system-service` is systemd's own).
fn filled(text: &str) -> bool {
    text.match_indices('@')
        .all(|(i, _)| !text[i + 1..].starts_with(|c: char| c.is_ascii_uppercase()))
}

/// A plist element as JSON (dict, array, string, integer, true/false).
fn plist_value(node: roxmltree::Node) -> Value {
    let elements = || node.children().filter(roxmltree::Node::is_element);
    match node.tag_name().name() {
        "dict" => {
            let items: Vec<_> = elements().collect();
            assert!(items.len() % 2 == 0, "a dict alternates key and value");
            let mut map = serde_json::Map::new();
            for pair in items.chunks(2) {
                assert_eq!(
                    pair[0].tag_name().name(),
                    "key",
                    "a dict alternates key and value"
                );
                map.insert(
                    pair[0].text().unwrap_or_default().to_owned(),
                    plist_value(pair[1]),
                );
            }
            Value::Object(map)
        }
        "array" => Value::Array(elements().map(plist_value).collect()),
        "string" => json!(node.text().unwrap_or_default()),
        "integer" => json!(
            node.text()
                .unwrap_or_default()
                .parse::<i64>()
                .expect("an integer")
        ),
        "true" => json!(true),
        "false" => json!(false),
        other => panic!("unexpected plist element <{other}>"),
    }
}

#[test]
fn install_server_is_idempotent_and_uninstall_keeps_the_data() {
    let hub = Hub::start();
    let home = tempfile::tempdir().unwrap();
    let (path, log) = fake_tools(home.path());
    // The binaries as `make install` would leave them.
    let bindir = home.path().join(".local/bin");
    std::fs::create_dir_all(&bindir).unwrap();
    for bin in [
        "agent-event-bus",
        "agent-event-bus-proxy",
        "agent-event-bus-cli",
    ] {
        std::os::unix::fs::symlink(bin_path(bin), bindir.join(bin)).unwrap();
    }
    let proxy = format!("{}/agent-event-bus-proxy", bindir.display());
    let extra = [
        ("FAKE_LOG", log.to_str().unwrap()),
        ("FAKE_CLAUDE", "proxy"),
        ("FAKE_PROXY", proxy.as_str()),
        // The post-install check talks to the test hub, and finds its
        // token file as the hub's user's CLI does.
        ("AGENT_EVENT_BUS_URL", hub.url.as_str()),
        (
            shared::config::ENV_TOKEN_FILE,
            hub.token_file().and_then(Path::to_str).unwrap(),
        ),
    ];
    let linux = cfg!(target_os = "linux");
    let service_file = if linux {
        home.path()
            .join(".config/systemd/user/agent-event-bus.service")
    } else {
        home.path()
            .join("Library/LaunchAgents/com.agent-event-bus.hub.plist")
    };

    let mut runs = Vec::new();
    for _ in 0..2 {
        std::fs::write(&log, "").unwrap();
        let out = service_script(home.path(), &bindir, &path, &extra, &["install-server"]);
        assert_ok(&out);
        assert!(
            out.stdout.contains("All checks passed."),
            "doctor runs at the end: {out:#?}"
        );
        runs.push((
            std::fs::read_to_string(&service_file).unwrap(),
            std::fs::read_to_string(&log).unwrap(),
        ));
    }
    assert_eq!(runs[0], runs[1], "a second install does the same again");
    let calls = &runs[0].1;
    let want: &[&str] = if linux {
        &[
            "systemctl --user daemon-reload",
            "systemctl --user enable agent-event-bus.service",
            "systemctl --user restart agent-event-bus.service",
        ]
    } else {
        &["launchctl bootstrap"]
    };
    for call in want {
        assert!(calls.contains(call), "`{call}` in {calls}");
    }
    assert!(
        calls.contains("claude mcp remove --scope user agent-event-bus"),
        "{calls}"
    );
    assert!(
        calls.contains(&format!(
            "claude mcp add --scope user agent-event-bus -- {proxy}"
        )),
        "the proxy on the hub's machine needs no token in its entry: {calls}"
    );

    // A server install never puts a token in Claude Code's settings, even
    // with one in the environment: the local proxy reads the token file.
    std::fs::write(&log, "").unwrap();
    let mut server_env = extra.to_vec();
    server_env.push(("AGENT_EVENT_BUS_TOKEN", hub.token()));
    assert_ok(&service_script(
        home.path(),
        &bindir,
        &path,
        &server_env,
        &["install-server"],
    ));
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(!calls.contains(hub.token()), "{calls}");
    assert!(!calls.contains("AGENT_EVENT_BUS_TOKEN"), "{calls}");

    // A client install: the proxy's env carries the remote URL and token.
    std::fs::write(&log, "").unwrap();
    let mut client_env = extra.to_vec();
    client_env.push(("AGENT_EVENT_BUS_TOKEN", "tok-123"));
    let out = service_script(
        home.path(),
        &bindir,
        &path,
        &client_env,
        &["install-client", &hub.url],
    );
    assert_ok(&out);
    assert!(
        out.stdout
            .contains(&format!("export AGENT_EVENT_BUS_URL={}", hub.url)),
        "{out:#?}"
    );
    assert!(
        !out.stdout.contains("tok-123"),
        "the token is never printed: {out:#?}"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls.contains(&format!(
            "claude mcp add --scope user -e AGENT_EVENT_BUS_URL={} -e AGENT_EVENT_BUS_TOKEN=tok-123 agent-event-bus -- {proxy}",
            hub.url
        )),
        "{calls}"
    );

    // Uninstall removes the service, the entry and the binaries; data stays.
    let data = home
        .path()
        .join(".claude/contrib/agent-event-bus/data.redb");
    std::fs::write(&data, "precious").unwrap();
    std::fs::write(&log, "").unwrap();
    let out = service_script(home.path(), &bindir, &path, &extra, &["uninstall"]);
    assert_ok(&out);
    assert!(out.stdout.contains("Your data is kept in"), "{out:#?}");
    assert!(!service_file.exists());
    assert_eq!(
        std::fs::read_dir(&bindir).unwrap().count(),
        0,
        "the binaries are gone"
    );
    assert_eq!(std::fs::read_to_string(&data).unwrap(), "precious");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("claude mcp remove --scope user agent-event-bus")
    );
    // And again: nothing left to do, still fine.
    assert_ok(&service_script(
        home.path(),
        &bindir,
        &path,
        &extra,
        &["uninstall"],
    ));

    // DRY_RUN shows what would change and changes nothing.
    let out = service_script(
        home.path(),
        &bindir,
        &path,
        &[("DRY_RUN", "1"), ("FAKE_LOG", "/dev/null")],
        &["restart"],
    );
    assert_ok(&out);
    assert!(out.stdout.starts_with("+ "), "{out:#?}");
}
