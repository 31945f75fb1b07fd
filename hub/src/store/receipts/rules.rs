//! The rules of a receipt, apart from storage: a status moves forward only,
//! each step is recorded once (by the first path that made it), and a hold
//! shows only while the status is below `delivered`.

use shared::tools::receipts::{Path, Status};

/// A step made: when (epoch ms) and by what (unknown for rows of the older
/// form, whose reads were not told apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepMark {
    pub at: i64,
    pub path: Option<Path>,
}

/// Why a wake waits, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub at: i64,
    pub path: Path,
    pub reason: String,
}

/// What the hub knows of one direct message's progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    pub offered: Option<StepMark>,
    pub delivered: Option<StepMark>,
    pub read: Option<StepMark>,
    /// Kept only while the status is below `delivered`.
    pub held: Option<Hold>,
}

/// A change reported for a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Offered(Path),
    Delivered(Path),
    Read(Path),
    Held { path: Path, reason: String },
}

impl Receipt {
    /// A row of the older form: pushed (offered by channel) and read, in
    /// epoch ms, 0 for not yet.
    pub fn from_old(pushed_ms: u64, read_ms: u64) -> Self {
        let mark = |ms: u64, path| {
            (ms > 0).then(|| StepMark {
                at: i64::try_from(ms).unwrap_or(i64::MAX),
                path,
            })
        };
        Self {
            offered: mark(pushed_ms, Some(Path::Channel)),
            delivered: None,
            read: mark(read_ms, None),
            held: None,
        }
    }

    /// How far it got: the highest step made.
    pub fn status(&self) -> Status {
        if self.read.is_some() {
            Status::Read
        } else if self.delivered.is_some() {
            Status::Delivered
        } else if self.offered.is_some() {
            Status::Offered
        } else {
            Status::Stored
        }
    }

    /// The hold, while it applies.
    pub fn hold(&self) -> Option<&Hold> {
        self.held
            .as_ref()
            .filter(|_| self.status() < Status::Delivered)
    }

    /// Applies `change` at `now_ms`; whether anything changed. A step at or
    /// below the status changes nothing; a step clears a hold on its own
    /// path (that path is no longer waiting), and `delivered` any hold. A
    /// hold never moves the status, and a repeat of the current hold keeps
    /// its time.
    pub fn apply(&mut self, change: &Change, now_ms: i64) -> bool {
        let (step, path) = match change {
            Change::Offered(p) => (Status::Offered, *p),
            Change::Delivered(p) => (Status::Delivered, *p),
            Change::Read(p) => (Status::Read, *p),
            Change::Held { path, reason } => {
                if self.status() >= Status::Delivered
                    || self
                        .held
                        .as_ref()
                        .is_some_and(|h| h.path == *path && h.reason == *reason)
                {
                    return false;
                }
                self.held = Some(Hold {
                    at: now_ms,
                    path: *path,
                    reason: reason.clone(),
                });
                return true;
            }
        };
        if step <= self.status() {
            return false;
        }
        let mark = Some(StepMark {
            at: now_ms,
            path: Some(path),
        });
        match step {
            Status::Offered => self.offered = mark,
            Status::Delivered => self.delivered = mark,
            Status::Read | Status::Stored => self.read = mark,
        }
        if step >= Status::Delivered || self.held.as_ref().is_some_and(|h| h.path == path) {
            self.held = None;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(path: Path, reason: &str) -> Change {
        Change::Held {
            path,
            reason: reason.to_owned(),
        }
    }

    #[test]
    fn a_status_only_moves_forward_and_each_step_keeps_its_first_path() {
        let mut r = Receipt::default();
        assert_eq!(r.status(), Status::Stored);
        assert!(r.apply(&Change::Offered(Path::Channel), 1));
        assert!(!r.apply(&Change::Offered(Path::Notice), 2));
        assert_eq!(r.offered.unwrap().path, Some(Path::Channel));
        assert!(r.apply(&Change::Read(Path::Reply), 3));
        assert_eq!(r.status(), Status::Read);
        assert!(!r.apply(&Change::Delivered(Path::Hook), 4), "never back");
        assert!(!r.apply(&Change::Read(Path::Ack), 5));
        assert_eq!(r.delivered, None);
        assert_eq!(
            r.read,
            Some(StepMark {
                at: 3,
                path: Some(Path::Reply)
            })
        );
    }

    #[test]
    fn a_hold_shows_below_delivered_and_never_moves_the_status() {
        let mut r = Receipt::default();
        assert!(r.apply(&held(Path::Pane, "draft"), 1));
        assert_eq!(r.status(), Status::Stored);
        assert!(
            !r.apply(&held(Path::Pane, "draft"), 2),
            "a repeat keeps its time"
        );
        assert_eq!(r.hold().unwrap().at, 1);
        assert!(r.apply(&Change::Offered(Path::Channel), 3));
        assert_eq!(r.hold().unwrap().path, Path::Pane, "another path's offer");
        assert!(r.apply(&held(Path::Inbox, "held by settings"), 4));
        assert!(r.apply(&Change::Delivered(Path::Tool), 5));
        assert_eq!(r.hold(), None);
        assert!(!r.apply(&held(Path::Pane, "draft"), 6), "too late to hold");
        assert_eq!(r.status(), Status::Delivered);
    }

    #[test]
    fn an_offer_on_the_held_path_ends_its_hold() {
        let mut r = Receipt::default();
        r.apply(&held(Path::Pane, "draft"), 1);
        assert!(r.apply(&Change::Offered(Path::Pane), 2));
        assert_eq!(r.hold(), None);
    }

    #[test]
    fn old_rows_read_pushed_as_offered_by_channel() {
        assert_eq!(Receipt::from_old(0, 0), Receipt::default());
        let r = Receipt::from_old(5, 0);
        assert_eq!(r.status(), Status::Offered);
        assert_eq!(r.offered.unwrap().path, Some(Path::Channel));
        let r = Receipt::from_old(5, 9);
        assert_eq!(r.status(), Status::Read);
        assert_eq!(r.read.unwrap().path, None);
    }
}
