//! The end-to-end harness: starts the real binaries on port 0 with a temp
//! data dir, and gives tests a typed way to drive them.
//!
//! # Layout
//! - [`Hub`]: the hub process (start, restart on the same data, kill -9,
//!   start under given open-file limits: `open_files`);
//!   `credential`, its token and what lets a client find it.
//! - [`Cli`]: runs `agent-event-bus-cli` as a hook would.
//! - [`group`]: a child in a process group of its own, killed as a group.
//! - [`fresh`]: refusing a binary older than its sources.
//! - [`keys`]: a private state directory for key files; clients that
//!   present a session's key.
//! - [`proxy`]: the proxy as a child process spoken to over stdio.
//! - [`sink`]: [`sink::WebhookSink`], a real local HTTP receiver.
//! - [`tmux`]: a private tmux server for the terminal wake tests.
//! - [`original`]: databases in the Python original's `SQLite` format.
//! - [`sessions`](mod@sessions): the hub's live sessions, one by id or name, and waiting
//!   for a registration.
//! - [`wait_until`]: poll a condition with a generous deadline.

#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap in a test is the test failing, with its line"
)]

mod credential;
pub mod fresh;
pub mod group;
pub mod keys;
mod open_files;
pub mod original;
pub mod proxy;
pub mod sessions;
pub mod sink;
pub mod tmux;

pub use sessions::{
    events, id_of, page_ids, session_by_id, session_named, sessions, wait_registered,
};

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use shared::HubClient;
use shared::tools::events::PublishParams;
use shared::tools::sessions::{NoParams, RegisterParams};

/// The path of one of the workspace's binaries, built by `cargo build --bins`
/// into the same target dir as this test executable.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    // target/<profile>/deps/e2e-xxxx → target/<profile>/<name>; a bench
    // binary sits in target/<profile> itself.
    let mut dir = exe.parent().expect("the executable has a directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().expect("deps has a parent");
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`make test` runs `cargo build --workspace --bins`)",
        path.display()
    );
    fresh::refuse_stale(&path);
    path
}

/// The workspace root (for `examples/`, `deploy/`).
pub fn repo_root() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_owned()
}

/// Variables outside the `AGENT_EVENT_BUS_` family that the binaries (or
/// the HTTP client inside them) read; cleared for every child so the
/// developer's own setup never leaks into a test.
pub const BUS_ENV: &[&str] = &[
    "CLAUDE_CODE_SESSION_ID",
    // The wake paths: a test's proxy must never find the developer's own
    // terminal pane or Claude Code inbox.
    "CLAUDE_CODE_MESSAGING_SOCKET",
    "CLAUDE_CODE_MESSAGING_TOKEN",
    "TMUX",
    "TMUX_PANE",
    "ZELLIJ",
    "ZELLIJ_PANE_ID",
    "ZELLIJ_SESSION_NAME",
    "HOST",
    "PORT",
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Removes from `cmd` every `AGENT_EVENT_BUS_*` variable of this process's
/// environment (whatever the binaries read today or tomorrow) and the
/// others in [`BUS_ENV`].
pub fn clear_bus_env(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AGENT_EVENT_BUS_") {
            cmd.env_remove(name);
        }
    }
    for var in BUS_ENV {
        cmd.env_remove(var);
    }
}

/// A command for one of our binaries with the bus environment cleared.
pub fn command(name: &str) -> Command {
    let mut cmd = Command::new(bin_path(name));
    clear_bus_env(&mut cmd);
    cmd
}

