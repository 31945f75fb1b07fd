//! The hub connection: one [`HubClient`] per run, and typed tool calls that
//! turn transport failures and `isError` results (bad arguments) into
//! errors. Refusals (`{"error": ...}` in a normal reply) are left to each
//! command, because the original prints them differently per command.

use std::time::Duration;

use anyhow::{Result, anyhow};
use shared::HubClient;
use shared::config::Reader;
use shared::tools::sessions::{ListSessions, NoParams};
use shared::tools::{Answer, Tool};

use crate::args::Global;

/// The hub this run talks to.
pub(crate) struct Hub {
    client: HubClient,
}

impl Hub {
    /// The hub of `global`, called as `reader`: every command is a helper
    /// (its reads never consume the agent's cursor unless asked `--resume`,
    /// and never count as the agent's own), `wait` a waiting hook.
    pub(crate) fn connect(global: &Global, reader: Reader) -> Result<Self> {
        // An empty AGENT_EVENT_BUS_URL means the default, as in the original.
        let url = Some(global.url.trim())
            .filter(|url| !url.is_empty())
            .unwrap_or(shared::config::DEFAULT_URL);
        let client = HubClient::discover(url, global.token.as_deref())?.as_reader(reader);
        Ok(Self { client })
    }

    /// The typed client, for what is not one tool call (`/health`, followers).
    pub(crate) fn client(&self) -> &HubClient {
        &self.client
    }

    /// Sends `session_id`'s key (from its key file, when this user has
    /// one) with every call from now on, so calls acting as that session
    /// are its own.
    pub(crate) fn act_as(&self, session_id: &str) {
        self.client.set_session_key(shared::keys::load(session_id));
    }

    /// [`Hub::act_as`] for the keyed session of this command's own agent,
    /// whose proxy may still be saving the key it was just given.
    pub(crate) async fn act_as_agent(&self, session_id: &str) {
        self.client
            .set_session_key(shared::keys::load_soon(session_id).await);
    }

    /// Calls tool `T`: its reply, or the hub's refusal. Bad arguments and
    /// transport failures are errors.
    pub(crate) async fn answer<T: Tool>(&self, params: &T::Params) -> Result<Answer<T::Reply>> {
        Ok(self.client.call::<T>(params).await?)
    }

    /// [`Hub::answer`], giving up after `limit` (the `--timeout` of `events`).
    pub(crate) async fn answer_within<T: Tool>(
        &self,
        params: &T::Params,
        limit: Duration,
    ) -> Result<Answer<T::Reply>> {
        Ok(self.client.call_within::<T>(params, limit).await?)
    }

    /// Calls list tool `T`: its items, with a note on stderr when the hub
    /// cut the list at its limit. A refusal is an error.
    pub(crate) async fn list<T, I>(&self, params: &T::Params) -> Result<Vec<I>>
    where
        T: Tool<Reply = Vec<I>>,
    {
        let arguments = serde_json::to_value(params)?;
        let out = self.client.call_tool(T::NAME, arguments).await?;
        let items = out
            .answer::<T>()?
            .map_err(|refusal| anyhow!("{} refused: {refusal}", T::NAME))?;
        if out.truncated() {
            crate::output::note(&shared::tools::truncated_note(T::NAME, items.len()));
        }
        Ok(items)
    }

    /// `list_sessions`, typed.
    pub(crate) async fn sessions(&self) -> Result<Vec<shared::wire::SessionInfo>> {
        self.list::<ListSessions, _>(&NoParams {}).await
    }
}
