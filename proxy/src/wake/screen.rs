//! Reading a client's screen: where its input line is, whether it holds a
//! person's draft (dim placeholder text is not a draft), whether the client
//! is in a turn, and whether a given text shows above the input line. The
//! fallback when hooks do not say; pinned per client version by the fixture
//! tests. When the input line cannot be found, nothing is typed.

use super::mux::{Cell, Screen};

/// What the input line holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Nothing but the prompt (and placeholder text).
    Empty,
    /// Typed text: never submitted by the proxy unless it typed it.
    Draft(String),
    /// No input line on screen (a dialog, a pager, an unknown program).
    Unknown,
}

/// What a screen shows, as far as waking goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub input: Input,
    /// The client shows it is in a turn.
    pub busy: bool,
    /// Everything above the input line, compacted (see [`compact`]).
    pub above: String,
}

impl View {
    /// Whether `text` shows above the input line (its compact tail, so a
    /// wrapped or re-flowed line still matches).
    pub fn shows(&self, text: &str) -> bool {
        let tail = compact_tail(text);
        !tail.is_empty() && self.above.contains(&tail)
    }
}

/// The glyphs clients put before their input: `>` (Gemini CLI, Claude
/// Code's older box), `❯` (Claude Code), `›` (Codex).
const PROMPTS: [char; 3] = ['>', '❯', '›'];

/// Text shown while a client works on a turn (lower case): Claude Code's
/// and Codex's footer or status, Gemini CLI's spinner line.
const BUSY: [&str; 3] = ["esc to interrupt", "esc to cancel", "ctrl+c to interrupt"];

/// The glyphs of Claude Code's spinner line (`✶ Bloviating…`), shown while
/// a turn runs even when a draft hides the footer's hint.
const SPINNERS: [char; 6] = ['·', '✢', '✳', '✶', '✻', '✽'];

/// Whether `row` is a spinner line: a spinner glyph, a blank, and a word
/// ending in `…` (a finished turn's `✻ Brewed for 1s · done` has none).
fn spinner(row: &str) -> bool {
    let mut chars = row.trim_start().chars();
    matches!(chars.next(), Some(c) if SPINNERS.contains(&c))
        && chars.next() == Some(' ')
        && chars
            .as_str()
            .split_whitespace()
            .next()
            .is_some_and(|w| w.ends_with('…'))
}

/// Placeholder texts, for screens read without styles (zellij).
const PLACEHOLDERS: [&str; 12] = [
    "Type your message or @path/to/file",
    "Ask Codex to do anything",
    "Ask a follow-up question",
    "Find and fix a bug in @filename",
    "Explain this codebase",
    "Summarize recent commits",
    "Implement {feature}",
    "Improve documentation in @filename",
    "Write tests for @filename",
    "Run /review on my current changes",
    "Use /skills to list available skills",
    "Try \"",
];

/// Box-drawing borders around an input line.
fn is_border(c: char) -> bool {
    ('\u{2500}'..='\u{257F}').contains(&c)
}

/// Text with whitespace and box-drawing characters removed, so a line
/// wrapped inside a box compares equal to the line itself.
pub fn compact(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && !is_border(*c))
        .collect()
}

/// The last (at most) 48 characters of `text`, compacted.
fn compact_tail(text: &str) -> String {
    let all: Vec<char> = compact(text).chars().collect();
    all[all.len().saturating_sub(48)..].iter().collect()
}

/// Where a prompt row's input text starts: after leading blanks, a border,
/// and a prompt glyph followed by a blank (or the row's end).
fn input_start(row: &[Cell]) -> Option<(usize, bool)> {
    let mut i = 0;
    let mut boxed = false;
    while i < row.len() && (row[i].ch.is_whitespace() || is_border(row[i].ch)) {
        boxed |= is_border(row[i].ch);
        i += 1;
    }
    let glyph = row.get(i)?;
    if !PROMPTS.contains(&glyph.ch) {
        return None;
    }
    match row.get(i + 1) {
        None => Some((i + 1, boxed)),
        Some(next) if next.ch.is_whitespace() || next.inverse => Some((i + 1, boxed)),
        Some(_) => None,
    }
}

/// The typed (not placeholder) text of an input row from `start`.
fn typed(cells: &[Cell]) -> String {
    let mut out = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if cell.dim || is_border(cell.ch) {
            continue;
        }
        if cell.inverse {
            // A drawn cursor: its character is typed text unless dim
            // placeholder text follows it (the cursor sits on its first letter).
            let next = cells[i + 1..].iter().find(|c| !c.ch.is_whitespace());
            if cell.ch.is_whitespace() || next.is_some_and(|c| c.dim) {
                continue;
            }
        }
        out.push(cell.ch);
    }
    out.trim().to_owned()
}