/// Starts one of the hook recipes in `examples/hooks/` as Claude Code does:
/// `input` (the hook JSON) on stdin, our CLI first on `PATH`, the bus
/// environment cleared but for the hub's URL and `env`.
pub fn spawn_hook(hub: &Hub, script: &str, input: &Value, env: &[(&str, &str)]) -> Child {
    let cli_dir = bin_path("agent-event-bus-cli");
    let cli_dir = cli_dir.parent().expect("the CLI sits in a directory");
    let mut cmd = Command::new("bash");
    clear_bus_env(&mut cmd);
    let mut child = cmd
        .arg(repo_root().join("examples/hooks").join(script))
        .env("PATH", format!("{}:/usr/bin:/bin", cli_dir.display()))
        .env("AGENT_EVENT_BUS_URL", &hub.url)
        .envs(hub.client_env())
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs the hook");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.to_string().as_bytes());
    }
    child
}

/// A loopback port that refuses connections for as long as this lives: a
/// socket bound to it that never listens, so no other test can take it.
pub struct ClosedPort {
    pub port: u16,
    _socket: rustix::fd::OwnedFd,
}

impl ClosedPort {
    pub fn new() -> Self {
        use rustix::net::{AddressFamily, SocketType, bind, getsockname, socket};
        let socket = socket(AddressFamily::INET, SocketType::STREAM, None).expect("a socket");
        let any = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 0);
        bind(&socket, &any).expect("a free loopback port");
        let bound = getsockname(&socket).expect("the bound address");
        let port = std::net::SocketAddrV4::try_from(bound)
            .expect("an IPv4 address")
            .port();
        Self {
            port,
            _socket: socket,
        }
    }

    /// The hub URL nobody answers at.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }
}

impl Default for ClosedPort {
    fn default() -> Self {
        Self::new()
    }
}

/// How long the harness waits for a state the hub reports.
const WAIT_DEADLINE: Duration = Duration::from_secs(20);

