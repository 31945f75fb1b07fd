//! Claude Code's cross-session inbox: an undocumented Unix socket Claude
//! Code hands its MCP servers as `CLAUDE_CODE_MESSAGING_SOCKET` (with
//! `CLAUDE_CODE_MESSAGING_TOKEN`). One connection per message: an auth line
//! with the child token, one `user` line, close. Claude Code answers nothing
//! for an accepted message; held, refused or dropped ones get a
//! `peer_message_status` frame on the reply socket named in `from`, which
//! must sit in the inbox's own directory and be ours (Claude Code checks
//! the listener's process). Those frames become receipts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use shared::tools::receipts::Step;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

pub const ENV_SOCKET: &str = "CLAUDE_CODE_MESSAGING_SOCKET";
pub const ENV_TOKEN: &str = "CLAUDE_CODE_MESSAGING_TOKEN";

/// How long the probe and a send may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
/// How long writing one message may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest status frame read from the reply socket.
const FRAME_MAX: usize = 64 * 1024;
/// Status frames kept waiting for the wake task.
const STATUS_QUEUE: usize = 64;
/// Sends remembered for their status frames.
const SENT_MAX: usize = 1024;
/// A Unix socket path must fit `sun_path`.
const SOCKET_PATH_MAX: usize = 103;

/// What Claude Code said about one of our messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub event_ids: Vec<u64>,
    pub step: Step,
    pub reason: String,
}

/// The inbox of the Claude Code session that started us.
pub struct Inbox {
    socket: PathBuf,
    token: String,
    /// Our reply socket, once bound.
    reply: Mutex<Option<PathBuf>>,
    /// `msg_id` → the events a send told about.
    sent: Mutex<HashMap<String, Vec<u64>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere; the state is plain data.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Inbox {
    /// The inbox named by our environment (both variables must be there).
    pub fn from_env() -> Option<Self> {
        let socket = shared::config::non_empty_env(ENV_SOCKET)?;
        let token = shared::config::non_empty_env(ENV_TOKEN)?;
        Some(Self {
            socket: PathBuf::from(socket),
            token,
            reply: Mutex::new(None),
            sent: Mutex::new(HashMap::new()),
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Whether the inbox accepts a connection now.
    pub async fn probe(&self) -> bool {
        matches!(
            tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(&self.socket)).await,
            Ok(Ok(_))
        )
    }

    /// Writes one message (`content`) about `event_ids`: connect, the auth
    /// line, the user line, close.
    pub async fn send(&self, content: &str, event_ids: &[u64]) -> std::io::Result<()> {
        let msg_id = format!(
            "agent-event-bus-{}-{}",
            std::process::id(),
            event_ids.iter().copied().max().unwrap_or(0)
        );
        let reply = lock(&self.reply).clone();
        let text = lines(&self.token, content, reply.as_deref(), &msg_id);
        let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(&self.socket))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        let write = async {
            stream.write_all(text.as_bytes()).await?;
            stream.shutdown().await
        };
        tokio::time::timeout(WRITE_TIMEOUT, write)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "write timed out"))??;
        let mut sent = lock(&self.sent);
        if sent.len() >= SENT_MAX {
            sent.clear();
        }
        sent.insert(msg_id, event_ids.to_vec());
        Ok(())
    }

