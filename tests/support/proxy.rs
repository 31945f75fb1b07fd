//! Driving the proxy over stdio as an MCP client would: a small line-based
//! JSON-RPC client around the real `agent-event-bus-proxy` child, recording
//! every stdout line and every notification, with stderr kept for failures.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared::ToolOutput;

use crate::{Hub, bin_path, command, id_of, wait_registered};

/// How long a request may wait for its reply before the test fails.
const REPLY_DEADLINE: Duration = Duration::from_secs(30);

/// What the proxy wrote to stdout, parsed as it arrived.
#[derive(Default)]
struct Stdout {
    /// Every line, verbatim.
    lines: Vec<String>,
    /// Replies by their id (as JSON text).
    replies: HashMap<String, Value>,
    /// Messages with a method: notifications (and any server request).
    notifications: Vec<Value>,
    /// stdout reached EOF: the proxy (and anything holding its stdout) exited.
    closed: bool,
}

/// What waiting for a reply found before the deadline.
enum Taken {
    Reply(Value),
    /// stdout closed with no reply for the id.
    Closed,
}

type Shared<T> = Arc<(Mutex<T>, Condvar)>;

fn lock<T>(shared: &Shared<T>) -> MutexGuard<'_, T> {
    shared
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How to start a proxy.
#[derive(Clone, Default)]
pub struct ProxyOptions {
    /// `AGENT_EVENT_BUS_URL`.
    pub url: String,
    /// Extra environment (e.g. `AGENT_EVENT_BUS_SESSION_NAME`).
    pub env: Vec<(String, String)>,
    /// Start it under an intermediate `sh` (its parent), so a test can kill
    /// the parent and watch the proxy notice.
    pub under_parent: bool,
    /// Give the proxy one Unix socket as stdin and stdout instead of two
    /// pipes, as Node-based clients do (rmcp then reads stdin blocking).
    pub socket_stdio: bool,
}

impl ProxyOptions {
    /// A proxy of `hub`'s, finding its credential as the hub's user's do.
    pub fn for_hub(hub: &Hub) -> Self {
        Self {
            url: hub.url.clone(),
            env: hub.client_env(),
            ..Self::default()
        }
    }
}

/// Our end of the proxy's stdin.
enum Input {
    Pipe(ChildStdin),
    Socket(UnixStream),
}

impl Input {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Self::Pipe(pipe) => pipe,
            Self::Socket(socket) => socket,
        }
    }
}

/// A running proxy and an MCP client connected to its stdio.
pub struct Proxy {
    child: Child,
    /// The proxy's PID (the child is its parent shell when `under_parent`).
    pub pid: u32,
    under_parent: bool,
    stdin: Option<Input>,
    stdout: Shared<Stdout>,
    stderr: Shared<String>,
    next_id: u64,
    _cwd: tempfile::TempDir,
}

impl Proxy {
    /// A proxy for `hub` (finding its credential as the hub's user's
    /// proxies do), with extra environment variables.
    pub fn spawn(hub: &Hub, env: &[(&str, &str)]) -> Self {
        let mut options = ProxyOptions::for_hub(hub);
        options
            .env
            .extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        Self::spawn_with(&options)
    }

