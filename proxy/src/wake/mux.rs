//! Driving a terminal multiplexer from outside: list tmux panes with their
//! processes, read a pane's screen (with styles, so dim placeholder text
//! can be told from typed text), type text literally, press Enter, erase.
//! tmux is driven by its CLI (`tmux -S <socket> …`); zellij by
//! `zellij --session <name> action …` (untested here: no zellij binary).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use shared::wake::{Mux, PaneTarget};
use tokio::process::Command;

/// How long one multiplexer command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a multiplexer command failed.
#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    #[error("cannot run {0}: {1}")]
    Spawn(&'static str, std::io::Error),
    #[error("{0} took longer than {COMMAND_TIMEOUT:?}")]
    Timeout(&'static str),
    #[error("{program} failed: {stderr}")]
    Failed {
        program: &'static str,
        stderr: String,
    },
}

/// A pane as tmux lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaneInfo {
    pub pane: String,
    /// The process tmux started in the pane.
    pub pid: u32,
    /// The pane's terminal (`/dev/pts/N`).
    pub tty: String,
}

/// A pane's screen: rows as cells, so styles survive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Screen {
    pub rows: Vec<Vec<Cell>>,
}

/// One character on screen and the styles that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub ch: char,
    /// Faint or grey: placeholder and hint text.
    pub dim: bool,
    /// Reverse video: a TUI's own drawn cursor.
    pub inverse: bool,
}

impl Screen {
    /// Parses `capture-pane -e` output (SGR sequences kept), or plain text.
    pub fn from_styled(text: &str) -> Self {
        Self {
            rows: text.lines().map(styled_row).collect(),
        }
    }

    /// Row `i` as plain text.
    pub fn row_text(&self, i: usize) -> String {
        self.rows
            .get(i)
            .map(|r| r.iter().map(|c| c.ch).collect())
            .unwrap_or_default()
    }
}

/// One row of SGR-styled text as cells; other escape sequences are dropped.
fn styled_row(line: &str) -> Vec<Cell> {
    let mut cells = Vec::new();
    let (mut dim, mut inverse) = (false, false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            if !c.is_control() {
                cells.push(Cell {
                    ch: c,
                    dim,
                    inverse,
                });
            }
            continue;
        }
        if chars.peek() != Some(&'[') {
            chars.next();
            continue;
        }
        chars.next();
        let mut params = String::new();
        let mut fin = None;
        for p in chars.by_ref() {
            if ('@'..='~').contains(&p) {
                fin = Some(p);
                break;
            }
            params.push(p);
        }
        if fin == Some('m') {
            apply_sgr(&params, &mut dim, &mut inverse);
        }
    }
    cells
}

