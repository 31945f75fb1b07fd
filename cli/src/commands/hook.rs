//! `hook <name>`: what a client's hook runs, so hook entries name no paths
//! (`setup` writes them, the Claude Code plugin ships them). The recipes of
//! `examples/hooks/` are built in and run with bash; the turn-state hooks
//! run `wake-state`. Only `stop-wait` ever exits 2 (it wakes the agent): a
//! hook that failed must never block a prompt or keep a turn going, so
//! every other outcome, usage errors included, exits 0 or 1.

use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use crate::output::note;

/// The shared part of the recipes, which each sources from beside itself.
const COMMON: &str = include_str!("../../../examples/hooks/common.sh");
/// The line by which a recipe sources [`COMMON`].
const SOURCE_COMMON: &str = ". \"$(dirname \"$0\")/common.sh\"";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[expect(
    clippy::doc_markdown,
    reason = "the doc comments are the --help text, written for a terminal"
)]
pub(crate) enum Recipe {
    /// A turn started: `wake-state busy` (UserPromptSubmit, BeforeAgent)
    Busy,
    /// A turn ended: `wake-state idle` (Stop, AfterAgent, Codex's notify)
    Idle,
    /// Waits for a direct message and exits 2 with it (Stop with asyncRewake)
    StopWait,
    /// Adds the direct messages that arrived since the last prompt (UserPromptSubmit)
    UserPromptSubmit,
}

impl Recipe {
    /// The name in `hook <name>` (and in the recipes' file names).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Busy => "busy",
            Self::Idle => "idle",
            Self::StopWait => "stop-wait",
            Self::UserPromptSubmit => "user-prompt-submit",
        }
    }

    /// The built-in script, for the recipes that are scripts.
    fn script(self) -> Option<&'static str> {
        match self {
            Self::StopWait => Some(include_str!("../../../examples/hooks/stop-wait.sh")),
            Self::UserPromptSubmit => Some(include_str!(
                "../../../examples/hooks/user-prompt-submit.sh"
            )),
            Self::Busy | Self::Idle => None,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct HookArgs {
    /// Which hook
    #[arg(value_enum)]
    recipe: Recipe,
    /// Ignored: what a client adds (Codex's notify passes the turn as JSON)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

/// Runs the hook; its exit code is the recipe's (2 only from `stop-wait`).
pub(crate) fn hook(args: &HookArgs, url: &str) -> Result<ExitCode> {
    let me = std::env::current_exe().context("cannot find this program's path")?;
    let mut child = if let Some(script) = args.recipe.script() {
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(inline(script)).arg(args.recipe.name());
        cmd
    } else {
        let mut cmd = Command::new(&me);
        cmd.arg("wake-state").arg(args.recipe.name());
        cmd
    };
    // The recipes call this same program, at the hub this one was told.
    child
        .env("AGENT_EVENT_BUS_CLI", &me)
        .env(shared::config::ENV_URL, url)
        .stdin(Stdio::inherit());
    let status = match child.status() {
        Ok(status) => status,
        Err(e) => {
            note(&format!("agent-event-bus hook {}: {e}", args.recipe.name()));
            return Ok(ExitCode::from(1));
        }
    };
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(2) if args.recipe == Recipe::StopWait => ExitCode::from(2),
        _ => ExitCode::from(1),
    })
}

/// The recipe with the shared part in place of the line that sources it.
fn inline(script: &str) -> String {
    script.replacen(SOURCE_COMMON, COMMON, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_sources_the_shared_part_once() {
        for recipe in [Recipe::StopWait, Recipe::UserPromptSubmit] {
            let script = recipe.script().expect("a script");
            assert_eq!(
                script.matches(SOURCE_COMMON).count(),
                1,
                "{}",
                recipe.name()
            );
            let inlined = inline(script);
            assert!(!inlined.contains(SOURCE_COMMON));
            assert!(inlined.contains("read_input()"), "{}", recipe.name());
        }
    }
}
