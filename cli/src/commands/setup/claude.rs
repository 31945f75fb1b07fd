//! Claude Code: the MCP server at user scope in `~/.claude.json` (what
//! `claude mcp add --scope user` writes), and in `~/.claude/settings.json`
//! (both under `$CLAUDE_CONFIG_DIR` when it is set) the hooks:
//! `UserPromptSubmit` → `hook busy` and `hook user-prompt-submit` (the
//! direct messages since the last prompt, as context); `Stop` → `hook idle`
//! and `hook stop-wait` with `asyncRewake` (wakes the idle agent when a
//! direct message arrives).

use std::path::PathBuf;

use anyhow::Result;
use serde_json::{Map, Value, json};

use super::merge::{self, Change};
use super::{Context, Edit, SERVER, is_ours, read};
use crate::commands::hook::Recipe;

/// The hooks: event, recipe, and the entry's other keys.
fn wanted_hooks() -> [(&'static str, Recipe, Value); 4] {
    [
        ("UserPromptSubmit", Recipe::Busy, json!({"timeout": 5})),
        (
            "UserPromptSubmit",
            Recipe::UserPromptSubmit,
            json!({"timeout": 10}),
        ),
        ("Stop", Recipe::Idle, json!({"timeout": 5})),
        // The wait gives up a minute before the hook's timeout.
        (
            "Stop",
            Recipe::StopWait,
            json!({"asyncRewake": true, "timeout": 3600}),
        ),
    ]
}

fn paths(ctx: &Context) -> (PathBuf, PathBuf) {
    match std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            (dir.join(".claude.json"), dir.join("settings.json"))
        }
        None => (
            ctx.home.join(".claude.json"),
            ctx.home.join(".claude").join("settings.json"),
        ),
    }
}

pub(super) fn plan(ctx: &Context) -> Result<Vec<Edit>> {
    let (config, settings) = paths(ctx);
    Ok(vec![server(ctx, config)?, hook_entries(ctx, settings)?])
}

/// The proxy as a stdio server; an HTTP entry of the same name (the Python
/// original's) becomes a stdio one.
fn server(ctx: &Context, path: PathBuf) -> Result<Edit> {
    let what = ctx.shown(&path);
    let mut root = merge::parse(read(&path)?.as_deref(), &what)?;
    let servers = merge::object_at(&mut root, &["mcpServers"])?;
    let mut wanted = Map::new();
    wanted.insert("type".into(), json!("stdio"));
    wanted.insert("command".into(), json!(ctx.proxy.display().to_string()));
    wanted.insert("args".into(), json!([]));
    let env = ctx.server_env();
    if !env.is_empty() {
        wanted.insert("env".into(), Value::Object(env));
    }
    let mut change = merge::merge_server(servers, SERVER, &wanted);
    if let Some(entry) = servers.get_mut(SERVER).and_then(Value::as_object_mut) {
        for stale in ["url", "headers"] {
            if entry.remove(stale).is_some() {
                change = Change::Updated;
            }
        }
    }
    let changes = change
        .verb()
        .map(|verb| format!("{verb} the MCP server {SERVER} ({})", ctx.proxy.display()))
        .into_iter()
        .collect();
    Ok(Edit {
        path,
        text: merge::render(&root),
        changes,
    })
}

fn hook_entries(ctx: &Context, path: PathBuf) -> Result<Edit> {
    let what = ctx.shown(&path);
    let mut root = merge::parse(read(&path)?.as_deref(), &what)?;
    let hooks = merge::object_at(&mut root, &["hooks"])?;
    let mut changes = Vec::new();
    for (event, recipe, extra) in wanted_hooks() {
        let mut wanted = Map::new();
        wanted.insert("type".into(), json!("command"));
        wanted.insert("command".into(), json!(ctx.hook_command(recipe)));
        if let Value::Object(extra) = extra {
            wanted.extend(extra);
        }
        let change = merge::merge_hook(hooks, event, &wanted, |c| is_ours(c, recipe))?;
        if let Some(verb) = change.verb() {
            changes.push(format!(
                "{verb} the {event} hook `{}`",
                ctx.hook_command(recipe)
            ));
        }
    }
    Ok(Edit {
        path,
        text: merge::render(&root),
        changes,
    })
}
