//! End-to-end tests: the real hub, proxy and CLI binaries, driven as users'
//! sessions and hooks drive them. One test binary; one module per area.

mod auth;
mod claims;
mod cli;
mod cursors;
mod durability;
mod input;
mod interop;
mod proxy;
mod push;
mod receipts;
mod tools;
mod webhooks;
