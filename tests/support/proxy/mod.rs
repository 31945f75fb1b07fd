//! Driving the proxy over stdio as an MCP client would: a small line-based
//! JSON-RPC client around the real `agent-event-bus-proxy` child, recording
//! every stdout line and every notification, with stderr kept for failures.
//!
//! # Layout
//! - Here: starting a proxy ([`Proxy::spawn`], [`ProxyOptions`]) and one
//!   that has registered ([`registered_proxy`]).
//! - `rpc`: messages written to its stdin and the replies and
//!   notifications read from its stdout.
//! - `process`: the proxy as a process: stdin closed, signals, its exit,
//!   its memory and what it logs.

mod process;
mod rpc;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

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

/// A proxy that has initialized and registered under `name`; its session id.
pub fn registered_proxy(hub: &Hub, name: &str, env: &[(&str, &str)]) -> (Proxy, String) {
    let mut env = env.to_vec();
    env.push(("AGENT_EVENT_BUS_SESSION_NAME", name));
    let mut proxy = Proxy::spawn(hub, &env);
    proxy.initialize();
    let id = id_of(&wait_registered(hub, name));
    (proxy, id)
}
