//! The agent-event-bus hub: the HTTP surface (MCP over `POST /mcp`), the
//! tools, the redb store, webhook delivery and the session sweeper.
//!
//! It must print nothing but logs, and never run redb on an async worker
//! thread (the store has its own writer thread and reads on blocking
//! threads).
//!
//! # Layout
//! - [`config`]: flags and env, limits, the refusal to run open without auth.
//! - [`server`]: [`run`] — startup and the shutdown drain order;
//!   `server::conns`, the accept loop, the connection cap and timeouts, auth
//!   before any route.
//! - [`auth`]: who may call (web origins, host names, the credential, the
//!   open pages, `tailscale serve` identity when trusted).
//! - [`credential`]: the hub's token (given, or made into a 0600 file beside
//!   the database), a private data directory and database file.
//! - [`caller`]: who is calling, as a tool sees it (access, peer, session
//!   key, kind of reader).
//! - [`http`]: the routes (`POST /mcp`, `GET /health`, the live view at
//!   `GET /`), the request limits, and `recover` (every rejection as JSON).
//! - [`mcp`]: the JSON-RPC dispatcher behind `POST /mcp`; dispatch only.
//! - [`tools`]: the tools' rules, one module per group (claims and receipts
//!   included); their params, replies and refusals are [`shared::tools`].
//! - [`store`]: redb; the only module that names a table — `tables`,
//!   `records`, `read` (snapshots), `index` and `postings` (the event
//!   index: its read walk, its writes), the write
//!   verbs of `sessions`, `events` and `outbox`, `writer` (group commit),
//!   `open` (open, refuse SQLite, migrations), `claims`, `receipts`.
//! - [`codec`]: the compact binary form of a stored event.
//! - [`json`]: a JSON text the hub made, sent without parsing it again.
//! - [`delivery`]: webhook delivery from the outbox — `worker` (scan, start,
//!   record), `plan` (what starts now), `send`, `sign`, `schedule` (backoff,
//!   jitter, `Retry-After`).
//! - [`webhooks`]: webhook rules — which events a webhook takes, what an
//!   attempt does to its health (410, the disable window), the
//!   private-address policy.
//! - [`egress`]: the special-purpose address table, whether a URL reaches
//!   it; `egress::redact`, URL redaction (credentials, hook URL secrets).
//! - [`keys`]: session keys — whether a call may act as a session (the one
//!   place that decides), minting, hashing.
//! - [`sessions`]: session rules — lease arithmetic, touching, ending with a
//!   reason, liveness (lapsed leases, idle sessions, gone processes).
//! - [`sweeper`]: ends lapsed leases and idle sessions, applies retention.
//! - [`retention`]: which events go under `--retain-days`/`--retain-events`,
//!   pruned with every row kept for them.
//! - [`import`]: `agent-event-bus import`, from the Python original's SQLite file.
//! - [`state`]: what every handler shares.
//! - [`rate`]: rate limits for calls that reach outside the hub (webhook
//!   test pings).
//! - [`names`]: display ids.
//! - `fuzz` (tests only): property tests over JSON-RPC dispatch and argument
//!   coercion, and (`fuzz::bounds`) over bounded pages and lists and the
//!   escaping of client text; `make fuzz` runs them for minutes.

pub mod auth;
pub mod caller;
pub mod codec;
pub mod config;
pub mod credential;
pub mod delivery;
pub mod egress;
pub mod http;
pub mod import;
pub mod json;
pub mod keys;
pub mod mcp;
pub mod names;
pub mod rate;
pub mod retention;
pub mod server;
pub mod sessions;
pub mod state;
pub mod store;
pub mod sweeper;
pub mod tools;
pub mod webhooks;

#[cfg(test)]
mod fuzz;

pub use config::Config;
pub use server::run;
