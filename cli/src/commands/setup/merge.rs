//! Merging into a client's JSON config: an MCP server entry and hook
//! entries (`{"hooks": {"Event": [{"hooks": [{…}]}]}}`, the shape Claude
//! Code and Gemini CLI share). Everything else in the file is kept as it is;
//! a merge that finds what it wants already there changes nothing.

use anyhow::{Result, bail};
use serde_json::{Map, Value};

/// What merging one entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Added,
    Updated,
    Unchanged,
}

impl Change {
    pub(crate) fn verb(self) -> Option<&'static str> {
        match self {
            Self::Added => Some("added"),
            Self::Updated => Some("updated"),
            Self::Unchanged => None,
        }
    }
}

/// The object at `path` under `root`, created empty where missing.
pub(crate) fn object_at<'a>(
    root: &'a mut Value,
    path: &[&str],
) -> Result<&'a mut Map<String, Value>> {
    let mut here = root;
    let mut walked = String::new();
    for key in path {
        let Some(map) = here.as_object_mut() else {
            bail!("{} is not an object", shown(&walked));
        };
        walked = if walked.is_empty() {
            (*key).to_owned()
        } else {
            format!("{walked}.{key}")
        };
        here = map
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    match here.as_object_mut() {
        Some(map) => Ok(map),
        None => bail!("{} is not an object", shown(&walked)),
    }
}

fn shown(path: &str) -> String {
    if path.is_empty() {
        "the file".to_owned()
    } else {
        format!("\"{path}\" in the file")
    }
}

/// Sets each key of `wanted` in `entry` (an `env` object key by key, so
/// variables set by hand stay); other keys are kept.
pub(crate) fn merge_entry(entry: &mut Map<String, Value>, wanted: &Map<String, Value>) -> Change {
    let mut change = Change::Unchanged;
    for (key, value) in wanted {
        if let (Some(Value::Object(have)), Value::Object(want)) = (entry.get_mut(key), value) {
            for (k, v) in want {
                if have.get(k) != Some(v) {
                    have.insert(k.clone(), v.clone());
                    change = Change::Updated;
                }
            }
            continue;
        }
        if entry.get(key) != Some(value) {
            entry.insert(key.clone(), value.clone());
            change = Change::Updated;
        }
    }
    change
}

/// Puts the server `name` into `servers`: added, or merged into the entry
/// there (see [`merge_entry`]).
pub(crate) fn merge_server(
    servers: &mut Map<String, Value>,
    name: &str,
    wanted: &Map<String, Value>,
) -> Change {
    if let Some(entry) = servers.get_mut(name).and_then(Value::as_object_mut) {
        merge_entry(entry, wanted)
    } else {
        servers.insert(name.to_owned(), Value::Object(wanted.clone()));
        Change::Added
    }
}

/// Puts the hook `wanted` under `event` in `hooks`: the first entry whose
/// `command` is `ours` is brought up to `wanted` (its other keys kept); with
/// none, a new group holding `wanted` is added at the end.
pub(crate) fn merge_hook(
    hooks: &mut Map<String, Value>,
    event: &str,
    wanted: &Map<String, Value>,
    ours: impl Fn(&str) -> bool,
) -> Result<Change> {
    let list = hooks
        .entry(event.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    let Some(groups) = list.as_array_mut() else {
        bail!("\"hooks.{event}\" in the file is not a list");
    };
    for group in groups.iter_mut() {
        let Some(entries) = group.get_mut("hooks").and_then(Value::as_array_mut) else {
            continue;
        };
        for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
            if entry
                .get("command")
                .and_then(Value::as_str)
                .is_some_and(&ours)
            {
                return Ok(merge_entry(entry, wanted));
            }
        }
    }
    groups.push(serde_json::json!({"hooks": [wanted]}));
    Ok(Change::Added)
}

/// `text` parsed as a JSON object (empty or missing: `{}`).
pub(crate) fn parse(text: Option<&str>, what: &str) -> Result<Value> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(Value::Object(Map::new()));
    };
    let value: Value = serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!("{what} is not plain JSON ({e}); fix it, or make the change by hand")
    })?;
    if !value.is_object() {
        bail!("{what} is not a JSON object; fix it, or make the change by hand");
    }
    Ok(value)
}

/// The file's new text: pretty JSON with a final newline.
pub(crate) fn render(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: &Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn a_server_is_added_then_merged_keeping_what_was_set_by_hand() {
        let mut servers = map(&json!({"other": {"command": "x"}}));
        let wanted = map(&json!({"command": "/bin/p", "env": {"A": "1"}}));
        assert_eq!(merge_server(&mut servers, "bus", &wanted), Change::Added);
        assert_eq!(
            merge_server(&mut servers, "bus", &wanted),
            Change::Unchanged
        );
        servers["bus"]["env"]["TOKEN"] = json!("t");
        servers["bus"]["command"] = json!("/old/p");
        assert_eq!(merge_server(&mut servers, "bus", &wanted), Change::Updated);
        assert_eq!(
            servers["bus"],
            json!({"command": "/bin/p", "env": {"A": "1", "TOKEN": "t"}})
        );
        assert_eq!(servers["other"], json!({"command": "x"}));
    }

    #[test]
    fn a_hook_is_added_once_and_found_again_by_its_command() {
        let mut hooks = map(
            &json!({"Stop": [{"matcher": "", "hooks": [{"type": "command", "command": "mine.sh"}]}]}),
        );
        let wanted = map(&json!({"type": "command", "command": "/b/cli hook idle", "timeout": 5}));
        let ours = |c: &str| c.ends_with("hook idle");
        assert_eq!(
            merge_hook(&mut hooks, "Stop", &wanted, ours).unwrap(),
            Change::Added
        );
        assert_eq!(
            merge_hook(&mut hooks, "Stop", &wanted, ours).unwrap(),
            Change::Unchanged
        );
        let moved = map(&json!({"type": "command", "command": "/c/cli hook idle", "timeout": 5}));
        assert_eq!(
            merge_hook(&mut hooks, "Stop", &moved, ours).unwrap(),
            Change::Updated
        );
        let stop = hooks["Stop"].as_array().unwrap();
        assert_eq!(stop.len(), 2);
        assert_eq!(stop[0]["hooks"][0]["command"], "mine.sh");
        assert_eq!(stop[1]["hooks"][0]["command"], "/c/cli hook idle");
    }

    #[test]
    fn odd_shapes_are_refused_with_where() {
        let mut root = json!({"hooks": []});
        let err = object_at(&mut root, &["hooks"]).unwrap_err().to_string();
        assert!(err.contains("\"hooks\""), "{err}");
        let mut hooks = map(&json!({"Stop": {}}));
        let wanted = map(&json!({"command": "c"}));
        assert!(merge_hook(&mut hooks, "Stop", &wanted, |_| true).is_err());
        assert!(parse(Some("// comment\n{}"), "settings.json").is_err());
        assert!(parse(Some("[]"), "settings.json").is_err());
        assert_eq!(parse(Some("  "), "x").unwrap(), json!({}));
    }
}
