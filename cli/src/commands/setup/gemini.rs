//! Gemini CLI: in `~/.gemini/settings.json`, the MCP server (trusted, as
//! `gemini mcp add --trust` writes it, so its tools run without a
//! confirmation each) and the hooks `BeforeAgent` → `hook busy`,
//! `AfterAgent` → `hook idle`. Gemini CLI starts MCP servers only in folders
//! the user trusts; that stays the user's choice.

use anyhow::Result;
use serde_json::{Map, Value, json};

use super::merge;
use super::{Context, Edit, SERVER, is_ours, read};
use crate::commands::hook::Recipe;

const HOOKS: [(&str, Recipe); 2] = [("BeforeAgent", Recipe::Busy), ("AfterAgent", Recipe::Idle)];

pub(super) fn plan(ctx: &Context) -> Result<Vec<Edit>> {
    let path = ctx.home.join(".gemini").join("settings.json");
    let what = ctx.shown(&path);
    let mut root = merge::parse(read(&path)?.as_deref(), &what)?;
    let mut changes = Vec::new();

    let servers = merge::object_at(&mut root, &["mcpServers"])?;
    let mut wanted = Map::new();
    wanted.insert("command".into(), json!(ctx.proxy.display().to_string()));
    wanted.insert("args".into(), json!([]));
    let env = ctx.server_env();
    if !env.is_empty() {
        wanted.insert("env".into(), Value::Object(env));
    }
    wanted.insert("trust".into(), json!(true));
    if let Some(verb) = merge::merge_server(servers, SERVER, &wanted).verb() {
        changes.push(format!(
            "{verb} the MCP server {SERVER} ({})",
            ctx.proxy.display()
        ));
    }

    let hooks = merge::object_at(&mut root, &["hooks"])?;
    for (event, recipe) in HOOKS {
        let mut wanted = Map::new();
        wanted.insert("type".into(), json!("command"));
        wanted.insert("command".into(), json!(ctx.hook_command(recipe)));
        let change = merge::merge_hook(hooks, event, &wanted, |c| is_ours(c, recipe))?;
        if let Some(verb) = change.verb() {
            changes.push(format!(
                "{verb} the {event} hook `{}`",
                ctx.hook_command(recipe)
            ));
        }
    }
    Ok(vec![Edit {
        path,
        text: merge::render(&root),
        changes,
    }])
}
