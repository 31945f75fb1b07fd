//! The agent's own `register_session` and `unregister_session` for this
//! proxy's session: a rename or resume of the one session (never a second),
//! and a release nothing undoes until the agent registers again. The
//! session's key stays with the proxy: the agent's reply never carries it.

use serde_json::{Map, Value, json};
use shared::client::DEFAULT_TIMEOUT;
use shared::text::Shown;
use shared::tools::sessions::{RegisterSession, UnregisterSession};
use shared::tools::{Refusal, Tool};
use shared::{ClientError, ToolOutput};

use super::{Phase, Presence};

impl Presence {
    /// The agent's own `register_session`: renames/resumes this proxy's
    /// session (same machine and `client_id`) and never creates a second one.
    /// The agent's arguments are checked as the hub checks them; only its
    /// `name` and `cwd` are taken.
    pub async fn register_for_agent(
        &self,
        mut args: Map<String, Value>,
    ) -> Result<ToolOutput, ClientError> {
        let mut slot = self.registrar.lock().await;
        let identity = self.identity(&mut slot).await;
        let name = match args.get("name").and_then(Value::as_str) {
            Some(name) if !name.trim().is_empty() => name.to_owned(),
            _ => identity.name.clone(),
        };
        let cwd = match args.get("cwd").and_then(Value::as_str) {
            Some(cwd) if !cwd.trim().is_empty() => cwd.to_owned(),
            _ => identity.cwd.clone(),
        };
        if let Some(theirs) = args.get("client_id").and_then(Value::as_str)
            && theirs != identity.client_id
        {
            tracing::debug!(
                client_id = %Shown(theirs),
                "register_session through the proxy always uses the proxy's client_id"
            );
        }
        args.insert("name".into(), json!(name));
        if let Err(e) = shared::tools::parse::<RegisterSession>(Some(Value::Object(args))) {
            return Err(ClientError::Tool(
                shared::tools::Invalid::of::<RegisterSession>(e).to_string(),
            ));
        }
        let mut next = identity.clone();
        next.name = name;
        next.cwd = cwd;
        // The agent's own arguments are judged as the hub judges them; this
        // proxy's identity and reach go over them, and its key with them.
        let push = self.pusher.routes(&next.client_id).await;
        let answer =
            shared::keys::register(self.hub(), &next.register_params(&push), DEFAULT_TIMEOUT)
                .await?;
        let reply = match answer {
            Ok(mut registered) => {
                self.note_cursor(&registered);
                let id = registered.session_id.clone();
                self.state().identity = Some(next.clone());
                *identity = next;
                tracing::info!(
                    session_id = %Shown(&id),
                    name = %Shown(&identity.name),
                    "the agent registered this session"
                );
                if self.phase() != Phase::Closed {
                    self.set_phase(Phase::Registered(id));
                }
                // The key is the proxy's to send; the agent never sees it.
                registered.session_key = None;
                serde_json::to_value(registered).unwrap_or_default()
            }
            Err(refusal) => refusal.to_value(),
        };
        Ok(ToolOutput {
            result: shared::mcp::tool_result(&reply, false),
        })
    }

    /// The agent's own `unregister_session` of this proxy's session: honoured,
    /// and nothing re-registers it until the agent registers again. Its key
    /// file goes with it.
    pub async fn unregister_for_agent(
        &self,
        id: &str,
        mut args: Map<String, Value>,
    ) -> Result<ToolOutput, ClientError> {
        let _slot = self.registrar.lock().await;
        args.insert("session_id".into(), json!(id));
        let out = self
            .hub
            .call_tool(UnregisterSession::NAME, Value::Object(args))
            .await?;
        let keyed = matches!(
            Refusal::from_value(&out.value()),
            Some(Refusal::SessionKeyed { .. })
        );
        if !out.is_error() && !keyed && self.phase() != Phase::Closed {
            tracing::info!(session_id = %Shown(id), "the agent unregistered this session");
            shared::keys::remove(id);
            self.set_phase(Phase::Released(id.to_owned()));
        }
        Ok(out)
    }
}
