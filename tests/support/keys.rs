//! Session keys in tests: a private state directory for the proxies and
//! CLIs of one test (where their key files go), and clients that present a
//! session's key, or none, as a hook or a stranger would.

use shared::HubClient;
use shared::state::ENV_STATE_DIR;

use std::path::Path;
use std::time::Duration;

use crate::{Hub, wait_until};

/// A private state directory, removed with the test.
pub struct StateDir {
    dir: tempfile::TempDir,
}

impl StateDir {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        // The state directory must be closed to others.
        shared::state::dir(Some(dir.path())).expect("a private state directory");
        Self { dir }
    }

    /// The variable that points a proxy or a CLI here.
    pub fn env(&self) -> (&'static str, &str) {
        (
            ENV_STATE_DIR,
            self.dir.path().to_str().expect("a UTF-8 temp path"),
        )
    }

    /// The key saved here for `session_id`, if any.
    pub fn key(&self, session_id: &str) -> Option<String> {
        saved_key(self.dir.path(), session_id)
    }

    /// The key saved here for `session_id`, once it is.
    pub fn wait_key(&self, session_id: &str) -> String {
        wait_saved_key(self.dir.path(), session_id)
    }

    /// A client of `hub` that presents `session_id`'s saved key, once saved.
    pub fn client(&self, hub: &Hub, session_id: &str) -> HubClient {
        keyed_client(hub, &self.wait_key(session_id))
    }
}

impl Default for StateDir {
    fn default() -> Self {
        Self::new()
    }
}

/// The key saved in the state directory `dir` for `session_id`, if any.
pub fn saved_key(dir: &Path, session_id: &str) -> Option<String> {
    std::fs::read_to_string(shared::keys::file(dir, session_id))
        .ok()
        .map(|k| k.trim().to_owned())
}

/// The key saved in `dir` for `session_id`, once it is: a proxy saves it
/// when the hub's reply reaches it, a moment after the hub lists the
/// session.
pub fn wait_saved_key(dir: &Path, session_id: &str) -> String {
    wait_until(
        &format!("the key file for {session_id}"),
        Duration::from_secs(20),
        || saved_key(dir, session_id),
    )
}

/// A client of `hub` that presents `key` as its session key.
pub fn keyed_client(hub: &Hub, key: &str) -> HubClient {
    let client = hub.client();
    client.set_session_key(Some(key.to_owned()));
    client
}
