//! A private tmux server for a test: its own socket directory
//! (`TMUX_TMPDIR`), a unique name (`tmux -L`), a clean environment, and
//! killed when the test ends, even on failure (its panes' programs get
//! SIGHUP with it).

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A tmux server that lives as long as this value.
pub struct Tmux {
    name: String,
    dir: tempfile::TempDir,
}

impl Tmux {
    /// Starts a server with one idle window, wide enough for a notice on one line.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir for the tmux socket");
        let name = format!("aeb-{}-{}", std::process::id(), uuid_like());
        let tmux = Self { name, dir };
        tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "200",
            "-y",
            "50",
            "-s",
            "t",
            "sleep 86400",
        ]);
        tmux
    }

    /// `tmux -L <name> <args>` with the private socket dir; stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self
            .command()
            .args(args)
            .stderr(Stdio::piped())
            .output()
            .expect("tmux runs");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("TERM", "xterm-256color")
            .env("TMUX_TMPDIR", self.dir.path())
            .arg("-L")
            .arg(&self.name)
            .stdin(Stdio::null());
        cmd
    }

    /// The server's socket (what `TMUX` names inside its panes).
    pub fn socket(&self) -> PathBuf {
        let uid = rustix::process::getuid().as_raw();
        self.dir.path().join(format!("tmux-{uid}")).join(&self.name)
    }

    /// Opens a window running `command` with `env` added; its pane id.
    pub fn window(&self, command: &str, env: &[(&str, String)]) -> String {
        let mut args: Vec<String> = vec![
            "new-window".into(),
            "-d".into(),
            "-P".into(),
            "-F".into(),
            "#{pane_id}".into(),
        ];
        for (k, v) in env {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        args.push(command.to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args).trim().to_owned()
    }

    /// The pane's screen as text.
    pub fn screen(&self, pane: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", pane])
    }

    /// Types `text` into the pane, literally.
    pub fn type_text(&self, pane: &str, text: &str) {
        self.run(&["send-keys", "-t", pane, "-l", "--", text]);
    }

    /// Presses one key (`Enter`, `C-u`).
    pub fn key(&self, pane: &str, key: &str) {
        self.run(&["send-keys", "-t", pane, key]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .command()
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
    }
}

/// A short unique suffix (time and a counter).
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{nanos:x}{}", NEXT.fetch_add(1, Ordering::Relaxed))
}
