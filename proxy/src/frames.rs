//! The stdio framing in front of rmcp: the client's lines are read with a
//! bounded buffer; a line over [`MAX_FRAME`] or one that is not JSON gets a
//! JSON-RPC error (for its id when it can be read, else `-32700` with id
//! `null`) and the proxy carries on; every other line goes to rmcp. One task
//! writes stdout, whole lines only, so rmcp's messages and these errors never
//! interleave.

use serde_json::{Value, json};
use shared::mcp::code::{INVALID_REQUEST, PARSE_ERROR};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::mpsc;

/// The longest line (one JSON-RPC message) the proxy takes from its client.
/// The hub takes 1 MiB bodies by default; a line between the two reaches the
/// hub and is refused there with its limit.
pub const MAX_FRAME: usize = 4 * 1024 * 1024;

/// How much of an oversize line is kept to find its id: its start and end.
const KEEP: usize = 4096;
/// Buffers grown past this by one big line are given back afterwards.
const SHRINK_ABOVE: usize = 256 * 1024;

/// The transport rmcp serves on: reads what `filter_stdin` passed on,
/// writes what `write_stdout` puts on stdout. Spawns both tasks; the
/// handle ends once everything rmcp wrote is on stdout (after rmcp let go
/// of its end).
pub fn transport() -> ((DuplexStream, DuplexStream), tokio::task::JoinHandle<()>) {
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    let (rmcp_in, to_rmcp) = tokio::io::duplex(64 * 1024);
    let (rmcp_out, from_rmcp) = tokio::io::duplex(64 * 1024);
    let (errors_tx, errors_rx) = mpsc::channel(64);
    tokio::spawn(filter_stdin(stdin, to_rmcp, errors_tx));
    let written = tokio::spawn(write_stdout(from_rmcp, stdout, errors_rx));
    ((rmcp_in, rmcp_out), written)
}