    /// A proxy pointed at any URL (a stopped hub, a base URL without
    /// /mcp), with no credential but what `env` gives it.
    pub fn spawn_at(url: &str, env: &[(&str, &str)]) -> Self {
        Self::spawn_with(&ProxyOptions {
            url: url.to_owned(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..ProxyOptions::default()
        })
    }

    pub fn spawn_with(options: &ProxyOptions) -> Self {
        let cwd = tempfile::tempdir().expect("a temp dir for the proxy's cwd");
        let mut cmd = if options.under_parent {
            // The shell keeps a copy of our stdin pipe as fd 3 and hands it
            // to the proxy explicitly (a background job's stdin would
            // otherwise be /dev/null), reports the proxy's PID on stderr,
            // and waits: it is the proxy's parent until a test kills it.
            let mut sh = std::process::Command::new("sh");
            crate::clear_bus_env(&mut sh);
            sh.arg("-c")
                .arg(r#"exec 3<&0; "$0" <&3 3<&- & echo "proxy-pid $!" >&2; wait"#)
                .arg(bin_path("agent-event-bus-proxy"));
            sh
        } else {
            command("agent-event-bus-proxy")
        };
        // No wake unless a test asks: its proxy could otherwise find the
        // terminal pane the tests run in through its ancestors.
        cmd.env("AGENT_EVENT_BUS_URL", &options.url)
            .env(shared::wake::ENV_WAKE, "off")
            .envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "proxy=debug,warn")
            .current_dir(cwd.path())
            .stderr(Stdio::piped());
        let socket = if options.socket_stdio {
            let (ours, theirs) = UnixStream::pair().expect("a socket pair");
            let theirs_too = theirs.try_clone().expect("a second handle");
            cmd.stdin(Stdio::from(OwnedFd::from(theirs)))
                .stdout(Stdio::from(OwnedFd::from(theirs_too)));
            Some(ours)
        } else {
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
            None
        };
        let mut child = cmd.spawn().expect("the proxy starts");
        // Drop our copies of the child's ends, so its exit closes the stream.
        drop(cmd);
        let (stdin, out): (Input, Box<dyn Read + Send>) = match socket {
            Some(ours) => {
                let reader = ours.try_clone().expect("a reading handle");
                (Input::Socket(ours), Box::new(reader))
            }
            None => (
                Input::Pipe(child.stdin.take().expect("stdin is piped")),
                Box::new(child.stdout.take().expect("stdout is piped")),
            ),
        };
        let stdout: Shared<Stdout> = Arc::default();
        let stderr: Shared<String> = Arc::default();

        let sink = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let mut state = lock(&sink);
                if let Ok(message) = serde_json::from_str::<Value>(&line) {
                    match (message.get("id"), message.get("method")) {
                        (Some(id), None) => {
                            state.replies.insert(id.to_string(), message.clone());
                        }
                        (_, Some(_)) => state.notifications.push(message.clone()),
                        _ => {}
                    }
                }
                state.lines.push(line);
                sink.1.notify_all();
            }
            lock(&sink).closed = true;
            sink.1.notify_all();
        });

        let err = child.stderr.take().expect("stderr is piped");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut log = lock(&sink);
                log.push_str(&line);
                log.push('\n');
                sink.1.notify_all();
            }
        });

        let pid = if options.under_parent {
            let log = wait_for(&stderr, REPLY_DEADLINE, |log| {
                log.lines()
                    .find_map(|l| l.strip_prefix("proxy-pid "))
                    .and_then(|p| p.trim().parse::<u32>().ok())
            });
            log.expect("the parent shell reports the proxy's PID")
        } else {
            child.id()
        };
        Self {
            child,
            pid,
            under_parent: options.under_parent,
            stdin: Some(stdin),
            stdout,
            stderr,
            next_id: 1,
            _cwd: cwd,
        }
    }

    /// Writes one message as a line on the proxy's stdin.
    pub fn send(&mut self, message: &Value) {
        let mut line = serde_json::to_string(message).expect("JSON serialises");
        line.push('\n');
        let stdin = self.stdin.as_mut().expect("stdin is still open").writer();
        let written = stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush());
        if let Err(e) = written {
            panic!(
                "writing to the proxy failed ({e}); stderr:\n{}",
                self.stderr()
            );
        }
    }

    /// Writes raw bytes on the proxy's stdin (say, a line that is not JSON).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is still open").writer();
        if let Err(e) = stdin.write_all(bytes).and_then(|()| stdin.flush()) {
            panic!(
                "writing to the proxy failed ({e}); stderr:\n{}",
                self.stderr()
            );
        }
    }

    /// Waits for the reply with this id (`null` for a parse error) and
    /// takes it.
    pub fn wait_reply(&mut self, id: &Value) -> Value {
        let key = id.to_string();
        match self.take_reply(&key) {
            Some(Taken::Reply(reply)) => reply,
            _ => panic!(
                "no reply for id {key} within {REPLY_DEADLINE:?}; stderr:\n{}",
                self.stderr()
            ),
        }
    }

    /// Waits for the reply whose id renders as `key` and takes it, or for
    /// stdout to close first; `None` past the deadline.
    fn take_reply(&self, key: &str) -> Option<Taken> {
        wait_for(&self.stdout, REPLY_DEADLINE, |state| {
            state
                .replies
                .remove(key)
                .map(Taken::Reply)
                .or_else(|| state.closed.then_some(Taken::Closed))
        })
    }

    /// The proxy's resident memory in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        crate::proc_status_kib(self.pid, "VmRSS").expect("VmRSS in the proxy's /proc status")
    }

    /// Sends a request with the given id and waits for its reply (the whole
    /// JSON-RPC message, `result` or `error`).
    pub fn request_with_id(&mut self, id: &Value, method: &str, params: Option<Value>) -> Value {
        let mut message = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(params) = params {
            message["params"] = params;
        }
        self.send(&message);
        let key = id.to_string();
        match self.take_reply(&key) {
            Some(Taken::Reply(reply)) => reply,
            Some(Taken::Closed) => panic!(
                "the proxy closed stdout before answering {method}; stderr:\n{}",
                self.stderr()
            ),
            None => panic!(
                "no reply to {method} within {REPLY_DEADLINE:?}; stderr:\n{}",
                self.stderr()
            ),
        }
    }

    /// Sends a request and waits for its reply (the whole JSON-RPC message).
    pub fn request(&mut self, method: &str, params: Option<Value>) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.request_with_id(&json!(id), method, params)
    }

    /// Sends a request and returns its `result` (panics on a JSON-RPC error).
    pub fn result(&mut self, method: &str, params: Option<Value>) -> Value {
        let reply = self.request(method, params);
        match reply.get("result") {
            Some(result) => result.clone(),
            None => panic!("{method} failed: {reply}"),
        }
    }

    /// Sends a notification.
    pub fn notify(&mut self, method: &str) {
        self.send(&json!({"jsonrpc": "2.0", "method": method}));
    }

    /// Claude Code's first message: a `server/discover` probe for the
    /// 2026-07-28 revision. Returns the whole reply.
    pub fn discover_probe(&mut self) -> Value {
        self.request_with_id(
            &json!("server-discover-probe-1"),
            "server/discover",
            Some(json!({"_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "claude-code", "version": "2"},
            }})),
        )
    }

    /// `initialize` (protocol 2025-11-25, as Claude Code after its probe),
    /// then `notifications/initialized`. Returns the initialize result.
    pub fn initialize(&mut self) -> Value {
        self.initialize_as("e2e", "0")
    }

    /// [`Proxy::initialize`] with this `clientInfo` (say, `claude-code`).
    pub fn initialize_as(&mut self, name: &str, version: &str) -> Value {
        let result = self.result(
            "initialize",
            Some(json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": name, "version": version},
            })),
        );
        self.notify("notifications/initialized");
        result
    }

    /// `tools/list`.
    pub fn tools(&mut self) -> Vec<Value> {
        let result = self.result("tools/list", None);
        result["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("tools/list has no tools: {result}"))
            .clone()
    }

    /// `tools/call`; the `CallToolResult` (which may be `isError`).
    pub fn call(&mut self, tool: &str, args: Value) -> ToolOutput {
        let mut params = json!({"name": tool});
        params["arguments"] = args;
        let result = self.result("tools/call", Some(params));
        ToolOutput { result }
    }

    /// `tools/call`; the reply value (panics on `isError`).
    pub fn call_ok(&mut self, tool: &str, args: Value) -> Value {
        let shown = args.to_string();
        let out = self.call(tool, args);
        assert!(
            !out.is_error(),
            "{tool}({shown}) through the proxy gave isError: {}\nproxy stderr:\n{}",
            out.text(),
            self.stderr()
        );
        out.value()
    }

    /// Closes the proxy's stdin (the client went away).
    pub fn close_stdin(&mut self) {
        if let Some(Input::Socket(socket)) = self.stdin.take() {
            let _ = socket.shutdown(std::net::Shutdown::Write);
        }
    }

    /// Sends a signal to the proxy process.
    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = i32::try_from(self.pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .expect("a valid PID");
        let _ = rustix::process::kill_process(pid, signal);
    }

    /// Kills the parent shell with SIGKILL (`under_parent` only).
    pub fn kill_parent(&mut self) {
        assert!(self.under_parent, "this proxy has no parent shell");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits until the proxy has exited: its stdout closed, and (for a
    /// direct child) the process reaped. Returns the exit code when known.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<i32> {
        let closed = wait_for(&self.stdout, deadline, |state| state.closed.then_some(()));
        assert!(
            closed.is_some(),
            "the proxy did not exit within {deadline:?}; stderr:\n{}",
            self.stderr()
        );
        if self.under_parent {
            return None;
        }
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            assert!(
                start.elapsed() < deadline,
                "the proxy closed stdout but did not exit; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every stdout line so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        lock(&self.stdout).lines.clone()
    }

    /// Every notification (and server request) so far.
    pub fn notifications(&self) -> Vec<Value> {
        lock(&self.stdout).notifications.clone()
    }

    /// Waits until `check` finds what it wants among the notifications so
    /// far (woken as each one arrives); `None` after `deadline`.
    pub fn wait_notifications<R>(
        &self,
        deadline: Duration,
        mut check: impl FnMut(&[Value]) -> Option<R>,
    ) -> Option<R> {
        wait_for(&self.stdout, deadline, |state| check(&state.notifications))
    }

    /// Everything the proxy wrote to stderr so far.
    pub fn stderr(&self) -> String {
        lock(&self.stderr).clone()
    }

    /// How many lines the proxy has logged that contain `needle`.
    pub fn logged(&self, needle: &str) -> usize {
        lock(&self.stderr)
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits until the proxy has logged `n` lines containing `needle` (it
    /// runs with `RUST_LOG=proxy=debug`); panics after `REPLY_DEADLINE`.
    pub fn wait_logged(&self, needle: &str, n: usize) {
        let found = wait_for(&self.stderr, REPLY_DEADLINE, |log| {
            (log.lines().filter(|l| l.contains(needle)).count() >= n).then_some(())
        });
        assert!(
            found.is_some(),
            "the proxy did not log {n} lines with {needle:?} within {REPLY_DEADLINE:?}; stderr:\n{}",
            self.stderr()
        );
    }

    /// Asserts that stdout carried nothing but JSON-RPC 2.0 messages.
    pub fn assert_stdout_is_json_rpc(&self) {
        let lines = self.stdout_lines();
        assert!(!lines.is_empty(), "the proxy wrote nothing to stdout");
        for line in &lines {
            let message: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a stdout line is not JSON ({e}): {line:?}"));
            assert_eq!(message["jsonrpc"], json!("2.0"), "not JSON-RPC 2.0: {line}");
            assert!(
                message.get("id").is_some() || message.get("method").is_some(),
                "neither a reply nor a notification: {line}"
            );
        }
    }
}

/// Waits on a shared value until `check` returns `Some`, or `deadline`.
fn wait_for<T, R>(
    shared: &Shared<T>,
    deadline: Duration,
    mut check: impl FnMut(&mut T) -> Option<R>,
) -> Option<R> {
    let start = Instant::now();
    let mut state = lock(shared);
    loop {
        if let Some(found) = check(&mut state) {
            return Some(found);
        }
        let left = deadline.checked_sub(start.elapsed())?;
        state = shared
            .1
            .wait_timeout(state, left.min(Duration::from_millis(200)))
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if self.under_parent {
            self.signal(rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- proxy {} stderr ----\n{}", self.pid, self.stderr());
        }
    }
}

/// A proxy that has initialized and registered under `name`; its session id.
pub fn registered_proxy(hub: &Hub, name: &str, env: &[(&str, &str)]) -> (Proxy, String) {
    let mut env = env.to_vec();
    env.push(("AGENT_EVENT_BUS_SESSION_NAME", name));
    let mut proxy = Proxy::spawn(hub, &env);
    proxy.initialize();
    let id = id_of(&wait_registered(hub, name));
    (proxy, id)
}