/// Reads a screen. One set of rules serves every client: the fixture
/// tests pin it against each client version's real screens.
pub fn read(screen: &Screen) -> View {
    let busy = screen.rows.iter().any(|row| {
        let text: String = row.iter().map(|c| c.ch).collect();
        let lower = text.to_lowercase();
        BUSY.iter().any(|b| lower.contains(b)) || spinner(&text)
    });
    let found = screen
        .rows
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, row)| input_start(row).map(|(start, boxed)| (i, start, boxed)));
    let Some((row, start, boxed)) = found else {
        return View {
            input: Input::Unknown,
            busy,
            above: String::new(),
        };
    };
    let mut text = typed(&screen.rows[row][start..]);
    if boxed {
        // A boxed input continues on the rows inside the same box.
        for next in &screen.rows[row + 1..] {
            let first = next.iter().find(|c| !c.ch.is_whitespace());
            if first.is_none_or(|c| c.ch != '│' && c.ch != '┃') {
                break;
            }
            let more = typed(next);
            if !more.is_empty() {
                text.push(' ');
                text.push_str(&more);
            }
        }
    }
    let above = (0..row).map(|i| screen.row_text(i)).collect::<String>();
    let input = if text.is_empty() || placeholder(&text) {
        Input::Empty
    } else {
        Input::Draft(text)
    };
    View {
        input,
        busy,
        above: compact(&above),
    }
}

/// Whether unstyled `text` is one of the clients' placeholders.
fn placeholder(text: &str) -> bool {
    PLACEHOLDERS.iter().any(|p| {
        if p.ends_with('"') {
            text.starts_with(p)
        } else {
            text == *p
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(text: &str) -> View {
        read(&Screen::from_styled(text))
    }

    #[test]
    fn an_empty_prompt_is_empty_and_typed_text_a_draft() {
        assert_eq!(view("turn 1 done\n> ").input, Input::Empty);
        assert_eq!(view("> ").input, Input::Empty);
        assert_eq!(
            view("you: hi\n> half typed").input,
            Input::Draft("half typed".into())
        );
        assert_eq!(view("$ ls\nfoo").input, Input::Unknown);
    }

    #[test]
    fn dim_placeholders_and_drawn_cursors_are_not_drafts() {
        let codex =
            "\x1b[1m›\x1b[0m \x1b[2mAsk Codex to do anything\x1b[0m\n\n  \x1b[2m⏎ send\x1b[0m";
        assert_eq!(view(codex).input, Input::Empty);
        let claude = "╭────╮\n│ > \x1b[7mT\x1b[0m\x1b[2mry \"fix lint errors\"\x1b[0m │\n╰────╯";
        assert_eq!(view(claude).input, Input::Empty);
        let drafted = "│ > fix th\x1b[7m \x1b[0m │";
        assert_eq!(view(drafted).input, Input::Draft("fix th".into()));
        let one = "❯ \x1b[7ma\x1b[0m";
        assert_eq!(view(one).input, Input::Draft("a".into()));
        // Unstyled (zellij) placeholder text is known by its words.
        assert_eq!(
            view("> Type your message or @path/to/file").input,
            Input::Empty
        );
    }

    #[test]
    fn the_bottom_prompt_is_the_input_and_dialogs_hold() {
        let v = view("> earlier question\nanswer\n> ");
        assert_eq!(v.input, Input::Empty);
        assert!(v.shows("earlier question"));
        assert!(!v.shows("something else"));
        let dialog = "Do you want to proceed?\n❯ 1. Yes\n  2. No";
        assert_eq!(view(dialog).input, Input::Draft("1. Yes".into()));
        let boxed = "│ > first line        │\n│   second line       │\n╰─────────────────────╯";
        assert_eq!(
            view(boxed).input,
            Input::Draft("first line second line".into())
        );
    }

    /// The pinned clients' real screens (`tests/clients/screens/`), each in
    /// a known state: a new client version that moves a marker fails here.
    #[test]
    fn the_pinned_clients_screens_read_as_their_state() {
        macro_rules! screens {
            ($($client:literal: $($state:literal),*;)*) => {
                [$($(($client, $state, include_str!(concat!(
                    "../../../tests/clients/screens/", $client, "/", $state, ".txt"
                )))),*),*]
            };
        }
        let all = screens! {
            "claude-code@2.1.332": "idle", "draft", "busy", "busy-draft", "after-turn", "inbox", "inbox-held";
            "codex@0.171.0": "idle", "draft", "busy", "busy-draft", "after-turn";
            "gemini@0.61.0": "idle", "draft", "busy", "busy-draft", "after-turn";
        };
        let draft = Input::Draft("half typed draft".into());
        for (client, state, text) in all {
            let v = view(text);
            let (input, busy) = match state {
                "draft" => (&draft, false),
                "busy" => (&Input::Empty, true),
                "busy-draft" => (&draft, true),
                _ => (&Input::Empty, false),
            };
            assert_eq!(
                (&v.input, v.busy),
                (input, busy),
                "{client} {state}:\n{text}"
            );
            if state == "inbox" {
                assert!(v.shows("inbox-screen-marker"), "{client} {state}");
            }
        }
    }

    #[test]
    fn busy_markers_and_wrapped_text() {
        assert!(view("✶ Bloviating…\n  ⎿  Tip: x\n❯ draft").busy);
        assert!(!view("✻ Brewed for 0s · done 4:00 PM\n❯").busy);
        assert!(view("✻ Thinking… (esc to interrupt)\n> ").busy);
        assert!(view("• Working (3s • Esc to interrupt)\n› ").busy);
        assert!(!view("> ").busy);
        let wrapped = "> [agent-event-bus] a message from \"alice\" (event 42) - r\nead it with get_events\n> ";
        assert!(view(wrapped).shows(
            "[agent-event-bus] a message from \"alice\" (event 42) - read it with get_events"
        ));
    }
}
