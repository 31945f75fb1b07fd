//! The shared state every request handler sees.

use std::collections::HashSet;
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

use crate::config::{Limits, Retention};
use crate::delivery::Delivery;
use crate::store::{SessionRecord, Store};

/// The hub's state: the store, settings, background workers.
pub struct Bus {
    pub store: Store,
    pub limits: Limits,
    /// This machine's host name: the default `machine`, and which sessions
    /// are local (PID liveness, desktop notifications).
    pub hostname: String,
    /// The hub's working directory: the default `cwd`, as the original.
    pub cwd: String,
    /// Sessions without a lease idle longer than this are ended.
    pub idle_timeout_ms: i64,
    pub retention: Retention,
    pub delivery: Delivery,
    /// Cancelled when the hub shuts down; long-polls return at once.
    pub shutdown: CancellationToken,
    /// Deleted-session refusals already logged: (session, deleted_at, tool).
    warned: Mutex<HashSet<(String, i64, &'static str)>>,
}

impl Bus {
    pub fn new(
        store: Store,
        limits: Limits,
        idle_timeout_ms: i64,
        retention: Retention,
        delivery: Delivery,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            store,
            limits,
            hostname: shared::config::hostname(),
            cwd: std::env::current_dir()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "/".to_owned()),
            idle_timeout_ms,
            retention,
            delivery,
            shutdown,
            warned: Mutex::new(HashSet::new()),
        }
    }

    /// Logs, once per deleted session and tool, that an orphaned client is
    /// still calling the bus.
    pub fn warn_deleted_once(&self, session: &SessionRecord, tool: &'static str) {
        let key = (session.id.clone(), session.deleted_at.unwrap_or(0), tool);
        let first = self
            .warned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key);
        if first {
            tracing::warn!(
                display_id = %session.display_id,
                session_id = %session.id,
                deleted_at = %shared::time::format_ms(session.deleted_at.unwrap_or(0)),
                "{tool}: rejecting calls from a deleted session - an orphaned client is still calling the bus"
            );
        }
    }
}
