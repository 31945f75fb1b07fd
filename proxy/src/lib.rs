//! `agent-event-bus-proxy`: the stdio MCP server an agent's client starts,
//! one per session. It forwards every tool call to the hub (`POST /mcp`
//! through [`shared::HubClient`]), puts the session on the bus without the
//! agent lifting a finger, and takes it off again when the session ends.
//!
//! It must not write anything to stdout but MCP messages (logs go to
//! stderr), hold tool logic that belongs to the hub, or make `initialize`
//! wait for the hub.
//!
//! # Layout
//! - [`server`]: the rmcp `ServerHandler` — `initialize`, tools, the guide.
//! - [`forward`]: tool calls and lists forwarded to the hub; `session_id`
//!   filled in, and a call naming another session refused; the hub-down
//!   error.
//! - [`identity`]: name, machine, cwd, `client_id`, client PID and lease.
//! - [`presence`]: the session's phases — lazy registration (keyed: the
//!   key sent on every call and kept in a key file for hooks), lease
//!   renewal, re-registration, unregistering on exit; `presence::agent`, the agent's
//!   own `register_session`/`unregister_session` of that session.
//! - [`push`]: events pushed into the session — channel notifications and
//!   desktop notices; [`push::poll`], the long-poll between renewals that
//!   finds them; [`push::flow`], flow control (rate cap, repeats, loop guard).
//! - [`wake`]: waking an idle agent for a direct message — Claude Code's
//!   inbox socket, a notice typed into its own terminal pane — with
//!   receipts, and the reach its registration reports.
//! - [`shutdown`]: signals and parent-death detection.
//! - [`frames`]: the stdio framing in front of rmcp (frame limit, errors for
//!   lines it cannot take).

pub mod forward;
pub mod frames;
pub mod identity;
pub mod presence;
pub mod push;
pub mod server;
pub mod shutdown;
pub mod wake;

use std::sync::Arc;
use std::time::Duration;

use rmcp::ServiceExt;
use shared::HubClient;
use tokio_util::sync::CancellationToken;

use crate::forward::Forwarder;
use crate::presence::Presence;
use crate::push::Pusher;
use crate::server::ProxyServer;
use crate::wake::{WakeConfig, Waker};

/// How long exit cleanup (waiting for a registration in flight, then
/// `unregister_session`) may take before the proxy exits anyway; the lease
/// ends a session the proxy could not unregister.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long the proxy waits for its last replies to reach stdout.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// Everything the proxy is told; `main` fills it from flags and environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// The hub, with or without `/mcp`.
    pub url: String,
    /// Sent as a bearer token; without one, the proxy sends what it finds
    /// (`AGENT_EVENT_BUS_TOKEN`, else this machine's hub token file for a
    /// hub on this machine).
    pub token: Option<String>,
    /// The session name; else `repo/branch` from git, else the cwd's name.
    pub name: Option<String>,
    /// The stable id of this agent session; else one unique to this process.
    pub client_id: Option<String>,
    /// The presence lease (≥ 1 s), renewed every third of it.
    pub lease_seconds: u64,
    /// Channels pushed into the session besides its direct messages.
    pub push_channels: Vec<String>,
    /// The wake paths in use (`inbox`, `pane`) and the state directory.
    pub wake: WakeConfig,
}

/// Serves MCP on stdin/stdout until the client leaves (EOF), a signal
/// arrives, or the parent dies; then unregisters the session. The caller
/// should `std::process::exit` afterwards: a blocking stdin read may still
/// be pending and would hold up runtime shutdown.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let hub = Arc::new(HubClient::discover(&config.url, config.token.as_deref())?);
    tracing::debug!(hub = %hub.endpoint(), "starting");
    let client_pid = shutdown::parent_pid();
    let stop = CancellationToken::new();
    shutdown::watch(stop.clone(), client_pid)?;

    let (pusher, batches) = Pusher::new(hub.clone());
    let (waker, wake_jobs) = Waker::new(hub.clone(), &config.wake, client_pid);
    pusher.set_waker(waker.clone());
    let waking = tokio::spawn(waker.clone().run(wake_jobs));
    let deliveries = tokio::spawn(pusher.clone().deliver(batches));
    let presence = Arc::new(Presence::new(
        hub.clone(),
        config,
        client_pid,
        pusher.clone(),
    ));
    let renewals = tokio::spawn(presence.clone().run());
    let server = ProxyServer::new(
        Forwarder::new(hub, presence.clone(), pusher.clone()),
        presence.clone(),
        pusher,
    );

    let (transport, written) = frames::transport();
    match server.serve_with_ct(transport, stop.clone()).await {
        Ok(running) => match running.waiting().await {
            Ok(reason) => tracing::debug!(?reason, "client session ended"),
            Err(e) => tracing::warn!("the MCP service failed: {e}"),
        },
        Err(e) => tracing::debug!("no MCP session: {e}"),
    }
    // The last replies reach stdout before the process exits.
    let _ = tokio::time::timeout(FLUSH_TIMEOUT, written).await;

    if tokio::time::timeout(CLOSE_TIMEOUT, presence.close())
        .await
        .is_err()
    {
        tracing::warn!(
            "gave up unregistering after {CLOSE_TIMEOUT:?}; the lease will end the session"
        );
    }
    renewals.abort();
    deliveries.abort();
    waking.abort();
    waker.close();
    Ok(())
}
