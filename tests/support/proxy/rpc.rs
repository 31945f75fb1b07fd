//! Speaking JSON-RPC to the proxy over its stdio: messages and requests
//! written to stdin, replies and notifications read back from stdout.

use std::time::Duration;

use serde_json::{Value, json};
use shared::ToolOutput;

use super::{Proxy, REPLY_DEADLINE, Taken, lock, wait_for};

impl Proxy {
    /// Writes one message as a line on the proxy's stdin.
    pub fn send(&mut self, message: &Value) {
        let mut line = serde_json::to_string(message).expect("JSON serialises");
        line.push('\n');
        let stdin = self.stdin.as_mut().expect("stdin is still open").writer();
        let written = stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush());
        if let Err(e) = written {
            panic!(
                "writing to the proxy failed ({e}); stderr:\n{}",
                self.stderr()
            );
        }
    }

    /// Writes raw bytes on the proxy's stdin (say, a line that is not JSON).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is still open").writer();
        if let Err(e) = stdin.write_all(bytes).and_then(|()| stdin.flush()) {
            panic!(
                "writing to the proxy failed ({e}); stderr:\n{}",
                self.stderr()
            );
        }
    }

    /// Waits for the reply with this id (`null` for a parse error) and
    /// takes it.
    pub fn wait_reply(&mut self, id: &Value) -> Value {
        let key = id.to_string();
        match self.take_reply(&key) {
            Some(Taken::Reply(reply)) => reply,
            _ => panic!(
                "no reply for id {key} within {REPLY_DEADLINE:?}; stderr:\n{}",
                self.stderr()
            ),
        }
    }

    /// Waits for the reply whose id renders as `key` and takes it, or for
    /// stdout to close first; `None` past the deadline.
    fn take_reply(&self, key: &str) -> Option<Taken> {
        wait_for(&self.stdout, REPLY_DEADLINE, |state| {
            state
                .replies
                .remove(key)
                .map(Taken::Reply)
                .or_else(|| state.closed.then_some(Taken::Closed))
        })
    }

    /// Sends a request with the given id and waits for its reply (the whole
    /// JSON-RPC message, `result` or `error`).
    pub fn request_with_id(&mut self, id: &Value, method: &str, params: Option<Value>) -> Value {
        let mut message = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(params) = params {
            message["params"] = params;
        }
        self.send(&message);
        let key = id.to_string();
        match self.take_reply(&key) {
            Some(Taken::Reply(reply)) => reply,
            Some(Taken::Closed) => panic!(
                "the proxy closed stdout before answering {method}; stderr:\n{}",
                self.stderr()
            ),
            None => panic!(
                "no reply to {method} within {REPLY_DEADLINE:?}; stderr:\n{}",
                self.stderr()
            ),
        }
    }

    /// Sends a request and waits for its reply (the whole JSON-RPC message).
    pub fn request(&mut self, method: &str, params: Option<Value>) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.request_with_id(&json!(id), method, params)
    }

    /// Sends a request and returns its `result` (panics on a JSON-RPC error).
    pub fn result(&mut self, method: &str, params: Option<Value>) -> Value {
        let reply = self.request(method, params);
        match reply.get("result") {
            Some(result) => result.clone(),
            None => panic!("{method} failed: {reply}"),
        }
    }

    /// Sends a notification.
    pub fn notify(&mut self, method: &str) {
        self.send(&json!({"jsonrpc": "2.0", "method": method}));
    }

    /// Claude Code's first message: a `server/discover` probe for the
    /// 2026-07-28 revision. Returns the whole reply.
    pub fn discover_probe(&mut self) -> Value {
        self.request_with_id(
            &json!("server-discover-probe-1"),
            "server/discover",
            Some(json!({"_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "claude-code", "version": "2"},
            }})),
        )
    }

    /// `initialize` (protocol 2025-11-25, as Claude Code after its probe),
    /// then `notifications/initialized`. Returns the initialize result.
    pub fn initialize(&mut self) -> Value {
        self.initialize_as("e2e", "0")
    }

    /// [`Proxy::initialize`] with this `clientInfo` (say, `claude-code`).
    pub fn initialize_as(&mut self, name: &str, version: &str) -> Value {
        let result = self.result(
            "initialize",
            Some(json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": name, "version": version},
            })),
        );
        self.notify("notifications/initialized");
        result
    }

    /// `tools/list`.
    pub fn tools(&mut self) -> Vec<Value> {
        let result = self.result("tools/list", None);
        result["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("tools/list has no tools: {result}"))
            .clone()
    }

    /// `tools/call`; the `CallToolResult` (which may be `isError`).
    pub fn call(&mut self, tool: &str, args: Value) -> ToolOutput {
        let mut params = json!({"name": tool});
        params["arguments"] = args;
        let result = self.result("tools/call", Some(params));
        ToolOutput { result }
    }

    /// `tools/call`; the reply value (panics on `isError`).
    pub fn call_ok(&mut self, tool: &str, args: Value) -> Value {
        let shown = args.to_string();
        let out = self.call(tool, args);
        assert!(
            !out.is_error(),
            "{tool}({shown}) through the proxy gave isError: {}\nproxy stderr:\n{}",
            out.text(),
            self.stderr()
        );
        out.value()
    }

    /// Every stdout line so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        lock(&self.stdout).lines.clone()
    }

    /// Every notification (and server request) so far.
    pub fn notifications(&self) -> Vec<Value> {
        lock(&self.stdout).notifications.clone()
    }

    /// Waits until `check` finds what it wants among the notifications so
    /// far (woken as each one arrives); `None` after `deadline`.
    pub fn wait_notifications<R>(
        &self,
        deadline: Duration,
        mut check: impl FnMut(&[Value]) -> Option<R>,
    ) -> Option<R> {
        wait_for(&self.stdout, deadline, |state| check(&state.notifications))
    }

    /// Asserts that stdout carried nothing but JSON-RPC 2.0 messages.
    pub fn assert_stdout_is_json_rpc(&self) {
        let lines = self.stdout_lines();
        assert!(!lines.is_empty(), "the proxy wrote nothing to stdout");
        for line in &lines {
            let message: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a stdout line is not JSON ({e}): {line:?}"));
            assert_eq!(message["jsonrpc"], json!("2.0"), "not JSON-RPC 2.0: {line}");
            assert!(
                message.get("id").is_some() || message.get("method").is_some(),
                "neither a reply nor a notification: {line}"
            );
        }
    }
}
