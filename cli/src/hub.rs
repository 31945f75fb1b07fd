//! The hub connection: one [`HubClient`] per run, and tool calls that turn
//! transport failures and `isError` results (bad arguments) into errors.
//! Domain errors (`{"error": ...}` in a normal reply) are left to each
//! command, because the original prints them differently per command.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use serde_json::Value;
use shared::config::Reader;
use shared::tools::sessions::NoParams;
use shared::tools::{Answer, Tool};
use shared::{HubClient, ToolOutput};

use crate::args::Global;

/// The hub this run talks to.
pub struct Hub {
    client: HubClient,
}

impl Hub {
    /// The hub of `global`, called as `reader`: every command is a helper
    /// (its reads never consume the agent's cursor unless asked `--resume`,
    /// and never count as the agent's own), `wait` a waiting hook.
    pub fn connect(global: &Global, reader: Reader) -> Result<Self> {
        // An empty AGENT_EVENT_BUS_URL means the default, as in the original.
        let url = Some(global.url.trim())
            .filter(|url| !url.is_empty())
            .unwrap_or(shared::config::DEFAULT_URL);
        let client = HubClient::new(url, global.token.clone())?.as_reader(reader);
        Ok(Self { client })
    }

    /// The typed client, for what is not a tool call (`/health`).
    pub fn client(&self) -> &HubClient {
        &self.client
    }

    /// Calls a tool and returns its reply value (list tools unwrapped).
    pub async fn call(&self, tool: &str, args: Value) -> Result<Value> {
        self.call_within(tool, args, None).await
    }

    /// [`Hub::call`], giving up after `limit` (the `--timeout` of `events`).
    pub async fn call_within(
        &self,
        tool: &str,
        args: Value,
        limit: Option<Duration>,
    ) -> Result<Value> {
        let out = match limit {
            Some(limit) => self.client.call_tool_within(tool, args, limit).await?,
            None => self.client.call_tool(tool, args).await?,
        };
        reply(&out)
    }

    /// Calls tool `T`: its reply, or the hub's refusal. Bad arguments and
    /// transport failures are errors.
    pub async fn answer<T: Tool>(&self, params: &T::Params) -> Result<Answer<T::Reply>> {
        Ok(self.client.call::<T>(params).await?)
    }

    /// `list_sessions`, typed.
    pub async fn sessions(&self) -> Result<Vec<shared::wire::SessionInfo>> {
        self.client
            .sessions(&NoParams {})
            .await?
            .map_err(|refusal| anyhow!("list_sessions refused: {refusal}"))
    }
}

/// A tool's reply value (list tools unwrapped); an `isError` result (bad
/// arguments) is an error.
pub fn reply(out: &ToolOutput) -> Result<Value> {
    if out.is_error() {
        bail!("{}", out.text().trim());
    }
    Ok(out.value())
}

/// The `error` of a domain-error reply, if it is one.
pub fn domain_error(reply: &Value) -> Option<&str> {
    reply.get("error").and_then(Value::as_str)
}
