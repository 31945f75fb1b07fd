//! A private tmux server (its own socket, `-L`) running one program in one
//! pane of a fixed size, in the sandbox's environment: the test types into
//! the pane and reads its screen. The server is killed when this is dropped,
//! even when the test fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::sandbox::Sandbox;

/// The pane's size: wide enough that no client wraps its status lines.
pub(crate) const COLUMNS: u16 = 120;
pub(crate) const ROWS: u16 = 40;

pub(crate) struct Tmux {
    socket: String,
    tmux: PathBuf,
}

/// The pane's target within the private server.
const TARGET: &str = "bus:0.0";

impl Tmux {
    /// Starts `program args…` in a new pane of a new private server, in the
    /// sandbox's environment and project folder.
    pub(crate) fn start(sandbox: &Sandbox, program: &Path, args: &[&str]) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let tmux = which("tmux").expect("tmux is installed (apt-get install tmux)");
        let socket = format!(
            "agent-event-bus-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let me = Self { socket, tmux };
        let config = sandbox.home.join(".tmux-test.conf");
        // The pane stays after the program exits, so its last screen can be
        // shown; focus events as a terminal emulator would send them.
        std::fs::write(
            &config,
            "set -g remain-on-exit on\nset -g focus-events on\nset -g history-limit 5000\n",
        )
        .expect("a tmux config");
        let mut cmd = sandbox.command(&me.tmux);
        cmd.arg("-L")
            .arg(&me.socket)
            .arg("-f")
            .arg(&config)
            .args(["new-session", "-d", "-s", "bus", "-x"])
            .arg(COLUMNS.to_string())
            .arg("-y")
            .arg(ROWS.to_string())
            .arg("--")
            .arg(program)
            .args(args)
            .env("TERM", "xterm-256color");
        let out = cmd.output().expect("tmux starts");
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        me
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.tmux)
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs")
    }

    /// The pane's screen as text (no colours), trailing blanks trimmed.
    pub(crate) fn screen(&self) -> String {
        let out = self.tmux(&["capture-pane", "-p", "-t", TARGET]);
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        let end = lines
            .iter()
            .rposition(|l| !l.is_empty())
            .map_or(0, |i| i + 1);
        let mut screen = lines[..end].join("\n");
        screen.push('\n');
        screen
    }

    /// Types `text` literally (no key names), as a person would.
    pub(crate) fn type_text(&self, text: &str) {
        let out = self.tmux(&["send-keys", "-t", TARGET, "-l", text]);
        assert!(out.status.success(), "tmux send-keys failed");
    }

    /// Presses keys by tmux name (`Enter`, `C-u`, `Escape`…).
    pub(crate) fn press(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", TARGET];
        args.extend_from_slice(keys);
        let out = self.tmux(&args);
        assert!(out.status.success(), "tmux send-keys failed");
    }

    /// Waits until the screen satisfies `check`, up to `deadline`; panics
    /// with the last screen otherwise.
    pub(crate) fn wait_screen(
        &self,
        what: &str,
        deadline: Duration,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let until = Instant::now() + deadline;
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < until,
                "the pane never showed {what} within {deadline:?}; its screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// The first `name` on `PATH`.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}
