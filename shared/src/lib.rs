//! Everything the hub, the proxy and the CLI must agree on: wire types, the
//! tool catalog, channel / signal-level / cursor rules, configuration, and
//! the one typed [`HubClient`] that speaks to the hub.
//!
//! This crate does no I/O at import and knows nothing of warp or redb.
//!
//! # Layout
//! - [`wire`]: replies the hub sends (events, sessions, webhooks).
//! - [`tools`]: the tool contract: each tool's params, reply and refusals.
//! - [`catalog`]: the `tools/list` entries built from [`tools`]; the guide text.
//! - [`channel`]: channel names, the implicit per-session channels, repo names.
//! - [`level`]: signal levels and how an event's level is derived.
//! - [`cursor`]: parsing cursors (event ids as decimal strings).
//! - [`coerce`]: the hub's lax argument coercion (`"15"` and `15.0` are 15).
//! - [`config`]: environment variable names, defaults, URL rules, and how a
//!   client finds its credential (given, or this machine's hub token file).
//! - [`listener`]: who listens on a loopback port; this machine's credential
//!   goes only to a port its hub's user holds.
//! - [`mcp`]: the MCP framing every part writes: JSON-RPC error codes,
//!   `tools/call` results, [`ToolOutput`].
//! - [`client`]: [`HubClient`], one `POST /mcp` per call;
//!   [`client::follow`], the long-poll follower every client shares.
//! - [`state`]: the private per-user state directory the CLI and proxy share.
//! - [`keys`]: session keys on this machine — the key files hooks read, and
//!   registering with a key.
//! - [`wake`]: the terminal wake files in it (turn state, hand-mapped panes)
//!   and the wake switch.
//! - [`procs`]: the local process tree (parents, ancestors, environment).
//! - [`time`]: RFC 3339 UTC timestamps.
//! - [`notify`]: desktop notifications (argv per OS, direct-message wording).
//! - [`push`]: push routes, watched channels, how a pushed event is worded.
//! - [`text`]: client text made safe where it is framed, logged or shown
//!   (control characters escaped, frame tags neutralised, names quoted).

pub mod catalog;
pub mod channel;
pub mod client;
pub mod coerce;
pub mod config;
pub mod cursor;
pub mod keys;
pub mod level;
pub mod listener;
pub mod mcp;
pub mod notify;
pub mod procs;
pub mod push;
pub mod state;
pub mod text;
pub mod time;
pub mod tools;
pub mod wake;
pub mod wire;

pub use client::{ClientError, HubClient};
pub use mcp::ToolOutput;

/// The product version, reported by `/health`, `initialize` and the CLI.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The MCP server name every part reports.
pub const SERVER_NAME: &str = "agent-event-bus";