/// A line too long to keep: its length so far, its start and its end.
#[derive(Default)]
struct Oversize {
    len: usize,
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl Oversize {
    fn push(&mut self, bytes: &[u8]) {
        self.len += bytes.len();
        if self.head.len() < KEEP {
            let take = (KEEP - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
        }
        self.tail
            .extend_from_slice(&bytes[bytes.len().saturating_sub(KEEP)..]);
        let excess = self.tail.len().saturating_sub(KEEP);
        self.tail.drain(..excess);
    }

    /// The reply: an error for the line's id, or a parse error.
    fn reply(&self) -> Value {
        let message = format!(
            "message too large: {} bytes; this proxy takes at most {MAX_FRAME} bytes per message",
            self.len
        );
        match find_id(&self.head).or_else(|| find_id(&self.tail)) {
            Some(id) => error_reply(&id, INVALID_REQUEST, &message),
            None => error_reply(&Value::Null, PARSE_ERROR, &message),
        }
    }
}

/// Reads the client's lines; passes JSON ones to rmcp, answers the rest.
async fn filter_stdin(
    stdin: impl AsyncRead + Unpin,
    mut to_rmcp: DuplexStream,
    errors: mpsc::Sender<Value>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdin);
    let mut line: Vec<u8> = Vec::new();
    let mut oversize: Option<Oversize> = None;
    loop {
        let (consumed, ended) = {
            let available = match reader.fill_buf().await {
                Ok([]) => break,
                Ok(available) => available,
                Err(e) => {
                    tracing::debug!("reading stdin: {e}");
                    break;
                }
            };
            let newline = available.iter().position(|b| *b == b'\n');
            let take = newline.map_or(available.len(), |i| i + 1);
            let chunk = &available[..take];
            if oversize.is_none() && line.len() + chunk.len() > MAX_FRAME {
                let mut big = Oversize::default();
                big.push(&line);
                line.clear();
                line.shrink_to(SHRINK_ABOVE);
                oversize = Some(big);
            }
            match oversize.as_mut() {
                Some(big) => big.push(chunk),
                None => line.extend_from_slice(chunk),
            }
            (take, newline.is_some())
        };
        reader.consume(consumed);
        if !ended {
            continue;
        }
        let reply = match oversize.take() {
            Some(big) => {
                tracing::warn!(bytes = big.len, "refused a message over the frame limit");
                Some(big.reply())
            }
            None => check_line(&line),
        };
        match reply {
            Some(reply) => {
                if errors.send(reply).await.is_err() {
                    break;
                }
            }
            None => {
                if to_rmcp.write_all(&line).await.is_err() {
                    break;
                }
            }
        }
        line.clear();
        if line.capacity() > SHRINK_ABOVE {
            line.shrink_to(SHRINK_ABOVE);
        }
    }
    // EOF: rmcp sees its input end and the session closes.
    let _ = to_rmcp.shutdown().await;
}

/// `None` when the line goes to rmcp (JSON, or blank); else the error reply.
fn check_line(line: &[u8]) -> Option<Value> {
    let text = line.strip_suffix(b"\n").unwrap_or(line);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    if text.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    match serde_json::from_slice::<serde::de::IgnoredAny>(text) {
        Ok(_) => None,
        Err(e) => {
            tracing::debug!("refused a line that is not JSON: {e}");
            Some(error_reply(
                &Value::Null,
                PARSE_ERROR,
                &format!("Parse error: not a JSON-RPC message ({e})"),
            ))
        }
    }
}

/// Writes rmcp's messages and the filter's errors to stdout, a whole line
/// at a time.
async fn write_stdout(
    from_rmcp: DuplexStream,
    mut stdout: impl AsyncWrite + Unpin,
    mut errors: mpsc::Receiver<Value>,
) {
    let mut lines = BufReader::new(from_rmcp);
    let mut line = Vec::new();
    let mut errors_open = true;
    loop {
        tokio::select! {
            // `read_until` keeps a partial line in `line` when cancelled.
            read = lines.read_until(b'\n', &mut line) => {
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if stdout.write_all(&line).await.is_err() || stdout.flush().await.is_err() {
                            break;
                        }
                        line.clear();
                        if line.capacity() > SHRINK_ABOVE {
                            line.shrink_to(SHRINK_ABOVE);
                        }
                    }
                }
            }
            reply = errors.recv(), if errors_open => {
                let Some(reply) = reply else {
                    errors_open = false;
                    continue;
                };
                let mut text = reply.to_string();
                text.push('\n');
                if stdout.write_all(text.as_bytes()).await.is_err() || stdout.flush().await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = stdout.flush().await;
}

fn error_reply(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// The value of the first `"id":` key in a fragment of a JSON object, when
/// it is a number or a string that the fragment holds whole.
fn find_id(fragment: &[u8]) -> Option<Value> {
    let key = b"\"id\"";
    let mut from = 0;
    while let Some(at) = fragment[from..].windows(key.len()).position(|w| w == key) {
        let mut i = from + at + key.len();
        from = i;
        while fragment.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if fragment.get(i) != Some(&b':') {
            continue;
        }
        i += 1;
        while fragment.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        let rest = &fragment[i..];
        let end = match rest.first()? {
            b'"' => {
                let mut j = 1;
                loop {
                    match rest.get(j)? {
                        b'\\' => j += 2,
                        b'"' => break j + 1,
                        _ => j += 1,
                    }
                }
            }
            b'-' | b'0'..=b'9' => rest
                .iter()
                .position(|b| !matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                .unwrap_or(rest.len()),
            _ => continue,
        };
        if let Ok(id @ (Value::String(_) | Value::Number(_))) =
            serde_json::from_slice::<Value>(&rest[..end])
        {
            return Some(id);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_id_in_a_fragment() {
        assert_eq!(
            find_id(br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"x":"#),
            Some(json!(42))
        );
        assert_eq!(find_id(br#"{"id" : "a\"b", "#), Some(json!("a\"b")));
        assert_eq!(find_id(br#"{"session_id":"s","x":1"#), None);
        assert_eq!(find_id(br#""payload":"xxxx"},"id":7}"#), Some(json!(7)));
        assert_eq!(find_id(br#"{"id":"unterminated"#), None);
        assert_eq!(find_id(b"garbage"), None);
    }

    #[test]
    fn an_oversize_line_keeps_only_its_ends() {
        let mut big = Oversize::default();
        big.push(br#"{"jsonrpc":"2.0","id":9,"params":""#);
        for _ in 0..1000 {
            big.push(&[b'x'; 10_000]);
        }
        big.push(b"\"}\n");
        assert!(big.head.len() <= KEEP && big.tail.len() <= KEEP);
        let reply = big.reply();
        assert_eq!(reply["id"], json!(9));
        assert_eq!(reply["error"]["code"], json!(INVALID_REQUEST));
        let mut anonymous = Oversize::default();
        anonymous.push(&[b'x'; 10_000]);
        assert_eq!(anonymous.reply()["id"], Value::Null);
        assert_eq!(anonymous.reply()["error"]["code"], json!(PARSE_ERROR));
    }

    #[test]
    fn garbage_gets_a_parse_error_and_json_passes() {
        assert_eq!(check_line(b"{\"jsonrpc\":\"2.0\"}\r\n"), None);
        assert_eq!(check_line(b"   \n"), None);
        let reply = check_line(b"not json\n").expect("an error");
        assert_eq!(reply["error"]["code"], json!(PARSE_ERROR));
        assert_eq!(reply["id"], Value::Null);
    }
}
