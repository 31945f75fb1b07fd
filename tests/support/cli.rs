//! Running `agent-event-bus-cli` against a hub as a hook would, and the
//! outcome of one run.

use std::io::Write;
use std::process::Stdio;

use serde_json::Value;

use crate::{Hub, command};

/// The outcome of one CLI run.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Output {
    /// stdout parsed as JSON (panics with the output when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// Runs `agent-event-bus-cli` against a hub, as a hook would.
pub struct Cli {
    url: String,
    pub(crate) env: Vec<(String, String)>,
}

impl Cli {
    /// A CLI for `hub` that finds its credential as the hub's user's does.
    pub fn new(hub: &Hub) -> Self {
        Self {
            url: hub.url.clone(),
            env: hub.client_env(),
        }
    }

    /// A CLI pointed at an arbitrary URL (e.g. one where no hub listens),
    /// with no credential.
    pub fn at(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            env: Vec::new(),
        }
    }

    /// Adds an environment variable to every run.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None)
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = command("agent-event-bus-cli");
        cmd.env("AGENT_EVENT_BUS_URL", &self.url)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the CLI starts");
        if let Some(input) = stdin
            && let Some(mut pipe) = child.stdin.take()
        {
            let _ = pipe.write_all(input.as_bytes());
        }
        child.wait_with_output().expect("the CLI runs").into()
    }
}
