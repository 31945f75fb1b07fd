//! The compact binary form of a stored event.
//!
//! ```text
//! 0x01 | flags | timestamp (i64 LE) | event_type | channel | session_id
//!      | correlation_id? | signal_level? | title? | tags? | payload
//! ```
//! Strings are a LEB128 length and UTF-8 bytes; `flags` says which optional
//! fields are present (tags are a count, then the strings). The filterable
//! fields come first, so [`EventHead`] reads them without touching the
//! payload. The id is the row's key and is not repeated. Rows written before
//! this form are JSON, which starts with `{`, so the first byte tells them
//! apart.

use crate::store::EventRecord;

const FORMAT: u8 = 1;
const HAS_CORRELATION: u8 = 1;
const HAS_LEVEL: u8 = 2;
const HAS_TITLE: u8 = 4;
const HAS_TAGS: u8 = 8;

/// Why a stored row could not be read.
#[derive(Debug, thiserror::Error)]
#[error("event {id}: {why}")]
pub struct CodecError {
    pub id: u64,
    pub why: String,
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "each byte is masked to seven bits first"
)]
fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// The compact form of `e` (its id is the key, not part of the row).
pub fn encode_event(e: &EventRecord) -> Vec<u8> {
    let mut flags = 0;
    for (present, bit) in [
        (e.correlation_id.is_some(), HAS_CORRELATION),
        (e.signal_level.is_some(), HAS_LEVEL),
        (e.title.is_some(), HAS_TITLE),
        (e.tags.is_some(), HAS_TAGS),
    ] {
        if present {
            flags |= bit;
        }
    }
    let mut out = Vec::with_capacity(
        16 + e.event_type.len() + e.channel.len() + e.session_id.len() + e.payload.len(),
    );
    out.push(FORMAT);
    out.push(flags);
    out.extend_from_slice(&e.timestamp.to_le_bytes());
    put_str(&mut out, &e.event_type);
    put_str(&mut out, &e.channel);
    put_str(&mut out, &e.session_id);
    for s in [&e.correlation_id, &e.signal_level, &e.title]
        .into_iter()
        .flatten()
    {
        put_str(&mut out, s);
    }
    if let Some(tags) = &e.tags {
        put_len(&mut out, tags.len());
        for t in tags {
            put_str(&mut out, t);
        }
    }
    put_str(&mut out, &e.payload);
    out
}

/// A reader over one row's bytes.
struct Reader<'a> {
    id: u64,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn fail(&self, why: &str) -> CodecError {
        CodecError {
            id: self.id,
            why: format!("{why} at byte {}", self.at),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.fail("truncated row"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn len(&mut self) -> Result<usize, CodecError> {
        let mut n: usize = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            n |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(self.fail("length too long"))
    }

    fn str(&mut self) -> Result<&'a str, CodecError> {
        let n = self.len()?;
        let raw = self.take(n)?;
        std::str::from_utf8(raw).map_err(|_| self.fail("text that is not UTF-8"))
    }

    fn opt_str(&mut self, flags: u8, bit: u8) -> Result<Option<&'a str>, CodecError> {
        if flags & bit == 0 {
            Ok(None)
        } else {
            self.str().map(Some)
        }
    }
}

/// The filterable fields of a row, read without decoding its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct EventHead<'a> {
    pub timestamp: i64,
    pub event_type: &'a str,
    pub channel: &'a str,
    pub session_id: &'a str,
    pub correlation_id: Option<&'a str>,
}

fn head<'a>(r: &mut Reader<'a>) -> Result<(u8, EventHead<'a>), CodecError> {
    if r.take(1)?[0] != FORMAT {
        return Err(r.fail("unknown row format"));
    }
    let flags = r.take(1)?[0];
    let mut ts = [0u8; 8];
    ts.copy_from_slice(r.take(8)?);
    let event_type = r.str()?;
    let channel = r.str()?;
    let session_id = r.str()?;
    let correlation_id = r.opt_str(flags, HAS_CORRELATION)?;
    Ok((
        flags,
        EventHead {
            timestamp: i64::from_le_bytes(ts),
            event_type,
            channel,
            session_id,
            correlation_id,
        },
    ))
}

