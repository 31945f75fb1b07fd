//! The sandbox every client runs in: a temp HOME, runtime and temp folders
//! and a project folder; all other traffic goes to a proxy that refuses; no
//! update checks, no telemetry, none of the developer's own keys or bus
//! settings. When it is dropped, every process that still runs with its HOME
//! (a client, its MCP servers, a background server a client detached) is
//! killed, so nothing a test started outlives it.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The HTTP(S) proxy every client is pointed at: it notes where the client
/// tried to go and refuses, so nothing leaves the machine.
pub(crate) struct RefusingProxy {
    pub url: String,
    tried: Arc<Mutex<Vec<String>>>,
}

impl RefusingProxy {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("a local address"));
        let tried = Arc::new(Mutex::new(Vec::new()));
        let noted = tried.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut line = String::new();
                let mut reader = BufReader::new(&stream);
                if reader.read_line(&mut line).is_ok() {
                    let target = line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or_default()
                        .to_owned();
                    noted.lock().expect("the refusal log").push(target);
                }
                let _ = (&stream).write_all(
                    b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Self { url, tried }
    }

    /// Where clients tried to go, each once, in order.
    pub(crate) fn tried(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for target in self.tried.lock().expect("the refusal log").iter() {
            if !seen.contains(target) {
                seen.push(target.clone());
            }
        }
        seen
    }
}

/// A temp HOME and project folder, and the environment every client runs in.
pub(crate) struct Sandbox {
    _dir: tempfile::TempDir,
    pub home: PathBuf,
    pub project: PathBuf,
    /// `XDG_RUNTIME_DIR`: where Claude Code binds its inbox and the bus keeps
    /// its state directory.
    pub runtime: PathBuf,
    pub refusing_proxy: RefusingProxy,
    /// Extra variables every command gets.
    extra: Vec<(String, String)>,
}

impl Sandbox {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let home = dir.path().join("home");
        let project = dir.path().join("project");
        let runtime = dir.path().join("run");
        for d in [&home, &project, &runtime, &dir.path().join("tmp")] {
            std::fs::create_dir_all(d).expect("a sandbox folder");
        }
        Self {
            home,
            project,
            runtime,
            refusing_proxy: RefusingProxy::start(),
            extra: Vec::new(),
            _dir: dir,
        }
    }

    /// Points the user's shell at `hub`: its URL and its credential, as
    /// README says for the CLI and hooks (in the sandbox's HOME nothing
    /// would find the test hub's token file by itself).
    pub(crate) fn point_at(&mut self, hub: &support::Hub) {
        self.set_env(shared::config::ENV_URL, &hub.base());
        for (key, value) in hub.client_env() {
            self.set_env(&key, &value);
        }
    }

    /// Adds a variable to every command started from now on.
    pub(crate) fn set_env(&mut self, key: &str, value: &str) {
        self.extra.push((key.to_owned(), value.to_owned()));
    }

    pub(crate) fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.project).stdin(Stdio::null());
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            let theirs = [
                "ANTHROPIC_",
                "CLAUDE",
                "GEMINI_",
                "GOOGLE_",
                "OPENAI_",
                "CODEX_",
                "TMUX",
                "ZELLIJ",
            ]
            .iter()
            .any(|p| key.starts_with(p));
            // A client that sees it runs under CI turns non-interactive
            // (Gemini CLI reads `CI`, `CONTINUOUS_INTEGRATION` and `CI_*`
            // and then wants its prompt on stdin, even in a terminal).
            let ci = key == "CI" || key == "CONTINUOUS_INTEGRATION" || key.starts_with("CI_");
            if theirs || ci || support::BUS_ENV.contains(&key.as_str()) || key.ends_with("_proxy") {
                cmd.env_remove(&key);
            }
        }
        let home = &self.home;
        for (key, value) in [
            ("HOME", home.clone()),
            ("XDG_CONFIG_HOME", home.join(".config")),
            ("XDG_CACHE_HOME", home.join(".cache")),
            ("XDG_DATA_HOME", home.join(".local/share")),
            ("XDG_STATE_HOME", home.join(".local/state")),
            ("XDG_RUNTIME_DIR", self.runtime.clone()),
            ("TMPDIR", self.runtime.with_file_name("tmp")),
        ] {
            cmd.env(key, value);
        }
        for key in [
            "HTTPS_PROXY",
            "HTTP_PROXY",
            "ALL_PROXY",
            "https_proxy",
            "http_proxy",
        ] {
            cmd.env(key, &self.refusing_proxy.url);
        }
        cmd.env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .env("DISABLE_AUTOUPDATER", "1")
            .env("DISABLE_TELEMETRY", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("NO_UPDATE_NOTIFIER", "1")
            .env("NO_COLOR", "1");
        for (key, value) in &self.extra {
            cmd.env(key, value);
        }
        cmd
    }

    /// The processes that run with this sandbox's HOME now.
    pub(crate) fn processes(&self) -> Vec<(u32, String)> {
        let needle = format!("HOME={}\0", self.home.display());
        let mut found = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return found;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse().ok()) else {
                continue;
            };
            let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
                continue;
            };
            if String::from_utf8_lossy(&environ).contains(&needle) {
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                found.push((pid, cmdline));
            }
        }
        found
    }

    /// Kills every process still running with this sandbox's HOME (after a
    /// moment to end by itself: a client whose terminal closed) and waits
    /// until none is left; returns what it had to kill.
    pub(crate) fn sweep(&self) -> Vec<(u32, String)> {
        let grace = Instant::now() + Duration::from_secs(3);
        while !self.processes().is_empty() && Instant::now() < grace {
            std::thread::sleep(Duration::from_millis(50));
        }
        let left = self.processes();
        for (pid, _) in &left {
            if let Some(pid) = rustix::process::Pid::from_raw(i32::try_from(*pid).unwrap_or(0)) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        let until = Instant::now() + Duration::from_secs(10);
        while !self.processes().is_empty() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        left
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let killed = self.sweep();
        if !killed.is_empty() {
            eprintln!("sandbox: killed what was left: {killed:?}");
        }
    }
}