/// Polls `check` every 20 ms until it returns `Some`, or panics with `what`
/// after `deadline`.
pub fn wait_until<T>(what: &str, deadline: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running hub on a loopback port with its own data dir.
pub struct Hub {
    child: Option<Child>,
    /// The temp dir that holds the database; kept across restarts.
    pub dir: Arc<tempfile::TempDir>,
    pub url: String,
    pub port: u16,
    /// The database file (in `dir` unless [`Hub::start_on`] put it elsewhere).
    db: PathBuf,
    /// The hub's credential: the token it was given, else the one it made.
    token: String,
    /// The token file it made (`None` when it was given its token).
    token_file: Option<PathBuf>,
    extra_args: Vec<String>,
    extra_env: Vec<(String, String)>,
    log: Arc<Mutex<String>>,
    /// The client the harness's own helpers share (its connections pooled).
    shared: Mutex<Option<Arc<HubClient>>>,
}

/// How to start a hub.
#[derive(Default, Clone)]
pub struct HubOptions {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Hub {
    /// Starts a hub on 127.0.0.1, port 0, with a fresh temp data dir.
    pub fn start() -> Self {
        Self::start_with(HubOptions::default())
    }

    pub fn start_with(options: HubOptions) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("a temp dir"));
        let db = dir.path().join("data.redb");
        Self::spawn(dir, db, options.args, options.env, 0)
    }

    /// Starts a hub whose database is `db` (say, on a small filesystem).
    pub fn start_on_db(db: PathBuf, options: HubOptions) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("a temp dir"));
        Self::spawn(dir, db, options.args, options.env, 0)
    }

    /// Starts a hub on 127.0.0.1 at `port` (one a test has just freed).
    pub fn start_on_port(options: HubOptions, port: u16) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("a temp dir"));
        let db = dir.path().join("data.redb");
        Self::spawn(dir, db, options.args, options.env, port)
    }

    /// Starts a hub on the store already in `dir` (`data.redb`), e.g. one
    /// just imported.
    pub fn start_on(dir: Arc<tempfile::TempDir>, options: HubOptions) -> Self {
        let db = dir.path().join("data.redb");
        Self::spawn(dir, db, options.args, options.env, 0)
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.db.clone()
    }

    fn spawn(
        dir: Arc<tempfile::TempDir>,
        db: PathBuf,
        args: Vec<String>,
        env: Vec<(String, String)>,
        port: u16,
    ) -> Self {
        let options = HubOptions { args, env };
        Self::spawn_command(command("agent-event-bus"), dir, db, options, port)
    }

    /// Starts `cmd`, the hub's command line so far, on `db`.
    pub(crate) fn spawn_command(
        mut cmd: Command,
        dir: Arc<tempfile::TempDir>,
        db: PathBuf,
        options: HubOptions,
        port: u16,
    ) -> Self {
        let HubOptions { args, env } = options;
        if !args.iter().any(|a| a == "--host") {
            cmd.arg("--host").arg("127.0.0.1");
        }
        cmd.arg("--port")
            .arg(port.to_string())
            .arg("--db")
            .arg(&db)
            .args(&args)
            .env("RUST_LOG", "hub=debug,warn")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the hub starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(rest.trim().to_owned());
                }
                let mut log = sink
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                log.push_str(&line);
                log.push('\n');
            }
        });
        let Ok(base) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the hub did not report its address; its stderr:\n{}",
                log.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
            );
        };
        let port = base
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .expect("the readiness line ends with a port");
        let (token, token_file) = if let Some(token) = credential::given_token(&args, &env) {
            (token, None)
        } else {
            let file = shared::config::token_file_beside(&db);
            let token = std::fs::read_to_string(&file).unwrap_or_else(|e| {
                panic!(
                    "the hub made no token file at {} ({e}); its stderr:\n{}",
                    file.display(),
                    log.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                )
            });
            (token.trim().to_owned(), Some(file))
        };
        Self {
            child: Some(child),
            dir,
            url: format!("{}/mcp", base.trim_end_matches('/')),
            port,
            db,
            token,
            token_file,
            extra_args: args,
            extra_env: env,
            log,
            shared: Mutex::new(None),
        }
    }

    /// The base URL without `/mcp`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything the hub has written to stderr so far.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The client the harness's helpers share, presenting the credential;
    /// one per hub process, so polling loops reuse its connections.
    pub fn shared_client(&self) -> Arc<HubClient> {
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert_with(|| Arc::new(self.client()))
            .clone()
    }

    /// Waits until the hub reports `n` `get_events` long-polls in progress
    /// (`long_polls` in `/health`): a long-poll sent before has reached it.
    pub fn wait_long_polls(&self, n: u64) {
        let client = self.shared_client();
        let runtime = rt();
        wait_until(
            &format!("{n} long-polls in progress"),
            WAIT_DEADLINE,
            || {
                let health = runtime.block_on(client.health()).ok()?;
                (health["long_polls"].as_u64() == Some(n)).then_some(())
            },
        );
    }

    /// Stops the hub with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let pid = rustix::process::Pid::from_child(&child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the hub with SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a new hub process on the same data dir (and a new port).
    pub fn restart(&mut self) {
        self.stop();
        let next = Self::spawn(
            self.dir.clone(),
            self.db.clone(),
            self.extra_args.clone(),
            self.extra_env.clone(),
            0,
        );
        self.absorb(next);
    }

    /// Starts a new hub process on the same data dir and the same port.
    pub fn restart_same_port(&mut self) {
        self.stop();
        let port = self.port;
        let next = Self::spawn(
            self.dir.clone(),
            self.db.clone(),
            self.extra_args.clone(),
            self.extra_env.clone(),
            port,
        );
        self.absorb(next);
    }

    fn absorb(&mut self, mut next: Hub) {
        *self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        self.token.clone_from(&next.token);
        self.token_file.clone_from(&next.token_file);
        self.child = next.child.take();
        self.url.clone_from(&next.url);
        self.port = next.port;
        self.log = next.log.clone();
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- hub stderr ----\n{}", self.log());
        }
    }
}

/// The outcome of one CLI run.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Output {
    /// stdout parsed as JSON (panics with the output when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// Runs `agent-event-bus-cli` against a hub, as a hook would.
