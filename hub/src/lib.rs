//! The agent-event-bus hub: the HTTP surface (MCP over `POST /mcp`), the
//! tools, the redb store, webhook delivery and the session sweeper.
//!
//! It must print nothing but logs, and never run redb on an async worker
//! thread (the store has its own writer thread and reads on blocking
//! threads).
//!
//! # Layout
//! - [`config`]: flags and env, limits, the refusal to run open without auth.
//! - [`server`]: [`run`] — startup, serving, and the shutdown drain order.
//! - [`auth`]: who may call (loopback, token, `tailscale serve`).
//! - [`mcp`]: JSON-RPC over HTTP; dispatch only.
//! - [`tools`]: the tools, one module per group (claims and receipts included).
//! - [`store`]: redb; the only module that names a table (with its
//!   `claims` and `receipts` submodules).
//! - [`delivery`]: the webhook outbox worker: signed POSTs, retries, the log.
//! - [`sweeper`]: ends lapsed leases and idle sessions.
//! - [`state`]: what every handler shares.
//! - [`names`]: display ids.

pub mod auth;
pub mod config;
pub mod delivery;
pub mod mcp;
pub mod names;
pub mod server;
pub mod state;
pub mod store;
pub mod sweeper;
pub mod tools;

pub use config::Config;
pub use server::run;
