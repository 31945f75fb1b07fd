//! A hub started under given open-file limits, as `ulimit -n` sets them
//! for a service: what its default connection cap is derived from.

use std::process::Command;
use std::sync::Arc;

use crate::{Hub, HubOptions, bin_path, clear_bus_env};

impl Hub {
    /// Starts a hub whose open-file limit is `soft` with a hard limit of
    /// `hard` (no higher than the test's own), set by the shell that
    /// starts it; a restart starts it with the test's own limits.
    pub fn start_with_open_files(options: HubOptions, soft: u64, hard: u64) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("a temp dir"));
        let db = dir.path().join("data.redb");
        let mut cmd = Command::new("sh");
        clear_bus_env(&mut cmd);
        cmd.arg("-c")
            .arg(format!(
                "ulimit -Sn {soft} && ulimit -Hn {hard} && exec \"$0\" \"$@\""
            ))
            .arg(bin_path("agent-event-bus"));
        Self::spawn_command(cmd, dir, db, options, 0)
    }
}