    /// Binds our reply socket beside the inbox and reads status frames from
    /// it, accepting connections only from `ancestors` (the Claude Code
    /// process that owns the inbox is one). `None` when it cannot be bound.
    pub fn listen(
        self: &std::sync::Arc<Self>,
        ancestors: Vec<u32>,
    ) -> Option<mpsc::Receiver<Status>> {
        let dir = self.socket.parent()?;
        let path = dir.join(format!("agent-event-bus-{}.sock", std::process::id()));
        if path.as_os_str().len() > SOCKET_PATH_MAX {
            tracing::debug!(path = %path.display(), "the reply socket's path is too long; no hold receipts");
            return None;
        }
        // A file of this name is a proxy's with our PID that died unclean.
        let _ = std::fs::remove_file(&path);
        let listener = match UnixListener::bind(&path) {
            Ok(listener) => listener,
            Err(e) => {
                tracing::debug!(path = %path.display(), "cannot bind the inbox reply socket: {e}");
                return None;
            }
        };
        *lock(&self.reply) = Some(path);
        let (tx, rx) = mpsc::channel(STATUS_QUEUE);
        let inbox = self.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let peer = stream.peer_cred().ok().and_then(|c| c.pid());
                let trusted = peer
                    .and_then(|p| u32::try_from(p).ok())
                    .is_some_and(|p| ancestors.contains(&p));
                if !trusted {
                    tracing::debug!(
                        ?peer,
                        "ignored a reply-socket connection that is not from our client"
                    );
                    continue;
                }
                let (inbox, tx) = (inbox.clone(), tx.clone());
                tokio::spawn(async move { inbox.read_frames(stream, tx).await });
            }
        });
        Some(rx)
    }

    async fn read_frames(&self, stream: UnixStream, tx: mpsc::Sender<Status>) {
        let mut lines = BufReader::new(stream.take(FRAME_MAX as u64 * 16)).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.len() > FRAME_MAX {
                continue;
            }
            let Some((msg_id, step, reason)) = status_frame(&line) else {
                continue;
            };
            let event_ids = lock(&self.sent).get(&msg_id).cloned();
            if let Some(event_ids) = event_ids {
                let _ = tx
                    .send(Status {
                        event_ids,
                        step,
                        reason,
                    })
                    .await;
            } else {
                tracing::debug!(%msg_id, "a status frame for no message of ours");
            }
        }
    }

    /// Removes the reply socket (at exit).
    pub fn close(&self) {
        if let Some(path) = lock(&self.reply).take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The lines written for one message: the auth line, then the user line.
/// `from` names our reply socket; no `from-mode` is ever claimed.
pub fn lines(token: &str, content: &str, from: Option<&Path>, msg_id: &str) -> String {
    let auth = json!({"type": "auth", "token": token});
    let mut user = json!({
        "type": "user",
        "message": {"role": "user", "content": content},
        "msg_id": msg_id,
        "priority": "next",
    });
    if let Some(from) = from {
        user["from"] = Value::String(format!("uds:{}", from.display()));
    }
    format!("{auth}\n{user}\n")
}

/// A `peer_message_status` frame: the message id it is about, and the
/// receipt step (`delivered` for a message released after a hold; `held`,
/// with a reason, for held, denied, expired, refused and dropped ones).
pub fn status_frame(line: &str) -> Option<(String, Step, String)> {
    let frame: Value = serde_json::from_str(line).ok()?;
    if frame.get("type")?.as_str()? != "control"
        || frame.get("action")?.as_str()? != "peer_message_status"
    {
        return None;
    }
    let msg_id = frame.get("orig_msg_id")?.as_str()?.to_owned();
    let status = frame.get("status")?.as_str()?;
    let detail = frame.get("status_detail").and_then(Value::as_str);
    let said = frame
        .get("reason")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty());
    let status = if detail == Some("refused") {
        "refused"
    } else {
        status
    };
    let step = match status {
        "delivered" => Step::Delivered,
        "held" | "denied" | "expired" | "refused" | "dropped" => Step::Held,
        _ => return None,
    };
    let reason = match said {
        Some(said) => format!(
            "Claude Code's inbox: {status} ({})",
            super::notice::inline(said, 200, false)
        ),
        None => format!("Claude Code's inbox: {status}"),
    };
    Some((msg_id, step, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_the_auth_line_then_one_user_line() {
        let text = lines(
            "t0k",
            "hi \"there\"\nsecond",
            Some(Path::new("/tmp/cc-socks/x.sock")),
            "m1",
        );
        let mut it = text.lines();
        let auth: Value = serde_json::from_str(it.next().unwrap()).unwrap();
        assert_eq!(auth, json!({"type": "auth", "token": "t0k"}));
        let user: Value = serde_json::from_str(it.next().unwrap()).unwrap();
        assert_eq!(
            user,
            json!({"type": "user", "message": {"role": "user", "content": "hi \"there\"\nsecond"},
                   "msg_id": "m1", "priority": "next", "from": "uds:/tmp/cc-socks/x.sock"})
        );
        assert!(it.next().is_none() && text.ends_with('\n'));
        assert!(!text.contains("from-mode"));
    }

    #[test]
    fn status_frames_become_steps() {
        let held = r#"{"type":"control","action":"peer_message_status","status":"held","reason":"explicit-setting","from":"uds:/x.sock","orig_msg_id":"m1"}"#;
        assert_eq!(
            status_frame(held),
            Some((
                "m1".into(),
                Step::Held,
                "Claude Code's inbox: held (explicit-setting)".into()
            ))
        );
        let refused = r#"{"type":"control","action":"peer_message_status","status":"expired","status_detail":"refused","orig_msg_id":"m2"}"#;
        assert_eq!(
            status_frame(refused).unwrap().2,
            "Claude Code's inbox: refused"
        );
        let released = r#"{"type":"control","action":"peer_message_status","status":"delivered","orig_msg_id":"m3"}"#;
        assert_eq!(status_frame(released).unwrap().1, Step::Delivered);
        assert_eq!(status_frame(r#"{"type":"user"}"#), None);
        assert_eq!(status_frame("not json"), None);
        assert_eq!(
            status_frame(
                r#"{"type":"control","action":"peer_message_status","status":"odd","orig_msg_id":"m"}"#
            ),
            None
        );
    }
}
