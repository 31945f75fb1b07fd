//! End-to-end tests: other OS users of the hub's machine. Loopback is no
//! user boundary, so another user must get nothing: not a call through the
//! hub (it has no credential), not a file in the data directory. And a
//! program another user started on the hub's port before the hub (port
//! squatting) is never sent this machine's credential.
//!
//! They need root (to add a user, or to listen as one); without it they
//! skip with a line saying so.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;
use support::{Cli, Hub, HubOptions, bin_path};

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A throw-away OS user, removed when dropped (a failing test included).
struct OtherUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl OtherUser {
    fn add() -> Self {
        let name = format!("aeb{}", std::process::id());
        let out = Command::new("useradd")
            .args(["--no-create-home", "--home-dir", "/nonexistent"])
            .args(["--shell", "/usr/sbin/nologin", "--user-group"])
            .arg(&name)
            .output()
            .expect("useradd runs");
        assert!(
            out.status.success(),
            "useradd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // From here on, dropping removes the user, whatever fails next.
        let mut user = Self {
            name,
            uid: 0,
            gid: 0,
        };
        let id = |flag: &str| -> u32 {
            let out = Command::new("id")
                .arg(flag)
                .arg(&user.name)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        (user.uid, user.gid) = (id("-u"), id("-g"));
        assert_ne!(user.uid, 0);
        user
    }

    /// A command run as this user, with none of our environment but `PATH`.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/nonexistent")
            .uid(self.uid)
            .gid(self.gid)
            .current_dir("/")
            .stdin(Stdio::null());
        cmd
    }
}

impl Drop for OtherUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// A copy of our CLI that any user can run (the build may sit in a home
/// only its owner can enter).
fn shared_cli(dir: &Path) -> PathBuf {
    let cli = dir.join("agent-event-bus-cli");
    std::fs::copy(bin_path("agent-event-bus-cli"), &cli).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
    cli
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn another_os_user_can_neither_call_the_hub_nor_read_its_files() {
    if !is_root() {
        eprintln!(
            "skipped: another_os_user_can_neither_call_the_hub_nor_read_its_files needs root (useradd)"
        );
        return;
    }
    let user = OtherUser::add();
    // The data directory sits in a place every user can pass through.
    let base = tempfile::tempdir().unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = base.path().join("data");
    let hub = Hub::start_on_db(data.join("data.redb"), HubOptions::default());
    let bin = tempfile::tempdir().unwrap();
    let cli = shared_cli(bin.path());

    // Calling the hub: no credential of its own, and the hub's token file
    // (found through the database's place) unreadable.
    for env in [
        vec![],
        vec![(
            "AGENT_EVENT_BUS_DB",
            data.join("data.redb").display().to_string(),
        )],
    ] {
        let out = user
            .command(&cli)
            .env("AGENT_EVENT_BUS_URL", &hub.url)
            .envs(env.clone())
            .args(["publish", "--type", "intruder", "--payload", "x"])
            .output()
            .unwrap();
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{env:?}: {said}");
        assert!(said.contains("401 Unauthorized"), "{env:?}: {said}");
        if !env.is_empty() {
            assert!(said.contains("permission denied"), "{said}");
        }
    }
    // Reading the data directory or any file in it.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.contains(&data.join("token")) && files.contains(&data.join("data.redb")),
        "{files:?}"
    );
    let out = user.command("ls").arg(&data).output().unwrap();
    assert!(!out.status.success(), "ls: {}", text(&out));
    for file in &files {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", file.display());
        let out = user.command("cat").arg(file).output().unwrap();
        assert!(
            !out.status.success(),
            "cat {}: {}",
            file.display(),
            text(&out)
        );
        assert!(
            text(&out).contains("Permission denied"),
            "{}: {}",
            file.display(),
            text(&out)
        );
    }
    let events = hub.tool("get_events", json!({"event_types": ["intruder"]}));
    assert_eq!(events["events"], json!([]), "nothing got in: {events}");
}

/// A listener owned by `uid` on a loopback port, as a program another user
/// started before the hub would hold it: it reports the first bytes of each
/// connection it accepts.
fn squat(uid: u32) -> (u16, std::sync::mpsc::Receiver<Vec<u8>>) {
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Only this thread becomes the other user (the kernel keeps ids
        // per thread); the socket it makes is theirs.
        rustix::thread::set_thread_res_uid(
            rustix::process::Uid::from_raw(uid),
            rustix::process::Uid::from_raw(uid),
            rustix::process::Uid::from_raw(uid),
        )
        .expect("root can become another user");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        port_tx.send(listener.local_addr().unwrap().port()).unwrap();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = vec![0; 4096];
            let n = std::io::Read::read(&mut stream, &mut buf).unwrap_or(0);
            buf.truncate(n);
            if seen_tx.send(buf).is_err() {
                return;
            }
        }
    });
    (port_rx.recv().unwrap(), seen_rx)
}

#[test]
fn a_port_squatted_by_another_user_never_gets_this_machines_credential() {
    if !is_root() {
        eprintln!(
            "skipped: a_port_squatted_by_another_user_never_gets_this_machines_credential needs root (to listen as another user)"
        );
        return;
    }
    let hub = Hub::start();
    let (port, seen) = squat(65534);
    let squatted = format!("http://127.0.0.1:{port}/mcp");
    let file = hub.token_file().unwrap().to_str().unwrap().to_owned();
    let out = Cli::at(&squatted)
        .env("AGENT_EVENT_BUS_TOKEN_FILE", &file)
        .run(&["sessions"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr
            .contains("refused to send this machine's hub credential to port"),
        "{out:#?}"
    );
    assert!(out.stderr.contains("uid 65534"), "{out:#?}");
    // The first connection the squatter ever saw is this sentinel: the
    // CLI never connected.
    let mut sentinel = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(&mut sentinel, b"sentinel").unwrap();
    let first = seen
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the squatter saw the sentinel");
    assert_eq!(first, b"sentinel");

    // The same CLI, to the hub's own port: its user holds it.
    let out = Cli::at(&hub.url)
        .env("AGENT_EVENT_BUS_TOKEN_FILE", &file)
        .run(&["sessions"]);
    assert_eq!(out.code, 0, "{out:#?}");
}
