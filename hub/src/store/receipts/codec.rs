//! The stored form of a receipt:
//!
//! ```text
//! 0x01 | offered_at u64 | offered_path u8 | delivered_at u64 | delivered_path u8
//!      | read_at u64 | read_path u8 [ | held_at u64 | held_path u8 | reason (UTF-8, to the end) ]
//! ```
//! Times are epoch ms little-endian, 0 for a step not made; a path is its
//! code below, 0 for unknown. The first byte is the form's version.

use shared::tools::receipts::Path;

use super::rules::{Hold, Receipt, StepMark};

const FORM: u8 = 1;
const STEP_LEN: usize = 9;
const FIXED_LEN: usize = 1 + 3 * STEP_LEN;

/// A path's stored code: fixed for ever (never derived from an order).
fn code(path: Path) -> u8 {
    match path {
        Path::Channel => 1,
        Path::Inbox => 2,
        Path::Pane => 3,
        Path::Notice => 4,
        Path::Hook => 5,
        Path::Prompt => 6,
        Path::Tool => 7,
        Path::Resume => 8,
        Path::Ack => 9,
        Path::Reply => 10,
    }
}

fn path_of(code: u8) -> Option<Path> {
    Path::ALL.into_iter().find(|p| self::code(*p) == code)
}

fn put_step(out: &mut Vec<u8>, at: i64, path: u8) {
    out.extend_from_slice(&u64::try_from(at).unwrap_or(0).to_le_bytes());
    out.push(path);
}

fn put_mark(out: &mut Vec<u8>, mark: Option<StepMark>) {
    match mark {
        Some(m) => put_step(out, m.at.max(1), m.path.map_or(0, code)),
        None => put_step(out, 0, 0),
    }
}

pub(super) fn encode(r: &Receipt) -> Vec<u8> {
    let hold = r.hold();
    let mut out = Vec::with_capacity(FIXED_LEN + hold.map_or(0, |h| STEP_LEN + h.reason.len()));
    out.push(FORM);
    for mark in [r.offered, r.delivered, r.read] {
        put_mark(&mut out, mark);
    }
    if let Some(h) = hold {
        put_step(&mut out, h.at.max(1), code(h.path));
        out.extend_from_slice(h.reason.as_bytes());
    }
    out
}

/// (time, path code) at `bytes[at..]`.
fn step(bytes: &[u8], at: usize) -> Option<(i64, u8)> {
    let ms = u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?);
    Some((i64::try_from(ms).ok()?, *bytes.get(at + 8)?))
}

/// The step at `bytes[at..]`, which [`decode`] has checked is there.
fn mark(bytes: &[u8], at: usize) -> Option<StepMark> {
    let (ms, code) = step(bytes, at)?;
    (ms > 0).then(|| StepMark {
        at: ms,
        path: path_of(code),
    })
}

/// `None`: not a receipt of a form this hub knows.
pub(super) fn decode(bytes: &[u8]) -> Option<Receipt> {
    if bytes.first() != Some(&FORM) || bytes.len() < FIXED_LEN {
        return None;
    }
    let held = match bytes.get(FIXED_LEN..) {
        Some(rest) if !rest.is_empty() => {
            let (at, code) = step(bytes, FIXED_LEN)?;
            let reason = std::str::from_utf8(rest.get(STEP_LEN..)?).ok()?;
            Some(Hold {
                at,
                path: path_of(code)?,
                reason: reason.to_owned(),
            })
        }
        _ => None,
    };
    Some(Receipt {
        offered: mark(bytes, 1),
        delivered: mark(bytes, 1 + STEP_LEN),
        read: mark(bytes, 1 + 2 * STEP_LEN),
        held,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_round_trip() {
        let full = Receipt {
            offered: Some(StepMark {
                at: 1_700_000_000_001,
                path: Some(Path::Inbox),
            }),
            delivered: None,
            read: None,
            held: Some(Hold {
                at: 1_700_000_000_002,
                path: Path::Pane,
                reason: "a draft — in the input line".into(),
            }),
        };
        let unknown_read = Receipt {
            read: Some(StepMark { at: 7, path: None }),
            ..Receipt::default()
        };
        for r in [Receipt::default(), full, unknown_read] {
            let bytes = encode(&r);
            assert_eq!(decode(&bytes), Some(r.clone()), "{bytes:?}");
        }
        for p in Path::ALL {
            assert_eq!(path_of(code(p)), Some(p));
        }
        assert_eq!(decode(&[2; FIXED_LEN]), None, "an unknown form");
        assert_eq!(decode(&[FORM, 0]), None, "cut short");
    }

    #[test]
    fn a_hold_past_delivered_is_not_stored() {
        let r = Receipt {
            delivered: Some(StepMark {
                at: 3,
                path: Some(Path::Hook),
            }),
            held: Some(Hold {
                at: 1,
                path: Path::Pane,
                reason: "draft".into(),
            }),
            ..Receipt::default()
        };
        assert_eq!(encode(&r).len(), FIXED_LEN);
    }
}
