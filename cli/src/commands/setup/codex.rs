//! Codex: in `~/.codex/config.toml` (`$CODEX_HOME` when set), keeping its
//! comments and layout:
//! - `[mcp_servers.agent-event-bus]`: the proxy, its tools approved (Codex
//!   otherwise asks before each call, or refuses it under
//!   `approval_policy = "never"`), and `env_vars` passing the terminal
//!   (`TMUX`, `TMUX_PANE`, zellij's) and the state folder's variables, which
//!   Codex's fixed MCP environment would drop;
//! - `notify = [… "hook", "idle"]`: Codex runs it when a turn completes. A
//!   `notify` program set by the user is kept (Codex runs only one), with a
//!   note on how to chain it;
//! - `[features] daemon_auto_start = false`: Codex then runs each session's
//!   MCP servers inside its own terminal. With the shared background server
//!   a session's proxy is a child of that server, not of the session's
//!   process, so its pane cannot be proven and it outlives the session.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use shared::{config, state};
use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value};

use super::{Context, Edit, SERVER, is_ours, read};
use crate::commands::hook::Recipe;
use crate::output::note;

/// The variables Codex passes to the proxy from its own environment.
const ENV_VARS: [&str; 12] = [
    "TMUX",
    "TMUX_PANE",
    "ZELLIJ",
    "ZELLIJ_SESSION_NAME",
    "ZELLIJ_PANE_ID",
    "XDG_RUNTIME_DIR",
    "TMPDIR",
    state::ENV_STATE_DIR,
    config::ENV_URL,
    config::ENV_TOKEN,
    config::ENV_TOKEN_FILE,
    shared::wake::ENV_WAKE,
];

pub(super) fn plan(ctx: &Context) -> Result<Vec<Edit>> {
    let dir = std::env::var_os("CODEX_HOME")
        .filter(|d| !d.is_empty())
        .map_or_else(|| ctx.home.join(".codex"), PathBuf::from);
    let path = dir.join("config.toml");
    let text = read(&path)?.unwrap_or_default();
    let mut doc: DocumentMut = text.parse().with_context(|| {
        format!(
            "{} is not valid TOML; fix it, or make the change by hand",
            ctx.shown(&path)
        )
    })?;
    let mut changes = Vec::new();
    if server(ctx, &mut doc)? {
        changes.push(format!(
            "set the MCP server {SERVER} ({})",
            ctx.proxy.display()
        ));
    }
    if notify(ctx, &mut doc) {
        changes.push(format!("set notify = {}", doc["notify"].to_string().trim()));
    }
    let features = table(doc.as_table_mut(), "features", false)?;
    if set(features, "daemon_auto_start", Value::from(false)) {
        changes.push("set features.daemon_auto_start = false (each session's MCP servers run in its own terminal)".to_owned());
    }
    Ok(vec![Edit {
        path,
        text: doc.to_string(),
        changes,
    }])
}

/// The table `key` under `parent`, created where missing (implicit: only
/// its sub-tables are written as headers).
fn table<'a>(parent: &'a mut Table, key: &str, implicit: bool) -> Result<&'a mut Table> {
    let item = parent.entry(key).or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(implicit);
        Item::Table(t)
    });
    item.as_table_mut().with_context(|| {
        format!("`{key}` in config.toml is not a table; fix it, or make the change by hand")
    })
}

/// Sets `key` to `value` unless it holds that already; whether it changed.
fn set(table: &mut Table, key: &str, value: Value) -> bool {
    if table
        .get(key)
        .and_then(Item::as_value)
        .is_some_and(|have| same(have, &value))
    {
        return false;
    }
    table.insert(key, Item::Value(value));
    true
}

/// The same TOML value, whatever its formatting.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) => a.value() == b.value(),
        (Value::Boolean(a), Value::Boolean(b)) => a.value() == b.value(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b.iter()).all(|(a, b)| same(a, b))
        }
        _ => false,
    }
}

fn strings(words: &[String]) -> Value {
    Value::Array(words.iter().map(String::as_str).collect::<Array>())
}

fn server(ctx: &Context, doc: &mut DocumentMut) -> Result<bool> {
    let servers = table(doc.as_table_mut(), "mcp_servers", true)?;
    let entry = table(servers, SERVER, false)?;
    let mut changed = set(
        entry,
        "command",
        Value::from(ctx.proxy.display().to_string()),
    );
    changed |= set(entry, "default_tools_approval_mode", Value::from("approve"));
    // The user's own variables stay; ours are added.
    let mut vars: Vec<String> = entry
        .get("env_vars")
        .and_then(Item::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for var in ENV_VARS {
        if !vars.iter().any(|v| v == var) {
            vars.push(var.to_owned());
        }
    }
    changed |= set(entry, "env_vars", strings(&vars));
    let wanted = ctx.server_env();
    if !wanted.is_empty() {
        let env = entry
            .entry("env")
            .or_insert_with(|| Item::Value(Value::InlineTable(InlineTable::new())));
        if let Some(env) = env.as_inline_table_mut() {
            for (key, value) in &wanted {
                let value = value.as_str().unwrap_or_default();
                if env.get(key).and_then(Value::as_str) != Some(value) {
                    env.insert(key, Value::from(value));
                    changed = true;
                }
            }
        } else if let Some(env) = env.as_table_mut() {
            for (key, value) in &wanted {
                changed |= set(env, key, Value::from(value.as_str().unwrap_or_default()));
            }
        }
    }
    Ok(changed)
}

/// `notify` set to our idle hook, unless it runs someone else's program.
fn notify(ctx: &Context, doc: &mut DocumentMut) -> bool {
    let wanted = ctx.hook_argv(Recipe::Idle);
    let current: Option<Vec<String>> = doc.get("notify").map(|item| {
        item.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    });
    if let Some(current) = &current
        && !current.is_empty()
        && !is_ours(&current.join(" "), Recipe::Idle)
    {
        note(&format!(
            "Codex already runs a notify program ({}); kept it. Codex runs only one: have it also run `{}` for the bus to see turns end.",
            current.join(" "),
            wanted.join(" ")
        ));
        return false;
    }
    set(doc.as_table_mut(), "notify", strings(&wanted))
}
