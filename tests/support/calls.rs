//! Calling the hub's tools from synchronous test code: the one runtime the
//! calls run on, typed calls on [`Hub`] and the untyped [`call`].

use serde_json::Value;
use shared::HubClient;
use shared::tools::events::PublishParams;
use shared::tools::sessions::{NoParams, RegisterParams};

use crate::Hub;

/// The runtime synchronous test code drives async calls on: one for the
/// test process, so a client's pooled connections outlive a single call
/// (a runtime per call left a closed connection per poll).
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

impl Hub {
    /// Calls a tool from synchronous test code; see [`call`].
    pub fn tool(&self, name: &str, args: Value) -> Value {
        let client = self.shared_client();
        rt().block_on(call(&client, name, args))
    }

    /// Calls a tool and returns the raw `CallToolResult`, even when `isError`.
    pub fn tool_raw(&self, name: &str, args: Value) -> shared::ToolOutput {
        let client = self.shared_client();
        rt().block_on(client.call_tool(name, args))
            .unwrap_or_else(|e| panic!("{name} failed: {e}"))
    }

    /// Registers a session and returns its reply.
    pub fn register(&self, name: &str, client_id: Option<&str>) -> Value {
        let params = RegisterParams {
            name: name.to_owned(),
            machine: Some(shared::config::hostname()),
            cwd: Some("/src/repo".to_owned()),
            client_id: client_id.map(str::to_owned),
            ..RegisterParams::default()
        };
        let reply = answered(
            "registering",
            rt().block_on(self.shared_client().register(&params)),
        );
        serde_json::json!(reply)
    }

    /// The ids of the live sessions, most recently active first.
    pub fn session_ids(&self) -> Vec<String> {
        let list = answered(
            "listing sessions",
            rt().block_on(self.shared_client().sessions(&NoParams {})),
        );
        list.into_iter().map(|s| s.session_id).collect()
    }

    /// Publishes an event and returns its id.
    pub fn publish(&self, session_id: &str, event_type: &str, payload: &str, channel: &str) -> u64 {
        let params = PublishParams {
            session_id: Some(session_id.to_owned()),
            ..PublishParams::new(event_type, payload, channel)
        };
        answered(
            "publishing",
            rt().block_on(self.shared_client().publish(&params)),
        )
        .event_id
    }
}

/// A typed call's reply; panics on a transport error, `isError` or a refusal.
fn answered<R>(what: &str, outcome: Result<shared::tools::Answer<R>, shared::ClientError>) -> R {
    outcome
        .unwrap_or_else(|e| panic!("{what} failed: {e}"))
        .unwrap_or_else(|refusal| panic!("{what} was refused: {refusal}"))
}

/// Calls a tool and returns the reply value (list tools unwrapped); panics
/// on transport errors and on `isError`.
pub async fn call(client: &HubClient, tool: &str, args: Value) -> Value {
    let out = client
        .call_tool(tool, args.clone())
        .await
        .unwrap_or_else(|e| panic!("{tool}({args}) failed: {e}"));
    assert!(
        !out.is_error(),
        "{tool}({args}) gave isError: {}",
        out.text()
    );
    out.value()
}
