//! End-to-end tests: the real hub, proxy and CLI binaries, driven as users'
//! sessions and hooks drive them. One test binary; one module per area.

#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap in a test is the test failing, with its line"
)]

mod auth;
mod bounds;
mod browser;
mod claims;
mod cli;
mod credential;
mod cursors;
mod deploy;
mod durability;
mod egress;
mod faults;
mod framing;
mod hooks;
mod import;
mod inbox;
mod input;
mod interop;
mod keys;
mod limits;
mod proxies;
mod proxy;
mod push;
mod reach;
mod receipts;
mod tools;
mod users;
mod wait;
mod wake;
mod webhooks;