/// Applies one SGR parameter list to the two styles tracked.
fn apply_sgr(params: &str, dim: &mut bool, inverse: &mut bool) {
    let codes: Vec<u32> = if params.is_empty() {
        vec![0]
    } else {
        params
            .split([';', ':'])
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    let mut i = 0;
    while i < codes.len() {
        match codes[i] {
            0 => (*dim, *inverse) = (false, false),
            2 | 90 => *dim = true,
            7 => *inverse = true,
            27 => *inverse = false,
            22 | 39 | 30..=37 | 91..=97 => *dim = false,
            38 => {
                // 38;5;n or 38;2;r;g;b: grey counts as dim.
                match codes.get(i + 1) {
                    Some(5) => {
                        let n = codes.get(i + 2).copied().unwrap_or(0);
                        *dim = n == 8 || (236..=250).contains(&n);
                        i += 2;
                    }
                    Some(2) => {
                        let rgb = [i + 2, i + 3, i + 4].map(|k| codes.get(k).copied().unwrap_or(0));
                        let (lo, hi) = (rgb.iter().min().copied(), rgb.iter().max().copied());
                        *dim = matches!((lo, hi), (Some(lo), Some(hi)) if hi - lo <= 16 && (64..=176).contains(&hi));
                        i += 4;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// Runs one multiplexer command; its stdout.
async fn run(program: &'static str, args: &[&str]) -> Result<String, MuxError> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(COMMAND_TIMEOUT, out)
        .await
        .map_err(|_| MuxError::Timeout(program))?
        .map_err(|e| MuxError::Spawn(program, e))?;
    if !out.status.success() {
        return Err(MuxError::Failed {
            program,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `tmux [-S socket] <args>`.
async fn tmux(socket: Option<&str>, args: &[&str]) -> Result<String, MuxError> {
    let mut all = Vec::with_capacity(args.len() + 2);
    if let Some(socket) = socket {
        all.extend(["-S", socket]);
    }
    all.extend_from_slice(args);
    run("tmux", &all).await
}

/// `zellij --session <name> action <args>`.
async fn zellij(target: &PaneTarget, args: &[&str]) -> Result<String, MuxError> {
    let session = target.session.as_deref().unwrap_or_default();
    let mut all = vec!["--session", session, "action"];
    all.extend_from_slice(args);
    run("zellij", &all).await
}

/// Every pane of the tmux server at `socket` (the default one for `None`).
pub async fn tmux_panes(socket: Option<&str>) -> Result<Vec<PaneInfo>, MuxError> {
    let out = tmux(
        socket,
        &[
            "list-panes",
            "-a",
            "-F",
            "#{pane_id} #{pane_pid} #{pane_tty}",
        ],
    )
    .await?;
    Ok(parse_panes(&out))
}

fn parse_panes(out: &str) -> Vec<PaneInfo> {
    out.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some(PaneInfo {
                pane: fields.next()?.to_owned(),
                pid: fields.next()?.parse().ok()?,
                tty: fields.next()?.to_owned(),
            })
        })
        .collect()
}

/// The pane's visible screen.
pub async fn capture(target: &PaneTarget, scratch: &std::path::Path) -> Result<Screen, MuxError> {
    match target.mux {
        Mux::Tmux => {
            let out = tmux(
                target.socket.as_deref(),
                &["capture-pane", "-p", "-e", "-t", &target.pane],
            )
            .await?;
            Ok(Screen::from_styled(&out))
        }
        Mux::Zellij => {
            let file: PathBuf = scratch.join(format!("screen-{}.txt", std::process::id()));
            let path = file.to_string_lossy().into_owned();
            zellij(target, &["dump-screen", "-p", &target.pane, &path]).await?;
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let _ = std::fs::remove_file(&file);
            // dump-screen has no styles; plain text parses the same way.
            Ok(Screen::from_styled(&text))
        }
    }
}

/// Types `text` into the pane as keystrokes, literally (no key names).
pub async fn type_text(target: &PaneTarget, text: &str) -> Result<(), MuxError> {
    match target.mux {
        Mux::Tmux => {
            tmux(
                target.socket.as_deref(),
                &["send-keys", "-t", &target.pane, "-l", "--", text],
            )
            .await?;
        }
        Mux::Zellij => {
            zellij(target, &["write-chars", "-p", &target.pane, text]).await?;
        }
    }
    Ok(())
}

/// Presses Enter in the pane.
pub async fn press_enter(target: &PaneTarget) -> Result<(), MuxError> {
    match target.mux {
        Mux::Tmux => {
            tmux(
                target.socket.as_deref(),
                &["send-keys", "-t", &target.pane, "Enter"],
            )
            .await?;
        }
        Mux::Zellij => {
            zellij(target, &["write", "-p", &target.pane, "13"]).await?;
        }
    }
    Ok(())
}

/// Presses Backspace `count` times (to take back text the proxy typed).
pub async fn erase(target: &PaneTarget, count: usize) -> Result<(), MuxError> {
    if count == 0 {
        return Ok(());
    }
    match target.mux {
        Mux::Tmux => {
            let n = count.to_string();
            tmux(
                target.socket.as_deref(),
                &["send-keys", "-t", &target.pane, "-N", &n, "BSpace"],
            )
            .await?;
        }
        Mux::Zellij => {
            let keys = vec!["127"; count];
            let mut args = vec!["write", "-p", target.pane.as_str()];
            args.extend(keys);
            zellij(target, &args).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pane_lists_are_parsed() {
        let panes = parse_panes("%0 100 /dev/pts/1\n%12 2345 /dev/pts/7\nbad\n%3 x /dev/pts/2\n");
        assert_eq!(
            panes,
            [
                PaneInfo {
                    pane: "%0".into(),
                    pid: 100,
                    tty: "/dev/pts/1".into(),
                },
                PaneInfo {
                    pane: "%12".into(),
                    pid: 2345,
                    tty: "/dev/pts/7".into(),
                }
            ]
        );
    }

    #[test]
    fn styles_are_tracked_per_cell() {
        let screen =
            Screen::from_styled("> \x1b[7mT\x1b[27m\x1b[2mry it\x1b[0m x\n\x1b[90mhint\x1b[39m ok");
        let row = &screen.rows[0];
        assert_eq!(screen.row_text(0), "> Try it x");
        assert!(row[2].inverse && !row[2].dim);
        assert!(row[3].dim && !row[3].inverse);
        assert!(!row[9].dim, "reset ends the faint run");
        let hint = &screen.rows[1];
        assert!(hint[0].dim && !hint[5].dim);
        let grey = Screen::from_styled("\x1b[38;2;128;128;128mgrey\x1b[38;2;255;80;80mred");
        assert!(grey.rows[0][0].dim && !grey.rows[0][4].dim);
        let indexed = Screen::from_styled("\x1b[38;5;244mgrey\x1b[38;5;33mblue\x1b[m");
        assert!(indexed.rows[0][0].dim && !indexed.rows[0][4].dim);
    }
}
