//! The hub's credential as tests see it: the token a hub was given or the
//! one it made, and what lets each client a test starts present it.

use std::path::Path;

use shared::HubClient;

use crate::{Cli, Hub};

impl Hub {
    /// The hub's credential (the token it was given, else the one it made).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The token file the hub made (`None` when it was given its token).
    pub fn token_file(&self) -> Option<&Path> {
        self.token_file.as_deref()
    }

    /// The state directory [`Hub::client_env`] gives our binaries: key
    /// files, waiter locks, wake state.
    pub fn client_state_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("client-state")
    }

    /// The environment that lets one of our binaries find this hub's
    /// credential as its user's clients do: the token file, or the token
    /// the hub was given. It also gives them a private state directory of this hub's, so key
    /// files and waiter locks never land in the user's own.
    pub fn client_env(&self) -> Vec<(String, String)> {
        let state = self.client_state_dir();
        shared::state::dir(Some(&state)).expect("a private state directory");
        let mut env = vec![(
            shared::state::ENV_STATE_DIR.to_owned(),
            state.display().to_string(),
        )];
        env.push(match &self.token_file {
            Some(file) => (
                shared::config::ENV_TOKEN_FILE.to_owned(),
                file.display().to_string(),
            ),
            None => (shared::config::ENV_TOKEN.to_owned(), self.token.clone()),
        });
        env
    }

    /// A typed client for this hub, presenting its credential.
    pub fn client(&self) -> HubClient {
        HubClient::new(&self.url, Some(self.token.clone())).expect("a valid hub URL")
    }

    /// A typed client for this hub that presents no credential.
    pub fn anonymous_client(&self) -> HubClient {
        HubClient::new(&self.url, None).expect("a valid hub URL")
    }
}

impl Cli {
    /// Adds what lets the CLI find `hub`'s credential to every run.
    pub fn with_credential(mut self, hub: &Hub) -> Self {
        self.env.extend(hub.client_env());
        self
    }
}

/// The token a hub is started with, from its flags or environment.
pub(crate) fn given_token(args: &[String], env: &[(String, String)]) -> Option<String> {
    let flag = args
        .iter()
        .enumerate()
        .find_map(|(i, a)| match a.strip_prefix("--token") {
            Some("") => args.get(i + 1).cloned(),
            Some(rest) => rest.strip_prefix('=').map(str::to_owned),
            None => None,
        });
    flag.or_else(|| {
        env.iter()
            .find(|(k, _)| k == shared::config::ENV_TOKEN)
            .map(|(_, v)| v.clone())
    })
    .map(|t| t.trim().to_owned())
    .filter(|t| !t.is_empty())
}
