//! Who this proxy's session is: the name, machine, cwd, client id, client
//! PID and lease it registers with, resolved once from the environment.

use std::time::Duration;

use shared::tools::sessions::RegisterParams;

use crate::Config;

/// The identity sent with every `register_session` the proxy makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Shown to other sessions; an agent's own `register_session` may change it.
    pub name: String,
    /// The host name: with `client_id`, the key the hub resumes a session by.
    pub machine: String,
    pub cwd: String,
    /// Stable for this agent session, so a re-register resumes instead of
    /// creating a second session.
    pub client_id: String,
    /// The client process (our parent), so hooks run by the same client can
    /// find this session by walking their ancestor PIDs.
    pub client_pid: u32,
    /// How long the session outlives its last renewal.
    pub lease_seconds: u64,
}

/// Where the name came from, for the log line that announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameSource {
    Config,
    Git,
    Cwd,
}

impl Identity {
    /// Resolves the identity from the configuration and the process. Runs
    /// `git` once, so call it off the `initialize` path.
    pub async fn resolve(config: &Config, client_pid: u32) -> Self {
        let cwd =
            std::env::current_dir().map_or_else(|_| ".".to_owned(), |p| p.display().to_string());
        let (name, source) = match &config.name {
            Some(name) => (name.clone(), NameSource::Config),
            None => match git_name().await {
                Some(name) => (name, NameSource::Git),
                None => (shared::channel::repo_from_cwd(&cwd), NameSource::Cwd),
            },
        };
        let identity = Self {
            name,
            machine: shared::config::hostname(),
            cwd,
            client_id: config
                .client_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            client_pid,
            lease_seconds: config.lease_seconds,
        };
        tracing::debug!(?source, ?identity, "identity resolved");
        identity
    }

    /// `register_session` arguments for this identity, with the push
    /// routes it can be reached by now, asking for a session key (the
    /// proxy always keys its session).
    pub fn register_params(&self, push: &[String]) -> RegisterParams {
        RegisterParams {
            name: self.name.clone(),
            machine: Some(self.machine.clone()),
            cwd: Some(self.cwd.clone()),
            client_id: Some(self.client_id.clone()),
            lease_seconds: Some(i64::try_from(self.lease_seconds).unwrap_or(i64::MAX)),
            client_pid: Some(i64::from(self.client_pid)),
            push: Some(push.to_vec()),
            key: Some(true),
        }
    }
}

/// The lease renewal period: a third of the lease (never under 250 ms).
pub fn renew_every(lease_seconds: u64) -> Duration {
    Duration::from_millis(lease_seconds.saturating_mul(1000) / 3).max(Duration::from_millis(250))
}

/// `repo/branch` for the git work tree around the cwd, or `repo` on a
/// detached HEAD; `None` outside git or without a `git` binary.
async fn git_name() -> Option<String> {
    let output = tokio::process::Command::new("git")
        .args(["rev-parse", "--show-toplevel", "--abbrev-ref", "HEAD"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(2), output)
        .await
        .ok()?
        .ok()?;
    // A repo without commits fails on HEAD but still prints its top level.
    name_from_rev_parse(&String::from_utf8_lossy(&output.stdout))
}

/// Parses `git rev-parse --show-toplevel --abbrev-ref HEAD` output.
fn name_from_rev_parse(stdout: &str) -> Option<String> {
    let mut lines = stdout.lines().map(str::trim);
    let toplevel = lines.next().filter(|l| l.starts_with('/'))?;
    let repo = shared::channel::repo_from_cwd(toplevel);
    match lines.next() {
        Some(branch) if !branch.is_empty() && branch != "HEAD" => Some(format!("{repo}/{branch}")),
        _ => Some(repo),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_names() {
        assert_eq!(
            name_from_rev_parse("/home/u/src/bus\nmain\n").as_deref(),
            Some("bus/main")
        );
        assert_eq!(
            name_from_rev_parse("/home/u/bus/.worktrees/x\nfeature/y\n").as_deref(),
            Some("bus/feature/y")
        );
        assert_eq!(
            name_from_rev_parse("/home/u/src/bus\nHEAD\n").as_deref(),
            Some("bus")
        );
        assert_eq!(name_from_rev_parse(""), None);
    }

    #[test]
    fn renewal_is_a_third_of_the_lease() {
        assert_eq!(renew_every(60), Duration::from_secs(20));
        assert_eq!(renew_every(3), Duration::from_secs(1));
        assert_eq!(renew_every(0), Duration::from_millis(250));
        assert!(renew_every(u64::MAX) > Duration::from_secs(1));
    }
}