pub struct Cli {
    url: String,
    env: Vec<(String, String)>,
}

impl Cli {
    /// A CLI for `hub` that finds its credential as the hub's user's does.
    pub fn new(hub: &Hub) -> Self {
        Self {
            url: hub.url.clone(),
            env: hub.client_env(),
        }
    }

    /// A CLI pointed at an arbitrary URL (e.g. one where no hub listens),
    /// with no credential.
    pub fn at(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            env: Vec::new(),
        }
    }

    /// Adds an environment variable to every run.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None)
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = command("agent-event-bus-cli");
        cmd.env("AGENT_EVENT_BUS_URL", &self.url)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the CLI starts");
        if let Some(input) = stdin
            && let Some(mut pipe) = child.stdin.take()
        {
            let _ = pipe.write_all(input.as_bytes());
        }
        child.wait_with_output().expect("the CLI runs").into()
    }
}

/// A current-thread runtime for calling the async [`HubClient`] from tests.
/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`, …) in KiB;
/// `None` once the process is gone or without the field.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The runtime synchronous test code drives async calls on: one for the
/// test process, so a client's pooled connections outlive a single call
/// (a runtime per call left a closed connection per poll).
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

impl Hub {
    /// Calls a tool from synchronous test code; see [`call`].
    pub fn tool(&self, name: &str, args: Value) -> Value {
        let client = self.shared_client();
        rt().block_on(call(&client, name, args))
    }

    /// Calls a tool and returns the raw `CallToolResult`, even when `isError`.
    pub fn tool_raw(&self, name: &str, args: Value) -> shared::ToolOutput {
        let client = self.shared_client();
        rt().block_on(client.call_tool(name, args))
            .unwrap_or_else(|e| panic!("{name} failed: {e}"))
    }

    /// Registers a session and returns its reply.
    pub fn register(&self, name: &str, client_id: Option<&str>) -> Value {
        let params = RegisterParams {
            name: name.to_owned(),
            machine: Some(shared::config::hostname()),
            cwd: Some("/src/repo".to_owned()),
            client_id: client_id.map(str::to_owned),
            ..RegisterParams::default()
        };
        let reply = answered(
            "registering",
            rt().block_on(self.shared_client().register(&params)),
        );
        serde_json::json!(reply)
    }

    /// The ids of the live sessions, most recently active first.
    pub fn session_ids(&self) -> Vec<String> {
        let list = answered(
            "listing sessions",
            rt().block_on(self.shared_client().sessions(&NoParams {})),
        );
        list.into_iter().map(|s| s.session_id).collect()
    }

    /// Publishes an event and returns its id.
    pub fn publish(&self, session_id: &str, event_type: &str, payload: &str, channel: &str) -> u64 {
        let params = PublishParams {
            session_id: Some(session_id.to_owned()),
            ..PublishParams::new(event_type, payload, channel)
        };
        answered(
            "publishing",
            rt().block_on(self.shared_client().publish(&params)),
        )
        .event_id
    }
}

/// A typed call's reply; panics on a transport error, `isError` or a refusal.
fn answered<R>(what: &str, outcome: Result<shared::tools::Answer<R>, shared::ClientError>) -> R {
    outcome
        .unwrap_or_else(|e| panic!("{what} failed: {e}"))
        .unwrap_or_else(|refusal| panic!("{what} was refused: {refusal}"))
}

/// Calls a tool and returns the reply value (list tools unwrapped); panics
/// on transport errors and on `isError`.
pub async fn call(client: &HubClient, tool: &str, args: Value) -> Value {
    let out = client
        .call_tool(tool, args.clone())
        .await
        .unwrap_or_else(|e| panic!("{tool}({args}) failed: {e}"));
    assert!(
        !out.is_error(),
        "{tool}({args}) gave isError: {}",
        out.text()
    );
    out.value()
}
