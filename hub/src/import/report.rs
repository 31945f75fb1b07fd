//! What an import tells its user: the progress meter on stderr while events
//! are copied, and the summary printed at the end.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What one kind of row did that the summary reports: how many, and a few ids.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub count: u64,
    pub examples: Vec<String>,
}

impl Tally {
    pub fn add(&mut self, id: impl fmt::Display) {
        self.count += 1;
        if self.examples.len() < 3 {
            self.examples.push(id.to_string());
        }
    }
}

/// What an import brought over.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub source: PathBuf,
    pub target: PathBuf,
    /// The original's `schema_version` (`None` before it had that table).
    pub version: Option<i64>,
    pub events: u64,
    pub first_event: Option<u64>,
    pub last_event: Option<u64>,
    pub next_event_id: u64,
    pub sessions_live: u64,
    pub sessions_ended: u64,
    pub webhooks_active: u64,
    pub webhooks_paused: u64,
    pub next_webhook_id: u64,
    /// Rows left out, by why.
    pub skipped: BTreeMap<String, Tally>,
    /// Rows brought over with a value adjusted, by what.
    pub adjusted: BTreeMap<String, Tally>,
    /// Whole parts not brought over, and why.
    pub notes: Vec<String>,
    /// Whether a store with data was replaced (`--force`).
    pub replaced: bool,
}

/// Progress on stderr: one line redrawn every half second on a terminal; a
/// line per tenth of the events otherwise, and only for large databases.
pub(super) struct Meter {
    enabled: bool,
    tty: bool,
    range: Option<(i64, i64)>,
    started: Instant,
    last_shown: Instant,
    last_tenth: i64,
    done: u64,
}

/// Fewer events than this get no progress lines when stderr is not a terminal.
const LARGE: i64 = 100_000;

impl Meter {
    pub(super) fn new(enabled: bool, range: Option<(i64, i64)>) -> Self {
        let now = Instant::now();
        Self {
            enabled: enabled && range.is_some(),
            tty: std::io::stderr().is_terminal(),
            range,
            started: now,
            last_shown: now,
            last_tenth: 0,
            done: 0,
        }
    }

    fn fraction(&self, id: u64) -> f64 {
        let Some((lo, hi)) = self.range else {
            return 1.0;
        };
        if hi <= lo {
            return 1.0;
        }
        ((id as f64 - lo as f64) / (hi - lo) as f64).clamp(0.0, 1.0)
    }

    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "the fraction is clamped to 0..=1: the bar and the tenth are small and not negative"
    )]
    pub(super) fn advance(&mut self, last_id: u64, n: u64) {
        self.done += n;
        if !self.enabled {
            return;
        }
        let fraction = self.fraction(last_id);
        let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let line = format!(
            "importing events: {:>3.0}%  {} events  {:.0}/s",
            fraction * 100.0,
            grouped(self.done),
            rate
        );
        if self.tty {
            if self.last_shown.elapsed() >= Duration::from_millis(500) {
                self.last_shown = Instant::now();
                let width: u8 = 30;
                let filled = (fraction * f64::from(width)) as usize;
                let bar = format!(
                    "[{}{}]",
                    "#".repeat(filled),
                    " ".repeat(usize::from(width) - filled.min(usize::from(width)))
                );
                let _ = write!(std::io::stderr(), "\r{bar} {line}");
            }
        } else {
            let large = self.range.is_some_and(|(lo, hi)| hi - lo >= LARGE);
            let tenth = (fraction * 10.0) as i64;
            if large && tenth > self.last_tenth {
                self.last_tenth = tenth;
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }

    pub(super) fn finish(&self, events: u64) {
        if self.enabled && self.tty && self.started.elapsed() >= Duration::from_millis(500) {
            let _ = writeln!(
                std::io::stderr(),
                "\rimported {} events in {:.1}s{}",
                grouped(events),
                self.started.elapsed().as_secs_f64(),
                " ".repeat(40)
            );
        }
    }
}

/// `1234567` as `1,234,567`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = self.version.map_or_else(
            || "no schema version: the earliest schema".to_owned(),
            |v| format!("schema version {v}"),
        );
        writeln!(
            f,
            "Imported {} ({version}) into {}{}",
            self.source.display(),
            self.target.display(),
            if self.replaced {
                " (replacing what it held)"
            } else {
                ""
            }
        )?;
        match (self.first_event, self.last_event) {
            (Some(first), Some(last)) => writeln!(
                f,
                "  events:   {} (ids {first} to {last}); the next published event gets id {}",
                grouped(self.events),
                self.next_event_id
            )?,
            _ => writeln!(
                f,
                "  events:   none; the next published event gets id {}",
                self.next_event_id
            )?,
        }
        writeln!(
            f,
            "  sessions: {} ({} live, {} ended)",
            grouped(self.sessions_live + self.sessions_ended),
            self.sessions_live,
            self.sessions_ended
        )?;
        writeln!(
            f,
            "  webhooks: {} ({} active, {} paused); the next registered gets id {}",
            self.webhooks_active + self.webhooks_paused,
            self.webhooks_active,
            self.webhooks_paused,
            self.next_webhook_id
        )?;
        if self.skipped.is_empty() {
            writeln!(f, "  skipped:  nothing")?;
        } else {
            writeln!(f, "  skipped:")?;
            for (why, t) in &self.skipped {
                writeln!(f, "    {} {why} (e.g. {})", t.count, t.examples.join(", "))?;
            }
        }
        for (what, t) in &self.adjusted {
            writeln!(
                f,
                "  adjusted: {} {what} (e.g. {})",
                t.count,
                t.examples.join(", ")
            )?;
        }
        for note in &self.notes {
            writeln!(f, "  note:     {note}")?;
        }
        write!(
            f,
            "Live sessions come back without a lease and end after the idle timeout unless \
             they call in; hooks keep their cursors and ids."
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