fn is_json(bytes: &[u8]) -> bool {
    bytes.first() == Some(&b'{')
}

fn json_row(id: u64, bytes: &[u8]) -> Result<EventRecord, CodecError> {
    serde_json::from_slice(bytes).map_err(|e| CodecError {
        id,
        why: e.to_string(),
    })
}

/// Decodes row `id` (compact or the older JSON).
pub fn decode_event(id: u64, bytes: &[u8]) -> Result<EventRecord, CodecError> {
    if is_json(bytes) {
        return json_row(id, bytes);
    }
    let mut r = Reader { id, bytes, at: 0 };
    let (flags, h) = head(&mut r)?;
    let signal_level = r.opt_str(flags, HAS_LEVEL)?.map(str::to_owned);
    let title = r.opt_str(flags, HAS_TITLE)?.map(str::to_owned);
    let tags = if flags & HAS_TAGS == 0 {
        None
    } else {
        let n = r.len()?;
        let mut tags = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            tags.push(r.str()?.to_owned());
        }
        Some(tags)
    };
    let payload = r.str()?.to_owned();
    Ok(EventRecord {
        id,
        event_type: h.event_type.to_owned(),
        payload,
        session_id: h.session_id.to_owned(),
        timestamp: h.timestamp,
        channel: h.channel.to_owned(),
        correlation_id: h.correlation_id.map(str::to_owned),
        signal_level,
        title,
        tags,
    })
}

/// The fields an index or a time scan needs, owned (a JSON row is decoded
/// whole; a compact one only up to its payload).
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedHead {
    pub timestamp: i64,
    pub event_type: String,
    pub channel: String,
    pub correlation_id: Option<String>,
}

pub fn decode_head(id: u64, bytes: &[u8]) -> Result<OwnedHead, CodecError> {
    if is_json(bytes) {
        let e = json_row(id, bytes)?;
        return Ok(OwnedHead {
            timestamp: e.timestamp,
            event_type: e.event_type,
            channel: e.channel,
            correlation_id: e.correlation_id,
        });
    }
    let (_, h) = head(&mut Reader { id, bytes, at: 0 })?;
    Ok(OwnedHead {
        timestamp: h.timestamp,
        event_type: h.event_type.to_owned(),
        channel: h.channel.to_owned(),
        correlation_id: h.correlation_id.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typical() -> EventRecord {
        EventRecord {
            id: 7,
            event_type: "task_completed".into(),
            payload: "x".repeat(60),
            session_id: "0b0e5f9e-6a55-4c1b-9d2e-3f6c1a2b7c8d".into(),
            timestamp: 1_780_000_000_000_000,
            channel: "repo:agent-event-bus".into(),
            correlation_id: None,
            signal_level: None,
            title: None,
            tags: None,
        }
    }

    #[test]
    fn round_trips_every_field_and_reads_the_head_alone() {
        let full = EventRecord {
            correlation_id: Some("req-1".into()),
            signal_level: Some("urgent?".into()),
            title: Some("Done ✓".into()),
            tags: Some(vec!["a".into(), String::new(), "c".repeat(300)]),
            payload: "p".repeat(70_000),
            ..typical()
        };
        for e in [typical(), full] {
            let bytes = encode_event(&e);
            assert_eq!(decode_event(7, &bytes).unwrap(), e);
            let h = decode_head(7, &bytes).unwrap();
            assert_eq!(
                (h.channel.as_str(), h.correlation_id.as_deref()),
                (e.channel.as_str(), e.correlation_id.as_deref())
            );
        }
    }

    #[test]
    fn reads_json_rows_and_refuses_damaged_ones() {
        let e = typical();
        let json = serde_json::to_vec(&e).unwrap();
        assert_eq!(decode_event(7, &json).unwrap(), e);
        assert_eq!(decode_head(7, &json).unwrap().event_type, "task_completed");
        let bytes = encode_event(&e);
        let err = decode_event(7, &bytes[..bytes.len() - 1]).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        assert!(decode_event(7, &[9, 0]).is_err());
        assert!(decode_event(7, &[]).is_err());
    }

    #[test]
    fn a_typical_row_is_small() {
        let n = encode_event(&typical()).len();
        assert!(n < 150, "{n} bytes");
    }
}
