//! The pane wake's steps on a proven pane: is the agent idle with an empty
//! input line; type the notice and see it on the input line; submit it; then
//! check it was taken — shown above the input line, and a turn started
//! (the client's hook wrote its state after the submit, or the screen shows
//! the client working). A notice still parked on the input line gets Enter
//! again (a client that took fast keys as a paste), a bounded number of times.

use std::path::Path;
use std::time::{Duration, Instant};

use shared::wake::{PaneTarget, Turn, WakeState};

use super::mux::{self, MuxError};
use super::screen::{self, Input, View, compact};

/// How long the typed notice may take to show on the input line.
const ECHO_WAIT: Duration = Duration::from_secs(3);
/// How long a submitted notice may take to be taken.
pub const TAKEN_WAIT: Duration = Duration::from_secs(15);
/// How often the screen is read while waiting.
const LOOK_EVERY: Duration = Duration::from_millis(100);
/// Enter presses for one notice, the first included.
const ENTERS_MAX: u32 = 3;
/// How long a parked notice waits before Enter is pressed again.
const REPRESS_AFTER: Duration = Duration::from_secs(1);

/// Whether the pane may be typed into now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    Yes,
    /// The agent is in a turn; try again later.
    Busy,
    /// Not now, for this reason (told in a `held` receipt).
    Held(String),
}

/// What typing the notice came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typed {
    /// On the input line and submitted.
    Submitted,
    /// Taken back (or never shown), for this reason.
    Abandoned(String),
}

pub const DRAFT: &str = "the input line holds a person's draft; the wake waits until it is empty";
pub const NO_INPUT: &str =
    "no input line on screen (a dialog, or a program the proxy does not know); the wake waits";

/// The pane's screen, read.
async fn look(target: &PaneTarget, scratch: &Path) -> Result<View, MuxError> {
    Ok(screen::read(&mux::capture(target, scratch).await?))
}

/// Whether the input line holds `line` (or the part of it that fits on
/// screen) and nothing else.
fn holds_ours(input: &Input, line: &str) -> bool {
    let Input::Draft(text) = input else {
        return false;
    };
    let (shown, ours) = (compact(text), compact(line));
    shown.chars().count() >= ours.chars().count().min(16) && ours.starts_with(&shown)
}

/// Whether the agent is idle (by its hooks' state, then its screen) and
/// its input line is empty.
pub async fn ready(
    target: &PaneTarget,
    scratch: &Path,
    turn: Option<WakeState>,
) -> Result<Ready, MuxError> {
    if turn.is_some_and(|t| t.turn == Turn::Busy) {
        return Ok(Ready::Busy);
    }
    let view = look(target, scratch).await?;
    if view.busy {
        return Ok(Ready::Busy);
    }
    Ok(match view.input {
        Input::Empty => Ready::Yes,
        Input::Draft(_) => Ready::Held(DRAFT.to_owned()),
        Input::Unknown => Ready::Held(NO_INPUT.to_owned()),
    })
}

/// Types `line`, waits to see it (alone) on the input line, and submits it.
pub async fn type_and_submit(
    target: &PaneTarget,
    scratch: &Path,
    line: &str,
) -> Result<Typed, MuxError> {
    mux::type_text(target, line).await?;
    let until = Instant::now() + ECHO_WAIT;
    loop {
        let view = look(target, scratch).await?;
        if holds_ours(&view.input, line) {
            break;
        }
        if let Input::Draft(text) = &view.input
            && !compact(line).starts_with(&compact(text))
        {
            // Someone typed at the same moment: take ours back if it is
            // the end of the line, and submit nothing.
            if compact(text).ends_with(&compact(line)) {
                mux::erase(target, line.chars().count()).await?;
            }
            return Ok(Typed::Abandoned(
                "the input line changed while the notice was typed; the wake waits".to_owned(),
            ));
        }
        if Instant::now() >= until {
            return Ok(Typed::Abandoned(
                "the typed notice did not show on the input line".to_owned(),
            ));
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
    mux::press_enter(target).await?;
    Ok(Typed::Submitted)
}

/// Whether a turn started after `since_ms` by the hooks' state file.
fn turn_since(state: Option<WakeState>, since_ms: i64) -> bool {
    state.is_some_and(|s| s.at_ms >= since_ms)
}

/// Watches the pane until `text` shows above the input line and, for a
/// notice we typed (`submitted`), the client has started a turn (by
/// `state()`, the hooks' file, or its screen); a typed notice also gets
/// Enter again while it stays parked on the input line. A line from Claude
/// Code's inbox shows above the input line only once it ran as a turn (a
/// held one shows as a short preview), and that turn may end between two
/// looks. Whether it was taken within [`TAKEN_WAIT`].
pub async fn taken(
    target: &PaneTarget,
    scratch: &Path,
    text: &str,
    submitted: bool,
    since_ms: i64,
    state: impl Fn() -> Option<WakeState>,
) -> bool {
    let start = Instant::now();
    let (mut enters, mut pressed) = (u32::from(submitted), start);
    let mut turned = false;
    while start.elapsed() < TAKEN_WAIT {
        let Ok(view) = look(target, scratch).await else {
            tokio::time::sleep(LOOK_EVERY).await;
            continue;
        };
        turned |= view.busy || turn_since(state(), since_ms);
        let parked = submitted && holds_ours(&view.input, text);
        if !parked && (turned || !submitted) && view.shows(text) {
            return true;
        }
        // A client that started its turn has taken the Enter, whatever
        // its screen still shows.
        if parked && !turned && enters < ENTERS_MAX && pressed.elapsed() >= REPRESS_AFTER {
            tracing::debug!("the notice is still on the input line; pressing Enter again");
            if mux::press_enter(target).await.is_err() {
                return false;
            }
            enters += 1;
            pressed = Instant::now();
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_line_is_recognised_even_when_cut_by_the_screen() {
        let line = "[agent-event-bus] direct message from \"a\" (event 4), from another session";
        assert!(holds_ours(&Input::Draft(line.into()), line));
        assert!(
            holds_ours(&Input::Draft(line[..30].into()), line),
            "wrapped"
        );
        assert!(
            !holds_ours(&Input::Draft("[agent".into()), line),
            "too little to tell"
        );
        assert!(!holds_ours(&Input::Draft(format!("hi {line}")), line));
        assert!(!holds_ours(&Input::Empty, line));
    }

    #[test]
    fn only_hook_states_written_after_the_submit_count() {
        let at = |ms| {
            Some(WakeState {
                turn: Turn::Idle,
                at_ms: ms,
            })
        };
        assert!(turn_since(at(100), 100));
        assert!(!turn_since(at(99), 100));
        assert!(!turn_since(None, 100));
    }
}
