//! The end-to-end harness: starts the real binaries on port 0 with a temp
//! data dir, and gives tests a typed way to drive them.
//!
//! # Layout
//! - [`Hub`] (`hub`): the hub process (start, restart on the same data,
//!   kill -9, start under given open-file limits: `open_files`);
//!   `credential`, its token and what lets a client find it; `calls`, its
//!   tools called from synchronous test code ([`call`], [`rt`]).
//! - [`Cli`] (`cli`): runs `agent-event-bus-cli` as a hook would.
//! - `binaries`: the workspace's binaries ([`bin_path`], [`command`]) with
//!   the bus environment cleared, and the hook recipes ([`spawn_hook`]).
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
//! - Here: [`wait_until`], poll a condition with a generous deadline;
//!   [`ClosedPort`], a port nobody answers at; [`proc_status_kib`].

#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap in a test is the test failing, with its line"
)]

mod binaries;
mod calls;
mod cli;
mod credential;
pub mod fresh;
pub mod group;
mod hub;
pub mod keys;
mod open_files;
pub mod original;
pub mod proxy;
pub mod sessions;
pub mod sink;
pub mod tmux;

pub use binaries::{BUS_ENV, bin_path, clear_bus_env, command, repo_root, spawn_hook};
pub use calls::{call, rt};
pub use cli::{Cli, Output};
pub use hub::{Hub, HubOptions};
pub use sessions::{
    events, id_of, page_ids, session_by_id, session_named, sessions, wait_registered,
};

use std::time::{Duration, Instant};

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

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`, …) in KiB;
/// `None` once the process is gone or without the field.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
