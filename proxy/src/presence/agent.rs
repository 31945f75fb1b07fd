//! The agent's own `register_session` and `unregister_session` for this
//! proxy's session: a rename or resume of the one session (never a second),
//! and a release nothing undoes until the agent registers again.

use serde_json::{Map, Value, json};
use shared::tools::Tool;
use shared::tools::sessions::{RegisterSession, UnregisterSession};
use shared::{ClientError, ToolOutput};

use super::{Phase, Presence, registered};

impl Presence {
    /// The agent's own `register_session`: renames/resumes this proxy's
    /// session (same machine and `client_id`) and never creates a second one.
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
                client_id = %theirs,
                "register_session through the proxy always uses the proxy's client_id"
            );
        }
        let mut next = identity.clone();
        next.name = name;
        next.cwd = cwd;
        // The agent's own arguments travel as given (the hub judges them),
        // with this proxy's identity and reach over them.
        let push = self.pusher.routes(&next.client_id).await;
        if let Ok(Value::Object(ours)) = serde_json::to_value(next.register_params(&push)) {
            args.extend(ours);
        }
        let out = self
            .hub
            .call_tool(RegisterSession::NAME, Value::Object(args))
            .await?;
        if let Ok(registered) = registered(&out) {
            self.note_cursor(&registered);
            let id = registered.session_id;
            self.state().identity = Some(next.clone());
            *identity = next;
            tracing::info!(session_id = %id, name = %identity.name, "the agent registered this session");
            if self.phase() != Phase::Closed {
                self.set_phase(Phase::Registered(id));
            }
        }
        Ok(out)
    }

    /// The agent's own `unregister_session` of this proxy's session: honoured,
    /// and nothing re-registers it until the agent registers again.
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
        if !out.is_error() && self.phase() != Phase::Closed {
            tracing::info!(session_id = %id, "the agent unregistered this session");
            self.set_phase(Phase::Released(id.to_owned()));
        }
        Ok(out)
    }
}
