//! `install-hook`: merges the wake-up hook — a `Stop` hook with
//! `asyncRewake` that runs `wait` — into Claude Code's settings file,
//! idempotently: an entry with the same command is updated in place, every
//! other setting and hook is kept, and an unchanged file is not rewritten.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

use crate::commands::setup::merge::{self, Change};
use crate::output::line;

#[derive(Debug, Args)]
#[expect(
    clippy::doc_markdown,
    reason = "the doc comments are the --help text, written for a terminal"
)]
pub(crate) struct InstallHookArgs {
    /// The hook command (e.g. /path/to/agent-event-bus/examples/hooks/stop-wait.sh)
    #[arg(long)]
    command: String,
    /// Claude Code settings file [default: $CLAUDE_CONFIG_DIR/settings.json, else ~/.claude/settings.json]
    #[arg(long, value_name = "PATH")]
    settings: Option<PathBuf>,
    /// Hook timeout in seconds (stop-wait.sh gives up a minute before it)
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    timeout: u64,
}

/// `install-hook`: one line saying what changed.
pub(crate) fn install_hook(args: InstallHookArgs) -> Result<ExitCode> {
    let path = match args.settings {
        Some(path) => path,
        None => default_settings()?,
    };
    let current = match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().is_empty() => json!({}),
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON; fix it first", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let (merged, change) = merge_stop_hook(current, &args.command, args.timeout)?;
    let shown = path.display();
    match change {
        Change::Unchanged => {
            line(&format!(
                "The wake-up hook is already in {shown}; nothing changed"
            ))?;
        }
        Change::Added | Change::Updated => {
            write(&path, &merged)?;
            let verb = if change == Change::Added {
                "Added"
            } else {
                "Updated"
            };
            line(&format!(
                "{verb} the wake-up hook (Stop, asyncRewake) in {shown}: {}",
                args.command
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn default_settings() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("settings.json"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("HOME is not set; pass --settings")?;
    Ok(PathBuf::from(home).join(".claude").join("settings.json"))
}

/// Writes the settings through a temporary file, so a crash never leaves
/// half a file.
fn write(path: &Path, settings: &Value) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut text = serde_json::to_string_pretty(settings).context("settings serialize")?;
    text.push('\n');
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

/// `settings` with the `Stop` hook `{type: command, command, asyncRewake:
/// true, timeout}` in it (an entry with the same command is updated).
pub(crate) fn merge_stop_hook(
    mut settings: Value,
    command: &str,
    timeout: u64,
) -> Result<(Value, Change)> {
    if !settings.is_object() {
        bail!("the settings file is not a JSON object");
    }
    let hooks = merge::object_at(&mut settings, &["hooks"])?;
    let wanted = json!({
        "type": "command",
        "command": command,
        "asyncRewake": true,
        "timeout": timeout,
    });
    let wanted = wanted.as_object().cloned().unwrap_or_default();
    let change = merge::merge_hook(hooks, "Stop", &wanted, |c| c == command)?;
    Ok((settings, change))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_once_and_keeps_everything_else() {
        let before = json!({
            "model": "opus",
            "hooks": {
                "SessionStart": [{"hooks": [{"type": "command", "command": "start.sh"}]}],
                "Stop": [{"matcher": "", "hooks": [{"type": "command", "command": "other.sh"}]}],
            },
        });
        let (after, change) = merge_stop_hook(before.clone(), "/h/stop-wait.sh", 3600).unwrap();
        assert_eq!(change, Change::Added);
        assert_eq!(after["model"], "opus");
        assert_eq!(
            after["hooks"]["SessionStart"],
            before["hooks"]["SessionStart"]
        );
        let stop = after["hooks"]["Stop"].as_array().unwrap();
        assert_eq!(stop.len(), 2);
        assert_eq!(stop[0], before["hooks"]["Stop"][0]);
        assert_eq!(
            stop[1],
            json!({"hooks": [{"type": "command", "command": "/h/stop-wait.sh", "asyncRewake": true, "timeout": 3600}]})
        );
        let (again, change) = merge_stop_hook(after.clone(), "/h/stop-wait.sh", 3600).unwrap();
        assert_eq!(change, Change::Unchanged);
        assert_eq!(again, after);
        let (longer, change) = merge_stop_hook(after, "/h/stop-wait.sh", 7200).unwrap();
        assert_eq!(change, Change::Updated);
        assert_eq!(longer["hooks"]["Stop"][1]["hooks"][0]["timeout"], 7200);
    }

    #[test]
    fn starts_from_nothing_and_refuses_odd_shapes() {
        let (s, change) = merge_stop_hook(json!({}), "w", 60).unwrap();
        assert_eq!(change, Change::Added);
        assert_eq!(s["hooks"]["Stop"][0]["hooks"][0]["asyncRewake"], true);
        assert!(merge_stop_hook(json!([]), "w", 60).is_err());
        assert!(merge_stop_hook(json!({"hooks": {"Stop": {}}}), "w", 60).is_err());
    }
}
